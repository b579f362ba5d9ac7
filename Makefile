# The two commands of the README. Both install what is missing first (scripts/bootstrap.sh).
#   make run    set up, initialise this peer, start the appliance (realize up), the
#               areas mounted at ~/Realize (MOUNT=DIR elsewhere, MOUNT=none not at all)
#   make test   set up (with the test tools: Chromium, Playwright, ruff, import-linter),
#               check the code's layers, and run every test
#   make bench  set up and run the benchmarks
#   make faults set up (as for test) and run the fault suite in full (tests/faults: ten
#               tries of each fault; an idle page watched for ten minutes); its table
#               goes to faults-report.md

VENV   := .venv
REALIZE := $(VENV)/bin/realize
NAME   ?= $(shell hostname -s | tr -c 'A-Za-z0-9._\n-' '-')
WEB    ?= 127.0.0.1:8000
LISTEN ?=
# Where the areas are mounted; MOUNT=none runs without the mount.
MOUNT  ?= $(HOME)/Realize

export REALIZE_HOME ?= $(HOME)/.realize
export DATABASE_URL ?= postgresql:///realize
export REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: run test bench faults lint setup setup-test

setup:
	@scripts/bootstrap.sh

setup-test:
	@WITH_TEST_TOOLS=1 scripts/bootstrap.sh

run: setup
	@$(REALIZE) init --name $(NAME) $(if $(LISTEN),--listen $(LISTEN))
	@exec $(REALIZE) up --web $(WEB) $(if $(filter none,$(MOUNT)),--no-mount,--mount $(MOUNT))

lint: setup-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-logo --no-cache

test: setup-test lint
	$(VENV)/bin/python -m pytest --durations=25

faults: setup-test
	REALIZE_FAULT_TRIES=10 REALIZE_FAULT_FULL=1 REALIZE_FAULT_REPORT=faults-report.md \
		REALIZE_IDLE_SECONDS=600 $(VENV)/bin/python -m pytest tests/faults \
		tests/e2e/test_live_idle.py -q -s -p no:randomly --timeout 3600

bench: setup-test
	$(VENV)/bin/python -m bench $(if $(BENCH_DIR),--dir $(BENCH_DIR))
