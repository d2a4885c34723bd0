"""A second, independent byte-level BPE encoder for the tokenizer.json files gaprune reads
(Qwen2/Qwen3 style), written for checking src/text/bpe.c rather than for speed.

    /usr/bin/python3 tests/reference/bpe_ref.py DIR [TEXT ...]    ids, one line per text

It follows Hugging Face `tokenizers` step by step: added tokens are found in the raw text
(leftmost, then longest), the text between them is NFC-normalised, split by the pre-tokenizer's
regex (the `regex` module, python3-regex; every match and every gap is a piece), each piece's
UTF-8 bytes go through GPT-2's byte-to-unicode table, and BPE merges the pieces. The merge loop
here is the textbook one (find the lowest-ranked pair, merge all its occurrences left to right,
repeat), not the priority queue of the C code, so the two implementations share no logic beyond
the tokenizer.json they read. Invalid UTF-8 (given as bytes) becomes one U+FFFD per bad byte.
"""
import json
import os
import sys
import unicodedata

import regex

# Rust's char::is_whitespace (Unicode White_Space), which lstrip / rstrip use; str.isspace differs.
WHITE_SPACE = set("\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | {chr(c) for c in range(0x2000, 0x200B)}

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def byte_table():
    """GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 bytes
    to U+0100 onwards, in byte order."""
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table = {}
    extra = 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(0x100 + extra)
            extra += 1
    return table


BYTE_CHAR = byte_table()


def byte_level(s):
    return "".join(BYTE_CHAR[b] for b in s.encode("utf-8"))


def decode_lossy(data):
    """UTF-8 bytes to str with one U+FFFD for each byte that does not start a valid sequence."""
    out = []
    i = 0
    while i < len(data):
        for n in (1, 2, 3, 4):
            try:
                out.append(data[i:i + n].decode("utf-8"))
                i += n
                break
            except UnicodeDecodeError:
                continue
        else:
            out.append("\ufffd")
            i += 1
    return "".join(out)


class Tokenizer:
    def __init__(self, folder):
        with open(os.path.join(folder, "tokenizer.json"), encoding="utf-8") as f:
            tj = json.load(f)
        model = tj["model"]
        assert model["type"] == "BPE"
        self.vocab = dict(model["vocab"])
        self.ranks = {}
        for r, m in enumerate(model["merges"]):
            a, b = m.split(" ", 1) if isinstance(m, str) else m
            self.ranks[(a, b)] = r
        self.ignore_merges = bool(model.get("ignore_merges"))
        self.added = sorted(tj.get("added_tokens") or [], key=lambda t: -len(t["content"]))
        norm = tj.get("normalizer")
        norms = norm["normalizers"] if norm and norm["type"] == "Sequence" else [norm] if norm else []
        assert all(n["type"] == "NFC" for n in norms), "only NFC is implemented here"
        self.nfc = bool(norms)
        self.patterns = []
        pre = tj["pre_tokenizer"]
        for p in pre["pretokenizers"] if pre["type"] == "Sequence" else [pre]:
            if p["type"] == "Split":
                self.patterns.append(regex.compile(p["pattern"]["Regex"]))
            elif p["type"] == "ByteLevel" and p.get("use_regex", True):
                self.patterns.append(regex.compile(GPT2_PATTERN))
        self.prefix, self.suffix = [], []
        post = tj.get("post_processor")
        posts = post["processors"] if post and post["type"] == "Sequence" else [post] if post else []
        for p in posts:
            if p["type"] != "TemplateProcessing":
                continue
            seen_a = False
            for item in p["single"]:
                if "Sequence" in item:
                    seen_a = True
                else:
                    ids = p["special_tokens"][item["SpecialToken"]["id"]]["ids"]
                    (self.suffix if seen_a else self.prefix).extend(ids)

    def split_added(self, text):
        """[(token or None, text)] for the raw text: leftmost match first, longest at a place."""
        out = []
        start = 0
        i = 0
        while i < len(text):
            hit = next((t for t in self.added if text.startswith(t["content"], i)), None)
            if hit is None:
                i += 1
                continue
            b, e = i, i + len(hit["content"])
            if hit.get("lstrip"):
                while b > start and text[b - 1] in WHITE_SPACE:
                    b -= 1
            if hit.get("rstrip"):
                while e < len(text) and text[e] in WHITE_SPACE:
                    e += 1
            if b > start:
                out.append((None, text[start:b]))
            out.append((hit, text[b:e]))
            start = i = e
        if start < len(text):
            out.append((None, text[start:]))
        return out

    def pieces(self, text):
        """[(added token or None, piece)] of a text, in order."""
        if isinstance(text, bytes):
            text = decode_lossy(text)
        out = []
        for tok, seg in self.split_added(text):
            if tok is not None:
                out.append((tok, tok["content"]))
                continue
            if self.nfc:
                seg = unicodedata.normalize("NFC", seg)
            parts = [seg]
            for pat in self.patterns:
                nxt = []
                for s in parts:
                    prev = 0
                    for m in pat.finditer(s):
                        if m.start() > prev:
                            nxt.append(s[prev:m.start()])
                        nxt.append(m.group())
                        prev = m.end()
                    if prev < len(s):
                        nxt.append(s[prev:])
                parts = nxt
            out.extend((None, p) for p in parts if p)
        return out

    def bpe(self, word):
        if self.ignore_merges and word in self.vocab:
            return [self.vocab[word]]
        syms = list(word)
        while len(syms) > 1:
            ranked = [(self.ranks[p], p) for p in zip(syms, syms[1:]) if p in self.ranks]
            if not ranked:
                break
            a, b = min(ranked)[1]
            merged = []
            i = 0
            while i < len(syms):
                if i + 1 < len(syms) and syms[i] == a and syms[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(syms[i])
                    i += 1
            syms = merged
        return [self.vocab[s] for s in syms]

    def encode(self, text, max_len=None):
        ids = []
        for tok, p in self.pieces(text):
            ids.extend([tok["id"]] if tok is not None else self.bpe(byte_level(p)))
        if max_len is not None:
            ids = ids[:max(0, max_len - len(self.prefix) - len(self.suffix))]
        return self.prefix + ids + self.suffix


def main():
    tok = Tokenizer(sys.argv[1])
    for t in sys.argv[2:]:
        print(" ".join(str(i) for i in tok.encode(t)))


if __name__ == "__main__":
    main()
