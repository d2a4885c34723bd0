#!/usr/bin/python3
"""Builds the demo corpora from Debian packages, deterministically, in seconds (stdlib only).

    /usr/bin/python3 data/build_corpora.py OUT_DIR            (make data)

General triplets, from WordNet (package wordnet-base, /usr/share/wordnet):
    query    = a usage example of one sense of a word   ("the dog barked all night")
    positive = that sense's gloss                        ("a member of the genus Canis ...")
    negative = the gloss of another sense of the same word
Domain triplets, from the Linux manual pages (packages manpages and manpages-dev, only the files
those packages own, so other installed software does not change the result):
    query    = a page's NAME summary                     ("open and possibly create a file")
    positive = the opening of its DESCRIPTION
    negative = the DESCRIPTION opening of a page its SEE ALSO lists
    (pages whose name hashes into the held-back fifth are kept out of the triplets)
    (and the negative is never a held-back page)
A retrieval set in BEIR layout, manpages-beir/: corpus = the DESCRIPTION openings of all pages,
queries = the NAME summaries of the held-back pages, qrels = each query's own page.
A general one, wordnet-beir/: usage examples as queries, glosses as passages, of WordNet triplets
none of whose texts is in general.jsonl (see wordnet_heldout).
Names that are links to one page, and pages with the same opening, count as one page: every
passage of the corpus is distinct.

Writes OUT_DIR/general.jsonl, OUT_DIR/domain.jsonl, OUT_DIR/{manpages,wordnet}-beir/{corpus,queries}.jsonl
and qrels/test.tsv, and OUT_DIR/SOURCES.txt (package versions, counts).
"""
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys

WORDNET = "/usr/share/wordnet"
MAX_GENERAL = 20000   # WordNet has ~35k usable triplets; a seeded fifth... of them is plenty here
OPENING_WORDS = 64    # words of DESCRIPTION kept as a passage
HELD_GENERAL = 400    # queries of the held-out WordNet retrieval set
HELD_CORPUS = 3000    # its passages


def stable_hash(s):
    return int.from_bytes(hashlib.sha256(s.encode()).digest()[:8], "big")


# ---- WordNet --------------------------------------------------------------------------------------

def read_synsets(pos):
    """offset -> (words, definition, examples) of data.<pos>."""
    out = {}
    with open(os.path.join(WORDNET, "data." + pos), encoding="latin-1") as f:
        for line in f:
            if line.startswith("  "):
                continue  # the licence header
            head, _, gloss = line.partition("|")
            fields = head.split()
            offset = fields[0]
            n = int(fields[3], 16)
            words = [fields[4 + 2 * i].replace("_", " ") for i in range(n)]
            parts = [p.strip() for p in gloss.strip().split(";")]
            definition = "; ".join(p for p in parts if not p.startswith('"')).strip()
            examples = [p.strip('"').strip() for p in parts if p.startswith('"')]
            out[offset] = (words, definition, [e for e in examples if len(e.split()) >= 3])
    return out


def wordnet_triplets():
    triplets = []
    for pos in ("noun", "verb", "adj", "adv"):
        syn = read_synsets(pos)
        with open(os.path.join(WORDNET, "index." + pos), encoding="latin-1") as f:
            for line in f:
                if line.startswith("  "):
                    continue
                fields = line.split()
                lemma, n_syn = fields[0], int(fields[2])
                offsets = fields[-n_syn:]
                if n_syn < 2:
                    continue
                word = lemma.replace("_", " ")
                for i, off in enumerate(offsets):
                    words, definition, examples = syn[off]
                    other = syn[offsets[(i + 1) % n_syn]][1]
                    for ex in examples:
                        if word.lower() in ex.lower() and definition and other and other != definition:
                            triplets.append({"query": ex, "positive": definition, "negative": other})
                            break
    # one triplet per distinct query, a deterministic sample when there are more than MAX_GENERAL
    seen, unique = set(), []
    for t in triplets:
        if t["query"] not in seen:
            seen.add(t["query"])
            unique.append(t)
    unique.sort(key=lambda t: stable_hash("wordnet:" + t["query"]))
    return unique[:MAX_GENERAL], unique[MAX_GENERAL:]


def wordnet_heldout(train, rest):
    """A general retrieval set of WordNet triplets that no training triplet touches: queries =
    usage examples, corpus = glosses, qrels = each example's own sense. Only triplets whose three
    texts appear in no triplet of general.jsonl are used (the demo model and the statistics saw
    those), the first HELD_GENERAL of them (by the same hash order) with a gloss of their own as
    queries, and their glosses, their negatives' (another sense of the same word: the hard
    distractors) and then other unseen glosses up to HELD_CORPUS passages as the corpus."""
    seen = {x for t in train for x in (t["query"], t["positive"], t["negative"])}
    fresh = [t for t in rest if not ({t["query"], t["positive"], t["negative"]} & seen)]
    queries, golds = [], set()
    for t in fresh:
        if len(queries) < HELD_GENERAL and t["positive"] not in golds:
            queries.append(t)
            golds.add(t["positive"])
    corpus, have = [], set()

    def add(text):
        if text not in have and len(corpus) < HELD_CORPUS:
            have.add(text)
            corpus.append(text)
    for t in queries:
        add(t["positive"])
    for t in queries:
        add(t["negative"])
    for t in fresh:
        add(t["positive"])
        add(t["negative"])
    gid = lambda text: "wn:" + hashlib.sha256(text.encode()).hexdigest()[:16]
    return ([{"_id": gid(c), "title": "", "text": c} for c in corpus],
            [{"_id": "q" + gid(t["query"])[2:], "text": t["query"], "gold": gid(t["positive"])} for t in queries])


# ---- manual pages ---------------------------------------------------------------------------------

ESCAPES = [(r"\\f\[[^]]*\]", ""), (r"\\f[BIRPC]", ""), (r"\\f\(..", ""), (r"\\\*\(..", ""), (r"\\\*\[[^]]*\]", ""),
           (r"\\\*.", ""), (r"\\\(em", "-"), (r"\\\(en", "-"), (r"\\\(aq", "'"), (r"\\\(dq", '"'), (r"\\\(rq", '"'),
           (r"\\\(lq", '"'), (r"\\\(bu", ""), (r"\\\(..", ""), (r"\\\[[^]]*\]", ""), (r"\\-", "-"), (r"\\e", "\\\\"),
           (r"\\&", ""), (r"\\~", " "), (r"\\ ", " "), (r"\\c", ""), (r"\\\^", ""), (r"\\\|", ""), (r"\\0", " ")]
ALTERNATING = {"BR", "RB", "BI", "IB", "IR", "RI"}


def split_args(s):
    return [a[1:-1] if a.startswith('"') else a for a in re.findall(r'"[^"]*"|\S+', s)]


def groff_text(lines):
    """Plain text of groff source lines (roughly what man prints)."""
    out = []
    for line in lines:
        if line.startswith(".\\\"") or line.startswith("'\\\""):
            continue
        if line.startswith(".") or line.startswith("'"):
            macro, _, rest = line[1:].partition(" ")
            if macro in ("B", "I", "SM", "SB"):
                line = " ".join(split_args(rest))
            elif macro in ALTERNATING:
                line = "".join(split_args(rest))
            else:
                continue  # .PP .TP .nf .RS ... carry no text
        for pat, rep in ESCAPES:
            line = re.sub(pat, rep, line)
        out.append(line)
    return re.sub(r"\s+", " ", " ".join(out)).strip()


def parse_page(path):
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    sections, cur = {}, None
    for line in lines:
        m = re.match(r'\.SH\s+"?([^"]*)"?\s*$', line)
        if m:
            cur = m.group(1).strip().upper()
            sections[cur] = []
        elif cur:
            sections[cur].append(line)
    if "NAME" not in sections or "DESCRIPTION" not in sections:
        return None  # .so redirects and pages without the usual sections
    name = groff_text(sections["NAME"])
    if " - " not in name:
        return None
    names, summary = name.split(" - ", 1)
    desc = groff_text(sections["DESCRIPTION"]).split()
    if len(desc) < 12 or len(summary.split()) < 2:
        return None
    see = []
    for line in sections.get("SEE ALSO", []):
        for m in re.finditer(r"([A-Za-z0-9_.:+-]+)\s*\\?\(?\s*\(?([0-9][a-z]*)\)", groff_text([line])):
            see.append(f"{m.group(1)}.{m.group(2)}")
    page = os.path.basename(path)[:-3]  # open.2
    return {"page": page, "names": [n.strip() for n in names.split(",")], "summary": summary.strip(),
            "opening": " ".join(desc[:OPENING_WORDS]), "see_also": see}


def package_files(pkgs):
    out = subprocess.run(["dpkg", "-L"] + pkgs, check=True, capture_output=True, text=True).stdout.split("\n")
    return sorted(p for p in out if re.match(r"/usr/share/man/man[0-9]/.*\.gz$", p))


def package_versions(pkgs):
    return subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\n"] + pkgs, check=True,
                          capture_output=True, text=True).stdout.strip()


def unique_pages(files):
    """One record per distinct passage. The packages install many names as symbolic links to one
    page (SIMPLEQ_INIT.3 -> stailq.3) and a few pages share their DESCRIPTION opening; as separate
    passages they would tie in every search and make the evaluation a coin toss among copies.
    Returns the pages (the alphabetically first name stands for each) and name -> page."""
    real = {}
    for f in files:
        if os.path.exists(f):
            real.setdefault(os.path.realpath(f), []).append(os.path.basename(f)[:-3])
    pages, by_opening, by_name = [], {}, {}
    for path in sorted(real):
        p = parse_page(path)
        if not p:
            continue
        names = sorted(set(real[path]) | {p["page"]})
        first = by_opening.get(p["opening"])
        if first is None:
            p["page"] = names[0]
            by_opening[p["opening"]] = first = p
            pages.append(p)
        for n in names:
            by_name[n] = first
    pages.sort(key=lambda p: p["page"])
    return pages, by_name


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "build/data"
    os.makedirs(os.path.join(out, "manpages-beir", "qrels"), exist_ok=True)
    os.makedirs(os.path.join(out, "wordnet-beir", "qrels"), exist_ok=True)
    general, rest = wordnet_triplets()
    wn_corpus, wn_queries = wordnet_heldout(general, rest)
    pages, by_name = unique_pages(package_files(["manpages", "manpages-dev"]))
    held = {p["page"] for p in pages if stable_hash("heldout:" + p["page"]) % 5 == 0}
    held_queries = {p["summary"] for p in pages if p["page"] in held}
    domain = []
    for p in pages:
        if p["page"] in held or p["summary"] in held_queries:  # a few summaries are shared
            continue
        # the first SEE ALSO page that is another passage and not held back
        neg = next((by_name[s] for s in p["see_also"] if s in by_name and by_name[s] is not p
                    and by_name[s]["page"] not in held), None)
        if neg:
            domain.append({"query": p["summary"], "positive": p["opening"], "negative": neg["opening"]})

    def dump(path, rows):
        with open(path, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")

    dump(os.path.join(out, "general.jsonl"), general)
    dump(os.path.join(out, "domain.jsonl"), domain)
    dump(os.path.join(out, "manpages-beir", "corpus.jsonl"),
         [{"_id": p["page"], "title": "", "text": p["opening"]} for p in pages])
    queries = [p for p in pages if p["page"] in held]
    dump(os.path.join(out, "manpages-beir", "queries.jsonl"), [{"_id": "q:" + p["page"], "text": p["summary"]} for p in queries])
    with open(os.path.join(out, "manpages-beir", "qrels", "test.tsv"), "w") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for p in queries:
            f.write(f"q:{p['page']}\t{p['page']}\t1\n")
    dump(os.path.join(out, "wordnet-beir", "corpus.jsonl"), wn_corpus)
    dump(os.path.join(out, "wordnet-beir", "queries.jsonl"), [{"_id": q["_id"], "text": q["text"]} for q in wn_queries])
    with open(os.path.join(out, "wordnet-beir", "qrels", "test.tsv"), "w") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for q in wn_queries:
            f.write(f"{q['_id']}\t{q['gold']}\t1\n")
    with open(os.path.join(out, "SOURCES.txt"), "w") as f:
        f.write(package_versions(["wordnet-base", "manpages", "manpages-dev"]) + "\n")
        f.write(f"general triplets {len(general)}, domain triplets {len(domain)}, "
                f"retrieval corpus {len(pages)} passages, {len(queries)} queries; "
                f"WordNet held-out retrieval corpus {len(wn_corpus)} passages, {len(wn_queries)} queries\n")
    print(f"build_corpora: {len(general)} general (WordNet) and {len(domain)} domain (man pages) triplets; "
          f"retrieval sets of {len(pages)} passages and {len(queries)} held-back queries (man pages), "
          f"{len(wn_corpus)} passages and {len(wn_queries)} queries (WordNet, held out) in {out}")


if __name__ == "__main__":
    main()
