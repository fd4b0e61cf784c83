"""The fine-tuning recipe end to end: training data, LoRA training, merge, GGUF export, and a record of the run.

    python -m contoso_chat.finetuning                # the full recipe (make finetune, at most 25 minutes here)
    python -m contoso_chat.finetuning --recipe notebook

Recipes differ only in how much they train: "full" (make finetune), "notebook" (about 5 minutes
here) and "tiny" (a few steps, for the tests). The exported model lands in build/finetune/model/,
where LOCAL_MODEL_VARIANT=fine-tuned serves it; build/finetune/run.json says which recipe made it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from contoso_chat.backends.local_model import finetuned_model_path
from contoso_chat.paths import build_dir


@dataclass(frozen=True)
class Recipe:
    """How much data and training one run uses."""

    name: str
    examples: int
    epochs: float
    max_seconds: float | None
    max_tokens_trained: int | None


RECIPES = {
    "full": Recipe("full", examples=320, epochs=1.0, max_seconds=20 * 60, max_tokens_trained=None),
    "notebook": Recipe("notebook", examples=140, epochs=1.0, max_seconds=5 * 60, max_tokens_trained=45_000),
    "tiny": Recipe("tiny", examples=12, epochs=1.0, max_seconds=60, max_tokens_trained=3_000),
}
MAX_EXAMPLE_TOKENS = 640  # the app's prompts with six facts run to about 450 tokens


def run_file() -> Path:
    """Where the record of the last run (recipe, data, loss, time) is kept."""
    return build_dir() / "finetune" / "run.json"


def last_run() -> dict | None:
    """The record of the last completed run, if its model is still there."""
    path = run_file()
    if not path.exists() or not finetuned_model_path().exists():
        return None
    return json.loads(path.read_text())


def run(recipe: Recipe, app=None, seed: int = 42, log=print) -> dict:
    """Make the data, train, merge, export; write and return the run's record."""
    from contoso_chat.assistant import ContosoChat
    from contoso_chat.finetuning import answer_check, gguf_export, lora, training_data

    app = app or ContosoChat()
    started = time.monotonic()
    log(f"recipe {recipe.name}: making {recipe.examples} training examples from the dev products ...")
    examples = training_data.make_examples(app, recipe.examples, seed=seed)
    log("loading the base model from its GGUF file ...")
    model, tokenizer = lora.load_base_model()
    options = lora.LoraOptions(epochs=recipe.epochs, max_tokens=MAX_EXAMPLE_TOKENS, seed=seed,
                               max_seconds=recipe.max_seconds, max_tokens_trained=recipe.max_tokens_trained)
    peft_model, result = lora.train_lora(model, tokenizer, [e.messages for e in examples], options)
    lora.save_adapter(peft_model, build_dir() / "finetune" / "adapter")
    merged = lora.merge_adapter(peft_model)
    path = finetuned_model_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    log(f"exporting the merged model to {path.name} ...")
    gguf_export.export_gguf(merged, path)  # writes the file's sha256 beside it
    cut_off = answer_check.check_exported_model(path, app)
    log(f"probe questions answered without a source mark where the answer should be: {cut_off.probes - cut_off.count} "
        f"of {cut_off.probes} (the app declines the other {cut_off.count}); answers shown cut short: "
        f"{len(cut_off.shown_cut)}")
    record = {"recipe": asdict(recipe), "seed": seed, "examples": len(examples),
              "kinds": {k: sum(e.kind == k for e in examples) for k in sorted({e.kind for e in examples})},
              "training": {**asdict(result), "tokens_per_second": round(result.tokens_per_second, 1)},
              "cut_off_check": cut_off.as_record(), "seconds_total": round(time.monotonic() - started, 1), "model_file": path.name,
              "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    run_file().write_text(json.dumps(record, indent=2))
    return record


def main(argv: list[str] | None = None) -> int:
    from contoso_chat.backends.environment import prepare_offline_environment, quiet_libraries

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="full", choices=sorted(RECIPES))
    args = parser.parse_args(argv)
    prepare_offline_environment()
    quiet_libraries()
    record = run(RECIPES[args.recipe])
    summary = {k: v for k, v in record.items() if k != "training"}
    summary["training"] = {k: v for k, v in record["training"].items() if k != "loss_history"}
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
