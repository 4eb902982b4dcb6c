"""P(yes) of a Hugging Face vision-language model, with the image prefix computed once per frame.

The only module that imports the transformers LVLM stack (`import zeal` does not import it).

For one frame and the 2k questions of a video, every prompt is
    [template head + image tokens + text up to the first token where the questions differ] + [suffix_i]
so the shared prefix (with the vision encoder) runs once. The suffixes then run in ONE forward on its
cached keys/values, packed into one sequence as a prefix tree: a token that several suffixes share at
the same place (the class name of a start and an end question) is computed once, and each token attends
to the whole prefix and to its own ancestors only (a 4-D mask), at the position it has in the full
prompt. P(yes) is read from the raw logits at each suffix's last token: softmax over (logsumexp of the
"yes" spellings, logsumexp of the "no" spellings; every single-token spelling, or the published code's one,
see zeal.scorers.answers); only those rows of the output head are computed. `p_yes_reference` is the
plain one-prompt-at-a-time forward, the oracle of the tests.

Why this is exact: under causal attention a token's output depends only on the tokens before it and on
their positions, and the mask + position ids give every suffix token exactly that context (for Qwen2-VL's
M-RoPE: the prefix's last text position + 1 + depth on all three axes, as generate() does with
`rope_deltas`). Where a custom mask cannot be passed (attention kernels that take no mask, sliding-window
layers), the suffixes run as a right-padded batch instead (a real token never sees a pad).
"""

from __future__ import annotations

import inspect
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from zeal.config import parse_image_budget
from zeal.errors import ModelError
from zeal.scorers import chat_messages
from zeal.scorers.answers import check_mode, resolve_answer_ids
from zeal.scorers.availability import lvlm_status, require_obtainable
from zeal.scorers.device import resolve_device
from zeal.scorers.identity import fingerprint, with_answers
from zeal.scorers.image_budget import apply_image_budget

# Keys of a processor's output that hold one value per token (truncated to the prefix).
PER_TOKEN_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids", "token_type_ids")
MODEL_CLASS_NAMES = ("AutoModelForImageTextToText", "AutoModelForVision2Seq", "AutoModelForCausalLM")
# Attention implementations that take a custom 4-D additive mask as is (flash-attention kernels take
# none, flex attention a BlockMask): only these run the packed suffix tree.
MASKED_ATTENTION = ("eager", "sdpa")
# The yes/no-only output head is used once it reproduces the model's own answer logits to within this
# (relative to the logits' scale) on the first suffix batch; models that rescale or soft-cap their
# logits after the head fail the check and keep the full head.
HEAD_CHECK_TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-8}
HEAD_CHECK_TOLERANCE_LOW_PRECISION = 2e-2
# Longest part of a loader's error quoted back to the user.
MAX_REASON_CHARS = 300
OOM_ADVICE = ("lower LVLMConfig.frames_per_batch, use a smaller model or dtype, free GPU memory, "
              "or run on the CPU (device='cpu')")


def _is_oom(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()


def native_bf16_cpu() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (AMX or AVX512-BF16). There bfloat16
    runs about 3x faster than float32 (204 vs 66 GFLOP/s measured on a 2-core Xeon with AMX); elsewhere
    it is emulated, and slower."""
    for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        check = getattr(getattr(torch, "cpu", None), name, None)
        try:
            if check is not None and check():
                return True
        except Exception:  # a torch build without the probe: assume no
            continue
    return False


def _pick_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """"auto": bfloat16 on CUDA (float16 without bf16 support), float16 on MPS, float32 on the CPU;
    "fast": as auto, but bfloat16 on a CPU that computes it natively; or a dtype's name."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "fast":
        dtype = "bfloat16" if device.type == "cpu" and native_bf16_cpu() else "auto"
    if dtype != "auto":
        try:
            return {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16,
                    "fp16": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}[dtype]
        except KeyError:
            raise ModelError(f"unknown dtype {dtype!r}: use auto, fast, float32, float16 or bfloat16") from None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


def _model_type(model: Any) -> str | None:
    """The transformers model_type that decides the "exact" answer spelling."""
    return getattr(getattr(model, "config", None), "model_type", None)


class LVLMScorer:
    """P(yes) for (image, question) pairs from a transformers image-text-to-text model.

    Build it with `from_pretrained`, or pass an already loaded model and processor (tests, notebooks);
    `weights_id` then names the weights (`model_id` adds how the answer is read).
    frames_per_batch: frames whose prefixes run together; texts_per_batch: suffixes per forward
    (None = all); both shrink automatically when the GPU runs out of memory. answer_spellings: "all" or
    "exact" (see zeal.scorers.answers). image_budget: "full", "base" or a pixel count, applied through
    the processor's own options (zeal.scorers.image_budget; LLaVA-OneVision's grid is also set on the
    model, so a model passed in is changed). `stats` counts calls, frames and (frame, text) pairs scored.
    """

    def __init__(self, model: Any, processor: Any, weights_id: str, frames_per_batch: int = 4,
                 texts_per_batch: int | None = None, answer_spellings: str = "all",
                 image_budget: str | int = "full") -> None:
        if frames_per_batch < 1 or (texts_per_batch is not None and texts_per_batch < 1):
            raise ModelError(f"frames_per_batch={frames_per_batch} and texts_per_batch={texts_per_batch} "
                             "must be at least 1")
        self.model = model.eval()
        self.image_budget = parse_image_budget(image_budget)
        self.processor = apply_image_budget(model, processor, self.image_budget)
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.weights_id = weights_id
        self.model_id = with_answers(weights_id, answer_spellings, self.image_budget)
        self.frames_per_batch = frames_per_batch
        self.texts_per_batch = texts_per_batch
        self.answer_ids = resolve_answer_ids(self.tokenizer, weights_id, answer_spellings, _model_type(model))
        self.stats: dict[str, int] = {"calls": 0, "frames": 0, "pairs": 0}
        self._stats_lock = threading.Lock()
        self.device = next(model.parameters()).device
        self._forward_args = set(inspect.signature(model.forward).parameters)
        self._yes = torch.tensor(self.answer_ids.yes, device=self.device)
        self._no = torch.tensor(self.answer_ids.no, device=self.device)
        self._pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self._answer = torch.cat([self._yes, self._no])
        # None: not checked yet; True/False: whether the yes/no-only head matches the model's logits
        self._small_head: bool | None = None if self._head_rows_possible() else False
        # None: not checked yet; True/False: whether one processor call for several frames gives
        # each frame exactly the inputs a call of its own gives
        self._batch_encoding: bool | None = None

    # ---------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, name_or_path: str, device: str = "auto", dtype: str = "auto",
                        frames_per_batch: int = 4, answer_spellings: str = "all",
                        image_budget: str | int = "full") -> "LVLMScorer":
        """Load a local folder, or a hub id from the local Hugging Face cache (downloaded first when the
        hub is reachable). A model that is not here and cannot be downloaded is one short ModelError
        within seconds (see zeal.scorers.availability)."""
        import transformers

        check_mode(answer_spellings)
        status = lvlm_status(name_or_path)
        require_obtainable(status)
        torch_device = torch.device(resolve_device(device))
        torch_dtype = _pick_dtype(dtype, torch_device)
        source = str(Path(name_or_path).expanduser()) if status.where == "local folder" else name_or_path
        # a cached hub model loads without asking the hub (what is cached is what the model id names)
        local_only = {"local_files_only": True} if status.present else {}
        try:
            processor = transformers.AutoProcessor.from_pretrained(source, **local_only)
            model = None
            errors: list[str] = []
            for class_name in MODEL_CLASS_NAMES:
                auto_class = getattr(transformers, class_name, None)
                if auto_class is None:
                    continue
                try:
                    model = auto_class.from_pretrained(source, dtype=torch_dtype, **local_only)
                    break
                except ValueError as error:  # this Auto class does not map the config: try the next
                    errors.append(f"{class_name}: {error}")
            if model is None:
                raise ModelError(f"{name_or_path!r} is not an image-text-to-text model that transformers "
                                 f"can load ({'; '.join(errors)[:500]})")
        except ModelError:
            raise
        except (OSError, ImportError) as error:  # incomplete folder or cache, a download that failed
            reason = str(error).splitlines()[0][:MAX_REASON_CHARS] if str(error) else type(error).__name__
            raise ModelError(f"cannot load the LVLM {name_or_path!r} ({reason}); give a folder with config.json,"
                             " the weights and the processor files, or a complete Hugging Face cache entry") from error
        model.to(torch_device)
        return cls(model, processor, fingerprint(name_or_path), frames_per_batch=frames_per_batch,
                   answer_spellings=answer_spellings, image_budget=image_budget)

    # ---------------------------------------------------------------- prompts
    def render(self, text: str) -> str:
        """The full prompt string for one user text: the model's chat template, image first."""
        try:
            return self.processor.apply_chat_template(chat_messages(text), add_generation_prompt=True,
                                                      tokenize=False)
        except Exception as error:  # no template, or a template that rejects this layout
            raise ModelError(f"the chat template of {self.model_id} cannot render an image + text user "
                             f"turn ({error}); use a model with a chat template (an -Instruct/-hf checkpoint)"
                             ) from error

    def _encode(self, prompts: list[str], images: list[Any]) -> dict[str, Any]:
        # The chat template already holds the special tokens (BOS etc.), so the tokenizer adds none.
        return dict(self.processor(text=prompts, images=images, return_tensors="pt",
                                   add_special_tokens=False, padding=True))

    # ---------------------------------------------------------------- scoring
    def _to_p_yes(self, logits: torch.Tensor) -> np.ndarray:
        """[B, V] raw logits -> [B] float64 P(yes)."""
        logits = logits.double()
        yes = torch.logsumexp(logits.index_select(-1, self._yes), dim=-1)
        no = torch.logsumexp(logits.index_select(-1, self._no), dim=-1)
        return torch.sigmoid(yes - no).cpu().numpy()

    @torch.inference_mode()
    def p_yes_reference(self, images: Sequence[Any], texts: Sequence[str]) -> np.ndarray:
        """One full forward per (image, text), no cache, no batching. -> [len(images), len(texts)] float64."""
        images = [_as_pil(image) for image in images]
        out = np.empty((len(images), len(texts)), dtype=np.float64)
        for i, image in enumerate(images):
            for j, text in enumerate(texts):
                enc = self._to_device(self._encode([self.render(text)], [image]))
                logits = self.model(**enc, use_cache=False, **self._keep_last()).logits[:, -1]
                out[i, j] = self._to_p_yes(logits)[0]
        return out

    def p_yes(self, images: Sequence[Any], texts: Sequence[str]) -> np.ndarray:
        """P(yes) of every (image, text) pair. images: HxWx3 uint8 arrays or PIL images; texts: full user
        texts. -> [len(images), len(texts)] float64 in (0, 1)."""
        if len(images) == 0 or len(texts) == 0:
            return np.zeros((len(images), len(texts)), dtype=np.float64)
        unique = list(dict.fromkeys(texts))
        plan = self._plan(unique)
        pil = [_as_pil(image) for image in images]
        scores = self._with_oom_backoff(lambda frames_n, texts_n: self._score(pil, plan, frames_n, texts_n),
                                        len(unique))
        with self._stats_lock:
            self.stats["calls"] += 1
            self.stats["frames"] += len(images)
            self.stats["pairs"] += len(images) * len(unique)
        column = {text: j for j, text in enumerate(unique)}
        return scores[:, [column[text] for text in texts]]

    def _with_oom_backoff(self, run: Callable[[int, int], np.ndarray], n_texts: int) -> np.ndarray:
        """Call run(frames_per_batch, texts_per_batch); on an out-of-memory error halve the frames per
        batch, then (at one frame) the texts per batch, and retry. The smaller sizes stay for later calls;
        at one frame and one text: ModelError with advice."""
        while True:
            texts_n = min(self.texts_per_batch or n_texts, n_texts)
            try:
                return run(self.frames_per_batch, texts_n)
            except (torch.OutOfMemoryError, RuntimeError) as error:
                if not _is_oom(error):
                    raise
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if self.frames_per_batch > 1:
                    self.frames_per_batch //= 2
                elif texts_n > 1:
                    self.texts_per_batch = texts_n // 2
                else:
                    raise ModelError(f"{self.model_id} runs out of memory on {self.device} even with one "
                                     f"frame and one question per batch: {OOM_ADVICE}") from error

    # ------------------------------------------------------------ the cached path
    def _plan(self, texts: list[str]) -> "_Plan":
        """Split the tokenized prompts into the shared part and per-text suffixes (unexpanded ids)."""
        prompts = [self.render(text) for text in texts]
        ids = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        shared = _common_prefix_len(ids)
        # Every suffix keeps at least one token: its logits are the answer's.
        shared = min(shared, min(len(x) for x in ids) - 1)
        return _Plan(prompts=prompts, ids=ids, shared=shared)

    @torch.inference_mode()
    def _score(self, images: list[Any], plan: "_Plan", frames_n: int, texts_n: int) -> np.ndarray:
        out = np.empty((len(images), len(plan.prompts)), dtype=np.float64)
        prefixes = [self._prefix_inputs(enc, plan) for enc in self._encode_frames(plan.prompts[0], images)]
        groups: dict[tuple, list[int]] = {}
        for index, prefix in enumerate(prefixes):
            if prefix is None:
                out[index] = self._score_full_prompts(images[index], plan, texts_n)
            else:
                groups.setdefault(prefix.key, []).append(index)
        for members in groups.values():
            for start in range(0, len(members), frames_n):
                batch = members[start:start + frames_n]
                out[batch] = self._score_frames([prefixes[i] for i in batch], plan, texts_n)
        return out

    def _encode_frames(self, prompt: str, images: list[Any]) -> list[dict[str, Any]]:
        """The processor's inputs for `prompt` with each image: from one processor call when the images
        are the same size (a video's frames), cut into equal rows per frame. A processor call costs
        ~1.3 ms beyond its images (merging and validating its options), as much as a tiny model's
        forward; whether the cut rows equal a frame's own call is checked once per scorer."""
        if len(images) > 1 and self._batch_encoding is not False and len({im.size for im in images}) == 1:
            rows = _split_rows(self._encode([prompt] * len(images), images), len(images))
            if rows is not None and self._batch_encoding is None:
                self._batch_encoding = _same_inputs(rows[-1], self._encode([prompt], images[-1:]))
            if rows is not None and self._batch_encoding:
                return rows
        return [self._encode([prompt], [image]) for image in images]

    def _prefix_inputs(self, enc: dict[str, Any], plan: "_Plan") -> "_Prefix | None":
        full = enc["input_ids"][0].tolist()
        tail = plan.ids[0][plan.shared:]
        expansion = len(full) - len(plan.ids[0])  # tokens the processor added for the image
        if expansion < 0 or full[len(full) - len(tail):] != tail:
            # The processor rewrites the text after the image (not seen in the supported architectures):
            # the shared prefix cannot be cut out of its tokens, so score full prompts instead.
            return None
        length = expansion + plan.shared
        inputs = {k: (v[:, :length] if k in PER_TOKEN_KEYS and torch.is_tensor(v) else v)
                  for k, v in enc.items()}
        key = (length, tuple(sorted((k, tuple(v.shape)) for k, v in inputs.items() if torch.is_tensor(v))))
        return _Prefix(inputs=inputs, length=length, key=key)

    def _score_frames(self, prefixes: list["_Prefix"], plan: "_Plan", texts_n: int) -> np.ndarray:
        """One prefix forward for these frames (same prefix length), then the suffixes in chunks."""
        inputs = {k: torch.cat([p.inputs[k] for p in prefixes]) if torch.is_tensor(prefixes[0].inputs[k])
                  else prefixes[0].inputs[k] for k in prefixes[0].inputs}
        inputs = self._to_device(inputs)
        length = prefixes[0].length
        # The prefix's own logits are never read: keep none (the vocabulary projection reads the whole
        # output matrix, as costly on a CPU as the suffixes' one).
        out = self.model(**inputs, use_cache=True, **self._keep_none())
        cache = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
        start, mrope = self._suffix_start(length, len(prefixes))
        frames = len(prefixes)
        packed = self._packing_possible()  # checked per call: the attention implementation can be switched
        result = np.empty((frames, len(plan.prompts)), dtype=np.float64)
        for t0 in range(0, len(plan.prompts), texts_n):
            chunk = list(range(t0, min(t0 + texts_n, len(plan.prompts))))
            suffixes = [plan.ids[j][plan.shared:] for j in chunk]
            if packed:
                logits = self._packed_suffix_logits(cache, suffixes, start, mrope, length)
            else:
                logits = self._batched_suffix_logits(cache, suffixes, start, mrope)
            result[:, chunk] = self._answer_p_yes(logits).reshape(frames, len(chunk))
        return result

    def _packed_suffix_logits(self, cache: Any, suffixes: list[list[int]], start: torch.Tensor, mrope: bool,
                              prefix_length: int) -> torch.Tensor:
        """All suffixes of each frame as one prefix-tree sequence on the frame's cached prefix.
        -> [frames * len(suffixes), n_answer_ids] answer logits, frame-major."""
        tree = _pack_suffixes(suffixes)
        frames = start.shape[0]
        n = len(tree.tokens)
        ids = torch.tensor(tree.tokens, device=self.device)[None].expand(frames, -1)
        positions = start[:, None] + torch.tensor(tree.depths, device=self.device)[None]
        if mrope:  # the same text position on the temporal, height and width axes
            positions = positions[None].expand(3, -1, -1)
        # additive mask: 0 where a token may attend (the whole prefix, its ancestors, itself), else the
        # dtype's minimum (eager adds it to the scores, sdpa takes a float mask as additive)
        dtype = self.model.dtype
        visible = torch.from_numpy(tree.visible).to(self.device)
        mask = torch.zeros((n, prefix_length + n), dtype=dtype, device=self.device)
        mask[:, prefix_length:].masked_fill_(~visible, torch.finfo(dtype).min)
        mask = mask[None, None].expand(frames, 1, -1, -1)
        keep = torch.tensor(tree.answer_rows, device=self.device)
        return self._suffix_logits(cache, 1, keep, input_ids=ids, position_ids=positions, attention_mask=mask)

    def _batched_suffix_logits(self, cache: Any, suffixes: list[list[int]], start: torch.Tensor,
                               mrope: bool) -> torch.Tensor:
        """The suffixes right-padded to one batch on copies of each frame's cache (for attention kernels
        that take no custom mask). -> [frames * len(suffixes), n_answer_ids] answer logits, frame-major."""
        frames = start.shape[0]
        width = max(len(s) for s in suffixes)
        ids = torch.full((len(suffixes), width), self._pad_id, dtype=torch.long)
        for row, suffix in enumerate(suffixes):
            ids[row, :len(suffix)] = torch.tensor(suffix)
        last = torch.tensor([len(s) - 1 for s in suffixes])
        # batch order: frame-major, then text
        ids = ids.repeat(frames, 1).to(self.device)
        last = last.repeat(frames).to(self.device)
        positions = start.repeat_interleave(len(suffixes))[:, None] + torch.arange(width, device=self.device)
        if mrope:
            positions = positions[None].expand(3, -1, -1)
        return self._suffix_logits(cache, len(suffixes), last[:, None], input_ids=ids, position_ids=positions)

    def _suffix_logits(self, cache: Any, repeats: int, keep: torch.Tensor, **inputs: Any) -> torch.Tensor:
        """Run a suffix forward on a copy of `cache` (each row `repeats` times) and return the answer
        ids' logits at the kept positions ([B, n] or [n] indices) -> [rows, n_answer_ids].

        The yes/no-only head projects just those rows of the output matrix (on a CPU the full
        vocabulary projection of the answer tokens costs as much as a third of the suffix forward). It is
        used once it has reproduced the model's own logits on the first batch."""
        if self._small_head is False:
            return self._full_head_logits(_fork_cache(cache, repeats), keep, inputs)
        small = self._small_head_logits(_fork_cache(cache, repeats), keep, inputs)
        if self._small_head is None:
            full = self._full_head_logits(_fork_cache(cache, repeats), keep, inputs)
            scale = full.abs().max().clamp(min=1.0)
            tolerance = HEAD_CHECK_TOLERANCE.get(full.dtype, HEAD_CHECK_TOLERANCE_LOW_PRECISION)
            self._small_head = bool(((small.to(full.dtype) - full).abs().max() <= tolerance * scale).item())
            return full
        return small

    def _full_head_logits(self, cache: Any, keep: torch.Tensor, inputs: dict[str, Any]) -> torch.Tensor:
        logits = self.model(**inputs, cache=cache, use_cache=True, logits_to_keep=keep).logits
        return logits.reshape(-1, logits.shape[-1]).index_select(-1, self._answer)

    def _small_head_logits(self, cache: Any, keep: torch.Tensor, inputs: dict[str, Any]) -> torch.Tensor:
        import torch.nn.functional as F

        hidden = self.model.model(**inputs, cache=cache, use_cache=True).last_hidden_state
        if keep.ndim == 1:
            hidden = hidden[:, keep]
        else:
            hidden = torch.take_along_dim(hidden, keep[..., None], dim=1)
        head = self.model.get_output_embeddings()
        bias = head.bias.index_select(0, self._answer) if head.bias is not None else None
        logits = F.linear(hidden, head.weight.index_select(0, self._answer), bias)
        return logits.reshape(-1, logits.shape[-1])

    def _answer_p_yes(self, logits: torch.Tensor) -> np.ndarray:
        """[B, n_yes + n_no] answer logits (yes ids first) -> [B] float64 P(yes)."""
        logits = logits.double()
        n_yes = len(self.answer_ids.yes)
        yes = torch.logsumexp(logits[:, :n_yes], dim=-1)
        no = torch.logsumexp(logits[:, n_yes:], dim=-1)
        return torch.sigmoid(yes - no).cpu().numpy()

    def _packing_possible(self) -> bool:
        """Whether the language model takes a custom 4-D mask in every layer: an eager or sdpa
        attention, and full attention in all layers (a sliding-window layer builds its own mask, which
        a single custom mask would replace)."""
        config = self.model.config
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        implementation = getattr(text, "_attn_implementation", None) or getattr(config, "_attn_implementation", None)
        if implementation not in MASKED_ATTENTION:
            return False
        layer_types = getattr(text, "layer_types", None)
        if layer_types is not None:
            return all(kind == "full_attention" for kind in layer_types)
        return getattr(text, "sliding_window", None) is None

    def _head_rows_possible(self) -> bool:
        """Whether the model has the usual layout: a base model (`.model`) whose last hidden state
        feeds a linear output head."""
        head = self.model.get_output_embeddings() if hasattr(self.model, "get_output_embeddings") else None
        return isinstance(head, torch.nn.Linear) and isinstance(getattr(self.model, "model", None), torch.nn.Module)

    def _score_full_prompts(self, image: Any, plan: "_Plan", texts_n: int) -> np.ndarray:
        """The uncached fallback: full prompts of one image, texts_n per forward, right-padded (so under
        causal attention no real token sees a pad and positions match the single prompt). -> [n_texts]"""
        result = np.empty(len(plan.prompts), dtype=np.float64)
        side = self.tokenizer.padding_side
        self.tokenizer.padding_side = "right"
        try:
            for t0 in range(0, len(plan.prompts), texts_n):
                prompts = plan.prompts[t0:t0 + texts_n]
                enc = self._to_device(self._encode(prompts, [image] * len(prompts)))
                last = enc["attention_mask"].sum(dim=1) - 1
                logits = self.model(**enc, use_cache=False, logits_to_keep=last[:, None]).logits[:, -1]
                result[t0:t0 + len(prompts)] = self._to_p_yes(logits)
        finally:
            self.tokenizer.padding_side = side
        return result

    def _suffix_start(self, prefix_length: int, frames: int) -> tuple[torch.Tensor, bool]:
        """Position id of each frame's first suffix token ([frames] int64) and whether the model uses
        3-D M-RoPE positions. Call right after the prefix forward.

        Most models number tokens 0, 1, ...: the suffix starts at prefix_length. M-RoPE models
        (Qwen2-VL, Qwen2.5-VL) number the text after an image from max(image position) + 1, i.e.
        token index + rope_deltas; the model stores rope_deltas while running the prefix, exactly as it
        does inside generate(), and the suffix (text only) continues from there on all three axes."""
        start = torch.full((frames,), prefix_length, dtype=torch.long, device=self.device)
        inner = getattr(self.model, "model", self.model)
        deltas = getattr(inner, "rope_deltas", None) if hasattr(inner, "get_rope_index") else None
        if deltas is None:
            return start, False
        return start + deltas.reshape(-1).to(self.device), True

    # ---------------------------------------------------------------- helpers
    def _keep_none(self) -> dict[str, Any]:
        if "logits_to_keep" not in self._forward_args:
            return {}
        return {"logits_to_keep": torch.zeros(0, dtype=torch.long, device=self.device)}

    def _keep_last(self) -> dict[str, int]:
        return {"logits_to_keep": 1} if "logits_to_keep" in self._forward_args else {}

    def _to_device(self, inputs: dict[str, Any]) -> dict[str, Any]:
        dtype = self.model.dtype
        moved = {}
        for key, value in inputs.items():
            if torch.is_tensor(value):
                value = value.to(self.device, dtype=dtype) if value.is_floating_point() else value.to(self.device)
            moved[key] = value
        return moved


@dataclass
class _Plan:
    prompts: list[str]
    ids: list[list[int]]
    shared: int


@dataclass
class _Prefix:
    inputs: dict[str, Any]
    length: int
    key: tuple


def _split_rows(enc: dict[str, Any], n: int) -> list[dict[str, Any]] | None:
    """A processor's output for n same-size images cut into n inputs of one image each: every tensor
    into n equal runs of rows (per image, or an image's patches, as Qwen2-VL concatenates them).
    None when some value cannot be cut so."""
    rows: list[dict[str, Any]] = [{} for _ in range(n)]
    for key, value in enc.items():
        if not torch.is_tensor(value) or value.dim() == 0 or value.shape[0] % n:
            return None
        for row, part in zip(rows, value.split(value.shape[0] // n)):
            row[key] = part
    return rows


def _same_inputs(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _common_prefix_len(seqs: list[list[int]]) -> int:
    first = seqs[0]
    n = min(len(s) for s in seqs)
    for i in range(n):
        token = first[i]
        if any(s[i] != token for s in seqs):
            return i
    return n


@dataclass
class _SuffixTree:
    """Suffixes packed as a prefix tree: one node per distinct (ancestors, token)."""

    tokens: list[int]        # [n] token id of each node, parents before children
    depths: list[int]        # [n] position of the node after the prefix (0 = first suffix token)
    visible: np.ndarray      # [n, n] bool: visible[i, j] when node j is node i or one of its ancestors
    answer_rows: list[int]   # [n_suffixes] the node of each suffix's last token


def _pack_suffixes(suffixes: list[list[int]]) -> _SuffixTree:
    """Merge suffixes (each at least one token) into a prefix tree, so that a token shared by several
    suffixes at the same place, after the same tokens, is computed once."""
    children: dict[tuple[int, int], int] = {}
    tokens: list[int] = []
    depths: list[int] = []
    parents: list[int] = []
    answer_rows = []
    for suffix in suffixes:
        node = -1
        for depth, token in enumerate(suffix):
            child = children.get((node, token))
            if child is None:
                child = len(tokens)
                children[(node, token)] = child
                tokens.append(token)
                depths.append(depth)
                parents.append(node)
            node = child
        answer_rows.append(node)
    visible = np.zeros((len(tokens), len(tokens)), dtype=bool)
    for node, parent in enumerate(parents):  # parents come first: their rows are complete
        if parent >= 0:
            visible[node] = visible[parent]
        visible[node, node] = True
    return _SuffixTree(tokens=tokens, depths=depths, visible=visible, answer_rows=answer_rows)


def _fork_cache(cache: Any, repeats: int) -> Any:
    """A new cache holding each batch row of `cache` `repeats` times (row-major), leaving `cache` intact
    (a dynamic cache layer appends by concatenation into new tensors, so a shallow copy of the layers
    keeps the prefix's tensors untouched; at one repeat nothing is copied)."""
    import copy

    forked = copy.copy(cache)
    forked.layers = [copy.copy(layer) for layer in cache.layers]
    if repeats > 1:
        forked.batch_repeat_interleave(repeats)
    return forked


def _as_pil(image: Any) -> Any:
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ModelError(f"an image must be an HxWx3 uint8 array or a PIL image, got shape {array.shape} "
                         f"dtype {array.dtype}")
    return Image.fromarray(array)
