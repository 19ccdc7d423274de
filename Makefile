# The README's quick start (demo, test) and the benchmark table (bench); each creates its own virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test bench clean

$(BIN)/activate: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(BIN)/activate

demo: $(BIN)/activate
	$(BIN)/python examples/demo.py

test: $(BIN)/activate
	$(BIN)/python -m pytest -q

# Speed and memory against onnxruntime, check times and scaling: one table, under 10 minutes.
bench: $(BIN)/activate
	$(BIN)/python bench/bench.py

clean:
	rm -rf $(VENV) out .pytest_cache
