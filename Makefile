# Two commands do all set-up on a fresh machine:
#   make demo   - install, then scan, cluster and export the sample photos in tests/photos
#   make test   - install, then lint, type-check and run the tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PHOTOS ?=

.PHONY: install demo test lint typecheck docs docs-update pytest fast bench clean dlib-source

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

demo: install
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh $(PHOTOS)

lint: install
	$(BIN)/ruff check photocluster tests benchmarks examples
	$(BIN)/ruff format --check photocluster tests benchmarks examples

typecheck: install
	$(BIN)/mypy

# Real-model tests take seconds per photo on a CPU: two processes, one test module each.
pytest: install
	$(BIN)/python -m pytest -n 2 --dist loadfile

# The docs site: fails when the generated pages (CLI help, index.json fields) are stale, or
# when a link, an anchor or a docstring reference is broken. `make docs-update` regenerates them.
docs: install
	$(BIN)/python -m cogapp --check --verbosity=1 docs/*.md
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --quiet

docs-update: install
	$(BIN)/python -m cogapp -r docs/*.md

test: lint typecheck docs pytest

# Unit tests only (fake embedder), for a quick loop while editing.
fast: install
	$(BIN)/python -m pytest -m "not models" -q

# Replace dlib-bin by a source build of dlib (CUDA/cuDNN and BLAS are used when found).
dlib-source: install
	$(BIN)/python -m pip uninstall -y dlib-bin
	$(BIN)/python -m pip install --no-binary :all: --no-deps dlib
	$(BIN)/photocluster --version

bench: install
	$(BIN)/python benchmarks/detection_size.py

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache site
