# Quick start: `make run` (the desktop app) and `make test` (the whole suite).
# Both create .venv on first use and install the project into it.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The CPU build of torch; pinned so a fresh venv never downloads CUDA wheels. Override on a GPU box:
#   make TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128" install
TORCH_SPEC ?= torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: run test test-slow install bench lint clean-venv

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/circuit-inspector

test: $(STAMP)
	$(VENV)/bin/lint-imports
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

test-slow: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -m slow

# Every benchmark, one JSON line each (engine: engine/cli/bench.py; app: app/bench.py). Run alone:
# they time the machine's cores.
bench: $(STAMP)
	$(VENV)/bin/circuit-engine bench train --json
	$(VENV)/bin/circuit-engine bench prune --json
	$(VENV)/bin/circuit-engine bench ablate --json
	$(VENV)/bin/circuit-engine bench store --json
	$(VENV)/bin/circuit-inspector --bench-graph --json
	$(VENV)/bin/circuit-inspector --bench-export --json

clean-venv:
	rm -rf $(VENV)
