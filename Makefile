# Contoso Chat workshop. Every target creates or refreshes .venv first (idempotent).
PY := .venv/bin/python

.PHONY: setup browser workshop test eval redteam deploy bench lab strip stop clean help

help:
	@echo "make workshop  run every notebook on the local stack; executed copies and summary.json in build/"
	@echo "make test      unit tests plus every notebook under nbval (what CI runs)"
	@echo "make eval      evaluate the app on the whole evaluation set, then run the quality gate"
	@echo "make redteam   red-team the app (attacks and poisoned documents), raw model vs guards"
	@echo "make deploy    create the Azure ML endpoint (needs SERVING_BACKEND=azure and PROVISION_AZURE=true)"
	@echo "make bench     print the speed figures quoted in README"
	@echo "make lab       open Jupyter Lab on the notebooks"
	@echo "make stop      stop the HTTP service, the local model server and prompt flow's trace service"
	@echo "make strip     strip outputs from the notebooks before committing"

setup:
	@bash tools/setup_venv.sh

workshop: setup
	$(PY) tools/run_workshop.py

browser:
	@bash tools/ensure_chromium.sh

test: setup browser
	$(PY) -m pytest

# eval and redteam stop the model server and trace service they started, also when they fail
eval: setup
	$(PY) -m contoso_chat.evaluation --variant rag; rc=$$?; $(MAKE) --no-print-directory -s stop >/dev/null; exit $$rc
	$(PY) -m contoso_chat.evaluation.gate build/eval/rag/metrics.json

redteam: setup
	$(PY) -m contoso_chat.evaluation.redteam; rc=$$?; $(MAKE) --no-print-directory -s stop >/dev/null; exit $$rc

deploy: setup
	$(PY) -m contoso_chat.azure.endpoint

bench: setup
	$(PY) tools/benchmark.py

lab: setup
	.venv/bin/jupyter lab notebooks

strip: setup
	.venv/bin/nbstripout notebooks/*.ipynb

stop: setup
	$(PY) -m contoso_chat.serving.local_service

clean: stop
	rm -rf build
