# Two commands on a fresh machine: `make app` and `make test`. Both create .venv and install
# the pinned requirements first (only again when requirements.txt changes).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-requirements

LS_VENV := .venv-ls
LS_STAMP := $(LS_VENV)/.installed-requirements

.PHONY: app test setup browser bench label-studio integration

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

setup: $(STAMP)

# The browser test needs Debian's Chromium; install it where we may (root with apt), else it is skipped.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; \
	  else echo "chromium not installed and cannot install it here: the browser test will be skipped"; fi; }

# Label Studio in its own venv (its pins clash with ours). Best effort: where it cannot be installed
# (no package index), its tests are skipped and say why.
$(LS_STAMP): requirements-labelstudio.txt
	test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements-labelstudio.txt
	touch $(LS_STAMP)

label-studio:
	@$(MAKE) --no-print-directory $(LS_STAMP) || echo "Label Studio could not be installed into $(LS_VENV): its tests will be skipped"

# The tests against a real Label Studio server (about a minute, plus the first install).
integration: setup $(LS_STAMP)
	$(PY) -m pytest tests/test_labelstudio.py $(PYTEST_ARGS)

app: setup
	$(PY) app.py $(ARGS)

test: setup browser label-studio
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	$(PY) -m benchmarks.run_all
