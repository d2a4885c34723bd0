"""PyTorch reference of the BERT sentence encoder, its tokenizer and the InfoNCE loss.

Written against transformers' BertModel (eval mode), BertTokenizerFast and
sentence-transformers' Pooling/Normalize, which are not packaged in Debian: this file
re-implements exactly what they compute so that gaprune can be checked against it.
Run with /usr/bin/python3 (Debian's torch). Used by make_bert_fixtures.py and the benchmark.
"""
import json
import math
import struct
import unicodedata

import numpy as np
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------
# Tokenizer: tokenizers' BertNormalizer + BertPreTokenizer + WordPiece, as BertTokenizerFast.

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _is_control(c):
    if c in "\t\n\r":
        return False
    return unicodedata.category(c).startswith("C")


def _is_whitespace(c):
    # Rust char::is_whitespace (the White_Space property)
    o = ord(c)
    return (0x09 <= o <= 0x0D or o in (0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000)
            or 0x2000 <= o <= 0x200A)


def _is_punct(c):
    o = ord(c)
    if 33 <= o <= 47 or 58 <= o <= 64 or 91 <= o <= 96 or 123 <= o <= 126:
        return True
    return unicodedata.category(c).startswith("P")


def _is_cjk(o):
    return (0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0x20000 <= o <= 0x2A6DF or 0x2A700 <= o <= 0x2B73F
            or 0x2B740 <= o <= 0x2B81F or 0x2B820 <= o <= 0x2CEAF or 0xF900 <= o <= 0xFAFF
            or 0x2F800 <= o <= 0x2FA1F)


class WordPiece:
    def __init__(self, vocab, lower=True, strip_accents=None, chinese=True, clean=True):
        self.vocab = {t: i for i, t in enumerate(vocab)}
        self.inv = list(vocab)
        self.lower = lower
        self.strip = lower if strip_accents is None else strip_accents
        self.chinese = chinese
        self.clean = clean

    def normalize(self, text):
        out = []
        for c in text:
            if self.clean:
                if c == "\0" or c == "\ufffd" or _is_control(c):
                    continue
                if _is_whitespace(c):
                    c = " "
            if self.chinese and _is_cjk(ord(c)):
                out += [" ", c, " "]
                continue
            chars = unicodedata.normalize("NFD", c) if self.strip else c
            for d in chars:
                if self.strip and unicodedata.category(d) == "Mn":
                    continue
                out.append(d.lower() if self.lower else d)
        return "".join(out)

    def pretokenize(self, text):
        words, cur = [], []
        for c in text:
            if _is_whitespace(c):
                if cur:
                    words.append("".join(cur))
                    cur = []
            elif _is_punct(c):
                if cur:
                    words.append("".join(cur))
                    cur = []
                words.append(c)
            else:
                cur.append(c)
        if cur:
            words.append("".join(cur))
        return words

    def wordpiece(self, word):
        if len(word) > 100:
            return [self.vocab["[UNK]"]]
        ids, start = [], 0
        while start < len(word):
            end, found = len(word), None
            while start < end:
                sub = word[start:end]
                if start > 0:
                    sub = "##" + sub
                if sub in self.vocab:
                    found = self.vocab[sub]
                    break
                end -= 1
            if found is None:
                return [self.vocab["[UNK]"]]
            ids.append(found)
            start = end
        return ids

    def encode(self, text, max_len):
        ids, i, seg = [], 0, 0
        # added (special) tokens are matched in the raw text first
        while i < len(text):
            hit = None
            for s in SPECIALS:
                if s in self.vocab and text.startswith(s, i) and (hit is None or len(s) > len(hit)):
                    hit = s
            if hit is None:
                i += 1
                continue
            ids += self._plain(text[seg:i])
            ids.append(self.vocab[hit])
            i += len(hit)
            seg = i
        ids += self._plain(text[seg:])
        ids = ids[: max(0, max_len - 2)]
        return [self.vocab["[CLS]"]] + ids + [self.vocab["[SEP]"]]

    def _plain(self, text):
        out = []
        for w in self.pretokenize(self.normalize(text)):
            out += self.wordpiece(w)
        return out

    def batch(self, texts, max_len):
        seqs = [self.encode(t, max_len) for t in texts]
        T = max(len(s) for s in seqs)
        ids = np.full((len(seqs), T), self.vocab["[PAD]"], dtype=np.int32)
        mask = np.zeros((len(seqs), T), dtype=np.uint8)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = s
            mask[i, : len(s)] = 1
        return ids, mask


# ---------------------------------------------------------------------------------------------
# Model: transformers BertModel in eval mode, functional.


def param_names(cfg):
    names = [
        ("embeddings.word_embeddings.weight", (cfg["vocab_size"], cfg["hidden_size"])),
        ("embeddings.position_embeddings.weight", (cfg["max_position_embeddings"], cfg["hidden_size"])),
        ("embeddings.token_type_embeddings.weight", (cfg["type_vocab_size"], cfg["hidden_size"])),
        ("embeddings.LayerNorm.weight", (cfg["hidden_size"],)),
        ("embeddings.LayerNorm.bias", (cfg["hidden_size"],)),
    ]
    C, I = cfg["hidden_size"], cfg["intermediate_size"]
    hs = C // cfg["num_attention_heads"]
    for l in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{l}."
        # transformers' prune_heads leaves num_attention_heads - len(pruned) heads in layer l
        A = (cfg["num_attention_heads"] - len(cfg.get("pruned_heads", {}).get(str(l), []))) * hs
        names += [
            (p + "attention.self.query.weight", (A, C)), (p + "attention.self.query.bias", (A,)),
            (p + "attention.self.key.weight", (A, C)), (p + "attention.self.key.bias", (A,)),
            (p + "attention.self.value.weight", (A, C)), (p + "attention.self.value.bias", (A,)),
            (p + "attention.output.dense.weight", (C, A)), (p + "attention.output.dense.bias", (C,)),
            (p + "attention.output.LayerNorm.weight", (C,)), (p + "attention.output.LayerNorm.bias", (C,)),
            (p + "intermediate.dense.weight", (I, C)), (p + "intermediate.dense.bias", (I,)),
            (p + "output.dense.weight", (C, I)), (p + "output.dense.bias", (C,)),
            (p + "output.LayerNorm.weight", (C,)), (p + "output.LayerNorm.bias", (C,)),
        ]
    return names


def random_params(cfg, gen, scale=0.15):
    """Random weights large enough that every nonlinearity matters."""
    P = {}
    for name, shape in param_names(cfg):
        if name.endswith("LayerNorm.weight"):
            t = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        elif name.endswith("bias") or name.endswith("LayerNorm.bias"):
            t = 0.05 * torch.randn(shape, generator=gen)
        elif "embeddings" in name:
            t = 0.5 * torch.randn(shape, generator=gen)
        else:
            t = scale * torch.randn(shape, generator=gen)
        P[name] = t.float()
    return P


def layer_forward(P, p, x, mask, cfg, record=None):
    """One BERT layer. x [B, T, C]; mask [B, T] (1 = real token). record, when a dict, receives the
    input of every linear layer, keyed by its weight's name. P may hold p + "gate" [I]: a factor on
    each MLP neuron's output (the gradient with respect to it is the neuron's gate derivative)."""
    B, T, C = x.shape
    hs = C // cfg["num_attention_heads"]
    NH = P[p + "attention.self.query.weight"].shape[0] // hs  # fewer after transformers' prune_heads
    eps = cfg["layer_norm_eps"]
    q = F.linear(x, P[p + "attention.self.query.weight"], P[p + "attention.self.query.bias"])
    k = F.linear(x, P[p + "attention.self.key.weight"], P[p + "attention.self.key.bias"])
    v = F.linear(x, P[p + "attention.self.value.weight"], P[p + "attention.self.value.bias"])
    q, k, v = (t.view(B, T, NH, hs).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-1, -2) / math.sqrt(hs)
    ext = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
    probs = torch.softmax(scores + ext, dim=-1)
    ctx = (probs @ v).transpose(1, 2).reshape(B, T, NH * hs)
    if record is not None:
        for w in ("query", "key", "value"):
            record[p + f"attention.self.{w}.weight"] = x
        record[p + "attention.output.dense.weight"] = ctx
    a = F.linear(ctx, P[p + "attention.output.dense.weight"], P[p + "attention.output.dense.bias"])
    x1 = F.layer_norm(a + x, (C,), P[p + "attention.output.LayerNorm.weight"], P[p + "attention.output.LayerNorm.bias"], eps)
    h = F.gelu(F.linear(x1, P[p + "intermediate.dense.weight"], P[p + "intermediate.dense.bias"]))
    if p + "gate" in P:
        h = h * P[p + "gate"]
    if record is not None:
        record[p + "intermediate.dense.weight"] = x1
        record[p + "output.dense.weight"] = h
    o = F.linear(h, P[p + "output.dense.weight"], P[p + "output.dense.bias"])
    return F.layer_norm(o + x1, (C,), P[p + "output.LayerNorm.weight"], P[p + "output.LayerNorm.bias"], eps)


def bert_forward(P, ids, mask, cfg, record=None):
    """Hidden states [B, T, C] of transformers' BertModel (position ids = column, token type 0)."""
    B, T = ids.shape
    C = cfg["hidden_size"]
    pos = torch.arange(T)
    x = P["embeddings.word_embeddings.weight"][ids] + P["embeddings.position_embeddings.weight"][pos][None]
    x = x + P["embeddings.token_type_embeddings.weight"][0]
    x = F.layer_norm(x, (C,), P["embeddings.LayerNorm.weight"], P["embeddings.LayerNorm.bias"], cfg["layer_norm_eps"])
    for l in range(cfg["num_hidden_layers"]):
        x = layer_forward(P, f"encoder.layer.{l}.", x, mask, cfg, record)
    return x


def pool(hidden, mask, mode, normalize):
    """sentence-transformers Pooling (+ Normalize)."""
    m = mask.to(hidden.dtype)
    if mode == "mean":
        e = (hidden * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp(min=1e-9)
    elif mode == "cls":
        e = hidden[:, 0]
    elif mode == "lasttoken":
        last = mask.long().sum(1) - 1  # right padding
        e = hidden[torch.arange(hidden.shape[0]), last]
    else:
        raise ValueError(mode)
    return F.normalize(e, p=2, dim=1) if normalize else e


def infonce(q, d, scale=20.0):
    """HardNegativeNLLLoss of the GAPrune code: rows of d are the B positives, then negatives."""
    s = scale * (F.normalize(q, dim=1) @ F.normalize(d, dim=1).T)
    return F.cross_entropy(s, torch.arange(q.shape[0]))


# ---------------------------------------------------------------------------------------------
# safetensors writing (the safetensors package is not in Debian)


def _bytes(t, dtype):
    if dtype == "F32":
        return t.detach().float().contiguous().numpy().astype("<f4").tobytes()
    if dtype == "BF16":
        return t.detach().to(torch.bfloat16).contiguous().view(torch.int16).numpy().astype("<i2").tobytes()
    if dtype == "F16":
        return t.detach().half().contiguous().numpy().astype("<f2").tobytes()
    if dtype == "I64":
        return t.detach().long().contiguous().numpy().astype("<i8").tobytes()
    raise ValueError(dtype)


def save_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, torch tensor, dtype string)."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t, dtype in tensors:
        b = _bytes(t, dtype)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    return off


def read_safetensors(path):
    """name -> float64 tensor (F32, F16, BF16), for checking files gaprune writes."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        raw = data[a:b]
        if e["dtype"] == "F32":
            t = torch.from_numpy(np.frombuffer(raw, dtype="<f4").copy())
        elif e["dtype"] == "F16":
            t = torch.from_numpy(np.frombuffer(raw, dtype="<f2").copy()).float()
        elif e["dtype"] == "BF16":
            t = torch.from_numpy(np.frombuffer(raw, dtype="<i2").copy()).view(torch.bfloat16).float()
        else:
            continue
        out[name] = t.reshape(e["shape"]).double()
    return out, header.get("__metadata__")
