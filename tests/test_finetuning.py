"""LoRA fine-tuning and GGUF export: answer-only labels, a short run, merge, the llama.cpp round trip, serving."""

from __future__ import annotations

import copy
import shutil
import socket

import gguf
import numpy as np
import openai
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from contoso_chat.backends import local_model
from contoso_chat.backends import settings as config
from contoso_chat.backends.settings import ConfigError
from contoso_chat.finetuning import gguf_export, lora

ANSWER_TOKENS = 16
PROMPTS = [
    [{"role": "user", "content": "What is a good tent for two people?"}],
    [{"role": "system", "content": "You are the Contoso Outdoors assistant."},
     {"role": "user", "content": "How do I wash a down sleeping bag?"}],
    [{"role": "user", "content": "Tell me about hiking boots for winter."}],
]
EXAMPLES = [
    [{"role": "system", "content": "Answer briefly."},
     {"role": "user", "content": f"What is the warranty on the {product}?"},
     {"role": "assistant",
      "content": f"The {product} has a {years}-year Contoso Outdoors warranty. Keep your receipt."}]
    for product, years in [("TrailMaster X4 Tent", 2), ("CozyNights Sleeping Bag", 5)]
]
SHORT_RUN = lora.LoraOptions(epochs=3, batch_size=2, learning_rate=1e-3, max_tokens=128, seed=7)


@pytest.fixture(scope="module")
def base():
    return lora.load_base_model()


@pytest.fixture(scope="module")
def tokenizer(base):
    return base[1]


def _logits(model, tokenizer, messages) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_ids=torch.tensor([lora.prompt_token_ids(tokenizer, messages)])).logits[0, -1]


# ---- labels: the loss is on the final answer only -----------------------------------------

def test_only_the_final_answer_and_its_end_of_turn_are_labelled(tokenizer):
    conversation = [
        {"role": "system", "content": "You are the Contoso Outdoors assistant."},
        {"role": "user", "content": "Do you sell tents?"},
        {"role": "assistant", "content": "Yes, several."},
        {"role": "user", "content": "Which one is the lightest?"},
        {"role": "assistant", "content": "The SkyView 2-Person Tent weighs 1.8 kg."},
    ]
    example = lora.encode_chat(tokenizer, conversation)
    prompt = lora.prompt_token_ids(tokenizer, conversation[:-1])
    labels = example["labels"]
    assert example["input_ids"][:len(prompt)] == prompt
    assert labels[:len(prompt)] == [lora.IGNORE_INDEX] * len(prompt)
    labelled = labels[len(prompt):]
    assert lora.IGNORE_INDEX not in labelled and labelled == example["input_ids"][len(prompt):]
    assert tokenizer.decode(labelled) == "The SkyView 2-Person Tent weighs 1.8 kg." + tokenizer.eos_token
    assert "Yes, several." not in tokenizer.decode([t for t in labels if t != lora.IGNORE_INDEX])


def test_an_example_must_end_with_the_assistant_answer(tokenizer):
    with pytest.raises(ValueError, match="ends with the assistant"):
        lora.encode_chat(tokenizer, [{"role": "user", "content": "Hello?"}])


def test_examples_longer_than_max_tokens_are_skipped_not_cut(base):
    model, tokenizer = base
    long_answer = [{"role": "user", "content": "Describe every tent."},
                   {"role": "assistant", "content": "A tent. " * 200}]
    kept, skipped = lora.encode_chats(tokenizer, [EXAMPLES[0], long_answer], max_tokens=128)
    assert skipped == 1 and len(kept) == 1 and kept[0] == lora.encode_chat(tokenizer, EXAMPLES[0])
    with pytest.raises(ValueError, match="max_tokens=128"):  # refused before the model is touched
        lora.train_lora(model, tokenizer, [long_answer], SHORT_RUN)


# ---- a short training run --------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(base, tmp_path_factory):
    model, tokenizer = base
    peft_model, result = lora.train_lora(copy.deepcopy(model), tokenizer, EXAMPLES, SHORT_RUN,
                                         output_dir=tmp_path_factory.mktemp("trainer"))
    adapter = lora.save_adapter(peft_model, tmp_path_factory.mktemp("adapter"))
    adapter_logits = _logits(peft_model, tokenizer, PROMPTS[0])
    merged = lora.merge_adapter(peft_model)
    return {"result": result, "adapter": adapter, "adapter_logits": adapter_logits,
            "merged": merged}


def test_a_short_run_lowers_the_loss_on_the_answers(base, trained):
    result = trained["result"]
    assert result.steps == 3 and len(result.loss_history) == 3  # 2 examples, batch 2, 3 epochs
    assert result.loss_history[-1] < 0.6 * result.loss_history[0]
    assert result.tokens_trained == 3 * sum(len(lora.encode_chat(base[1], e)["input_ids"]) for e in EXAMPLES)
    assert result.tokens_per_second > 0 and not result.stopped_by_budget


def test_merged_weights_answer_like_the_adapter(base, trained):
    merged_logits = _logits(trained["merged"], base[1], PROMPTS[0])
    assert torch.allclose(merged_logits, trained["adapter_logits"], atol=1e-3)
    assert not torch.allclose(_logits(base[0], base[1], PROMPTS[0]), trained["adapter_logits"], atol=1e-3)


def test_a_saved_adapter_loads_back_to_the_same_model(base, trained):
    reloaded = lora.load_adapter(copy.deepcopy(base[0]), trained["adapter"])
    assert torch.allclose(_logits(reloaded, base[1], PROMPTS[0]), trained["adapter_logits"], atol=1e-5)


def test_a_token_budget_stops_training_early(base, tmp_path):
    model, tokenizer = base
    options = lora.LoraOptions(epochs=3, batch_size=1, max_tokens=128, max_tokens_trained=1)
    _, result = lora.train_lora(copy.deepcopy(model), tokenizer, EXAMPLES, options, output_dir=tmp_path)
    assert result.stopped_by_budget and result.steps == 1 and len(result.loss_history) == 1


# ---- GGUF export and the llama.cpp round trip -------------------------------------------------

@pytest.fixture(scope="module")
def exported(base, tmp_path_factory):
    """The unmodified base model written by the exporter, and its greedy answers next to transformers'."""
    model, tokenizer = base
    result = gguf_export.export_gguf(model, tmp_path_factory.mktemp("export") / "base.gguf")  # default type
    return result, gguf_export.compare_greedy(model, tokenizer, result.path, PROMPTS, ANSWER_TOKENS)


def test_qk_rows_go_back_to_the_order_of_the_shipped_file(base):
    model = base[0]
    shipped = {t.name: t for t in gguf.GGUFReader(local_model.bundled_model_path()).tensors}
    for layer in (0, model.config.num_hidden_layers - 1):
        attention = model.model.layers[layer].self_attn
        for name, weight, heads in (("attn_q", attention.q_proj.weight, model.config.num_attention_heads),
                                    ("attn_k", attention.k_proj.weight, model.config.num_key_value_heads)):
            tensor = shipped[f"blk.{layer}.{name}.weight"]
            original = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
            weight = weight.detach().numpy()
            assert np.array_equal(gguf_export.llama_cpp_qk_order(weight, heads), original)
            assert not np.array_equal(weight, original)


def test_exported_base_model_answers_exactly_like_transformers(exported):
    _, comparison = exported
    assert all(len(tokens) == ANSWER_TOKENS for tokens in comparison.transformers_tokens)  # no early stop
    assert comparison.identical, (comparison.token_agreement, comparison.llama_cpp_tokens)
    assert comparison.exact_matches == len(PROMPTS) and comparison.token_agreement == 1.0


def test_export_without_the_qk_reordering_is_caught(base, exported, tmp_path, monkeypatch):
    model, tokenizer = base
    monkeypatch.setattr(gguf_export, "llama_cpp_qk_order", lambda weight, n_head: weight)
    wrong = gguf_export.export_gguf(model, tmp_path / "wrong.gguf")
    prompts = [lora.prompt_token_ids(tokenizer, messages) for messages in PROMPTS]
    comparison = gguf_export.GreedyComparison(  # transformers' answers are the same as for the right export
        transformers_tokens=exported[1].transformers_tokens,
        llama_cpp_tokens=gguf_export.llama_cpp_greedy_answers(wrong.path, prompts, ANSWER_TOKENS))
    assert not comparison.identical and comparison.exact_matches < len(PROMPTS)
    assert comparison.token_agreement < 0.5


def test_export_keeps_the_tokenizer_and_metadata_and_records_the_sha256(exported):
    result, _ = exported
    shipped = gguf.GGUFReader(local_model.bundled_model_path())
    written = gguf.GGUFReader(result.path)
    assert [t.name for t in written.tensors] == [t.name for t in shipped.tensors]
    kept = [name for name in shipped.fields if not name.startswith("GGUF.")
            and name not in (gguf.Keys.General.NAME, gguf.Keys.General.FILE_TYPE)]
    for name in kept:
        assert written.fields[name].contents() == shipped.fields[name].contents(), name
    assert written.fields[gguf.Keys.General.NAME].contents() == gguf_export.FINETUNED_MODEL_NAME
    assert written.fields[gguf.Keys.General.FILE_TYPE].contents() == gguf.LlamaFileType.MOSTLY_F16
    assert local_model.recorded_sha256(result.path) == local_model.sha256_of(result.path) == result.sha256
    assert not result.path.with_name(result.path.name + ".partial").exists()


def test_a_model_of_another_shape_is_refused(tmp_path):
    tiny = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                        num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True))
    with pytest.raises(ValueError, match="does not have the layout"):
        gguf_export.export_gguf(tiny, tmp_path / "tiny.gguf")
    assert not (tmp_path / "tiny.gguf").exists()


# ---- serving the fine-tuned variant ---------------------------------------------------------

@pytest.fixture
def private_build_dir(tmp_path, monkeypatch):
    """A build folder of the test's own, so the shared model server of the notebooks is left alone."""
    monkeypatch.setenv("CONTOSO_BUILD_DIR", str(tmp_path))
    yield tmp_path
    local_model.stop_local_model()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unknown_variant_is_refused():
    with pytest.raises(ConfigError, match="LOCAL_MODEL_VARIANT='large'.*base, fine-tuned"):
        config.resolve({"LOCAL_MODEL_VARIANT": "large"})
    assert config.resolve({}).get("LOCAL_MODEL_VARIANT") == "base"


def test_missing_fine_tuned_model_names_make_finetune(private_build_dir):
    settings = config.resolve({"LOCAL_MODEL_VARIANT": "fine-tuned"})
    with pytest.raises(ConfigError, match="no fine-tuned model.*make finetune"):
        local_model.ensure_local_model(settings)


def test_damaged_fine_tuned_model_names_make_finetune(private_build_dir):
    target = local_model.finetuned_model_path()
    target.parent.mkdir(parents=True)
    target.write_bytes(b"GGUF, cut short")
    target.with_name(target.name + ".sha256").write_text("0" * 64 + f"  {target.name}\n")
    with pytest.raises(ConfigError, match="expected sha256.*make finetune"):
        local_model.ensure_local_model(config.resolve({"LOCAL_MODEL_VARIANT": "fine-tuned"}))
    target.with_name(target.name + ".sha256").unlink()
    with pytest.raises(ConfigError, match="no sha256 file.*make finetune"):
        local_model.ensure_local_model(config.resolve({"LOCAL_MODEL_VARIANT": "fine-tuned"}))


def test_fine_tuned_variant_and_a_model_path_together_are_refused(private_build_dir):
    settings = config.resolve({"LOCAL_MODEL_VARIANT": "fine-tuned", "LOCAL_MODEL_PATH": "/models/other.gguf"})
    with pytest.raises(ConfigError, match="LOCAL_MODEL_PATH and LOCAL_MODEL_VARIANT"):
        local_model.ensure_local_model(settings)


def test_fine_tuned_variant_is_served_and_a_new_export_replaces_the_server(base, exported, private_build_dir):
    result, _ = exported
    target = local_model.finetuned_model_path()
    target.parent.mkdir(parents=True)
    shutil.copyfile(result.path, target)
    local_model.record_sha256(target)
    settings = config.resolve({"LOCAL_MODEL_VARIANT": "fine-tuned", "LOCAL_MODEL_PORT": str(_free_port())})
    server = local_model.ensure_local_model(settings, log=lambda *_: None)
    assert server.alias == local_model.FINETUNED_MODEL_ALIAS and server.model_path == str(target)
    client = openai.OpenAI(base_url=server.base_url, api_key="local")
    answer = client.chat.completions.create(model=server.alias, messages=PROMPTS[0], temperature=0.0,
                                            max_tokens=ANSWER_TOKENS, extra_body={"repeat_penalty": 1.0})
    assert answer.choices[0].message.content.strip() == lora.greedy_answers(*base, PROMPTS[:1], ANSWER_TOKENS)[0]
    assert local_model.ensure_local_model(settings).pid == server.pid  # same file: reused
    target.write_bytes(target.read_bytes()[:-1] + b"\x00")  # a retrained model at the same path
    local_model.record_sha256(target)
    assert local_model.ensure_local_model(settings).pid != server.pid
