"""PyTorch's side of `make bench`: the same cases as bench_bert.c, same shapes, same loss.

Runs the functional BERT of tests/reference/bert_ref.py in float32 with one intra-op thread
(OPENBLAS_NUM_THREADS=1 is set by run_bench.sh). Prints one JSON object per case.
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "reference"))
import bert_ref as R  # noqa: E402
import qwen3_ref as Q  # noqa: E402


def run_case(name, cfg, B, T, reps, qwen3=False, bf16=False):
    gen = torch.Generator().manual_seed(42)
    M = Q if qwen3 else R
    P = {k: v.requires_grad_(True) for k, v in M.random_params(cfg, gen, scale=0.05).items()}
    ids = torch.randint(0, cfg["vocab_size"], (B, T), generator=gen)
    mask = torch.ones(B, T, dtype=torch.long)
    best, loss = 1e30, 0.0
    for r in range(reps + 1):
        t = time.perf_counter()
        for p in P.values():
            p.grad = None
        # bf16: CPU autocast, the matmuls in bfloat16 with float32 weights kept (PyTorch's mixed precision)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if qwen3:
                e = torch.nn.functional.normalize(Q.last_token_pool(Q.qwen3_forward(P, ids, mask, cfg), mask), dim=1)
            else:
                e = R.pool(R.bert_forward(P, ids, mask, cfg), mask, "mean", True)
            loss = R.infonce(e[: B // 2].float(), e[B // 2:].float())
        loss.backward()
        t = time.perf_counter() - t
        if r > 0:
            best = min(best, t)
    print(json.dumps({"case": name, "seconds": round(best, 4), "tokens_per_s": round(B * T / best, 1),
                      "loss": round(float(loss), 5)}), flush=True)


def forward_case(arch, cfg, n, B, T, case="forward"):
    """Forward passes only (no autograd) of the shapes of cfg (random weights: the time does not
    depend on them), n texts of T tokens in batches of B: what encoding costs. `encode N B T` (the
    MiniLM shape) and `forward ARCH CONFIG_JSON N B T` (any)."""
    gen = torch.Generator().manual_seed(42)
    M = Q if arch == "qwen3" else R
    P = M.random_params(cfg, gen, scale=0.05)
    t = time.perf_counter()
    with torch.no_grad():
        for i in range(0, n, B):
            b = min(B, n - i)
            ids = torch.randint(0, cfg["vocab_size"], (b, T), generator=gen)
            mask = torch.ones(b, T, dtype=torch.long)
            if arch == "qwen3":
                torch.nn.functional.normalize(Q.last_token_pool(Q.qwen3_forward(P, ids, mask, cfg), mask), dim=1)
            else:
                R.pool(R.bert_forward(P, ids, mask, cfg), mask, "mean", True)
    t = time.perf_counter() - t
    print(json.dumps({"case": case, "texts": n, "seconds": round(t, 4), "texts_per_s": round(n / t, 2)}), flush=True)


def main():
    torch.set_num_threads(1)
    if len(sys.argv) > 1 and sys.argv[1] == "forward":
        forward_case(sys.argv[2], json.load(open(sys.argv[3])), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
        return
    base = {"hidden_act": "gelu", "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "type_vocab_size": 2}
    if len(sys.argv) > 1 and sys.argv[1] == "encode":
        minilm = dict(base, vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                      intermediate_size=1536)
        forward_case("bert", minilm, int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), "encode")
        return
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    base = {"hidden_act": "gelu", "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "type_vocab_size": 2}
    minilm = dict(base, vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                  intermediate_size=1536)
    run_case("minilm-l6 16x128", minilm, 16, 128, reps)
    layer = dict(base, vocab_size=1000, hidden_size=768, num_hidden_layers=1, num_attention_heads=12,
                 intermediate_size=3072)
    run_case("bert-base layer 8x128", layer, 8, 128, reps)
    qwen = {"vocab_size": 1000, "hidden_size": 1024, "num_hidden_layers": 2, "num_attention_heads": 16,
            "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 3072, "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0}
    run_case("qwen3-0.6b 2 layers 4x128", qwen, 4, 128, reps, qwen3=True)
    run_case("minilm-l6 16x128 bf16", minilm, 16, 128, reps, bf16=True)
    run_case("bert-base layer 8x128 bf16", layer, 8, 128, reps, bf16=True)
    run_case("qwen3-0.6b 2 layers 4x128 bf16", qwen, 4, 128, reps, qwen3=True, bf16=True)


if __name__ == "__main__":
    main()
