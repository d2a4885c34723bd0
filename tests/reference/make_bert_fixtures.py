"""Builds the small random BERT model folders and the reference tensors gaprune is tested against.

    /usr/bin/python3 tests/reference/make_bert_fixtures.py tests/fixtures      (make fixtures)

Writes, under the output folder:
  bert-f32/   lower-casing tokenizer, mean pooling + Normalize, one model.safetensors (F32)
  bert-bf16/  cased tokenizer, CLS pooling without Normalize, two BF16 shards + index, names with
              the "bert." prefix, plus pooler weights and a position_ids buffer (present in many
              checkpoints, unused by the encoder)
  <name>.expected.h5   texts, token ids, attention mask, embeddings, InfoNCE loss and the gradient
                       of every parameter, computed in float64 from the exact stored weights
  texts.txt   a few lines of text for command-line tests
Deterministic: the same files every run.
"""
import json
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import bert_ref as R  # noqa: E402

CFG = {
    "architectures": ["BertModel"],
    "model_type": "bert",
    "attention_probs_dropout_prob": 0.1,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 64,
    "initializer_range": 0.02,
    "intermediate_size": 128,
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 48,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
    "type_vocab_size": 2,
    "torch_dtype": "float32",
}

# Three triplets (query, positive, negative): varied lengths so the batch is padded, and text that
# exercises accents, case, CJK, punctuation, digits, literal special tokens, unknown words, an
# empty text and one longer than max_length.
TEXTS = [
    "What is the capital of France?",
    "Héllo wörld, ÇA VA? naïve café",
    "supercalifragilisticexpialidocious unknownword xyzzy",
    "Paris is the capital and largest city of France.",
    "东京 is in 日本 (Japan), 12,345 people...",
    " ".join(["the city of paris is big and the capital of france"] * 4),
    "Berlin is the capital of Germany; it's big!",
    "[SEP] special tokens inside text [CLS]",
    "",
]
MAX_LENGTH = 24

BASE_VOCAB = (
    R.SPECIALS
    + list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
    + list("0123456789")
    + ["12", "345", "##5", "##45"]
    + list("abcdefghijklmnopqrstuvwxyz")
    + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]
    + ["the", "is", "of", "and", "capital", "city", "france", "paris", "berlin", "germany", "it", "s", "big",
       "what", "large", "##st", "hello", "world", "ca", "va", "naive", "cafe", "in", "japan", "people", "special",
       "token", "##s", "inside", "text", "unknown", "##word", "super", "##cal", "##if", "##rag", "##il",
       "##istic", "##ex", "##pi", "##ali", "##do", "##cious", "xyz", "##zy", "##ing", "##ed", "##er", "##ly"]
    + ["东", "京", "日", "本"]
)
CASED_EXTRA = ["What", "Paris", "Berlin", "Germany", "France", "H", "##é", "##ö", "Ç", "##A", "V", "##ï",
               "W", "##llo", "##rld", "café"]


def write_folder(path, vocab, tok_cfg, modules, pooling, tensors_spec, shards, cfg=None):
    os.makedirs(os.path.join(path, "1_Pooling"), exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(dict(cfg or CFG, vocab_size=len(vocab)), f, indent=2)
    with open(os.path.join(path, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")
    with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
        json.dump(tok_cfg, f, indent=2)
    with open(os.path.join(path, "special_tokens_map.json"), "w") as f:
        json.dump({"cls_token": "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]", "sep_token": "[SEP]",
                   "unk_token": "[UNK]"}, f, indent=2)
    with open(os.path.join(path, "modules.json"), "w") as f:
        json.dump(modules, f, indent=2)
    with open(os.path.join(path, "1_Pooling", "config.json"), "w") as f:
        json.dump(pooling, f, indent=2)
    with open(os.path.join(path, "sentence_bert_config.json"), "w") as f:
        json.dump({"max_seq_length": 40, "do_lower_case": False}, f, indent=2)
    if shards == 1:
        R.save_safetensors(os.path.join(path, "model.safetensors"), tensors_spec, {"format": "pt"})
        return
    half = (len(tensors_spec) + 1) // 2
    parts = [tensors_spec[:half], tensors_spec[half:]]
    weight_map, total = {}, 0
    for i, part in enumerate(parts):
        name = f"model-{i + 1:05d}-of-{len(parts):05d}.safetensors"
        total += R.save_safetensors(os.path.join(path, name), part, {"format": "pt"})
        for t in part:
            weight_map[t[0]] = name
    with open(os.path.join(path, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


def pooling_cfg(mode, cfg=None):
    return {
        "word_embedding_dimension": (cfg or CFG)["hidden_size"],
        "pooling_mode_cls_token": mode == "cls",
        "pooling_mode_mean_tokens": mode == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": mode == "lasttoken",
        "include_prompt": True,
    }


def make(out, name, vocab, lower, dtype, mode, normalize, shards, prefix, extras, seed, pruned_heads=None):
    gen = torch.Generator().manual_seed(seed)
    cfg = dict(CFG, vocab_size=len(vocab))
    if pruned_heads:  # a folder as transformers' prune_heads leaves it: fewer heads' rows and columns
        cfg["pruned_heads"] = pruned_heads
    params = R.random_params(cfg, gen)
    # The reference computes with exactly what the file stores.
    if dtype == "BF16":
        params = {k: v.to(torch.bfloat16).float() for k, v in params.items()}
    spec = [(prefix + k, v, dtype) for k, v in params.items()]
    if extras:
        C = cfg["hidden_size"]
        spec.append((prefix + "pooler.dense.weight", 0.1 * torch.randn((C, C), generator=gen), dtype))
        spec.append((prefix + "pooler.dense.bias", 0.1 * torch.randn((C,), generator=gen), dtype))
        spec.append((prefix + "embeddings.position_ids", torch.arange(cfg["max_position_embeddings"])[None], "I64"))
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    tok_cfg = {"do_lower_case": lower, "strip_accents": None, "tokenize_chinese_chars": True,
               "cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]",
               "mask_token": "[MASK]", "model_max_length": 512, "tokenizer_class": "BertTokenizer"}
    folder = os.path.join(out, name)
    write_folder(folder, vocab, tok_cfg, modules, pooling_cfg(mode), spec, shards, cfg)

    tok = R.WordPiece(vocab, lower=lower)
    ids, mask = tok.batch(TEXTS, MAX_LENGTH)
    P = {k: v.double().requires_grad_(True) for k, v in params.items()}
    hidden = R.bert_forward(P, torch.from_numpy(ids).long(), torch.from_numpy(mask), cfg)
    emb = R.pool(hidden, torch.from_numpy(mask), mode, normalize)
    B = len(TEXTS) // 3
    loss = R.infonce(emb[:B], emb[B:])
    loss.backward()

    with h5py.File(os.path.join(out, name + ".expected.h5"), "w") as f:
        f.attrs["description"] = "PyTorch float64 reference for " + name + " (tests/reference/make_bert_fixtures.py)"
        f.attrs["max_length"] = MAX_LENGTH
        f.attrs["n_triplets"] = B
        f.attrs["scale"] = 20.0
        f.attrs["loss"] = float(loss)
        f.create_dataset("texts", data=[t.encode() for t in TEXTS], dtype=h5py.string_dtype("utf-8"))
        f.create_dataset("ids", data=ids)
        f.create_dataset("mask", data=mask)
        f.create_dataset("embeddings", data=emb.detach().float().numpy())
        g = f.create_group("grad")
        for k, v in P.items():
            g.create_dataset(k, data=v.grad.float().numpy(), compression="gzip")
    print(f"{name}: loss {float(loss):.6f}, tokens {int(mask.sum())}, T {ids.shape[1]}")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    make(out, "bert-f32", BASE_VOCAB, True, "F32", "mean", True, 1, "", False, 1234)
    make(out, "bert-bf16", BASE_VOCAB + CASED_EXTRA, False, "BF16", "cls", False, 2, "bert.", True, 5678)
    make(out, "bert-heads", BASE_VOCAB, True, "F32", "mean", True, 1, "", False, 4321, {"0": [1, 3], "1": [0, 2]})
    with open(os.path.join(out, "texts.txt"), "w") as f:
        f.write("\n".join(TEXTS[:8]) + "\n")


if __name__ == "__main__":
    main()
