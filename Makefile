# SeTok book: two commands do everything on a fresh machine with Python 3.11.
#   make book   run every chapter notebook at PROFILE (default mini), then build the HTML book
#   make test   lint + unit tests + every notebook at the smoke profile
PYTHON  ?= python3.11
PROFILE ?= mini
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

# Work from any checkout (git worktrees share one venv): the package is imported from this tree's src/.
export PYTHONPATH := $(CURDIR)/src
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: all book notebooks html test lint clean venv bench

all: test

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

book: notebooks html

# The chapters quote the tokenizer benchmark from its results file; it is run once per profile if missing
# (results/mini is committed, so a fresh clone reuses it; `make bench` reruns it).
BENCH := results/$(PROFILE)/bench/tokenizer.csv
$(BENCH): | $(STAMP)
	$(BIN)/setok bench tokenizer --profile $(PROFILE)

notebooks: $(STAMP) $(BENCH)
	$(BIN)/setok book run --profile $(PROFILE)

html: $(STAMP)
	$(BIN)/setok book build --profile $(PROFILE)

lint: $(STAMP)
	$(BIN)/ruff check src tests

test: $(STAMP) lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/setok bench tokenizer --profile $(PROFILE)

clean:
	rm -rf _build
