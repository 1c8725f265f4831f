# The two commands of the README:
#   make book   — create .venv, install pinned dependencies, execute every chapter, render HTML
#   make test   — the same environment; execute every chapter, run unit tests + nbval
# Everything installs into .venv; nothing outside the project is touched.

PYTHON ?= python3
VENV   ?= .venv
# Chapters executed at once (each kernel gets cores / JOBS threads); JOBS=1 runs them one by one.
JOBS   ?= 2
PY     := $(VENV)/bin/python
# What `atlaskit book --jobs $(JOBS)` gives each kernel (atlaskit.book.thread_environment and
# allocator_environment: thread counts, glibc malloc settings).
THREADS_ENV = $(shell $(PY) -c "from atlaskit.book import thread_environment as t, allocator_environment as a; print(' '.join(f'{k}={v}' for k, v in {**t($(JOBS)), **a()}.items()))")
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
	$(PY) -m atlaskit book --jobs $(JOBS)

chapters: $(STAMP)
	rm -rf _build/runs
	$(PY) -m atlaskit book --no-html --jobs $(JOBS)

html: $(STAMP)
	$(PY) -c "from atlaskit.book import build_html; print(build_html() / 'index.html')"

# The tests run in JOBS worker processes (pytest-xdist; one file per worker at a time, so a
# chapter's cells stay in order), each with the thread counts (and malloc settings) the
# chapters' kernels had, so that nbval's re-execution computes with the same threads as the first run.
test: chapters
	$(THREADS_ENV) $(PY) -m pytest tests book/chapters --nbval-lax -p no:cacheprovider -n $(JOBS) --dist loadfile

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
