# The two commands: `make run` (whole system) and `make test` (whole suite). Both bootstrap .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench chaos token flask config-docs clean browser rabbitmq

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m devstack run

test: $(STAMP) lint typecheck browser rabbitmq
	$(BIN)/python -m pytest

# The wallet page's browser tests drive Debian's chromium (never `playwright install`): installed
# here when missing and this is root (CI); otherwise stop with the command to run.
CHROMIUM_PATH ?= /usr/bin/chromium
CHROMIUM_INSTALL := apt-get update && apt-get install -y --no-install-recommends chromium
browser:
	@test -x $(CHROMIUM_PATH) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    DEBIAN_FRONTEND=noninteractive sh -c '$(CHROMIUM_INSTALL)'; \
	  else \
	    echo "The browser tests need Chromium. Install it with: sudo sh -c '$(CHROMIUM_INSTALL)'"; \
	    exit 1; \
	  fi; }

# The broker test starts a private RabbitMQ node (devstack/embedded.py) from Debian's package:
# installed here when missing and this is root; otherwise stop with the command to run.
RABBITMQ_INSTALL := apt-get update && apt-get install -y --no-install-recommends rabbitmq-server
rabbitmq:
	@test -x /usr/sbin/rabbitmq-server || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    DEBIAN_FRONTEND=noninteractive sh -c '$(RABBITMQ_INSTALL)'; \
	  else \
	    echo "The broker test needs RabbitMQ. Install it with: sudo sh -c '$(RABBITMQ_INSTALL)'"; \
	    exit 1; \
	  fi; }

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
