"""Builds the small random Qwen3 embedding models and the reference tensors gaprune is tested against.

    /usr/bin/python3 tests/reference/make_qwen3_fixtures.py tests/fixtures      (make fixtures)

Needs tests/fixtures/bpe-tiny (tests/reference/make_bpe_fixture.py): its byte-level BPE
tokenizer.json is the models' tokenizer, and tests/reference/bpe_ref.py, an independent encoder,
gives the token ids. Writes, under the output folder:
  qwen3-f32/   hidden 64, 2 layers, 4 query and 2 key/value heads of 24 channels (head_dim is not
               hidden / heads, as in the real models), intermediate 128; F32, one file, names as
               Qwen3-Embedding stores them; last-token pooling + Normalize; a query prompt
  qwen3-bf16/  the same shapes, other weights, BF16 in two shards with the "model." prefix of a
               Qwen3ForCausalLM checkpoint, plus an untied lm_head.weight (present, unused)
  <name>.expected.h5   texts, token ids and attention masks padded on the right (as gaprune pads)
                       and on the left (as Qwen3's tokenizer pads), embeddings, InfoNCE loss and
                       the gradient of every parameter for both, in float64 from the stored weights
Deterministic: the same files every run.
"""
import json
import os
import shutil
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import bert_ref as R  # noqa: E402  (safetensors writing, InfoNCE)
import bpe_ref  # noqa: E402
import qwen3_ref as Q  # noqa: E402

CFG = {
    "architectures": ["Qwen3Model"],
    "model_type": "qwen3",
    "attention_bias": False,
    "attention_dropout": 0.0,
    "head_dim": 24,
    "hidden_act": "silu",
    "hidden_size": 64,
    "initializer_range": 0.02,
    "intermediate_size": 128,
    "max_position_embeddings": 512,
    "max_window_layers": 2,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-6,
    "rope_scaling": None,
    "rope_theta": 1000000,
    "sliding_window": None,
    "tie_word_embeddings": True,
    "torch_dtype": "float32",
    "use_cache": True,
    "use_sliding_window": False,
}

# Three triplets (query, positive, negative) of varied lengths; contractions, digits, accents,
# CJK, an emoji, a literal special token, an empty text and one longer than MAX_LENGTH.
TEXTS = [
    "Instruct: Given a question, retrieve passages that answer it\nQuery:What's the boiling point of water?",
    "Héllo wörld, ça va? naïve café 😀",
    "",
    "Water boils at 100 degrees Celsius at sea level.",
    "東京 is in 日本 (Japan); 12,345 people... <|im_start|>",
    " ".join(["the boiling point of water depends on the pressure"] * 6),
    "Ethanol boils at 78 °C; they'll see it's lower!",
    "    indented\n\n\ttabs and   spaces",
    "Привет, мир",
]
MAX_LENGTH = 40
QUERY_PROMPT = "Instruct: Given a question, retrieve passages that answer it\nQuery:"


def write_folder(path, cfg, tok_dir, spec, shards):
    os.makedirs(os.path.join(path, "1_Pooling"), exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(tok_dir, name), os.path.join(path, name))
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
               {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]
    with open(os.path.join(path, "modules.json"), "w") as f:
        json.dump(modules, f, indent=2)
    with open(os.path.join(path, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": cfg["hidden_size"], "pooling_mode_cls_token": False,
                   "pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": False,
                   "pooling_mode_mean_sqrt_len_tokens": False, "pooling_mode_weightedmean_tokens": False,
                   "pooling_mode_lasttoken": True, "include_prompt": True}, f, indent=2)
    with open(os.path.join(path, "sentence_bert_config.json"), "w") as f:
        json.dump({"max_seq_length": 64, "do_lower_case": False}, f, indent=2)
    with open(os.path.join(path, "config_sentence_transformers.json"), "w") as f:
        json.dump({"prompts": {"query": QUERY_PROMPT, "document": ""}, "default_prompt_name": None,
                   "similarity_fn_name": "cosine"}, f, indent=2)
    if shards == 1:
        R.save_safetensors(os.path.join(path, "model.safetensors"), spec, {"format": "pt"})
        return
    half = (len(spec) + 1) // 2
    parts = [spec[:half], spec[half:]]
    weight_map, total = {}, 0
    for i, part in enumerate(parts):
        name = f"model-{i + 1:05d}-of-{len(parts):05d}.safetensors"
        total += R.save_safetensors(os.path.join(path, name), part, {"format": "pt"})
        for t in part:
            weight_map[t[0]] = name
    with open(os.path.join(path, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


def padded(seqs, left, pad_id):
    T = max(len(s) for s in seqs)
    ids = np.full((len(seqs), T), pad_id, dtype=np.int32)
    mask = np.zeros((len(seqs), T), dtype=np.uint8)
    for i, s in enumerate(seqs):
        if left:
            ids[i, T - len(s):], mask[i, T - len(s):] = s, 1
        else:
            ids[i, :len(s)], mask[i, :len(s)] = s, 1
    return ids, mask


def reference(params, cfg, ids, mask):
    P = {k: v.double().requires_grad_(True) for k, v in params.items()}
    m = torch.from_numpy(mask)
    hidden = Q.qwen3_forward(P, torch.from_numpy(ids).long(), m, cfg)
    emb = torch.nn.functional.normalize(Q.last_token_pool(hidden, m), dim=1)
    B = len(TEXTS) // 3
    loss = R.infonce(emb[:B], emb[B:])
    loss.backward()
    return emb.detach(), float(loss), {k: v.grad for k, v in P.items()}


def make(out, name, tok_dir, dtype, shards, prefix, lm_head, seed):
    gen = torch.Generator().manual_seed(seed)
    tok = bpe_ref.Tokenizer(tok_dir)
    vocab = 1 + max(max(tok.vocab.values()), max(t["id"] for t in tok.added))
    cfg = dict(CFG, vocab_size=vocab, tie_word_embeddings=not lm_head)
    params = Q.random_params(cfg, gen)
    if dtype == "BF16":  # the reference computes with exactly what the file stores
        params = {k: v.to(torch.bfloat16).float() for k, v in params.items()}
    spec = [(prefix + k, v, dtype) for k, v in params.items()]
    if lm_head:
        spec.append(("lm_head.weight", 0.1 * torch.randn((vocab, cfg["hidden_size"]), generator=gen), dtype))
    write_folder(os.path.join(out, name), cfg, tok_dir, spec, shards)

    seqs = [tok.encode(t, MAX_LENGTH) for t in TEXTS]
    pad = tok.vocab.get("<|endoftext|>", next(t["id"] for t in tok.added if t["content"] == "<|endoftext|>"))
    with h5py.File(os.path.join(out, name + ".expected.h5"), "w") as f:
        f.attrs["description"] = "PyTorch float64 reference for " + name + " (tests/reference/make_qwen3_fixtures.py)"
        f.attrs["max_length"] = MAX_LENGTH
        f.attrs["n_triplets"] = len(TEXTS) // 3
        f.attrs["scale"] = 20.0
        f.create_dataset("texts", data=[t.encode() for t in TEXTS], dtype=h5py.string_dtype("utf-8"))
        for side, left in (("", False), ("_left", True)):
            ids, mask = padded(seqs, left, pad)
            emb, loss, grads = reference(params, cfg, ids, mask)
            f.attrs["loss" + side] = loss
            f.create_dataset("ids" + side, data=ids)
            f.create_dataset("mask" + side, data=mask)
            f.create_dataset("embeddings" + side, data=emb.float().numpy())
            g = f.create_group("grad" + side)
            for k, v in grads.items():
                g.create_dataset(k, data=v.float().numpy(), compression="gzip")
            print(f"{name}{side}: loss {loss:.6f}, tokens {int(mask.sum())}, T {ids.shape[1]}")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
    tok_dir = os.path.join(out, "bpe-tiny")
    torch.set_num_threads(1)
    make(out, "qwen3-f32", tok_dir, "F32", 1, "", False, 4321)
    make(out, "qwen3-bf16", tok_dir, "BF16", 2, "model.", True, 8765)


if __name__ == "__main__":
    main()
