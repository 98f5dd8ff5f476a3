# ringscope: two commands on a fresh machine.
#   make demo  - install, generate a portfolio, ingest it into the embedded store, summarise
#   make test  - install, lint and type-check, build the Neo4j launcher, run the whole suite (Neo4j tests included)
#   make test-fast - lint, type-check and the suite without Neo4j, the browser and slow tests
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test test-fast lint neo4j neo4j-build neo4j-stop bench clean browser

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
# `playwright install`); a CJK font so screenshots show hanzi and the evidence
# pack embeds one; poppler-utils to read the pack back in its tests. No-op once installed.
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ ! -x $(CHROMIUM) ] || ! fc-list 2>/dev/null | grep -qi wqy || ! command -v pdftotext >/dev/null; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-wqy-zenhei poppler-utils; \
	fi

# mypy cannot see through setuptools' editable-install finder, so the package is
# laid out for it as links: ringscope/ -> app/api, ringscope/app -> app, ...
TYPECHECK := $(VENV)/typecheck
PUBLIC_API := -m ringscope -m ringscope.detectors.settings -m ringscope.detectors.base -m ringscope.graph.store

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@rm -rf $(TYPECHECK) && mkdir -p $(TYPECHECK)/ringscope
	@ln -s $(CURDIR)/app/api/__init__.py $(TYPECHECK)/ringscope/__init__.py
	@for room in app graph detectors ingest; do ln -s $(CURDIR)/$$room $(TYPECHECK)/ringscope/$$room; done
	MYPYPATH=$(TYPECHECK) $(BIN)/mypy $(PUBLIC_API)

test: lint neo4j-build browser
	$(BIN)/python -m pytest

test-fast: lint
	$(BIN)/python -m pytest -m "not neo4j and not browser and not slow" -q --deselect README.md::README.md

bench: neo4j-build
	$(BIN)/python bench/bench_generate.py
	$(BIN)/python bench/bench_ingest.py

clean:
	rm -rf $(VENV) .ringscope tools/neo4j/target
