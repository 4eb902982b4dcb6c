"""Action queries: per class, a yes/no question about the first frame of the action, one about the
last frame, and a short description (step 1 of the method). Queries are data: JSON files shaped
`{"ClassName": {"start": "...", "end": "...", "description": "..."}}`, validated on load, and a
built-in library (THUMOS14, Cholec80) so the product works offline with no LLM.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from zeal import jsonio
from zeal.config import PROMPT_TEMPLATE
from zeal.atomic import write_atomic
from zeal.errors import QueryError

# A query file with more classes than this is almost surely a mistake (a whole taxonomy pasted in);
# each class costs two LVLM questions per frame, so 200 classes would be 400 forward suffixes a frame.
MAX_CLASSES = 200
# Longest accepted question/description, in characters: a prompt is one sentence, not an essay.
MAX_TEXT_CHARS = 500
MAX_NAME_CHARS = 200  # a class name
# A query file beyond this is no query file (200 classes of three 500-character sentences is ~0.3 MB).
MAX_FILE_BYTES = 4 << 20

FIELDS = ("start", "end", "description")
# A yes/no question in English opens with an auxiliary or modal verb ("Is the diver ...?").
AUXILIARY_VERBS = frozenset({
    "is", "are", "am", "was", "were", "do", "does", "did", "can", "could", "has", "have", "had",
    "will", "would", "should", "shall", "may", "might", "must",
})
# The built-in query libraries: package data (zeal/library/<name>.json), read with importlib.resources
# so that an installed copy finds them as the source tree does.
LIBRARY_PACKAGE, LIBRARY_FOLDER = "zeal", "library"

# Characters that would break the prompt's one-line sentence: quotes of every kind and control chars.
_QUOTES = "\"'`\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u00ab\u00bb\u2039\u203a"
_QUOTE_RE = re.compile(f"[{re.escape(_QUOTES)}]")
_SPACE_RE = re.compile(r"\s+")
_FIRST_WORD_RE = re.compile(r"[A-Za-z']+")


def _short(value: Any, limit: int = 60) -> str:
    """repr of a value for a message, cut so that a huge input gives a short line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...'"


def _collapse_spaces(text: str) -> str:
    """Control characters and runs of whitespace become one space; ends stripped."""
    text = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)
    return _SPACE_RE.sub(" ", text).strip()


def sanitize_label(label: str) -> str:
    """The class name as it may appear inside a prompt: quotes, newlines, tabs and other control
    characters collapse to single spaces."""
    return _collapse_spaces(_QUOTE_RE.sub(" ", label))


def class_key(name: str) -> str:
    """Matching key for class names: case-insensitive, ignoring spaces, underscores and hyphens
    ("cliff diving", "Cliff_Diving" and "CliffDiving" share one key)."""
    return re.sub(r"[\s_\-]+", "", name).casefold()


def is_yes_no_question(text: str) -> bool:
    """True when text reads as a yes/no question: ends with '?' and opens with an auxiliary verb."""
    text = text.strip()
    if not text.endswith("?"):
        return False
    match = _FIRST_WORD_RE.search(text)
    if match is None or match.start() != 0:
        return False
    word = match.group(0).lower()
    if word.endswith("n't"):  # "Isn't", "Doesn't", "Can't" (-> "ca"), "Won't" (-> "wo")
        word = {"ca": "can", "wo": "will"}.get(word[:-3], word[:-3])
    return word in AUXILIARY_VERBS


@dataclass(frozen=True)
class ActionQuery:
    """The three sentences of one class. start/end: yes/no questions about one single frame at the
    very start / very end of the action; description: a short sentence for CLIP actionness.
    Surrounding whitespace is stripped; invalid content raises QueryError."""

    name: str
    start: str
    end: str
    description: str

    def __post_init__(self) -> None:
        for attr in ("name", *FIELDS):
            value = getattr(self, attr)
            if not isinstance(value, str):
                where = "class name" if attr == "name" else f"class {_short(self.name)}: {attr!r}"
                raise QueryError(f"{where} must be a string, got {type(value).__name__} ({_short(value)})")
            # Length first: a 50 MB string is refused before any per-character work.
            limit = MAX_NAME_CHARS if attr == "name" else MAX_TEXT_CHARS
            if len(value.strip()) > limit:
                what = "class name" if attr == "name" else f"class {_short(self.name)}: {attr!r}"
                raise QueryError(f"{what} is {len(value.strip())} characters long; keep it under {limit}")
            object.__setattr__(self, attr, value.strip() if attr == "name" else _collapse_spaces(value))
        if not sanitize_label(self.name):
            raise QueryError(f"class name {self.name!r} is empty (or only quotes/whitespace); give the class"
                             " a name")
        for attr in FIELDS:
            value = getattr(self, attr)
            if not value:
                raise QueryError(f"class {self.name!r}: {attr!r} is empty; write a"
                                 f" {'short description' if attr == 'description' else 'yes/no question'}")
            if len(value) > MAX_TEXT_CHARS:
                raise QueryError(f"class {self.name!r}: {attr!r} is {len(value)} characters long; keep it"
                                 f" under {MAX_TEXT_CHARS}")
        for attr in ("start", "end"):
            if not is_yes_no_question(getattr(self, attr)):
                raise QueryError(
                    f"class {self.name!r}: {attr!r} is not a yes/no question: {getattr(self, attr)!r};"
                    " begin with a verb like Is/Are/Does/Can/Has and end with '?'")
        if self.start.casefold() == self.end.casefold():
            raise QueryError(f"class {self.name!r}: the start and end questions are the same"
                             f" ({self.start!r}); the end question must describe the last frame")

    def to_dict(self) -> dict[str, str]:
        """`{"start": .., "end": .., "description": ..}` (the name is the key one level up)."""
        return {"start": self.start, "end": self.end, "description": self.description}


def _query_from_entry(name: Any, entry: Any) -> ActionQuery:
    if not isinstance(name, str):
        raise QueryError(f"class name must be a string, got {type(name).__name__} ({name!r})")
    if not isinstance(entry, dict):
        raise QueryError(f"class {name!r} must be an object with keys {list(FIELDS)},"
                         f" got {type(entry).__name__}")
    unknown = sorted(set(entry) - set(FIELDS))
    if unknown:
        raise QueryError(f"class {name!r} has unknown key(s) {unknown}; allowed: {list(FIELDS)}")
    missing = [f for f in FIELDS if f not in entry]
    if missing:
        raise QueryError(f"class {name!r} is missing key(s) {missing}; each class needs {list(FIELDS)}")
    return ActionQuery(name, entry["start"], entry["end"], entry["description"])


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json object_pairs_hook: json.loads would silently keep the last of two equal keys."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise QueryError(f"duplicate key {key!r}; each class (and each field) may appear only once")
        out[key] = value
    return out


def parse_json(text: str, source: str = "<string>") -> Any:
    """JSON (zeal.jsonio: a BOM is accepted, depth and integers bounded) that rejects duplicate
    keys; a QueryError names `source` and the line/column."""
    try:
        return jsonio.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise QueryError(f"{source}: not valid JSON at line {exc.lineno}, column {exc.colno}:"
                         f" {exc.msg}") from None
    except jsonio.JSONLimitError as exc:
        raise QueryError(f"{source}: {exc}; a query file is one object of classes, each with three"
                         " sentences") from None
    except QueryError as exc:
        raise QueryError(f"{source}: {exc}") from None


class QuerySet:
    """An ordered, immutable set of ActionQuery keyed by class name.

    `qs[name]` -> ActionQuery, `iter(qs)` yields ActionQuery in order, `len(qs)`, `name in qs`.
    Every change (`replace`, `subset`) returns a new QuerySet.
    """

    __slots__ = ("_queries",)

    def __init__(self, queries: Iterable[ActionQuery] = ()) -> None:
        items: dict[str, ActionQuery] = {}
        seen: dict[str, str] = {}
        for query in queries:
            if not isinstance(query, ActionQuery):
                raise QueryError(f"a QuerySet holds ActionQuery objects, got {type(query).__name__}")
            key = class_key(query.name)
            if key in seen:
                raise QueryError(f"duplicate class {query.name!r} (same as {seen[key]!r} ignoring case,"
                                 " spaces, underscores and hyphens); keep one of them")
            seen[key] = query.name
            items[query.name] = query
        if len(items) > MAX_CLASSES:
            raise QueryError(f"{len(items)} classes given, at most {MAX_CLASSES} are allowed;"
                             " split them into several query files")
        object.__setattr__(self, "_queries", items)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("QuerySet is immutable; use replace() or subset() for a changed copy")

    # -- construction and I/O ------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any) -> "QuerySet":
        """From `{"Name": {"start": .., "end": .., "description": ..}, ...}`; validates everything."""
        if not isinstance(data, dict):
            raise QueryError("a query set must be a JSON object mapping class names to"
                             f' {{"start", "end", "description"}}, got {type(data).__name__}')
        if len(data) > MAX_CLASSES:
            raise QueryError(f"{len(data)} classes given, at most {MAX_CLASSES} are allowed;"
                             " split them into several query files")
        return cls(_query_from_entry(name, entry) for name, entry in data.items())

    @classmethod
    def from_json(cls, text: str, source: str = "<string>") -> "QuerySet":
        """Parse and validate JSON text; errors name `source` (a file name) and the line/column."""
        data = parse_json(text, source)
        try:
            return cls.from_dict(data)
        except QueryError as exc:
            raise QueryError(f"{source}: {exc}") from None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "QuerySet":
        """Read a query JSON file (UTF-8)."""
        path = Path(path)
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise QueryError(f"{path}: {size / 1e6:.1f} MB is too large for a query file (at most "
                                 f"{MAX_FILE_BYTES / 1e6:.0f} MB); give the JSON of your classes' questions")
            text = path.read_text(encoding="utf-8-sig")  # a byte-order mark, as some editors write, is fine
        except FileNotFoundError:
            raise QueryError(f"{path}: query file not found; check the path") from None
        except IsADirectoryError:
            raise QueryError(f"{path}: is a folder, expected a query JSON file") from None
        except UnicodeDecodeError as exc:
            raise QueryError(f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8 JSON") from None
        except OSError as exc:
            raise QueryError(f"{path}: cannot read the query file ({exc.strerror})") from None
        return cls.from_json(text, source=str(path))

    def to_dict(self) -> dict[str, dict[str, str]]:
        """The JSON shape, in order."""
        return {q.name: q.to_dict() for q in self}

    def to_json(self) -> str:
        """Pretty JSON text (UTF-8 characters kept), ending with a newline."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the JSON atomically (temp file in the same folder, then rename): a crash never leaves
        a half-written query file. Returns the path."""
        return write_atomic(path, self.to_json())

    # -- mapping-like access -------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Class names, in order."""
        return list(self._queries)

    def __getitem__(self, name: str) -> ActionQuery:
        try:
            return self._queries[name]
        except KeyError:
            raise KeyError(f"no class {name!r} in this query set; classes: {self.names}") from None

    def get(self, name: str, default: ActionQuery | None = None) -> ActionQuery | None:
        return self._queries.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self._queries

    def __iter__(self) -> Iterator[ActionQuery]:
        return iter(self._queries.values())

    def __len__(self) -> int:
        return len(self._queries)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuerySet):
            return NotImplemented
        return list(self._queries.items()) == list(other._queries.items())

    def __hash__(self) -> int:
        return hash(tuple(self._queries.values()))

    def __repr__(self) -> str:
        return f"QuerySet({self.names})"

    # -- changed copies ------------------------------------------------------------------------
    def resolve(self, names: Iterable[str]) -> list[str]:
        """The canonical names for `names`, matched exactly or by `class_key`; QueryError listing
        any that are not in this set."""
        by_key = {class_key(n): n for n in self._queries}
        out: list[str] = []
        unknown: list[str] = []
        for name in names:
            canonical = name if name in self._queries else by_key.get(class_key(str(name)))
            if canonical is None:
                unknown.append(name)
            elif canonical not in out:
                out.append(canonical)
        if unknown:
            raise QueryError(f"unknown class(es) {unknown}; this query set has: {self.names}")
        return out

    def subset(self, names: Iterable[str]) -> "QuerySet":
        """The queries of `names`, in the order given (names match as in `resolve`)."""
        return QuerySet(self._queries[n] for n in self.resolve(names))

    def replace(self, query: ActionQuery) -> "QuerySet":
        """A copy with `query` in place of the class of the same name (kept at its position), or
        appended when the class is new."""
        items = dict(self._queries)
        items[query.name] = query
        return QuerySet(items.values())


# -- the built-in library ----------------------------------------------------------------------
def _library_files() -> dict[str, Any]:
    from importlib.resources import files

    folder = files(LIBRARY_PACKAGE).joinpath(LIBRARY_FOLDER)
    return {entry.name[:-len(".json")]: entry for entry in folder.iterdir() if entry.name.endswith(".json")}


def list_libraries() -> list[str]:
    """Names of the built-in query libraries, e.g. ["cholec80", "thumos14"]."""
    return sorted(_library_files())


def load_library(name: str) -> QuerySet:
    """One built-in library by name (see list_libraries)."""
    entry = _library_files().get(name)
    if entry is None:
        raise QueryError(f"unknown query library {name!r}; built-in libraries: {list_libraries()}")
    return QuerySet.from_json(entry.read_text(encoding="utf-8"), source=f"built-in library {name}")


def lookup(names: Iterable[str]) -> QuerySet:
    """Queries for `names` from all built-in libraries, matched case-insensitively and ignoring spaces,
    underscores and hyphens ("cliff diving" -> CliffDiving); returned under the canonical names."""
    by_key: dict[str, ActionQuery] = {}
    for library in list_libraries():
        for query in load_library(library):
            by_key.setdefault(class_key(query.name), query)
    found: list[ActionQuery] = []
    unknown: list[str] = []
    for name in names:
        query = by_key.get(class_key(str(name)))
        if query is None:
            unknown.append(name)
        elif query not in found:
            found.append(query)
    if unknown:
        raise QueryError(
            f"no built-in questions for class(es) {unknown} (libraries: {', '.join(list_libraries())});"
            " give a query file with --queries, or generate questions with an LLM")
    return QuerySet(found)


def prompt_text(label: str, question: str, template: str = PROMPT_TEMPLATE) -> str:
    """The exact user text sent to the LVLM for one class and one question. The label is sanitised
    (quotes, newlines, tabs collapse to single spaces) and the question's whitespace collapsed, so the
    prompt stays one well-formed sentence whatever the class is called."""
    clean = sanitize_label(label)
    if not clean:
        raise QueryError(f"class name {label!r} is empty after removing quotes and whitespace")
    try:
        return template.format(label=clean, question=_collapse_spaces(question))
    except (KeyError, IndexError, ValueError) as exc:
        raise QueryError(f"prompt template {template!r} is malformed ({exc}); it may use only"
                         " {label} and {question}") from None
