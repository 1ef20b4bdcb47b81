# `make chat` runs the team in the terminal; `make test` runs every check CI runs;
# `make fuzz` runs the fuzzers long (many random examples, not CI's few fixed ones).
# Each creates the virtual environment in .venv on first use.
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: chat test fuzz bench stale-venv

# An interpreter's "major.minor", or nothing when it does not run.
python_version = $(shell $(1) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)

# A venv made by another Python (one upgraded or removed since, or an older one) is made
# again, instead of failing the same way on every run until someone deletes it.
ifneq ($(wildcard $(VENV)),)
ifneq ($(call python_version,$(BIN)/python),$(call python_version,$(PYTHON)))
STALE_VENV := $(VENV)
endif
endif

$(BIN)/.installed: pyproject.toml $(if $(STALE_VENV),stale-venv)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "Corral needs Python 3.11 or newer, and $(PYTHON) is $$($(PYTHON) --version 2>&1)." >&2; \
	  echo "Install a newer one and run, for example: make PYTHON=python3.12" >&2; exit 1; }
	$(if $(STALE_VENV),rm -rf $(VENV))
	$(PYTHON) -m venv $(VENV)
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

fuzz: $(BIN)/.installed
	HYPOTHESIS_PROFILE=long $(BIN)/pytest tests/test_fuzz_*.py

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/turn_overhead.py
