# The two commands of the README. Both install what is missing first (scripts/bootstrap.sh).
#   make run    set up, initialise this peer, start the appliance (realize up)
#   make test   set up (with the test tools: Chromium, Playwright, ruff, import-linter),
#               check the code's layers, and run every test
#   make bench  set up and run the benchmarks

VENV   := .venv
REALIZE := $(VENV)/bin/realize
NAME   ?= $(shell hostname -s | tr -c 'A-Za-z0-9._\n-' '-')
WEB    ?= 127.0.0.1:8000
LISTEN ?=

export REALIZE_HOME ?= $(HOME)/.realize
export DATABASE_URL ?= postgresql:///realize
export REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: run test bench lint setup setup-test

setup:
	@scripts/bootstrap.sh

setup-test:
	@WITH_TEST_TOOLS=1 scripts/bootstrap.sh

run: setup
	@$(REALIZE) init --name $(NAME) $(if $(LISTEN),--listen $(LISTEN))
	@exec $(REALIZE) up --web $(WEB) --no-mount

lint: setup-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-logo --no-cache

test: setup-test lint
	$(VENV)/bin/python -m pytest

bench: setup-test
	$(VENV)/bin/python -m bench $(if $(BENCH_DIR),--dir $(BENCH_DIR))
