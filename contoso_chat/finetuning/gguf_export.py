"""Write a (merged) transformers Llama model as a GGUF file llama.cpp serves, and check it answers as transformers does.

The tokenizer, chat template and every other metadata field are copied from the shipped GGUF;
only the model name and the file type change. Matrices are written as f16 by default, norms as
f32, as llama.cpp's own converter does: f16 keeps the merged weights, so llama.cpp answers
token for token as transformers does. Q8_0 halves the file but changes greedy answers of this
small model. q_proj and k_proj rows go back into llama.cpp's rotary order, which transformers'
GGUF loader undid.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import gguf
import numpy as np
import torch
from llama_cpp import Llama
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from contoso_chat.backends.local_model import bundled_model_path, finetuned_model_path, record_sha256
from contoso_chat.finetuning.lora import Message, greedy_token_ids, prompt_token_ids

FINETUNED_MODEL_NAME = "Contoso SmolLM2 135M Instruct (LoRA fine-tuned)"
FILE_TYPES = {
    gguf.GGMLQuantizationType.Q8_0: gguf.LlamaFileType.MOSTLY_Q8_0,
    gguf.GGMLQuantizationType.F16: gguf.LlamaFileType.MOSTLY_F16,
    gguf.GGMLQuantizationType.F32: gguf.LlamaFileType.ALL_F32,
}
REPLACED_FIELDS = {gguf.Keys.General.NAME, gguf.Keys.General.FILE_TYPE, gguf.Keys.General.ARCHITECTURE}


@dataclass(frozen=True)
class ExportResult:
    """The GGUF file written, its sha256 (also stored beside it), size and how long it took."""

    path: Path
    sha256: str
    size_bytes: int
    seconds: float
    tensor_type: str


def llama_cpp_qk_order(weight: np.ndarray, n_head: int) -> np.ndarray:
    """Rows of a q_proj or k_proj weight in llama.cpp's rotary order: per head, the two halves interleaved.

    transformers rotates the first half of each head's dimensions against the second half; llama.cpp
    rotates neighbouring pairs. This is the order llama.cpp's converter writes, the inverse of the
    permutation transformers' GGUF loader applies.
    """
    head_dim = weight.shape[0] // n_head
    return weight.reshape(n_head, 2, head_dim // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def _gguf_weights(model: PreTrainedModel) -> dict[str, np.ndarray]:
    """The model's weights under llama.cpp's tensor names, q and k in llama.cpp's order."""
    config = model.config
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    weights = {}
    for hf_name, tensor in model.state_dict().items():
        if hf_name == "lm_head.weight" and config.tie_word_embeddings:
            continue  # llama.cpp reuses token_embd when the file has no output.weight
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ValueError(f"The model has a weight llama.cpp's llama architecture does not know: {hf_name}.")
        array = tensor.detach().to(torch.float32).cpu().numpy()
        if name.endswith(".attn_q.weight"):
            array = llama_cpp_qk_order(array, config.num_attention_heads)
        elif name.endswith(".attn_k.weight"):
            array = llama_cpp_qk_order(array, config.num_key_value_heads)
        weights[name] = array
    return weights


def _encode(array: np.ndarray, tensor_type: gguf.GGMLQuantizationType) -> tuple[np.ndarray, gguf.GGMLQuantizationType]:
    """The tensor's bytes in the chosen type; vectors (norm weights) stay float32."""
    if array.ndim == 1 or tensor_type == gguf.GGMLQuantizationType.F32:
        return array.astype(np.float32), gguf.GGMLQuantizationType.F32
    if tensor_type == gguf.GGMLQuantizationType.F16:
        return array.astype(np.float16), gguf.GGMLQuantizationType.F16
    return gguf.quants.quantize(array, tensor_type), tensor_type


def _copy_metadata(source: gguf.GGUFReader, writer: gguf.GGUFWriter) -> None:
    """Every key-value field of the source file except the ones the writer sets or the export changes."""
    for field in source.fields.values():
        if field.name.startswith("GGUF.") or field.name in REPLACED_FIELDS:
            continue
        value_type = field.types[0]
        sub_type = field.types[-1] if value_type == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), value_type, sub_type=sub_type)


def _check_layout(weights: dict[str, np.ndarray], source: gguf.GGUFReader, source_name: str) -> None:
    """Raise unless the weights have exactly the source file's tensor names and shapes."""
    expected = {tensor.name: tuple(int(n) for n in reversed(tensor.shape)) for tensor in source.tensors}
    actual = {name: array.shape for name, array in weights.items()}
    if actual != expected:
        different = sorted(set(actual.items()) ^ set(expected.items()))[:3]
        raise ValueError(f"The model does not have the layout of {source_name} (first differences: "
                         f"{different}); export a model fine-tuned from that file.")


def export_gguf(model: PreTrainedModel, path: Path | None = None, *, source: Path | None = None,
                name: str = FINETUNED_MODEL_NAME,
                tensor_type: gguf.GGMLQuantizationType = gguf.GGMLQuantizationType.F16) -> ExportResult:
    """Write the model as a GGUF file (default: where LOCAL_MODEL_VARIANT=fine-tuned serves it from).

    Tokenizer and metadata come from `source` (default: the shipped model). The file appears
    only when complete, with its sha256 in `<file>.sha256`.
    """
    if tensor_type not in FILE_TYPES:
        raise ValueError(f"tensor_type must be one of {', '.join(t.name for t in FILE_TYPES)}.")
    started = time.monotonic()
    path = path or finetuned_model_path()
    source = source or bundled_model_path()
    source_reader = gguf.GGUFReader(source)
    weights = _gguf_weights(model)
    _check_layout(weights, source_reader, source.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    writer = gguf.GGUFWriter(partial, arch=gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    _copy_metadata(source_reader, writer)
    writer.add_name(name)
    writer.add_file_type(FILE_TYPES[tensor_type])
    for tensor in source_reader.tensors:  # a few seconds for the 135M model: no progress bar needed
        data, data_type = _encode(weights[tensor.name], tensor_type)
        writer.add_tensor(tensor.name, data, raw_dtype=data_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file(progress=False)
    writer.close()
    os.replace(partial, path)
    return ExportResult(path=path, sha256=record_sha256(path), size_bytes=path.stat().st_size,
                        seconds=time.monotonic() - started, tensor_type=tensor_type.name)


@dataclass(frozen=True)
class GreedyComparison:
    """Greedy answers of the transformers model and of llama.cpp on the exported file, as token ids."""

    transformers_tokens: list[list[int]]
    llama_cpp_tokens: list[list[int]]

    @property
    def identical(self) -> bool:
        """True when llama.cpp gave every answer token for token as transformers did."""
        return self.transformers_tokens == self.llama_cpp_tokens

    @property
    def exact_matches(self) -> int:
        return sum(a == b for a, b in zip(self.transformers_tokens, self.llama_cpp_tokens))

    @property
    def token_agreement(self) -> float:
        """Share of transformers' tokens that llama.cpp produced too, before their first difference.

        After a difference the two continue from different text, so later positions are not compared.
        """
        agreed = 0
        for reference, exported in zip(self.transformers_tokens, self.llama_cpp_tokens):
            for a, b in zip(reference, exported):
                if a != b:
                    break
                agreed += 1
        total = sum(len(reference) for reference in self.transformers_tokens)
        return agreed / total if total else 0.0


def _llama_cpp_greedy_ids(llm: Llama, prompt_ids: Sequence[int], max_new_tokens: int) -> list[int]:
    tokens: list[int] = []
    for token in llm.generate(list(prompt_ids), temp=0.0, repeat_penalty=1.0):
        tokens.append(token)
        if token == llm.token_eos() or len(tokens) >= max_new_tokens:
            break
    return tokens


def llama_cpp_greedy_answers(gguf_path: Path, prompts: Sequence[Sequence[int]], max_new_tokens: int) -> list[list[int]]:
    """The tokens llama.cpp picks at temperature 0 after each prompt, up to and including its end-of-turn token."""
    # one thread: as fast for a few short answers, and it does not stall when other work shares the cores
    llm = Llama(model_path=str(gguf_path), n_ctx=2048, n_threads=1, verbose=False)
    try:
        return [_llama_cpp_greedy_ids(llm, ids, max_new_tokens) for ids in prompts]
    finally:
        llm.close()


def compare_greedy(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, gguf_path: Path,
                   conversations: Sequence[Sequence[Message]], max_new_tokens: int = 24) -> GreedyComparison:
    """Answer each conversation greedily with transformers and with llama.cpp on the GGUF file, token for token."""
    prompts = [prompt_token_ids(tokenizer, messages) for messages in conversations]
    return GreedyComparison(
        transformers_tokens=[greedy_token_ids(model, tokenizer, ids, max_new_tokens) for ids in prompts],
        llama_cpp_tokens=llama_cpp_greedy_answers(gguf_path, prompts, max_new_tokens))
