# Contoso Chat workshop. Every target creates or refreshes .venv first (idempotent).
PY := .venv/bin/python
# run a command, then stop the background servers it started (and only those), also when it fails
WITH_SERVERS := $(PY) -m contoso_chat.serving.local_service run --
VARIANT ?= rag
SPLIT ?= test

.PHONY: setup browser workshop test eval levers model-lever agent-parity redteam finetune deploy bench lab strip stop clean help

help:
	@echo "make workshop  run every notebook on the local stack; executed copies and summary.json in build/"
	@echo "make test      unit tests plus every notebook under nbval (what CI runs)"
	@echo "make eval      evaluate the app on the test split with LLM judges, then run the quality gate"
	@echo "               (VARIANT=prompt-v1 SPLIT=dev ... for another variant or split); for the shipped app it"
	@echo "               also answers the audit set and the templated set (key facts by phrasing, audit minus"
	@echo "               test) and 84 dev questions with inline and JSON citations, and compares them"
	@echo "make levers    measure each quality lever against the shipped app on the dev split, the kept ones on test"
	@echo "make model-lever  the make finetune model as a lever: the shipped app on each model, dev then test"
	@echo "make agent-parity  prompt flow and Agent Framework on the whole test split and the red-team set: parity figures"
	@echo "make redteam   red-team the app (attacks, poisoned pages), raw model vs guards, and counterfactual fairness"
	@echo "make finetune  fine-tune the local model with the full recipe (LoRA on the CPU, up to 25 minutes)"
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

# the notebooks run shortened where they train (CONTOSO_QUICK): the tests check that they work, not the figures;
# a second session runs Agent Framework's tests and notebook 08 with .venv/agent-framework in front
test: setup browser
	CONTOSO_QUICK=1 $(PY) -m pytest
	CONTOSO_QUICK=1 PYTHONPATH=$(CURDIR)/.venv/agent-framework $(PY) -m pytest tests/agentframework notebooks/08_agent_framework.ipynb

eval: setup
	$(WITH_SERVERS) $(PY) -m contoso_chat.evaluation --variant $(VARIANT) --split $(SPLIT) --judge 100
	$(PY) -m contoso_chat.evaluation.gate build/eval/$(VARIANT)
ifeq ($(VARIANT),rag)
	$(WITH_SERVERS) $(PY) -m contoso_chat.evaluation --variant rag --split audit --engine direct --out build/eval/rag-audit
	$(WITH_SERVERS) $(PY) -m contoso_chat.evaluation --variant rag --set templated --engine direct --out build/eval/rag-templated
	$(PY) -m contoso_chat.evaluation.robustness build/eval/rag build/eval/rag-audit build/eval/rag-templated
	$(WITH_SERVERS) $(PY) -m contoso_chat.evaluation.citation_style --split dev --limit 84
endif

levers: setup
	$(WITH_SERVERS) $(PY) -m contoso_chat.evaluation.levers

# the make finetune model as a lever: the shipped app on each model, dev then test, compared case by case
# (on the fine-tuned model also the levers measured on it, FINE_TUNED_LEVERS)
model-lever: setup
	LOCAL_MODEL_VARIANT=base $(WITH_SERVERS) $(PY) -m contoso_chat.evaluation.levers --model-runs
	LOCAL_MODEL_VARIANT=fine-tuned $(WITH_SERVERS) $(PY) -m contoso_chat.evaluation.levers --model-runs
	$(PY) -m contoso_chat.evaluation.levers --model-lever

# Agent Framework lives in .venv/agent-framework (it needs a newer OpenTelemetry than prompt flow accepts)
agent-parity: setup
	PYTHONPATH=$(CURDIR)/.venv/agent-framework $(WITH_SERVERS) $(PY) -m contoso_chat.agentframework.parity

redteam: setup
	$(WITH_SERVERS) $(PY) -m contoso_chat.evaluation.redteam

finetune: setup
	$(WITH_SERVERS) $(PY) -m contoso_chat.finetuning --recipe full

deploy: setup
	$(PY) -m contoso_chat.azure.endpoint

bench: setup
	$(PY) tools/benchmark.py

lab: setup
	.venv/bin/jupyter lab notebooks

strip: setup
	.venv/bin/nbstripout notebooks/*.ipynb

stop: setup
	$(PY) -m contoso_chat.serving.local_service stop

clean: stop
	rm -rf build
