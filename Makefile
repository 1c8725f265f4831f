# The two commands of the README:
#   make book   — create .venv, install pinned dependencies, execute every chapter, render HTML
#   make test   — the same environment; execute every chapter, run unit tests + nbval
# Everything installs into .venv; nothing outside the project is touched.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The read-only data mirror beside the project (tests, CI); users without one download into a cache.
ifneq ($(wildcard ../shared/data),)
export ATLASKIT_MIRROR ?= $(abspath ../shared/data)
endif
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: book chapters html test unit install clean

# Chapters train from scratch here (fresh _build/runs); nbval's re-execution in `make test`
# then reuses those runs (same parameters and code), so it checks the analyses reproduce.
book: $(STAMP)
	rm -rf _build/runs
	$(PY) -m atlaskit book

chapters: $(STAMP)
	rm -rf _build/runs
	$(PY) -m atlaskit book --no-html

html: $(STAMP)
	$(PY) -c "from atlaskit.book import build_html; print(build_html() / 'index.html')"

test: chapters
	$(PY) -m pytest tests book/chapters --nbval-lax -p no:cacheprovider

unit: $(STAMP)
	$(PY) -m pytest tests -p no:cacheprovider

install: $(STAMP)

# torch first and on its own: fair-esm does not declare it, and an unpinned torch pulls CUDA.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

clean:
	rm -rf _build book/chapters
