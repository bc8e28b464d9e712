"""Tagging and translation metrics against small independent implementations written here from the
published definitions (conlleval's chunk rules as seqeval documents them; Papineni et al.'s BLEU with
mteval-v13a tokenization as sacreBLEU applies it; Popovic's chrF as sacreBLEU computes it), against
hand-worked cases, and against the values printed in sacreBLEU's README."""
import gzip
import math
import random
import re
from collections import Counter

import pytest

import gaze.metrics as gm
from cli_helpers import DATA

# --- entities -------------------------------------------------------------------------------------


def ref_chunks(tags):
    """conlleval: a chunk ends when the previous tag ends one (E, S, B/I followed by B, S or O, or a
    type change) and starts on B, S, or I/E after O, E, S or another type."""
    chunks, start, prev_tag, prev_type = [], None, "O", ""
    for i, t in enumerate(list(tags) + ["O"]):
        tag, typ = (t[0], t[2:]) if t != "O" else ("O", "")
        ends = prev_tag in "ES" or (prev_tag in "BI" and tag in "BSO") or (prev_tag != "O" and prev_type != typ)
        starts = tag in "BS" or (prev_tag in "OES" and tag in "IE") or (tag != "O" and prev_type != typ)
        if prev_tag != "O" and ends:
            chunks.append((prev_type, start, i - 1))
        if tag != "O" and starts:
            start = i
        prev_tag, prev_type = tag, typ
    return chunks


def ref_report(gold, pred):
    true = {(s,) + c for s, g in enumerate(gold) for c in ref_chunks(g)}
    guess = {(s,) + c for s, p in enumerate(pred) for c in ref_chunks(p)}
    out = {}
    for typ in sorted({c[1] for c in true | guess}):
        t = {c for c in true if c[1] == typ}
        g = {c for c in guess if c[1] == typ}
        tp = len(t & g)
        p = tp / len(g) if g else 0.0
        r = tp / len(t) if t else 0.0
        out[typ] = (p, r, 2 * p * r / (p + r) if p + r else 0.0, len(t))
    tp = len(true & guess)
    p = tp / len(guess) if guess else 0.0
    r = tp / len(true) if true else 0.0
    out["micro"] = (p, r, 2 * p * r / (p + r) if p + r else 0.0, len(true))
    return out


@pytest.mark.parametrize("tags,expected", [
    (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 1), ("LOC", 3, 3)]),
    (["O", "I-PER", "I-PER"], [("PER", 1, 2)]),  # I- after O opens an entity (conlleval)
    (["I-PER", "O"], [("PER", 0, 0)]),  # I- at the start
    (["B-PER", "I-LOC", "I-LOC"], [("PER", 0, 0), ("LOC", 1, 2)]),  # a type change inside a span
    (["O", "B-ORG", "I-ORG"], [("ORG", 1, 2)]),  # an entity at the end of the sentence
    (["B-PER", "B-PER"], [("PER", 0, 0), ("PER", 1, 1)]),
    (["S-PER", "B-LOC", "I-LOC", "E-LOC", "O"], [("PER", 0, 0), ("LOC", 1, 3)]),  # BIOES
    (["B-creative-work", "I-creative-work"], [("creative-work", 0, 1)]),  # a dash in the type
    (["O", "O"], []),
])
def test_entities_hand_worked(tags, expected):
    assert gm.get_entities(tags) == expected
    assert ref_chunks(tags) == expected


def test_entity_report_hand_worked():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["I-ORG", "O"]]
    r = gm.tagging_report(gold, pred)
    # PER found; LOC missed (predicted as ORG); the second sentence's ORG found via I- (conlleval).
    assert r["per_type"]["PER"] == {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 1}
    assert r["per_type"]["LOC"]["recall"] == 0.0 and r["per_type"]["LOC"]["support"] == 1
    assert r["per_type"]["ORG"]["precision"] == 0.5 and r["per_type"]["ORG"]["recall"] == 1.0
    assert r["micro avg"]["precision"] == pytest.approx(2 / 3)
    assert r["micro avg"]["recall"] == pytest.approx(2 / 3)
    assert r["token_accuracy"] == pytest.approx(4 / 6)
    text = gm.tagging_report_text(gold, pred, digits=2)
    assert "   micro avg       0.67      0.67      0.67         3" in text
    assert "weighted avg" in text and "token accuracy: 0.67 (6 tokens, 2 sentences)" in text


def test_entity_report_equals_reference_on_random_sequences():
    rng = random.Random(5)
    tagset = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "E-LOC", "S-ORG", "I-ORG"]
    for _ in range(50):
        gold = [[rng.choice(tagset) for _ in range(rng.randint(1, 12))] for _ in range(8)]
        pred = [[t if rng.random() < 0.6 else rng.choice(tagset) for t in g] for g in gold]
        ours, ref = gm.tagging_report(gold, pred), ref_report(gold, pred)
        for typ, (p, r, f, n) in ref.items():
            got = ours["micro avg"] if typ == "micro" else ours["per_type"][typ]
            assert (got["precision"], got["recall"], got["f1-score"], got["support"]) == pytest.approx((p, r, f, n))
        for g, p in zip(gold, pred):
            assert gm.get_entities(g) == ref_chunks(g)


def test_wnut17_gold_against_itself_and_entity_count():
    sents, cur = [], []
    with gzip.open(DATA / "wnut17/test.conll.gz", "rt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    for line in lines:
        if line.strip():
            cur.append(line.split("\t")[-1])
        elif cur:
            sents.append(cur)
            cur = []
    if cur:
        sents.append(cur)
    r = gm.tagging_report(sents, sents)
    assert r["micro avg"]["f1-score"] == 1.0
    assert r["micro avg"]["support"] == sum(len(ref_chunks(s)) for s in sents) == 1079


# --- BLEU, chrF -----------------------------------------------------------------------------------

_13A = [
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
]


def ref_13a(line):
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    line = line.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    line = f" {line} "
    for pattern, repl in _13A:
        line = pattern.sub(repl, line)
    return " ".join(line.split())


def ngrams(tokens, n):
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def ref_bleu(hyps, refs):
    """Papineni et al. 2002: clipped n-gram precisions (n <= 4) over the corpus, geometric mean,
    brevity penalty with the closest reference length (ties: the shorter)."""
    match, total, c, r = [0] * 4, [0] * 4, 0, 0
    for h, rs in zip(hyps, refs):
        ht = ref_13a(h).split()
        rts = [ref_13a(x).split() for x in rs]
        c += len(ht)
        r += min((abs(len(t) - len(ht)), len(t)) for t in rts)[1]
        for n in range(1, 5):
            hc = ngrams(ht, n)
            maxref = Counter()
            for t in rts:
                maxref |= ngrams(t, n)
            match[n - 1] += sum(min(k, maxref[g]) for g, k in hc.items())
            total[n - 1] += max(0, len(ht) - n + 1)
    if min(match) == 0:
        return 0.0
    bp = 1.0 if c > r else math.exp(1 - r / c)
    return 100 * bp * math.exp(sum(math.log(m / t) for m, t in zip(match, total)) / 4)


def ref_chrf(hyps, refs, order=6, beta=2):
    def grams(s, n):
        s = "".join(s.split())
        return Counter(s[i:i + n] for i in range(len(s) - n + 1))

    def fscore(stats):
        precs, recs = [], []
        for hyp, ref, m in stats:
            if hyp and ref:
                precs.append(m / hyp)
                recs.append(m / ref)
        if not precs:
            return 0.0
        p, r = sum(precs) / len(precs), sum(recs) / len(recs)
        return 100 * (1 + beta ** 2) * p * r / (beta ** 2 * p + r) if p + r else 0.0

    total = [[0, 0, 0] for _ in range(order)]
    for h, rs in zip(hyps, refs):
        best = None
        for ref in rs:
            st = []
            for n in range(1, order + 1):
                hg, rg = grams(h, n), grams(ref, n)
                st.append([sum(hg.values()), sum(rg.values()), sum((hg & rg).values())])
            if best is None or fscore(st) > fscore(best):
                best = st
        for n in range(order):
            for k in range(3):
                total[n][k] += best[n][k]
    return fscore(total)


def test_sacrebleu_readme_example():
    refs = [["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
            ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."]]
    sys = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
    per_sentence = [list(r) for r in zip(*refs)]
    b = gm.corpus_bleu(sys, per_sentence)
    # sacreBLEU's README: BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)
    assert round(b["score"], 2) == 48.53
    assert [round(p, 1) for p in b["precisions"]] == [82.4, 50.0, 45.5, 37.5]
    assert (round(b["bp"], 3), b["sys_len"], b["ref_len"]) == (0.943, 17, 18)
    assert round(gm.corpus_chrf(sys, per_sentence), 2) == 59.73  # the README's chrF2
    assert gm.corpus_bleu(sys, per_sentence)["score"] == pytest.approx(ref_bleu(sys, per_sentence))


@pytest.mark.parametrize("line", [
    "Hello, world! It costs $3.50-4 (approx.).", "a.b,c 1,000.5 x-1 9-", "&quot;Quoted&quot; &amp; &lt;tags&gt;",
    "Él dijo: «¡Hola!» — y se fue...", "tabs\tand  spaces", "<skipped> end-\nof line", "", "{[(x)]}~`^_|@#%*+=<>?/\\",
])
def test_13a_tokenization(line):
    assert gm.tokenize_13a(line) == ref_13a(line)


def bible_pairs(n):
    with gzip.open(DATA / "bible/bible_en-kjv_es-rv1909.tsv.gz", "rt", encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for _, line in zip(range(n + 1), f)][1:]
    return [(en, es) for _, en, es in rows]


def perturb(rng, sentence):
    words = sentence.split()
    out = [w for w in words if rng.random() > 0.15]
    if out and rng.random() < 0.5:
        i = rng.randrange(len(out))
        out[i], out[-1] = out[-1], out[i]
    if rng.random() < 0.2:
        out.append(rng.choice(words))
    return " ".join(out)


def test_bleu_and_chrf_equal_reference_on_real_sentences():
    rng = random.Random(3)
    pairs = bible_pairs(300)
    for trial in range(6):
        sample = rng.sample(pairs, 40)
        refs = [[es] if trial % 2 == 0 else [es, perturb(rng, es)] for _, es in sample]
        hyps = [perturb(rng, es) for _, es in sample]
        assert gm.corpus_bleu(hyps, refs)["score"] == pytest.approx(ref_bleu(hyps, refs), rel=1e-9)
        assert gm.corpus_chrf(hyps, refs) == pytest.approx(ref_chrf(hyps, refs), rel=1e-9)


def test_bleu_edge_cases():
    assert gm.corpus_bleu(["same words here ok"], [["same words here ok"]])["score"] == pytest.approx(100)
    # No 4-gram match: 0 without smoothing; sacreBLEU's exp smoothing gives a positive score.
    hyp, ref = ["the cat sat down"], [["the cat sat up"]]
    assert gm.corpus_bleu(hyp, ref)["score"] == 0.0
    assert gm.corpus_bleu(hyp, ref, smooth="exp")["score"] > 0
    assert gm.corpus_bleu([""], [["a b c"]])["score"] == 0.0


def test_error_rates():
    e = gm.error_rates(["k ae t", "d ao g", "b er d"], [["k ae t"], ["d ao g z z", "d aa g"], ["w er d"]])
    # word errors: 2 of 3; phoneme edits: 0 + 1 (closest reference "d aa g") + 1 = 2 over 3+3+3 tokens
    assert e["wer"] == pytest.approx(200 / 3)
    assert e["per"] == pytest.approx(200 / 9)


def test_error_rates_ignore_detokenization():
    # A word-level model outputs "earth ." where the reference has "earth.": 13a tokens agree.
    e = gm.error_rates(["and the earth ."], [["and the earth."]])
    assert e["wer"] == 0 and e["per"] == 0
