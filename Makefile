# Contoso Chat workshop. Every target creates or refreshes .venv first (idempotent).
PY := .venv/bin/python

.PHONY: setup workshop test bench lab strip stop clean help

help:
	@echo "make workshop  run every notebook on the local stack; executed copies and summary.json in build/"
	@echo "make test      unit tests plus every notebook under nbval (what CI runs)"
	@echo "make bench     print the speed figures quoted in README"
	@echo "make lab       open Jupyter Lab on the notebooks"
	@echo "make stop      stop the local model server if one is running"
	@echo "make strip     strip outputs from the notebooks before committing"

setup:
	@bash tools/setup_venv.sh

workshop: setup
	$(PY) tools/run_workshop.py

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) tools/benchmark.py

lab: setup
	.venv/bin/jupyter lab notebooks

strip: setup
	.venv/bin/nbstripout notebooks/*.ipynb

stop: setup
	$(PY) -c "from contoso_chat.local_model import stop_local_model; print('stopped' if stop_local_model() else 'no server running')"

clean: stop
	rm -rf build
