# The two commands: `make run` (whole system) and `make test` (whole suite). Both bootstrap .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench chaos token flask config-docs clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m devstack run

test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench $(ARGS)

# The chaos suite: the whole stack as make run starts it, its stores crashed, its processes killed
# (ARGS="--runs 3", "--short", "--keep-logs"); make test runs the short form.
chaos: $(STAMP)
	$(BIN)/python -m chaos $(ARGS)

# CLI commands against the stack `make run` started (its URLs and secrets are in var/stack.env).
flask: $(STAMP)
	@set -a; [ -f var/stack.env ] && . ./var/stack.env; set +a; $(BIN)/flask --app wsgi $(ARGS)

# A development token for that stack.
token: $(STAMP)
	@set -a; [ -f var/stack.env ] && . ./var/stack.env; set +a; $(BIN)/flask --app wsgi users token $(ARGS)

# The README's configuration table, generated from app/config.py's declarations.
config-docs: $(STAMP)
	$(BIN)/python -m devstack.config_docs

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
