# The two commands a newcomer needs (see README.md). Both create .venv if it is absent.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.edgecnn-installed

.PHONY: demo test test-all lint clean mediapipe-env

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[all]"
	touch $(STAMP)

demo: $(STAMP)  ## train on the built-in digits, export, benchmark: ends with the table
	$(BIN)/edgecnn pipeline --out runs/demo

# one process per core, at most 4: each holds its own TensorFlow and its own copy of the shared demo run; an idle
# process takes queued tests from a busy one, so the long tests at the end do not wait on one process
PARALLEL := -n auto --maxprocesses 4 --dist worksteal

test: $(STAMP)  ## the fast tier: every test not marked slow
	$(BIN)/python -m pytest -m "not slow" $(PARALLEL)

test-all: $(STAMP)  ## every test (CI runs this through .ci/run)
	$(BIN)/python -m pytest $(PARALLEL) --durations=15

mediapipe-env:  ## MediaPipe Tasks for `edgecnn check`, beside (not in) .venv: it brings its own OpenCV build
	test -x .venv-mediapipe/bin/python || $(PYTHON) -m venv .venv-mediapipe
	.venv-mediapipe/bin/python -m pip install --quiet mediapipe==1.2.3
	@echo "export EDGECNN_MEDIAPIPE_PYTHON=$$(pwd)/.venv-mediapipe/bin/python"

lint: $(STAMP)
	$(BIN)/ruff check edgecnn tests tools benchmarks

clean:
	rm -rf runs .pytest_cache
