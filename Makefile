# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= config.yaml

.PHONY: install demo test lint unit bench clean wheel-check golden docs

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## demo: create the SQLite database beside config.yaml, load the sample posts, run one
## pass of the scheduler (the feeds, then each newsletter's due send: none is due on a
## fresh database, so no SMTP server is needed) and render the sample digest
demo: $(STAMP)
	$(BIN)/publisher --config $(CONFIG) init --sample
	PUBLISHER_SECRET_KEY=$${PUBLISHER_SECRET_KEY:-demo-key-not-for-sending} \
	  $(BIN)/publisher --config $(CONFIG) run --once 2>&1
	$(BIN)/publisher --config $(CONFIG) schedule --format table
	$(BIN)/publisher --config $(CONFIG) digest render --since 2019-01-01 --out out/digest
	@echo "Serve the feeds:      $(BIN)/publisher serve     (http://127.0.0.1:8000/)"
	@echo "Preview the digest:   $(BIN)/publisher preview --since 2019-01-01   (http://127.0.0.1:8001/)"

## lint: ruff (lint and format), mypy --strict, and the README's command reference
## checked against --help (cog)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	@$(BIN)/cog -I . --check README.md || \
		(echo "README.md's command reference differs from --help: run make docs" && false)

## docs: regenerate the README's command reference from the commands' --help
docs: $(STAMP)
	$(BIN)/cog -I . -r README.md

## golden: rewrite tests/golden/ from today's output (review `git diff tests/golden`)
golden: $(STAMP)
	$(BIN)/pytest -q tests/test_golden.py tests/integration/test_golden_feeds.py --regen-golden

## test: lint, then the whole suite (on SQLite and on the local PostgreSQL when one answers)
test: lint
	$(BIN)/pytest

## bench: the benchmarks the issues ask for
bench: $(STAMP)
	$(BIN)/python bench/import.py
	$(BIN)/python bench/feeds.py
	$(BIN)/python bench/digest.py
	$(BIN)/python bench/subscribers.py

## wheel-check: build the wheel, install it in a fresh virtualenv outside the checkout,
## and load the sample, build the feeds and render the digest from there
wheel-check: $(STAMP)
	rm -rf build/wheel && mkdir -p build/wheel
	$(BIN)/python -m pip wheel --quiet --no-deps -w build/wheel .
	set -e; tmp=$$(mktemp -d); \
	$(PYTHON) -m venv $$tmp/venv; \
	$$tmp/venv/bin/python -m pip install --quiet -c constraints.txt build/wheel/*.whl; \
	cp config.yaml $$tmp/; cd $$tmp; \
	venv/bin/publisher init --sample; \
	venv/bin/publisher build; \
	venv/bin/publisher digest render --since 2019-01-01 --out out; \
	test -s out/digest.html && test -s out/digest.txt; \
	echo "wheel-check: the installed wheel rendered the sample digest in $$tmp"

clean:
	rm -rf $(VENV) publisher.db out .pytest_cache .mypy_cache .ruff_cache
	find feeds -mindepth 1 ! -name .gitignore -delete
