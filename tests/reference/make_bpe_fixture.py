"""Builds tests/fixtures/bpe-tiny: a byte-level BPE tokenizer in the layout Qwen2/Qwen3 ship,
small enough to check by hand, and the ids a second implementation gives for a list of texts.

    /usr/bin/python3 tests/reference/make_bpe_fixture.py tests/fixtures      (make fixtures)

Writes, under OUT/bpe-tiny/:
  tokenizer.json         the 256 byte-level characters (ids 0-255, GPT-2's order), 220 merges
                         learnt from TRAINING by a tiny BPE trainer, the Qwen2 Split regex +
                         ByteLevel pre-tokenizer, NFC, added tokens <|endoftext|> (special),
                         <|im_start|>, <|im_end|>, and a TemplateProcessing post-processor that
                         appends <|endoftext|> (as Qwen3-Embedding does)
  tokenizer_config.json  pad_token <|endoftext|>, padding_side left
  expected.jsonl         {"text" or "hex", "max_len" (optional), "pieces", "ids"} from bpe_ref.py
Needs the `regex` module (python3-regex). Deterministic: the same files every run.
"""
import collections
import json
import os
import sys
import unicodedata

import regex

sys.path.insert(0, os.path.dirname(__file__))
import bpe_ref as R  # noqa: E402

QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
N_MERGES = 220

TRAINING = """\
The quick brown fox doesn't jump over the lazy dog; it's tired, and they'll rest until 2025.
I'm sure we've seen the other foxes there: they're quick, they'd say, and we'll agree.
In 1999 the price was 12.50 dollars, in 2024 it is 1,234.75 -- that's the thing with prices.
def tokenize(text: str) -> list[int]:
    return [vocab[t] for t in text.split()]  # TODO: handle unknown words!!!
if (x >= 10 && y != 0) { printf("%d\\n", x / y); }
Über den Wolken muss die Freiheit wohl grenzenlos sein. Größe, Straße, schön, für, über.
Le café est très bon à Paris ; élève, où, naïve, déjà vu, garçon, Noël.
机器学习是人工智能的一个分支。我们在北京学习中文，中文很有意思。
Машинное обучение — это раздел искусственного интеллекта. Привет, мир! Как дела?
Emoji are bytes too: 🙂 🚀 ✨ and the end of the paragraph. The end, the end, the end.
"""

# Texts for expected.jsonl: every rule of the pre-tokenizer, the byte fallback of unseen scripts,
# added tokens, NFC, whitespace runs and invalid UTF-8 (given as hex).
TEXTS = [
    "",
    "Hello world",
    "The quick brown fox doesn't jump over the lazy dog.",
    "I'm they'LL WE'VE she'd it'S",
    "2025 and 1,234.75",
    "a   b\n\n c",
    "  leading and trailing  ",
    "\n\n\nnewlines\r\n\r\nand tabs\t\tend\t",
    "!!! ??? ... --- ***",
    "def f(x):\n    return x ** 2  # square\n",
    "Größe, Straße, schön; élève à Noël",
    "e\u0301le\u0300ve",
    "机器学习是人工智能的一个分支。",
    "Машинное обучение — это раздел",
    "🙂🚀✨ emoji 👩‍👩‍👧",
    "x\u180e'd a\u2028b\x85c\u3000 d\xa0\u200be",
    "a<|im_start|>b",
    "<|im_start|>user\nHello<|im_end|>\n<|endoftext|>",
    "<|endoftext|><|endoftext|>",
    "<|im_start <|im_end|",
    "Ελληνικά και עברית और हिन्दी",
    "The end, the end, the end.",
    "x" * 300,
    ("the" * 200) + " " + ("ab" * 150),
    {"hex": "61ff62fe63"},
    {"hex": "636166c3"},
    {"hex": "e080af20e282ac"},
    {"hex": "eda080410000"},
    {"text": "The quick brown fox doesn't jump over the lazy dog.", "max_len": 5},
    {"text": "a<|im_start|>b", "max_len": 2},
    {"text": "short", "max_len": 1},
]


def learn_merges(text, n_merges):
    words = collections.Counter()
    for w in regex.findall(QWEN2_PATTERN, unicodedata.normalize("NFC", text)):
        words[tuple(R.byte_level(w))] += 1
    merges = []
    for _ in range(n_merges):
        pairs = collections.Counter()
        for w, c in words.items():
            for p in zip(w, w[1:]):
                pairs[p] += c
        if not pairs:
            break
        # Most frequent pair; ties go to the smallest pair, so the result never depends on order.
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        joined = collections.Counter()
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            joined[tuple(out)] += c
        words = joined
    return merges


def byte_level_cfg():
    return {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}


def build(out_dir):
    vocab = {}
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    for b in keep + [b for b in range(256) if b not in keep]:
        vocab[R.BYTE_CHAR[b]] = len(vocab)
    merges = learn_merges(TRAINING, N_MERGES)
    for a, b in merges:
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
    n = len(vocab)

    def added(i, content, special):
        return {"id": n + i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
                "normalized": False, "special": special}

    tj = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [added(0, "<|endoftext|>", True), added(1, "<|im_start|>", True),
                         added(2, "<|im_end|>", True)],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_PATTERN}, "behavior": "Isolated", "invert": False},
            byte_level_cfg()]},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}, {"SpecialToken": {"id": "<|endoftext|>", "type_id": 1}}],
            "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [n], "tokens": ["<|endoftext|>"]}},
        },
        "decoder": byte_level_cfg(),
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [a + " " + b for a, b in merges]},
    }
    cfg = {"add_bos_token": False, "add_prefix_space": False, "bos_token": None, "eos_token": "<|endoftext|>",
           "pad_token": "<|endoftext|>", "padding_side": "left", "model_max_length": 32768,
           "tokenizer_class": "Qwen2Tokenizer", "clean_up_tokenization_spaces": False}
    d = os.path.join(out_dir, "bpe-tiny")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False, indent=1)
        f.write("\n")
    with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=1)
        f.write("\n")

    tok = R.Tokenizer(d)
    with open(os.path.join(d, "expected.jsonl"), "w", encoding="utf-8") as f:
        for t in TEXTS:
            rec = dict(t) if isinstance(t, dict) else {"text": t}
            src = bytes.fromhex(rec["hex"]) if "hex" in rec else rec["text"]
            rec["pieces"] = [p for _, p in tok.pieces(src)]
            rec["ids"] = tok.encode(src, rec.get("max_len"))
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(f"{d}: {len(vocab)} vocab + 3 added tokens, {len(merges)} merges, {len(TEXTS)} expected encodings")


if __name__ == "__main__":
    build(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures")
