"""The glove backbone: word vectors read from GloVe's text format or wink-embeddings' npm JSON, the
vocabulary built around them (lower-cased lookups, whole tokens such as "u.s." kept), the frozen
table left exactly as read, each word's characters and shape read as written, under a BiLSTM (with
a CRF) or a Transformer (whose attention `gaze explain` shows), for tagging and classification.

The sentences are real (WNUT-17 and UCI sentiment slices in tests/data); the vectors are written by
the test (GloVe itself is 300 MB: the quality runs fetch it with data/get-glove), so these tests
check the mechanics, not the accuracy."""
import json
import re

import numpy as np
import pytest

import gaze
from cli_helpers import DATA, conll_sentences, run, sentiment_rows, write_conll, write_tsv, write_yaml

WNUT = DATA / "wnut17"


def write_vectors(path, words, dim=16, seed=0, json_form=False):
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((len(words), dim)).round(5).astype(np.float32)
    if json_form:  # wink-embeddings' layout: the values, then the L2 norm and the word's index
        vectors = {w: [float(x) for x in v] + [float(np.linalg.norm(v)), i] for i, (w, v) in enumerate(zip(words, vecs))}
        path.write_text(json.dumps({"precision": 5, "l2NormIndex": dim, "wordIndex": dim + 1, "size": len(words),
                                    "dimensions": dim, "words": words, "vectors": vectors, "unkVector": [0] * dim}))
    else:
        path.write_text("".join(w + " " + " ".join(f"{x:.5f}" for x in v) + "\n" for w, v in zip(words, vecs)))
    return dict(zip(words, vecs))


def test_npm_json_equals_the_text_form(tmp_path):
    words = ["the", ",", "u.s.", "paris", "émile"]
    write_vectors(tmp_path / "v.txt", words)
    write_vectors(tmp_path / "v.json", words, json_form=True)
    w1, v1 = gaze.io.read_word_vectors(str(tmp_path / "v.txt"))
    w2, v2 = gaze.io.read_word_vectors(str(tmp_path / "v.json"))
    assert w1 == w2 == words and np.array_equal(v1.numpy(), v2.numpy()) and v2.numpy().shape == (5, 16)
    assert gaze.io.read_word_vectors(str(tmp_path / "v.json"), max_words=2)[0] == ["the", ","]


@pytest.mark.parametrize("text,pattern", [
    ('{"dimensions": 2, "vectors": {"a": [1, 2, 3], "b": [1]}}', r"vector of 'b' has 1 values, expected at least"),
    ('{"vectors": {"a": [1, 2]}}', r'"dimensions" must come before "vectors"'),
    ('{"dimensions": 2, "vectors": {"a": [1, "x"]}}', r"vector of 'a' holds a string"),
    ('{"dimensions": 2, "vectors": {"a": [1, 2]', r"invalid JSON"),
    ('{"dimensions": 2, "words": []}', r"no word vectors"),
    ('{"dimensions": -3, "vectors": {}}', r'"dimensions" is -3'),
])
def test_bad_npm_json(tmp_path, text, pattern):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(gaze.DataError, match=pattern):
        gaze.io.read_word_vectors(str(path))


@pytest.fixture(scope="module")
def wnut(tmp_path_factory):
    d = tmp_path_factory.mktemp("glove")
    train = conll_sentences(WNUT / "train.conll")[:150]
    dev = conll_sentences(WNUT / "dev.conll")[:60]
    words = sorted({w.lower() for ws, _ in train + dev for w in ws})
    # Vectors for two thirds of the words, and for words the data never uses.
    known = [w for i, w in enumerate(words) if i % 3 != 0] + ["zyzzyva", "quokka"]
    table = write_vectors(d / "vectors.txt", known)
    return d, write_conll(d / "train.conll", train), write_conll(d / "dev.conll", dev), table, words


def glove_config(d, name, train, dev, **model):
    base = {
        "task": "tag", "output": str(d / name),
        "data": {"train": str(train), "dev": str(dev), "max_length": 96, "unknown_tags": "wrong"},
        "model": {"backbone": "glove", "word_vectors": str(d / "vectors.txt"), "d_model": 32, "num_layers": 1,
                  "nhead": 2, "dim_feedforward": 64, "dropout": 0.1, "char_dim": 8, "char_channels": 16,
                  "shape_dim": 4, "crf": True, **model},
        "train": {"epochs": 4, "batch_size": 16, "lr": 0.005, "warmup_steps": 5, "log_every": 20},
    }
    return write_yaml(d / f"{name}.yaml", base)


def test_glove_bilstm_crf_tagger(wnut):
    d, train, dev, table, words = wnut
    res = run("train", glove_config(d, "lstm", train, dev), threads=2, check=0)
    log = res.stderr
    have, total = map(int, re.search(r"(\d+) of the (\d+) training words have one", log).groups())
    assert 0.5 * total < have < total, log
    best = d / "lstm" / "best"
    tok = gaze.text.load_tokenizer(str(best))
    assert tok.kind == "word"
    vocab = [line for line in (best / "vocab.txt").read_text(encoding="utf-8").split("\n")[:tok.vocab_size]]
    assert "zyzzyva" in vocab and "quokka" in vocab  # the vectors' own words are kept
    # The frozen table is the file's, to the bit, after training.
    emb = gaze.io.load_checkpoint(str(d / "lstm" / "last"))["model"]["embedding.weight"].numpy()
    for w in ["zyzzyva", *list(table)[:20]]:
        np.testing.assert_array_equal(emb[vocab.index(w)], table[w])
    assert not np.any(emb[:4])  # padding, unknown and the other specials are zero
    # Lookups are lower-cased, characters are not: the same word in another case gets the same id.
    assert tok.encode("Paris PARIS paris") == [tok.encode("paris")[0]] * 3
    pred = json.loads(run("predict", "--model", d / "lstm", stdin="Jane Austen lived in Bath\n", check=0).stdout)
    assert pred["words"] == ["Jane", "Austen", "lived", "in", "Bath"] and len(pred["tags"]) == 5
    # A BiLSTM has no attention; explain still writes the page and says so by an empty attention.
    res = run("explain", "--model", d / "lstm", "--input", "Jane lived in Bath", "--out", d / "ex", check=0)
    assert (d / "ex" / "explanation.html").exists() and "has no attention layers" in res.stderr


def test_glove_transformer_tagger_explains(wnut):
    d, train, dev, _, _ = wnut
    run("train", glove_config(d, "tf", train, dev, encoder="transformer", freeze_embeddings=False, crf=False),
        threads=2, check=0)
    e = gaze.explain(d / "tf", "Jane Austen lived in Bath")
    assert e["attention"].shape == (1, 2, 5, 5)
    assert np.allclose(e["attention"].sum(-1), 1.0, atol=1e-5)
    # Trained embeddings: the vectors moved, and training words without one got rows of their own.
    best = d / "tf" / "best"
    assert len((best / "vocab.txt").read_text(encoding="utf-8").split("\n")) > len(wnut[3])


def test_glove_classifier_and_errors(tmp_path):
    rows = sentiment_rows()
    train = write_tsv(tmp_path / "train.tsv", rows[:300])
    dev = write_tsv(tmp_path / "dev.tsv", rows[1500:1560])
    words = sorted({w for _, _, t in rows[:300] for w in t.lower().replace(".", " ").replace(",", " ").split()})
    write_vectors(tmp_path / "vectors.txt", words)
    base = {"task": "classify", "output": str(tmp_path / "run"),
            "data": {"train": str(train), "dev": str(dev), "max_length": 48},
            "model": {"backbone": "glove", "word_vectors": str(tmp_path / "vectors.txt"), "d_model": 16,
                      "num_layers": 1, "char_dim": 4, "char_channels": 8, "dropout": 0.0},
            "train": {"epochs": 2, "batch_size": 16, "lr": 0.003, "warmup_steps": 5}}
    run("train", write_yaml(tmp_path / "c.yaml", base), threads=2, check=0)
    out = json.loads(run("predict", "--model", tmp_path / "run", stdin="Great phone, WORKS well!\n", check=0).stdout)
    assert out["label"] in ("0", "1")
    assert gaze.load(tmp_path / "run").embed(["Great phone"]).shape == (1, 16)
    # Attention pooling over the BiLSTM: learned, saved, and what explain shows as importance.
    att = {**base, "output": str(tmp_path / "att"), "model": {**base["model"], "pooling": "attention"}}
    run("train", write_yaml(tmp_path / "att.yaml", att), threads=2, check=0)
    e = gaze.explain(tmp_path / "att", "Great phone, WORKS well!")
    w = e["pooling_attention"]
    assert w.shape == (len(e["tokens"]),) and abs(w.sum() - 1) < 1e-5 and w.std() > 0
    assert np.array_equal(e["token_importance"], w) and e["attention"] is None
    state = gaze.io.load_checkpoint(str(tmp_path / "att" / "best"))["model"]
    assert {"attention_pool.proj.weight", "attention_pool.context.weight"} <= set(state)
    res = run("explain", "--model", tmp_path / "att", "--input", "Great phone", "--out", tmp_path / "ex", check=0)
    assert "only attention is its pooling" in res.stderr
    assert "pooling attention" in (tmp_path / "ex" / "explanation.html").read_text(encoding="utf-8")
    # Without vectors, or with a broken file: one line naming what to fix.
    base["model"]["word_vectors"] = ""
    res = run("train", write_yaml(tmp_path / "none.yaml", base), "--overwrite")
    assert res.returncode == 2 and "model.word_vectors is not set" in res.stderr
    (tmp_path / "bad.txt").write_text("the 1 2\nof 1\n")
    base["model"]["word_vectors"] = str(tmp_path / "bad.txt")
    res = run("train", write_yaml(tmp_path / "bad.yaml", base), "--overwrite")
    assert res.returncode == 2 and "bad.txt:2: 1 values, expected 2" in res.stderr
