# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make run    install, create data/tracker.duckdb with the sample program, start the app
#   make test   install, lint, type-check, run every test in both modes (end-to-end ones in Debian's Chromium)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DB ?= data/tracker.duckdb

.PHONY: run test lint test-embedded test-server install browser bench

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

# Every test in both modes: the embedded DuckDB file, then server mode (every database fixture in a PostgreSQL the
# tests start, read through a copy). test-embedded and test-server run one mode each.
test: lint test-embedded test-server

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test-embedded: install browser
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

test-server: install browser
	$(BIN)/python -m pytest -n 2 --dist loadfile -q --server-mode

bench: install browser
	$(BIN)/python -m bench
	$(BIN)/python -m bench.browser
