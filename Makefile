# Two commands on a fresh machine: `make app` and `make test`. Both create .venv and install
# the pinned requirements first (only again when requirements.txt changes).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-requirements

.PHONY: app test setup browser bench

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

app: setup
	$(PY) app.py $(ARGS)

test: setup browser
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	$(PY) -m benchmarks.run_all
