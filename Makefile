# Contoso Chat workshop. Every target creates or refreshes .venv first (idempotent).
PY := .venv/bin/python

.PHONY: setup workshop test bench lab strip stop clean help

help:
	@echo "make workshop  run every notebook on the local stack; executed copies and summary.json in build/"
	@echo "make test      unit tests plus every notebook under nbval (what CI runs)"
	@echo "make bench     print the speed figures quoted in README"
	@echo "make lab       open Jupyter Lab on the notebooks"
	@echo "make stop      stop the local model server and prompt flow's trace service"
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
	$(PY) -c "from contoso_chat.local_model import stop_local_model; print('model server stopped' if stop_local_model() else 'no model server running')"
	$(PY) -c "from contoso_chat.offline import prepare_offline_environment as p, stop_prompt_flow_service as s; p(); print('prompt flow service stopped' if s() else 'no prompt flow service running')"

clean: stop
	rm -rf build
