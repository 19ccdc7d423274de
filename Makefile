# The two commands of the README's quick start. Both create their own virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test clean

$(BIN)/activate: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(BIN)/activate

demo: $(BIN)/activate
	$(BIN)/python examples/demo.py

test: $(BIN)/activate
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) out .pytest_cache
