# One entry point for every task. `make run` and `make test` set up the environment first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup run test test-fast lint format screenshot bench package clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,train]'
	touch $(STAMP)

## Launch the desktop app with the bundled model and the sample photo.
run: setup
	$(BIN)/retoucher

## The whole test suite (CPU; GPU tests skip without CUDA; real-data tests need RETOUCHER_DATA).
test: setup
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest $(PYTEST_ARGS)

## Lint and format check (ruff, configured in pyproject.toml); `make format` rewrites the code.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test-fast: setup
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -m "not slow and not realdata" $(PYTEST_ARGS)

screenshot: setup
	QT_QPA_PLATFORM=offscreen $(BIN)/python scripts/screenshot.py docs/screenshot.png
	QT_QPA_PLATFORM=offscreen $(BIN)/python scripts/screenshot_mask_tools.py docs/mask_tools.png

## One-folder app dist/Retoucher/ (own venv build/package-venv with a CPU torch; PyInstaller).
package:
	bash packaging/build.sh

bench: setup
	$(BIN)/python benchmarks/inference.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
