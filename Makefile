# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make run    install, create data/tracker.duckdb with the sample program, start the app
#   make test   install, lint, type-check, run every test (in both storage modes; end-to-end ones in Debian's Chromium)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DB ?= data/tracker.duckdb

.PHONY: run test suite lint test-embedded test-server install browser bench

$(BIN)/.installed: requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 not found: install it, or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed

run: install
	@[ -f "$(DB)" ] || TRACKER_DB=$(DB) $(BIN)/python -m tracker init --sample
	TRACKER_DB=$(DB) $(BIN)/streamlit run dashboard.py --server.address 127.0.0.1

# The end-to-end tests drive Debian's Chromium and PDF reports embed Unicode fonts (DejaVu, WenQuanYi for CJK); the
# server mode's tests start a PostgreSQL of their own (Debian's postgresql); install them when missing and we may (root).
SYSTEM_PACKAGES := chromium fonts-dejavu-core fonts-wqy-microhei postgresql
browser:
	@need=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$need" ] && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need >/dev/null; fi

# Every test, in one run on all the machine's cores, beside the lint: a test that reads or writes a database runs in
# both storage modes, the embedded DuckDB file and server mode (a PostgreSQL the tests start, read through a copy);
# the others once. Twice as many workers as cores: the browser tests spend much of their time waiting for pages to
# settle, and the other workers' tests use the processor meanwhile. test-embedded and test-server run one mode each;
# TESTS narrows a run (make test-embedded TESTS=tests/test_queries.py).
WORKERS ?= $(shell echo $$(( $$(nproc) * 2 )))
TESTS ?=
PYTEST := $(BIN)/python -m pytest -n $(WORKERS) --dist loadgroup -q --durations=15 $(TESTS)
test: install browser
	@$(MAKE) --no-print-directory -j2 --output-sync=target lint suite

suite: install browser
	$(PYTEST)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test-embedded: install browser
	$(PYTEST) --modes embedded

test-server: install browser
	$(PYTEST) --modes server

bench: install browser
	$(BIN)/python -m bench
	$(BIN)/python -m bench.browser
