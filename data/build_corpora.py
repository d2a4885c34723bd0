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
Evaluation sets of MTEB's other task types, held out as the retrieval sets are:
    manpages-sections/{train,test}.jsonl   classification {"text", "label"}: a NAME summary -> its
        manual section; pages of the man-pages project whose summary is in no domain triplet nor
        manpages-beir, and the pages of Debian's required packages (SECTION_PACKAGES)
    wordnet-lexnames.jsonl                 clustering {"sentences", "labels"}: glosses -> their
        lexicographer file (noun.animal, verb.motion, ...), CLUSTER_SETS sets
    wordnet-pairs.jsonl                    pair classification {"sentence1", "sentence2", "label"}:
        1 = two usage examples of one synset, 0 = of two senses of one word
    wordnet-rerank.jsonl                   reranking {"query", "positive", "negative"}: a usage
        example -> its sense's gloss among the glosses of the word's other senses
    (no text of the WordNet sets is in general.jsonl or wordnet-beir)

Writes OUT_DIR/general.jsonl, OUT_DIR/domain.jsonl, OUT_DIR/{manpages,wordnet}-beir/{corpus,queries}.jsonl
and qrels/test.tsv, the four sets above, and OUT_DIR/SOURCES.txt (package versions, counts).
"""
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys

WORDNET = "/usr/share/wordnet"
POS = ("noun", "verb", "adj", "adv")
MAX_GENERAL = 20000   # WordNet has ~35k usable triplets; a seeded fifth... of them is plenty here
OPENING_WORDS = 64    # words of DESCRIPTION kept as a passage
HELD_GENERAL = 400    # queries of the held-out WordNet retrieval set
HELD_CORPUS = 3000    # its passages
CLUSTER_SETS = 8      # clustering sets of WordNet glosses (wordnet-lexnames.jsonl)
PAIRS = 500           # pair-classification pairs, half of each label (wordnet-pairs.jsonl)
RERANK = 300          # reranking queries (wordnet-rerank.jsonl)
MIN_SECTION = 20      # summaries a manual section needs to be a class of manpages-sections
TEST_SHARE = 0.5      # of each section's summaries, the test split
# Debian 12's packages of priority "required" that have manual pages (every Debian system has
# them, a minimal container too): their pages give manpages-sections its user commands (1), file
# formats (5) and administration (8), of which the man-pages project has few; pages of a package
# that is not installed are not used, and SOURCES.txt lists the versions that were
SECTION_PACKAGES = ["apt", "base-passwd", "bash", "bsdutils", "coreutils", "dash", "debconf", "debianutils",
                    "diffutils", "dpkg", "e2fsprogs", "findutils", "grep", "gzip", "hostname",
                    "init-system-helpers", "libc-bin", "libpam-modules", "libpam-modules-bin",
                    "libpam-runtime", "login", "mawk", "mount", "ncurses-bin", "passwd", "perl-base", "sed",
                    "sensible-utils", "sysvinit-utils", "tar", "util-linux"]


def stable_hash(s):
    return int.from_bytes(hashlib.sha256(s.encode()).digest()[:8], "big")


# ---- WordNet --------------------------------------------------------------------------------------

def read_synsets(pos):
    """offset -> (words, definition, examples, lexicographer file number) of data.<pos>."""
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
            out[offset] = (words, definition, [e for e in examples if len(e.split()) >= 3], int(fields[1]))
    return out


def read_index(pos):
    """(word, synset offsets) of every lemma of index.<pos>, in file order (senses by frequency)."""
    out = []
    with open(os.path.join(WORDNET, "index." + pos), encoding="latin-1") as f:
        for line in f:
            if line.startswith("  "):
                continue
            fields = line.split()
            out.append((fields[0].replace("_", " "), fields[-int(fields[2]):]))
    return out


def read_wordnet():
    """pos -> (offset -> synset, index) for the four parts of speech."""
    return {pos: (read_synsets(pos), read_index(pos)) for pos in POS}


def wordnet_triplets(wn):
    triplets = []
    for pos in POS:
        syn, index = wn[pos]
        for word, offsets in index:
            n_syn = len(offsets)
            if n_syn < 2:
                continue
            for i, off in enumerate(offsets):
                words, definition, examples, _ = syn[off]
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


# lexicographer file number -> name (WordNet 3.0's lexnames file, which wordnet-base does not ship)
LEXNAMES = ["adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
            "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
            "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
            "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
            "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
            "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
            "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
            "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl"]


def lexnames():
    """The lexnames file where the package has one (number, name, syntactic category per line),
    else the standard list above."""
    for path in (os.path.join(WORDNET, "lexnames"), os.path.join(WORDNET, "dict", "lexnames")):
        if os.path.exists(path):
            names = {}
            with open(path, encoding="latin-1") as f:
                for line in f:
                    fields = line.split()
                    if len(fields) >= 2 and fields[0].isdigit():
                        names[int(fields[0])] = fields[1]
            return names, path
    return dict(enumerate(LEXNAMES)), "the standard WordNet 3.0 list (no lexnames file in " + WORDNET + ")"


def wordnet_clustering(wn, unseen, names):
    """Clustering sets of glosses labelled by their synset's lexicographer file (noun.animal,
    verb.motion, ...). Only glosses that are no text of general.jsonl or wordnet-beir (unseen) and
    that belong to one lexicographer file; no gloss is in two sets. Set i has 5-15 files and 100-300
    glosses (by a hash of i), an equal share from each file, in hash order."""
    files = {}
    for pos in POS:
        for words, definition, examples, lex in wn[pos][0].values():
            if definition and unseen(definition):
                files.setdefault(definition, set()).add(names[lex])
    pool = {}
    for gloss, labels in files.items():
        if len(labels) == 1:
            pool.setdefault(labels.pop(), []).append(gloss)
    for name in pool:
        pool[name].sort(key=lambda g: stable_hash("lexname:" + g))
    sets = []
    for i in range(CLUSTER_SETS):
        k = 5 + stable_hash(f"cluster:{i}:labels") % 11
        n = 100 + stable_hash(f"cluster:{i}:size") % 201
        share = [n // k + (j < n % k) for j in range(k)]
        chosen = sorted((name for name in pool if len(pool[name]) >= share[0]),
                        key=lambda name: stable_hash(f"cluster:{i}:{name}"))[:k]
        rows = []
        for name, m in zip(chosen, share):
            rows += [(g, name) for g in pool[name][:m]]
            del pool[name][:m]
        rows.sort(key=lambda r: stable_hash(f"cluster:{i}:{r[0]}"))
        sets.append({"sentences": [g for g, _ in rows], "labels": [name for _, name in rows]})
    return sets


def wordnet_senses(wn, unseen):
    """Per polysemous word: its senses as (offset, gloss or None, usage examples that contain the
    word), keeping only texts that unseen() accepts and examples of exactly one synset."""
    owners = {}
    for pos in POS:
        for off, (words, definition, examples, lex) in wn[pos][0].items():
            for ex in examples:
                owners.setdefault(ex, set()).add(pos + off)
    out = []
    for pos in POS:
        syn, index = wn[pos]
        for word, offsets in index:
            if len(offsets) < 2:
                continue
            senses = []
            for off in offsets:
                words, definition, examples, _ = syn[off]
                exs = [e for e in examples if word.lower() in e.lower() and unseen(e) and len(owners[e]) == 1]
                senses.append((off, definition if definition and unseen(definition) else None, exs))
            out.append((pos, word, senses))
    return out


def wordnet_pairs(senses):
    """Pair classification: label 1 = two usage examples of one synset (both containing the word),
    label 0 = usage examples of two different senses of one word (both containing it). One pair per
    word, words in hash order, no sentence in two pairs; PAIRS // 2 of each label."""
    order = sorted(senses, key=lambda w: stable_hash(f"pairs:{w[0]}:{w[1]}"))
    used, pos_pairs, neg_pairs = set(), [], []
    for pos, word, ss in order:
        if len(pos_pairs) == PAIRS // 2:
            break
        for off, gloss, exs in ss:
            exs = [e for e in exs if e not in used]
            if len(exs) >= 2:
                pos_pairs.append({"sentence1": exs[0], "sentence2": exs[1], "label": 1})
                used.update(exs[:2])
                break
    for pos, word, ss in order:
        if len(neg_pairs) == PAIRS // 2:
            break
        # the first unused example of each sense that has one (an example of one synset only)
        firsts = [e for off, gloss, exs in ss for e in [next((e for e in exs if e not in used), None)] if e]
        if len(firsts) >= 2:
            neg_pairs.append({"sentence1": firsts[0], "sentence2": firsts[1], "label": 0})
            used.update(firsts[:2])
    pairs = pos_pairs + neg_pairs
    pairs.sort(key=lambda p: stable_hash("pair:" + p["sentence1"] + "\t" + p["sentence2"]))
    return pairs, used


def wordnet_rerank(senses, used):
    """Reranking: query = a usage example of one sense of a word, positive = that sense's gloss,
    negative = the glosses of the word's other senses. Held out as the rest: no text is in
    general.jsonl or wordnet-beir, and no query is a sentence of wordnet-pairs. Every sense with
    such an example, a gloss and at least one other sense's gloss; words in hash order, up to RERANK."""
    rows = []
    for pos, word, ss in sorted(senses, key=lambda w: stable_hash(f"rerank:{w[0]}:{w[1]}")):
        for off, gloss, exs in ss:
            exs = [e for e in exs if e not in used]
            negs = []
            for o, g, _ in ss:
                if g and o != off and g != gloss and g not in negs:
                    negs.append(g)
            if gloss and exs and negs and len(rows) < RERANK:
                rows.append({"query": exs[0], "positive": [gloss], "negative": negs})
    return rows


# ---- manual pages ---------------------------------------------------------------------------------

ESCAPES = [(r"\\f\[[^]]*\]", ""), (r"\\f[BIRPC]", ""), (r"\\f\(..", ""), (r"\\\*\(..", ""), (r"\\\*\[[^]]*\]", ""),
           (r"\\\*.", ""), (r"\\\(em", "-"), (r"\\\(en", "-"), (r"\\\(aq", "'"), (r"\\\(dq", '"'), (r"\\\(rq", '"'),
           (r"\\\(lq", '"'), (r"\\\(bu", ""), (r"\\\(..", ""), (r"\\\[[^]]*\]", ""), (r"\\-", "-"), (r"\\e", "\\\\"),
           (r"\\&", ""), (r"\\~", " "), (r"\\ ", " "), (r"\\c", ""), (r"\\\^", ""), (r"\\\|", ""), (r"\\0", " "),
           (r"\\'", "'")]
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


def read_sections(path):
    """Section heading -> its groff source lines."""
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
    return sections


def name_line(sections):
    """(names, summary) of the NAME section ("open, openat - open and possibly create a file")."""
    name = groff_text(sections.get("NAME", []))
    if " - " not in name:
        return None
    names, summary = name.split(" - ", 1)
    return names, summary.strip()


def parse_page(path):
    sections = read_sections(path)
    if "NAME" not in sections or "DESCRIPTION" not in sections:
        return None  # .so redirects and pages without the usual sections
    nl = name_line(sections)
    if not nl:
        return None
    names, summary = nl
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


def package_files(pkgs, required=True):
    """The manual pages the packages own (of those installed, unless required)."""
    out = subprocess.run(["dpkg", "-L"] + pkgs, check=required, capture_output=True, text=True).stdout.split("\n")
    return sorted(p for p in out if re.match(r"/usr/share/man/man[0-9]/.*\.gz$", p))


def package_versions(pkgs, required=True):
    return subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\n"] + pkgs, check=required,
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


def section_summaries(pkgs):
    """Distinct NAME summary -> manual section ("1", "3", ...: the directory of the page a name opens)
    of the pages the packages own; a summary that pages of two sections share is left out."""
    seen, out = set(), {}
    for f in package_files(pkgs, required=False):
        path = os.path.realpath(f)
        m = re.match(r"/usr/share/man/man([0-9])/[^/]*\.gz$", path)
        if not m or path in seen or not os.path.exists(path):
            continue
        seen.add(path)
        nl = name_line(read_sections(path))
        if nl and len(nl[1].split()) >= 2:
            out.setdefault(nl[1], set()).add(m.group(1))
    return {s: secs.pop() for s, secs in out.items() if len(secs) == 1}


def manpages_sections(taken):
    """Classification: a page's NAME summary -> its manual section. The man-pages project's pages
    whose summary is no text of domain.jsonl nor of manpages-beir (taken), and, since those are
    few (about 90: the triplets and the retrieval queries use the rest) and nearly all of sections
    2-7, the pages of Debian's required packages (user commands, file formats, administration:
    sections 1, 5 and 8), none of whose summaries may be in taken either. Sections with at least
    MIN_SECTION summaries; of each, a hashed TEST_SHARE is test and the rest train (so every test
    label is in train)."""
    by_section = {}
    for text, sec in section_summaries(["manpages", "manpages-dev"] + SECTION_PACKAGES).items():
        if text not in taken:
            by_section.setdefault(sec, []).append(text)
    train, test = [], []
    for sec in sorted(by_section):
        texts = sorted(by_section[sec], key=lambda t: stable_hash("section:" + t))
        if len(texts) < MIN_SECTION:
            continue
        n_test = round(len(texts) * TEST_SHARE)
        test += [{"text": t, "label": sec} for t in texts[:n_test]]
        train += [{"text": t, "label": sec} for t in texts[n_test:]]
    key = lambda r: stable_hash("sections:" + r["text"])
    return sorted(train, key=key), sorted(test, key=key)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "build/data"
    os.makedirs(os.path.join(out, "manpages-beir", "qrels"), exist_ok=True)
    os.makedirs(os.path.join(out, "wordnet-beir", "qrels"), exist_ok=True)
    os.makedirs(os.path.join(out, "manpages-sections"), exist_ok=True)
    wn = read_wordnet()
    general, rest = wordnet_triplets(wn)
    wn_corpus, wn_queries = wordnet_heldout(general, rest)
    # the other WordNet sets use no text of general.jsonl or wordnet-beir
    wn_seen = ({x for t in general for x in (t["query"], t["positive"], t["negative"])}
               | {c["text"] for c in wn_corpus} | {q["text"] for q in wn_queries})
    unseen = lambda text: text not in wn_seen
    names, names_from = lexnames()
    clusters = wordnet_clustering(wn, unseen, names)
    senses = wordnet_senses(wn, unseen)
    pairs, pair_sentences = wordnet_pairs(senses)
    rerank = wordnet_rerank(senses, pair_sentences)
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
    # manpages-sections: summaries that are no text of domain.jsonl nor of manpages-beir
    taken = ({x for t in domain for x in (t["query"], t["positive"], t["negative"])}
             | {p["summary"] for p in queries} | {p["opening"] for p in pages})
    sec_train, sec_test = manpages_sections(taken)
    dump(os.path.join(out, "manpages-sections", "train.jsonl"), sec_train)
    dump(os.path.join(out, "manpages-sections", "test.jsonl"), sec_test)
    dump(os.path.join(out, "wordnet-lexnames.jsonl"), clusters)
    dump(os.path.join(out, "wordnet-pairs.jsonl"), pairs)
    dump(os.path.join(out, "wordnet-rerank.jsonl"), rerank)
    count = lambda rows: ", ".join(f"{k} {v}" for k, v in sorted(
        {label: sum(r["label"] == label for r in rows) for label in {r["label"] for r in rows}}.items()))
    n_sentences = sum(len(c["sentences"]) for c in clusters)
    with open(os.path.join(out, "SOURCES.txt"), "w") as f:
        f.write(package_versions(["wordnet-base", "manpages", "manpages-dev"]) + "\n")
        f.write(f"general triplets {len(general)}, domain triplets {len(domain)}, "
                f"retrieval corpus {len(pages)} passages, {len(queries)} queries; "
                f"WordNet held-out retrieval corpus {len(wn_corpus)} passages, {len(wn_queries)} queries\n")
        f.write(f"manpages-sections (classification, NAME summary -> manual section): train {len(sec_train)} "
                f"({count(sec_train)}), test {len(sec_test)} ({count(sec_test)}); pages of manpages, "
                f"manpages-dev and these required packages:\n")
        f.write("    " + package_versions(SECTION_PACKAGES, required=False).replace("\n", "; ") + "\n")
        f.write(f"wordnet-lexnames (clustering, gloss -> lexicographer file): {len(clusters)} sets, "
                f"{n_sentences} glosses, {' '.join(str(len(set(c['labels']))) for c in clusters)} files "
                f"per set; file names from {names_from}\n")
        f.write(f"wordnet-pairs (pair classification, usage examples of one synset or not): {len(pairs)} pairs "
                f"({count(pairs)}); wordnet-rerank (usage example -> gloss among the word's other senses): "
                f"{len(rerank)} queries, {sum(len(r['negative']) for r in rerank)} negatives\n")
    print(f"build_corpora: {len(general)} general (WordNet) and {len(domain)} domain (man pages) triplets; "
          f"retrieval sets of {len(pages)} passages and {len(queries)} held-back queries (man pages), "
          f"{len(wn_corpus)} passages and {len(wn_queries)} queries (WordNet, held out); "
          f"classification {len(sec_train)} train and {len(sec_test)} test summaries (manual sections), "
          f"clustering {len(clusters)} sets of {n_sentences} glosses, {len(pairs)} pairs, "
          f"reranking {len(rerank)} queries (WordNet, held out) in {out}")


if __name__ == "__main__":
    main()
