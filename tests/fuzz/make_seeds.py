#!/usr/bin/env python3
"""make_seeds.py — writes the seed corpora of the fuzz harnesses, tests/fuzz/corpus/<harness>/,
from tests/fixtures and a few hand-made inputs (python3, standard library only).

Run from the repository root after a fixture changes: `python3 tests/fuzz/make_seeds.py`. It
rewrites the seed-* files only; inputs that `make fuzz` found and someone committed by hand
(any other name) are kept. Each seed starts with the byte(s) that pick the harness's sub-target
(see the comment at the top of each harness).
"""
import json
import os
import struct
import sys

ROOT = "tests/fuzz/corpus"
FIX = "tests/fixtures"


def fixture(rel):
    with open(os.path.join(FIX, rel), "rb") as f:
        return f.read()


def safetensors(tensors, meta=None):
    """A safetensors file: tensors = [(name, dtype, shape, raw bytes)]."""
    header, data = {}, b""
    if meta is not None:
        header["__metadata__"] = meta
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


class Corpus:
    def __init__(self, harness):
        self.dir = os.path.join(ROOT, harness)
        os.makedirs(self.dir, exist_ok=True)
        for f in os.listdir(self.dir):
            if f.startswith("seed-"):
                os.remove(os.path.join(self.dir, f))

    def add(self, name, data):
        if isinstance(data, str):
            data = data.encode()
        with open(os.path.join(self.dir, "seed-" + name), "wb") as f:
            f.write(data)


def seeds_safetensors():
    c = Corpus("fuzz_safetensors")
    small = safetensors(
        [
            ("w", "F32", [2, 3], struct.pack("<6f", 1, -2, 3.5, 0, -0.0, 1e-3)),
            ("h", "F16", [2], struct.pack("<2H", 0x3C00, 0x7C00)),
            ("b", "BF16", [1, 2], struct.pack("<2H", 0x3F80, 0xC040)),
            ("i", "I64", [2], struct.pack("<2q", 7, -1)),
            ("s", "F32", [], struct.pack("<f", 2.5)),
            ("e", "U8", [0, 4], b""),
        ],
        {"format": "pt", "gaprune.method": "magnitude"},
    )
    for form in (0, 2):
        c.add("small-%d" % form, bytes([form]) + small)
        c.add("bert-tiny-%d" % form, bytes([form]) + fixture("bert-tiny/model.safetensors"))
    headers = [
        {"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}, "__metadata__": {"k": "v"}},
        {"a": {"dtype": "F16", "shape": [3], "data_offsets": [0, 6]}, "b": {"dtype": "BF16", "shape": [1], "data_offsets": [6, 8]}},
        {"x": {"dtype": "F8_E4M3", "shape": [4, 1, 1], "data_offsets": [8, 12]}},
    ]
    for i, h in enumerate(headers):
        c.add("header-%d" % i, bytes([1]) + struct.pack("<H", 64) + json.dumps(h).encode())


def seeds_model():
    # byte 0: the index in fuzz_model.c's k_targets
    c = Corpus("fuzz_model")
    bert = ["config.json", "modules.json", "1_Pooling/config.json", "sentence_bert_config.json",
            "config_sentence_transformers.json", "tokenizer_config.json"]
    qwen = ["config.json", "model.safetensors.index.json", "config_sentence_transformers.json", "modules.json",
            "1_Pooling/config.json", "sentence_bert_config.json"]
    for k, f in enumerate(bert):
        src = "qwen3-bf16/" + f if f == "config_sentence_transformers.json" else "bert-tiny/" + f
        c.add("%d-%s" % (k, f.replace("/", "-")), bytes([k]) + fixture(src))
    for k, f in enumerate(qwen, len(bert)):
        c.add("%d-%s" % (k, f.replace("/", "-")), bytes([k]) + fixture("qwen3-bf16/" + f))
    cls = json.loads(fixture("bert-tiny/1_Pooling/config.json"))
    cls["pooling_mode_mean_tokens"], cls["pooling_mode_cls_token"] = False, True
    c.add("2-cls", bytes([2]) + json.dumps(cls).encode())
    mods = json.loads(fixture("bert-tiny/modules.json"))[:2]
    c.add("1-no-normalize", bytes([1]) + json.dumps(mods).encode())
    # transformers' pruned_heads (bert-tiny: 2 heads, 1 layer): one that the weights do not match,
    # and values that must be refused without a conversion out of range
    for k, ph in enumerate(({"0": [1]}, {"0": [1e300]}, {"0": [-0.5, 2]}, {"9": [0]}, {"0": []})):
        cfg = json.loads(fixture("bert-tiny/config.json"))
        cfg["pruned_heads"] = ph
        c.add("0-pruned-heads-%d" % k, bytes([0]) + json.dumps(cfg).encode())
    # per-block intermediate sizes (scope neurons-global; bert-tiny: 1 block of 64): the one that
    # loads, one the weights do not match, and values to refuse
    for k, sizes in enumerate(([64], [32], [1e300], [64, 64], "64", [-1])):
        cfg = json.loads(fixture("bert-tiny/config.json"))
        cfg["gaprune_intermediate_sizes"] = sizes
        c.add("0-inter-sizes-%d" % k, bytes([0]) + json.dumps(cfg).encode())


def wordpiece_json():
    """bert-tiny's vocabulary as a WordPiece tokenizer.json."""
    vocab = fixture("bert-tiny/vocab.txt").decode().split("\n")
    vocab = {t: i for i, t in enumerate(vocab) if t}
    return json.dumps({
        "version": "1.0",
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": None, "lowercase": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab},
    }, indent=1)


def seeds_wordpiece():
    c = Corpus("fuzz_wordpiece")
    c.add("0-vocab", bytes([0]) + fixture("bert-tiny/vocab.txt"))
    c.add("0-vocab-crlf", bytes([0]) + fixture("bert-f32/vocab.txt").replace(b"\n", b"\r\n"))
    c.add("1-tokenizer", bytes([1]) + wordpiece_json().encode())
    c.add("2-config-tiny", bytes([2]) + fixture("bert-tiny/tokenizer_config.json"))
    c.add("2-config-f32", bytes([2]) + fixture("bert-f32/tokenizer_config.json"))
    c.add("2-config-cased", bytes([2]) + b'{"do_lower_case": false, "strip_accents": true, "cls_token": {"content": "[CLS]"}}')
    c.add("3-tokenizer", bytes([3]) + wordpiece_json().encode())


def seeds_bpe():
    c = Corpus("fuzz_bpe")
    tj = fixture("bpe-tiny/tokenizer.json")
    c.add("0-tokenizer", bytes([0]) + tj)
    c.add("1-config", bytes([1]) + fixture("bpe-tiny/tokenizer_config.json"))
    c.add("1-config-left", bytes([1]) + b'{"pad_token": {"content": "<|im_end|>"}, "truncation_side": "left"}')
    j = json.loads(tj)
    j["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "NFC"}]}
    j["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}
    j["post_processor"] = {"type": "Sequence", "processors": [{"type": "ByteLevel"}, j["post_processor"]]}
    j["model"]["ignore_merges"] = True
    j["added_tokens"][1]["lstrip"] = True
    j["added_tokens"][2]["rstrip"] = True
    j["model"]["merges"] = [m.split(" ") if isinstance(m, str) else m for m in j["model"]["merges"]]
    c.add("2-gpt2", bytes([2]) + json.dumps(j, ensure_ascii=False).encode())


def seeds_encode():
    # byte 0: tokenizer + 4 * use; byte 1: the length limit (255: 512) or vocabulary size - 5
    c = Corpus("fuzz_encode")
    texts = fixture("texts.txt").decode().split("\n")
    texts += [json.loads(l)["text"] for l in fixture("bpe-tiny/expected.jsonl").decode().splitlines()[:12]]
    texts += ["[CLS] a [SEP] b [MASK]", "<|im_start|>  user \n hi<|im_end|>  \n<|endoftext|>", "bad \udcff end"]
    for i, t in enumerate(texts):
        if not t:
            continue
        b = t.encode("utf-8", "surrogateescape")
        c.add("enc-%02d" % i, bytes([i % 4, 255 if i % 3 else 8]) + b)
    c.add("batch-wp", bytes([4 + 0, 16]) + "\0".join(texts[:6]).encode())
    c.add("batch-bpe", bytes([4 + 3, 12]) + "\0".join(texts[:6]).encode())
    c.add("pieces-bpe", bytes([8 + 2, 0]) + texts[4].encode())
    c.add("pieces-gpt2", bytes([8 + 3, 0]) + texts[2].encode())
    c.add("words-wp", bytes([8 + 0, 0]) + texts[1].encode())
    c.add("learn", bytes([12 + 0, 60]) + "\n".join(texts[:6]).encode())
    c.add("learn-cased", bytes([12 + 0x40, 20]) + "\n".join(texts[:6]).encode())


def seeds_triplets():
    # byte 0: bit 0 skips bad records, bits 1-4 are max_samples - 1
    c = Corpus("fuzz_triplets")
    dom, gen = fixture("corpora/domain.json"), fixture("corpora/general.jsonl")
    c.add("array", bytes([2 * 3]) + dom)
    c.add("array-skip", bytes([1 + 2 * 15]) + dom)
    c.add("jsonl", bytes([2 * 2]) + gen)
    c.add("jsonl-skip", bytes([1]) + gen + b'{"query": 1}\n\n{"query": "q", "pos": [], "neg": ["n"]}\r\n')
    c.add("flag", bytes([2 * 4]) + b'{"query": "q", "pos": ["p1", "p2"], "neg": ["n1"]}\n{"query": "r", "pos": ["p"], "neg": "n"}')
    c.add("array-pretty", bytes([2 * 4]) + json.dumps(json.loads(dom), indent=3, ensure_ascii=False).encode())
    c.add("array-odd", bytes([1 + 2 * 4]) + b'[ "x", 3, {"query": "a\\n\\"b", "positive": "\\u00e9", "negative": ["c"]} ,null]')


def seeds_job():
    c = Corpus("fuzz_job")
    for f in sorted(os.listdir("jobs")):
        with open(os.path.join("jobs", f), "rb") as j:
            c.add(f, j.read())
    c.add("escapes", "[model]\npath = a\\\\b;c d \\; e\\s\nquery_task = find\\tit\\s ; comment\n"
                     "[data]\ndomain = \\s\\sx \\;y\\n\n[eval]\nretrieval = c:\\beir\\one, two\n"
                     "[prune]\nsparsity = 0.25 , 0.5\nscope = 2:4\nmethods = gaprune,wanda\n")
    c.add("sets", b"[model]\npath = m\n\0prune.methods=magnitude\0@--sparsity 0.7\0@prune.sparsity=0.7\0"
                  b"retrain.steps=5\0eval.sts=a.jsonl, b.jsonl")


def seeds_eval():
    # byte 0: 0 BEIR (corpus, queries, qrels separated by NULs), 1 STS, 2 a text file
    c = Corpus("fuzz_eval")
    corpus, queries = fixture("beir-tiny/corpus.jsonl"), fixture("beir-tiny/queries.jsonl")
    qrels = fixture("beir-tiny/qrels/test.tsv")
    c.add("beir", bytes([0]) + corpus + b"\0" + queries + b"\0" + qrels)
    c.add("beir-graded", bytes([0]) + corpus + b"\0" + queries + b"\0" + b"query-id\tcorpus-id\tscore\r\n"
          + b"\n".join(l.replace(b"\t1", b"\t2") for l in qrels.splitlines()[1:]) + b"\nq9\td1\t1\n")
    c.add("beir-no-qrels", bytes([0]) + corpus + b"\0" + queries)
    c.add("sts", bytes([1]) + fixture("sts-tiny.jsonl"))
    c.add("texts", bytes([2]) + fixture("texts.txt"))
    c.add("texts-jsonl", bytes([2]) + corpus + b'\n  \n{"_id": 7, "text": "t", "title": null}\n')


def seeds_h5():
    # byte 0: the file (fuzz_h5.c's T_*), byte 1: the reader's settings, then edits of the
    # reference: 0 set an attribute, 1 delete one, 2 replace a dataset, 3 delete a link, 4 a group
    # in a dataset's place, 5 copy a dataset over another, 6 cut the file (each op's operands follow)
    import random
    c = Corpus("fuzz_h5")
    rnd = random.Random(14)
    ops = [
        [0, 0, 0, 0, 0, 0, 7], [0, 0, 1, 5, 1, 3, 2], [0, 3, 2, 3, 2, 4, 1], [0, 1, 3, 0, 1, 2, 9], [1, 0, 1],
        [1, 2, 0], [2, 0, 2, 0, 2, 3, 4], [2, 1, 0, 1], [2, 2, 2, 2], [2, 3, 3, 3, 5], [2, 4, 4, 0], [3, 1],
        [3, 5], [4, 0], [4, 3], [5, 0, 1], [5, 2, 0], [6, 128, 0], [6, 250, 0], [6, 2, 0],
    ]
    for t in range(6):
        for i, op in enumerate(ops):
            c.add("edit-%d-%02d" % (t, i), bytes([t, rnd.randrange(256)] + op + [rnd.randrange(256) for _ in range(6)]))


HARNESSES = {
    "fuzz_h5": seeds_h5,
    "fuzz_eval": seeds_eval,
    "fuzz_job": seeds_job,
    "fuzz_triplets": seeds_triplets,
    "fuzz_bpe": seeds_bpe,
    "fuzz_encode": seeds_encode,
    "fuzz_model": seeds_model,
    "fuzz_safetensors": seeds_safetensors,
    "fuzz_wordpiece": seeds_wordpiece,
}

if __name__ == "__main__":
    if not os.path.isdir(FIX):
        sys.exit("run from the repository root")
    for name in sys.argv[1:] or sorted(HARNESSES):
        HARNESSES[name]()
