"""A functional PyTorch reference of transformers' Qwen3Model (eval mode), as Qwen3-Embedding runs it.

Written from transformers' modeling_qwen3.py semantics (transformers itself is not in Debian):
  x = embed_tokens[ids]
  per layer: a = RMSNorm(x) * input_layernorm
             q, k, v = a Wq^T, a Wk^T, a Wv^T        (no biases)
             q, k = RMSNorm per head * q_norm / k_norm, then rotary embeddings (rotate_half form)
             attention with a causal + padding mask, key/value heads shared by NH / NKV query heads
             x = x + attn Wo^T
             m = RMSNorm(x) * post_attention_layernorm
             x = x + (silu(m Wg^T) * (m Wu^T)) Wd^T
  out = RMSNorm(x) * norm
Position ids are 0..T-1 for every row, padded or not (transformers' default cache positions), and
the rotary cos/sin tables are computed in float32 as transformers computes them, then cast.
Every other operation runs in the dtype of the parameters (float64 for the fixtures).
"""
import torch
import torch.nn.functional as F


def param_names(cfg):
    C, I = cfg["hidden_size"], cfg["intermediate_size"]
    hs = cfg.get("head_dim") or C // cfg["num_attention_heads"]
    Q, KV = cfg["num_attention_heads"] * hs, cfg["num_key_value_heads"] * hs
    names = [("embed_tokens.weight", (cfg["vocab_size"], C))]
    for l in range(cfg["num_hidden_layers"]):
        p = f"layers.{l}."
        names += [
            (p + "self_attn.q_proj.weight", (Q, C)), (p + "self_attn.k_proj.weight", (KV, C)),
            (p + "self_attn.v_proj.weight", (KV, C)), (p + "self_attn.o_proj.weight", (C, Q)),
            (p + "self_attn.q_norm.weight", (hs,)), (p + "self_attn.k_norm.weight", (hs,)),
            (p + "input_layernorm.weight", (C,)), (p + "post_attention_layernorm.weight", (C,)),
            (p + "mlp.gate_proj.weight", (I, C)), (p + "mlp.up_proj.weight", (I, C)),
            (p + "mlp.down_proj.weight", (C, I)),
        ]
    names.append(("norm.weight", (C,)))
    return names


def random_params(cfg, gen, scale=0.15):
    """Random weights large enough that every nonlinearity matters; norm weights around 1."""
    P = {}
    for name, shape in param_names(cfg):
        if name.endswith("norm.weight"):
            t = 1.0 + 0.2 * torch.randn(shape, generator=gen)
        elif name == "embed_tokens.weight":
            t = 0.5 * torch.randn(shape, generator=gen)
        else:
            t = scale * torch.randn(shape, generator=gen)
        P[name] = t.float()
    return P


def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rope_tables(T, hs, theta, dtype):
    """transformers' Qwen3RotaryEmbedding: float32 inv_freq and angles, cos/sin cast to dtype."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, hs, 2, dtype=torch.int64).float() / hs))
    pos = torch.arange(T).float()
    freqs = pos[:, None] * inv_freq[None, :]  # float32, like the float32 matmul in transformers
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def layer_forward(P, p, x, mask, cos, sin, cfg, record=None):
    """One decoder layer. x [B, T, C]; mask [B, T] (1 = real token). record, when a dict, receives
    the input of every linear layer, keyed by its weight's name."""
    B, T, C = x.shape
    NH, NKV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hs = cfg.get("head_dim") or C // NH
    eps = cfg["rms_norm_eps"]
    a = rms_norm(x, P[p + "input_layernorm.weight"], eps)
    q = F.linear(a, P[p + "self_attn.q_proj.weight"]).view(B, T, NH, hs)
    k = F.linear(a, P[p + "self_attn.k_proj.weight"]).view(B, T, NKV, hs)
    v = F.linear(a, P[p + "self_attn.v_proj.weight"]).view(B, T, NKV, hs)
    q = rms_norm(q, P[p + "self_attn.q_norm.weight"], eps).transpose(1, 2)
    k = rms_norm(k, P[p + "self_attn.k_norm.weight"], eps).transpose(1, 2)
    v = v.transpose(1, 2)
    q = q * cos[None, None] + rotate_half(q) * sin[None, None]
    k = k * cos[None, None] + rotate_half(k) * sin[None, None]
    k = k.repeat_interleave(NH // NKV, dim=1)
    v = v.repeat_interleave(NH // NKV, dim=1)
    scores = q @ k.transpose(-1, -2) / hs ** 0.5
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    allowed = causal[None, None] & mask.bool()[:, None, None, :]
    # a finite minimum: a pad row that sees no key at all stays finite (and is never pooled)
    scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
    ctx = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(B, T, NH * hs)
    if record is not None:
        for w in ("q_proj", "k_proj", "v_proj"):
            record[p + f"self_attn.{w}.weight"] = a
        record[p + "self_attn.o_proj.weight"] = ctx
    x = x + F.linear(ctx, P[p + "self_attn.o_proj.weight"])
    m = rms_norm(x, P[p + "post_attention_layernorm.weight"], eps)
    h = F.silu(F.linear(m, P[p + "mlp.gate_proj.weight"])) * F.linear(m, P[p + "mlp.up_proj.weight"])
    if record is not None:
        record[p + "mlp.gate_proj.weight"] = m
        record[p + "mlp.up_proj.weight"] = m
        record[p + "mlp.down_proj.weight"] = h
    return x + F.linear(h, P[p + "mlp.down_proj.weight"])


def qwen3_forward(P, ids, mask, cfg, record=None):
    """Last hidden states [B, T, C] of Qwen3Model."""
    B, T = ids.shape
    hs = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    x = P["embed_tokens.weight"][ids]
    cos, sin = rope_tables(T, hs, cfg["rope_theta"], x.dtype)
    for l in range(cfg["num_hidden_layers"]):
        x = layer_forward(P, f"layers.{l}.", x, mask, cos, sin, cfg, record)
    return rms_norm(x, P["norm.weight"], cfg["rms_norm_eps"])


def last_token_pool(hidden, mask):
    """sentence-transformers' lasttoken pooling: the last real token, left or right padding."""
    last = torch.stack([torch.nonzero(r).max() for r in mask])
    return hidden[torch.arange(hidden.shape[0]), last]
