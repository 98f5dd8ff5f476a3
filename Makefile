# ringscope: two commands on a fresh machine.
#   make demo  - install, generate a portfolio, ingest it into the embedded store, summarise
#   make test  - install, build the Neo4j launcher, run the whole suite (Neo4j tests included)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test neo4j neo4j-build neo4j-stop bench clean browser

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

neo4j-build: setup
	$(BIN)/python tools/neo4j_server.py build

neo4j: neo4j-build
	$(BIN)/python tools/neo4j_server.py start

neo4j-stop:
	$(BIN)/python tools/neo4j_server.py stop

demo: setup
	$(BIN)/ringscope demo

# Headless Chromium from Debian for the dashboard's browser tests (never
# `playwright install`); a CJK font so screenshots show hanzi. No-op once installed.
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ ! -x $(CHROMIUM) ] || ! fc-list 2>/dev/null | grep -qi wqy; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-wqy-zenhei; \
	fi

test: neo4j-build browser
	$(BIN)/python -m pytest

bench: neo4j-build
	$(BIN)/python bench/bench_generate.py
	$(BIN)/python bench/bench_ingest.py

clean:
	rm -rf $(VENV) .ringscope tools/neo4j/target
