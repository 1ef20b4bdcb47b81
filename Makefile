# `make chat` runs the team in the terminal; `make test` runs every check CI runs.
# Both create the virtual environment in .venv on first use.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: chat test bench

$(BIN)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,embeddings]'
	touch $@

chat: $(BIN)/.installed
	$(BIN)/corral chat

test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy -p corral
	$(BIN)/pytest

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/turn_overhead.py
