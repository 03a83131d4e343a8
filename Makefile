# The same targets serve people and CI. A fresh machine needs only python3 (3.10+).
VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip
# CPU build of torch: on this machine it installs from local disk in seconds; elsewhere add
# TORCH_INDEX=--index-url=https://download.pytorch.org/whl/cpu to avoid a multi-GB CUDA build.
TORCH   ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: install install-test run test test-fast lint bench clean

$(VENV)/.core: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q $(TORCH_INDEX) "$(TORCH)"
	$(PIP) install -q -e .
	touch $@

$(VENV)/.test: $(VENV)/.core
	$(PIP) install -q -e ".[test,bench,dev,milvus]"
	touch $@

install: $(VENV)/.core
install-test: $(VENV)/.test

run: install
	HF_HUB_OFFLINE=1 $(PY) app.py

test: install-test
	HF_HUB_OFFLINE=1 $(PY) -m pytest

# the unit tier: no test marked slow or browser (end-to-end runs, subprocesses, the web app)
test-fast: install-test
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not slow and not browser"

lint: install-test
	$(VENV)/bin/ruff check rag tests app.py
	$(VENV)/bin/mypy rag

bench: install-test
	HF_HUB_OFFLINE=1 $(PY) -m rag bench --out BENCHMARKS.md

clean:
	rm -rf $(VENV) index/gen-* index/CURRENT
