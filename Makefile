# Two entry points for a fresh machine with nothing but Python: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench mutation clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/microsim demo

# the tests of the distributed solver run under mpiexec: `make test` adds the mpi extra
$(VENV)/.installed-mpi: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,mpi]"
	touch $@

test: $(VENV)/.installed-mpi
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_fv.py

# on demand, not in CI: apply each bug of tools/mutations.py to a copy of the code and run the tests
# that must catch it (about an hour on two cores); MUTATION_ARGS="--only ID ..." runs a few
mutation: $(STAMP)
	$(BIN)/python tools/mutation_check.py $(MUTATION_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
