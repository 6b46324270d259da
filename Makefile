# The two set-up commands of the README: `make demo` and `make test` (each creates .venv/ if needed).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test setup lint clean chromium

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	# the CPU build of torch first, so the project's torch requirement never pulls a CUDA build
	$(VENV)/bin/pip install --quiet "torch==2.13.0"
	$(VENV)/bin/pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/cardiac-mtl demo --out demo-output --overwrite

lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

# the browser tests drive Debian's Chromium; a fresh machine gets it (and Mesa for the views) through apt
chromium:
	test -x /usr/bin/chromium || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium libegl1 libgl1-mesa-dri; }

test: $(STAMP) lint chromium
	$(VENV)/bin/python -m pytest -q

clean:
	rm -rf $(VENV) demo-output
