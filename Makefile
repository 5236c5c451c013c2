# Two entry points for a fresh machine: `make demo` (the app on the sample corpus) and `make test`.
PY ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= train,eval,ui,dev
BIN := $(VENV)/bin

.PHONY: install demo ui lint test test-fast clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip uv
	# torch first and pinned: a loose spec lets a resolver pull a multi-GB CUDA build
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/uv pip install -q --python $(BIN)/python -e ".[$(EXTRAS)]"
	touch $@

demo: install
	$(BIN)/lorag demo --serve

ui: install
	$(BIN)/lorag ui

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) .lorag
