"""`gaze explain` and gaze.explain end to end, on small models trained on real data: the captured
weights equal PyTorch's explicit (need_weights) attention on the same weights, layer/head filters
give slices of the full capture, rollout equals a numpy implementation of Abnar & Zuidema (2020),
alignments are the head mean of a cross-attention layer (or the RNN's weights, as `gaze predict
--alignment` gives them), the JSON keeps bertviz's data contract, the PNGs decode to their
documented size, and bad requests give one clear error line."""
import gc
import gzip
import json
import pathlib
import struct
import subprocess
import zlib

import numpy as np
import pytest
import torch

import gaze
from cli_helpers import DATA, GAZE, ROOT, conll_sentences, run, sentiment_rows, write_conll, write_tsv, write_yaml
from parity import REDUCTION, assert_close
from reference_models import (FixedRows, TorchClassifier, TorchRnnSeq2Seq, TorchTagger, TorchTransformerSeq2Seq,
                              gradient_x_input_rows, record_seq2seq_attention)
from test_models import capture_torch_encoder, load_into_torch

CMUDICT = DATA / "cmudict" / "cmudict04_g2p.tsv.gz"
WNUT = DATA / "wnut17"
LONG_WORDS = 512


def long_text(n=LONG_WORDS):
    """n words of real sentences (the word tokenizer makes one token per word)."""
    words = " ".join(text for _, _, text in sentiment_rows(400)).lower().split()
    return " ".join([w for w in words if w.isalpha()][:n])


def train(d, base, threads=1):
    cfg = write_yaml(d / "run.yaml", base)
    run("train", cfg, threads=threads, check=0)
    return d / "run"


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """2 layers x 2 heads on 300 sentiment sentences, positions for 512+ tokens."""
    d = tmp_path_factory.mktemp("classify")
    rows = sentiment_rows(300)
    data = write_tsv(d / "train.tsv", rows)
    return train(d, {
        "task": "classify", "output": str(d / "run"),
        "data": {"train": str(data), "dev": str(data), "max_length": 600},
        "tokenizer": {"kind": "word", "lowercase": True},
        "model": {"d_model": 32, "nhead": 2, "num_layers": 2, "dim_feedforward": 64, "dropout": 0.0,
                  "max_positions": 600},
        "train": {"epochs": 2, "batch_size": 32, "lr": 0.003, "warmup_steps": 5, "log_every": 50}})


@pytest.fixture(scope="module")
def tagger(tmp_path_factory):
    d = tmp_path_factory.mktemp("tag")
    data = write_conll(d / "train.conll", conll_sentences(WNUT / "train.conll", 64))
    return train(d, {
        "task": "tag", "output": str(d / "run"),
        "data": {"train": str(data), "dev": str(data), "max_length": 96},
        "tokenizer": {"kind": "sentencepiece", "vocab_size": 300},
        "model": {"d_model": 32, "nhead": 4, "num_layers": 3, "dim_feedforward": 64, "dropout": 0.0},
        "train": {"epochs": 2, "batch_size": 16, "lr": 0.003, "warmup_steps": 5, "log_every": 50}})


def g2p_rows(n):
    with gzip.open(CMUDICT, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t") for line in f][1:n + 1]


@pytest.fixture(scope="module", params=["transformer", "rnn"])
def g2p(request, tmp_path_factory):
    """Spelling -> phonemes on 300 CMUdict words: letters in, phonemes out (separate vocabularies)."""
    d = tmp_path_factory.mktemp(request.param)
    header = "word\tphones\n"
    rows = g2p_rows(300)
    data = d / "g2p.tsv"
    data.write_text(header + "".join(f"{r[0]}\t{r[1]}\n" for r in rows), encoding="utf-8")
    model = ({"d_model": 32, "nhead": 4, "num_encoder_layers": 2, "num_decoder_layers": 3,
              "dim_feedforward": 64, "dropout": 0.0}
             if request.param == "transformer" else
             {"embed_dim": 24, "hidden_size": 24, "decoder_hidden_size": 32, "attention_dim": 24,
              "readout_dim": 32, "dropout": 0.0})
    return request.param, train(d, {
        "task": "translate", "output": str(d / "run"),
        "data": {"train": str(data), "dev": str(data), "source_column": "word", "target_column": "phones"},
        "tokenizer": {"kind": "char"}, "target_tokenizer": {"kind": "word"},
        "model": {"architecture": request.param, **model},
        "decode": {"beam_size": 2},
        "train": {"epochs": 3, "batch_size": 32, "lr": 0.003, "warmup_steps": 5, "log_every": 50,
                  "metric": "wer"}})


def torch_model(run_dir, cls):
    m = gaze.models.load_model(str(run_dir / "best"))
    c = json.loads(m.config) if isinstance(m.config, str) else dict(m.config)
    t = cls(c)
    load_into_torch(m, t)
    # Left in training mode (the models use dropout 0): in eval mode torch's encoder takes its fused
    # fast path, which never calls the attention modules whose explicit weights are compared.
    assert c["dropout"] == 0.0
    return t


# ---- capture --------------------------------------------------------------------------------------

def test_classifier_capture_equals_torch_explicit_attention(classifier):
    e = gaze.explain(classifier, "the plot was dull but the actors were wonderful")
    ids = np.array([e["token_ids"]])
    t = torch_model(classifier, TorchClassifier)
    want = capture_torch_encoder(t)
    with torch.no_grad():
        logits = t(torch.tensor(ids), torch.tensor([ids.shape[1]]))
    assert e["attention"].shape == (2, 2, ids.shape[1], ids.shape[1])
    assert all(t in (w, "<unk>") for t, w in zip(e["tokens"], e["text"].split(), strict=True))
    for layer in range(2):
        assert_close(e["attention"][layer], want[layer][0].numpy(), **REDUCTION, what=f"layer {layer}")
    probs = torch.softmax(logits, -1)[0].numpy()
    top = e["prediction"][0]
    assert top["score"] == pytest.approx(float(probs.max()), rel=1e-4)


def test_seq2seq_capture_equals_torch_explicit_attention(g2p):
    arch, run_dir = g2p
    e = gaze.explain(run_dir, "attention")
    src, tgt = np.array([e["encoder_token_ids"]]), np.array([e["decoder_token_ids"]])
    assert e["encoder_tokens"] == list("attention") + ["</s>"]
    assert e["decoder_tokens"][0] == "<s>" and e["output_tokens"][-1] == "</s>"
    assert e["decoder_tokens"][1:] == e["output_tokens"][:-1]
    assert " ".join(e["output_tokens"][:-1]) == e["prediction"]["translation_text"]
    if arch == "rnn":
        t = torch_model(run_dir, TorchRnnSeq2Seq)
        with torch.no_grad():
            _, w = t(torch.tensor(src), torch.tensor([src.shape[1]]), torch.tensor(tgt))
        assert e["cross_attention"].shape == (1, 1, tgt.shape[1], src.shape[1])
        assert_close(e["cross_attention"][0, 0], w[0].numpy(), **REDUCTION, what="rnn attention")
        assert "encoder_attention" not in e and "rollout" not in e
        return
    t = torch_model(run_dir, TorchTransformerSeq2Seq)
    enc, dec, cross = record_seq2seq_attention(t)
    with torch.no_grad():
        t(torch.tensor(src), torch.tensor([src.shape[1]]), torch.tensor(tgt), torch.tensor([tgt.shape[1]]))
    for key, want in (("encoder", enc), ("decoder", dec), ("cross", cross)):
        got = e[key + "_attention"]
        assert got.shape[0] == len(want)
        for layer, w in enumerate(want):
            assert_close(got[layer], w[0].numpy(), **REDUCTION, what=f"{key} layer {layer}")


def test_layer_and_head_filters_are_slices_of_the_full_capture(tagger):
    text = "Going to see Arctic Monkeys in Manchester tonight"
    full = gaze.explain(tagger, text)
    some = gaze.explain(tagger, text, layers=[-1, 0], heads=[3, 1])
    assert full["attention"].shape[:2] == (3, 4)
    assert some["layers"] == {"encoder": [0, 2]} and some["heads"] == [3, 1]
    np.testing.assert_array_equal(some["attention"], full["attention"][[0, 2]][:, [3, 1]])
    assert some["prediction"] == full["prediction"]  # capture changes nothing
    assert full["prediction"]["words"] == text.split()
    with pytest.raises(gaze.IndexError, match="layer 3 out of range"):
        gaze.explain(tagger, text, layers=[3])
    with pytest.raises(gaze.IndexError, match="head 4 out of range"):
        gaze.explain(tagger, text, heads=[4])


# ---- aggregation ----------------------------------------------------------------------------------

def numpy_rollout(attention):
    """Abnar & Zuidema (2020), from the paper: A' = 0.5 A + 0.5 I with rows re-normalised, per layer
    (heads averaged); rollout = A'_L ... A'_1."""
    joint = None
    for layer in attention.astype(np.float64):
        a = layer.mean(0)
        a = 0.5 * a + 0.5 * np.eye(a.shape[0])
        a = a / a.sum(-1, keepdims=True)
        joint = a if joint is None else a @ joint
    return joint


def test_rollout_and_token_importance_follow_the_paper(classifier, tagger):
    e = gaze.explain(classifier, "i would not buy this again , the battery died after a week")
    r = numpy_rollout(e["attention"])
    np.testing.assert_allclose(e["rollout"], r, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(e["rollout"].sum(-1), 1.0, rtol=1e-5)
    imp = r.mean(0)  # mean pooling: the pooled vector averages every position
    np.testing.assert_allclose(e["token_importance"], imp / imp.sum(), rtol=1e-5, atol=1e-7)
    some = gaze.explain(tagger, "New York is big", layers=[1, 2], heads=[0])
    np.testing.assert_allclose(some["rollout"], numpy_rollout(some["attention"]), rtol=1e-5, atol=1e-7)
    assert "token_importance" not in some


def test_attention_pooling_weighs_the_rollout_rows(tmp_path):
    rows = sentiment_rows(120)
    data = write_tsv(tmp_path / "train.tsv", rows)
    run_dir = train(tmp_path, {
        "task": "classify", "output": str(tmp_path / "run"), "data": {"train": str(data), "dev": str(data)},
        "tokenizer": {"kind": "word", "lowercase": True},
        "model": {"d_model": 16, "nhead": 2, "num_layers": 2, "dim_feedforward": 32, "dropout": 0.0,
                  "pooling": "attention"},
        "train": {"epochs": 1, "batch_size": 32, "lr": 0.003, "warmup_steps": 2}})
    e = gaze.explain(run_dir, "the battery died after a week")
    w, r = e["pooling_attention"], numpy_rollout(e["attention"])
    assert w.shape == (len(e["tokens"]),) and abs(w.sum() - 1) < 1e-5
    imp = w @ r  # the pooled vector is the w-weighted sum of the positions' final states
    np.testing.assert_allclose(e["token_importance"], imp / imp.sum(), rtol=1e-5, atol=1e-7)
    assert not np.allclose(e["token_importance"], r.mean(0) / r.mean(0).sum(), rtol=1e-3)


def test_alignment_is_the_head_mean_of_a_cross_attention_layer(g2p):
    arch, run_dir = g2p
    e = gaze.explain(run_dir, "gaze")
    if arch == "transformer":
        assert e["alignment_layer"] == 2
        np.testing.assert_allclose(e["alignment"], e["cross_attention"][2].mean(0), rtol=1e-6)
        e1 = gaze.explain(run_dir, "gaze", alignment_layer=0, heads=[1, 2])
        np.testing.assert_allclose(e1["alignment"], e1["cross_attention"][0].mean(0), rtol=1e-6)
        assert e1["alignment_layer"] == 0
        assert gaze.explain(run_dir, "gaze", layers=[1])["alignment_layer"] == 1
        with pytest.raises(gaze.ValueError, match="alignment layer 0 was not captured"):
            gaze.explain(run_dir, "gaze", layers=[1], alignment_layer=0)
    else:
        np.testing.assert_array_equal(e["alignment"], e["cross_attention"][0, 0])
    np.testing.assert_array_equal(e["hard_alignment"], e["alignment"].argmax(-1))
    # The same alignment as decoding reports it (beam search with the model's decode options).
    out = json.loads(run("predict", "--model", run_dir, "--alignment", stdin="gaze\n", check=0).stdout)
    assert out["alignment"]["target_tokens"] == e["output_tokens"]
    np.testing.assert_allclose(np.array(out["alignment"]["weights"]), e["alignment"], rtol=1e-4, atol=1e-6)


# ---- files ----------------------------------------------------------------------------------------

def read_png(path):
    """Width, height and the RGB rows of an 8-bit RGB PNG (non-interlaced), decoded with zlib."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, colour, _, _, interlace = header
    assert (depth, colour, interlace) == (8, 2, 0)
    raw, stride, rows, prev = zlib.decompress(idat), 3 * w, [], bytearray(3 * w)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a, b = line[i - 3] if i >= 3 else 0, prev[i]
            c = prev[i - 3] if i >= 3 else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, rows


def png_size(rows, cols):
    """The documented size (gaze/explain/png.h, docs/guide.md)."""
    cell = min(max(800 // max(rows, cols), 2), 24)
    return 100 + cols * cell + 64 + 8, 20 + 100 + rows * cell + 8


def test_cli_writes_page_json_and_pngs(classifier, tmp_path):
    text = "the food was cold and the waiter was rude"
    res = run("explain", "--model", classifier, "--input", text, "--out", tmp_path / "x", "--heads", "1", check=0)
    written = sorted(p.split("/")[-1] for p in res.stdout.split())
    assert written == sorted(["explanation.html", "attention.json", "rollout.png", "encoder-layer0.png",
                              "encoder-layer1.png", "encoder-layer0-head1.png", "encoder-layer1-head1.png"])
    j = json.loads((tmp_path / "x" / "attention.json").read_text())
    e = gaze.explain(classifier, text, heads=[1])
    # bertviz's contract: head_view(attention, tokens) takes per layer [batch, heads, T, T].
    attention = [torch.tensor(layer).unsqueeze(0) for layer in j["attention"]]
    assert all(a.shape == (1, 1, len(j["tokens"]), len(j["tokens"])) for a in attention)
    np.testing.assert_array_equal(torch.stack([a.squeeze(0) for a in attention]).numpy(), e["attention"])
    assert j["tokens"] == e["tokens"] and j["heads"] == [1] and j["layers"] == {"encoder": [0, 1]}
    assert j["format"] == "gaze-explain/1" and j["prediction"] == e["prediction"]
    np.testing.assert_array_equal(np.array(j["rollout"], np.float32), e["rollout"])
    T = len(e["tokens"])
    for name in ("rollout.png", "encoder-layer0.png", "encoder-layer1-head1.png"):
        w, h, rows = read_png(tmp_path / "x" / name)
        assert (w, h) == png_size(T, T), name
    html = (tmp_path / "x" / "explanation.html").read_text()
    assert "<script src" not in html and "http://" not in html and "https://" not in html
    assert "<link" not in html and "@import" not in html


def test_cli_translation_alignment_png_and_several_inputs(g2p, tmp_path):
    arch, run_dir = g2p
    (tmp_path / "words.txt").write_text("hello\n\nworld\n")
    res = run("explain", "--model", run_dir, "--input", tmp_path / "words.txt", "--out", tmp_path / "x",
              "--format", "png,json", check=0)
    names = res.stdout.split()
    assert any(n.endswith("0001/alignment.png") for n in names)
    # The blank line 2 is skipped (with a warning); folders keep the line numbers.
    assert any(n.endswith("0003/alignment.png") for n in names)
    assert not any("0002" in n for n in names) and "input 2 is blank" in res.stderr
    assert not any(n.endswith(".html") for n in names)
    j = json.loads((tmp_path / "x" / "0003" / "attention.json").read_text())
    assert j["encoder_tokens"] == list("world") + ["</s>"]
    w, h, _ = read_png(tmp_path / "x" / "0003" / "alignment.png")
    assert (w, h) == png_size(len(j["output_tokens"]), len(j["encoder_tokens"]))
    blocks = ["cross"] if arch == "rnn" else ["encoder", "decoder", "cross"]
    assert [k[:-len("_attention")] for k in j if k.endswith("_attention")] == blocks


def test_cli_errors_are_one_line(classifier, g2p, tmp_path):
    arch, run_dir = g2p
    cases = [
        (["--model", classifier, "--input", "good", "--layers", "5"], "layer 5 out of range"),
        (["--model", classifier, "--input", "good", "--heads", "2"], "head 2 out of range"),
        (["--model", classifier, "--input", "", "--out", tmp_path / "e"], "input text is empty"),
        (["--model", tmp_path / "nope", "--input", "good"], "not a model folder"),
        (["--model", classifier, "--input", "good", "--format", "pdf"], "pdf"),
    ]
    if arch == "rnn":
        cases.append((["--model", run_dir, "--input", "good", "--layers", "0"], "RNN model has one attention"))
    for args, message in cases:
        if "--out" not in args:
            args = args + ["--out", tmp_path / "e"]
        res = run("explain", *args)
        assert res.returncode == 2, (args, res.stderr)
        assert message in res.stderr and len(res.stderr.strip().splitlines()) <= 2, res.stderr


def test_invalid_utf8_and_truncated_inputs(classifier, tmp_path):
    res = subprocess.run([str(GAZE), "explain", "--model", str(classifier), "--input", b"caf\xe9 ok",
                          "--out", str(tmp_path / "bad")], capture_output=True, text=True)
    assert res.returncode == 2 and "not valid UTF-8 (byte 4)" in res.stderr, res.stderr
    text = long_text(700)  # the model reads at most 600 tokens
    res = run("explain", "--model", classifier, "--input", text, "--out", tmp_path / "x", "--format", "json",
              check=0)
    assert "was cut to the model's maximum length (600 tokens)" in res.stderr
    j = json.loads((tmp_path / "x" / "attention.json").read_text())
    assert j["truncated"] is True and len(j["tokens"]) == 600 and len(j["attention"][0][0]) == 600
    assert gaze.explain(classifier, "short and sweet")["truncated"] is False


def peak_bytes(fn):
    # Measured from an empty cache: the allocator counts the size of the block it hands out, and a
    # cached block from an earlier test may be a larger class than the request (with every test file
    # in one process, the two captures below then measured 6 and 8 MiB instead of 3 and 7).
    gc.collect()
    gaze.empty_cache()
    gaze.reset_peak_memory()
    start = gaze.allocator_stats()["bytes_in_use"]
    fn()
    return gaze.allocator_stats()["peak_bytes_in_use"] - start


def test_a_512_token_input(classifier, tmp_path):
    text = long_text()
    model = gaze.load(classifier)
    e = model.explain(text, layers=[-1], heads=[0])
    assert e["attention"].shape == (1, 1, LONG_WORDS, LONG_WORDS)
    # Only the chosen head's 512 x 512 weights are built: the full capture (2 layers x 2 heads) holds
    # three more such matrices (and a second head mean) at its peak.
    one, full = peak_bytes(lambda: model.explain(text, layers=[-1], heads=[0])), peak_bytes(lambda: model.explain(text))
    matrix = LONG_WORDS * LONG_WORDS * 4
    assert full - one >= 3 * matrix, (one, full)
    res = run("explain", "--model", classifier, "--input", text, "--out", tmp_path / "x", check=0)
    w, h, _ = read_png(tmp_path / "x" / "rollout.png")
    assert (w, h) == png_size(LONG_WORDS, LONG_WORDS) == (100 + 1024 + 64 + 8, 20 + 100 + 1024 + 8)
    # The page carries 8-bit weights: a few MB for 2 layers x 2 heads x 512 x 512.
    assert (tmp_path / "x" / "explanation.html").stat().st_size < 4_000_000
    assert "explanation.html" in res.stdout


# ---- the page in a real browser -------------------------------------------------------------------

BROWSER_TESTS = ROOT / "tests" / "browser"


def open_in_chromium(page, screenshot):
    """Runs tests/browser/check_page.mjs (Playwright driving Debian's /usr/bin/chromium)."""
    missing = [p for p in (pathlib.Path("/usr/bin/chromium"), BROWSER_TESTS / "node_modules" / "playwright-core")
               if not p.exists()]
    assert not missing, f"missing {missing}: scripts/install-deps installs Chromium and Playwright"
    res = subprocess.run(["node", str(BROWSER_TESTS / "check_page.mjs"), str(page), str(screenshot)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def check_clean(r):
    assert r["console_errors"] == [] and r["page_errors"] == [], r
    assert r["requests"] == [], "the page must not touch the network"
    assert r["screenshot_bytes"] > 10_000


def test_page_in_chromium_short_sentence(classifier, tmp_path):
    run("explain", "--model", classifier, "--input", "great phone , terrible battery", "--out", tmp_path, check=0)
    r = open_in_chromium(tmp_path / "explanation.html", tmp_path / "shot.png")
    check_clean(r)
    # Colour legends (model view and rollout), one scale for every panel on demand, tokens on hover.
    assert r["legends"] == 2 and r["shared_scale_changes"] and r["shared_legend"][0] == "0"
    assert "→" in r["thumb_tip"] and r["thumb_tip"].split(" → ")[0] in "great phone , terrible battery".split()
    assert r["blocks"] == ["encoder"] and r["layer_options"] == 2 and r["head_swatches"] == 2
    assert (r["model_view_cells"], r["model_view_layers"], r["model_view_heads"]) == (4, 2, 2)
    assert r["drawn_cells"] == 4 and r["mean_cells"] == 2  # and a mean over the heads per layer
    assert r["query_tokens"] == r["key_tokens"] == 5 and r["importance_tokens"] == 5
    assert r["hover_changes_drawing"] and r["leave_restores_drawing"] and r["focused_tokens"] == 1
    assert r["visible_heads_after_click"] == 1
    assert r["rollout_shown"] and not r["alignment_shown"]
    w, h, _ = read_png(tmp_path / "shot.png")
    assert w == 1200 and h > 900


def test_page_in_chromium_hostile_text(classifier, tmp_path):
    text = 'a </script><script>document.title="pwned"</script> <!-- <script> b & "c"'
    run("explain", "--model", classifier, "--input", text, "--out", tmp_path, check=0)
    r = open_in_chromium(tmp_path / "explanation.html", tmp_path / "shot.png")
    check_clean(r)
    assert r["prediction_text"].startswith(text)  # shown as text, never run
    assert r["title"].startswith("gaze explain: a </script>")


def test_page_in_chromium_512_tokens(classifier, tmp_path):
    run("explain", "--model", classifier, "--input", long_text(), "--out", tmp_path, check=0)
    r = open_in_chromium(tmp_path / "explanation.html", tmp_path / "shot.png")
    check_clean(r)
    assert (r["model_view_cells"], r["drawn_cells"]) == (4, 4)
    # The head view shows one page of 64 tokens a side, with pagers; every token keeps its importance.
    assert r["query_tokens"] == r["key_tokens"] == 64 and r["pagers"] == 4
    assert r["importance_tokens"] == LONG_WORDS
    assert r["hover_changes_drawing"] and r["leave_restores_drawing"]
    # Never frozen: no main-thread task anywhere near a second (thumbnails are drawn a few per frame).
    assert r["longest_task_ms"] < 1000, r


def test_page_in_chromium_encoder_decoder(g2p, tmp_path):
    arch, run_dir = g2p
    run("explain", "--model", run_dir, "--input", "hello", "--out", tmp_path, check=0)
    r = open_in_chromium(tmp_path / "explanation.html", tmp_path / "shot.png")
    check_clean(r)
    assert r["alignment_shown"]
    if arch == "transformer":
        assert r["blocks"] == ["encoder", "decoder", "cross"]
        assert (r["model_view_layers"], r["model_view_heads"]) == (2, 4)  # the encoder: 2 layers x 4 heads
        assert r["rollout_shown"]
    else:
        assert r["blocks"] == ["cross"] and r["model_view_cells"] == 1 and not r["rollout_shown"]
        assert r["mean_cells"] == 0  # one head: nothing to average


def test_cli_reads_stdin_lines(classifier, tmp_path):
    res = run("explain", "--model", classifier, "--input", "-", "--out", tmp_path, "--format", "json",
              stdin="great phone\n\nawful case\n", check=0)
    assert res.stdout.split() == [str(tmp_path / "0001" / "attention.json"), str(tmp_path / "0003" / "attention.json")]
    assert json.loads((tmp_path / "0003" / "attention.json").read_text())["text"] == "awful case"


# ---- attribution for translation ------------------------------------------------------------------

def test_translation_attribution_per_output_token_equals_torch(g2p):
    arch, run_dir = g2p
    e = gaze.explain(run_dir, "attention", method="all", steps=64)
    src, tgt = e["encoder_token_ids"], e["decoder_token_ids"]
    assert e["output_tokens"][-1] == "</s>" and e["explained_output"] == "log p(output token)"
    out = list(tgt[1:]) + [3]  # the target vocabulary's </s>
    K, S = len(out), len(src)
    assert set(e["attributions"]) == {"attention", "gradient_x_input", "integrated_gradients"}
    np.testing.assert_array_equal(e["attributions"]["attention"], e["alignment"])
    t = torch_model(run_dir, TorchRnnSeq2Seq if arch == "rnn" else TorchTransformerSeq2Seq).double()
    table = t.src_embedding.weight.detach().clone()

    def logp(rows):  # [n, K]: each output token's log-probability
        n = rows.shape[0]
        t.src_embedding = FixedRows(rows)
        s, y = torch.tensor([src] * n), torch.tensor([tgt] * n)
        if arch == "rnn":
            logits = t(s, torch.tensor([S] * n), y)[0]
        else:
            logits = t(s, torch.tensor([S] * n), y, torch.tensor([K] * n))
        return torch.log_softmax(logits, -1)[:, torch.arange(K), torch.tensor(out)]

    x = table[torch.tensor(src)][None]
    got = e["attributions"]["gradient_x_input"]
    assert got.shape == (K, S)
    np.testing.assert_allclose(got, np.array(gradient_x_input_rows(logp, x)), rtol=2e-3, atol=1e-5)
    steps = 64
    alphas = (torch.arange(steps, dtype=torch.float64) + 0.5) / steps
    base = torch.zeros_like(x)
    base[0, -1] = x[0, -1]  # the framing </s> keeps its own embedding in the baseline
    ig = []
    for k in range(K):
        points = (base[0] + alphas[:, None, None] * (x[0] - base[0])).requires_grad_()
        logp(points)[:, k].sum().backward()
        ig.append(((x[0] - base[0]) * points.grad.mean(0)).sum(-1).detach().numpy())
    np.testing.assert_allclose(e["attributions"]["integrated_gradients"], np.array(ig), rtol=2e-3, atol=1e-5)
    info = e["integrated_gradients"]
    with torch.no_grad():
        full, at_base = logp(x)[0].numpy(), logp(base)[0].numpy()
    np.testing.assert_allclose(info["completeness_gaps"], np.array(ig).sum(1) - (full - at_base), atol=1e-3)
    # The page shows one row per output token.
    page = (run_dir / "page").mkdir(exist_ok=True) or run_dir / "page"
    run("explain", "--model", run_dir, "--input", "attention", "--out", page, "--method", "gradient_x_input",
        check=0)
    saved = json.loads((page / "attribution.json").read_text())
    assert len(saved["methods"]["gradient_x_input"]["scores"]) == K and saved["output_tokens"] == e["output_tokens"]
    r = open_in_chromium(page / "explanation.html", page / "shot.png")
    check_clean(r)
    assert r["attribution_tokens"] == e["encoder_tokens"] * K
    res = run("explain", "--model", run_dir, "--input", "attention", "--out", page, "--method",
              "attention_x_gradient")
    assert res.returncode == 2 and "applies to classifiers; this is a translate model" in res.stderr
    # Faithfulness: source tokens removed in each method's order (its rows summed), the curve
    # following the log-probability of the whole translation found.
    curves = e["faithfulness"]
    assert set(curves) == {"attention", "gradient_x_input", "integrated_gradients", "random"}
    with torch.no_grad():
        total = float(logp(x)[0].sum())
    for c in curves.values():
        assert c["deletion"][0] == pytest.approx(total, abs=1e-3)  # nothing removed yet
        assert c["fraction"][0] == 0 and c["fraction"][-1] == 1
        assert c["insertion"][-1] == pytest.approx(total, abs=1e-3)  # everything back
    # Removing the first-ranked source letter alone: the translation's log-probability by torch.
    ranked = int(np.argmax(e["attributions"]["integrated_gradients"][:, :-1].sum(0)))
    keep = [i for i in range(S) if i != ranked]
    with torch.no_grad():
        t.src_embedding = torch.nn.Embedding.from_pretrained(table)
        s_ids = torch.tensor([[src[i] for i in keep]])
        if arch == "rnn":
            logits = t(s_ids, torch.tensor([S - 1]), torch.tensor([tgt]))[0]
        else:
            logits = t(s_ids, torch.tensor([S - 1]), torch.tensor([tgt]), torch.tensor([K]))
        dropped = float(torch.log_softmax(logits, -1)[0, torch.arange(K), torch.tensor(out)].sum())
    assert curves["integrated_gradients"]["deletion"][1] == pytest.approx(dropped, abs=1e-3)


def test_svg_figures_parse_and_hold_the_tokens(g2p, tmp_path):
    import xml.etree.ElementTree as ET
    arch, run_dir = g2p
    text = "café<b>&'\""
    heads = ["--heads", "0"] if arch == "transformer" else []
    run("explain", "--model", run_dir, "--input", text, "--out", tmp_path, "--format", "svg", *heads, check=0)
    e = gaze.explain(run_dir, text)
    ns = "{http://www.w3.org/2000/svg}"
    names = {p.name for p in tmp_path.iterdir()}
    want = {"alignment.svg"} | ({"rollout.svg", "encoder-layer0.svg", "encoder-layer0-head0.svg",
                                 "cross-layer2-head0.svg"} if arch == "transformer" else set())
    assert want <= names and not any(n.endswith(".png") for n in names)
    align = ET.parse(tmp_path / "alignment.svg").getroot()
    texts = [t.text for t in align.iter(ns + "text")]
    assert texts[0].startswith("Alignment") and "source token" in texts and "output token (the token predicted)" in texts
    assert set(e["encoder_tokens"]) <= set(texts) and set(e["output_tokens"]) <= set(texts)
    cells = [r for r in align.iter(ns + "rect") if r.find(ns + "title") is not None]
    assert len(cells) == len(e["encoder_tokens"]) * len(e["output_tokens"])
    marks = [r for r in align.iter(ns + "rect") if r.get("stroke") == "#e67700"]
    assert len(marks) == len(e["output_tokens"])  # the hard alignment, one per output token
    if arch == "transformer":  # decoder rows: the token each position predicts, as the alignment's
        cross = [t.text for t in ET.parse(tmp_path / "cross-layer2-head0.svg").getroot().iter(ns + "text")]
        assert "output token (the token predicted)" in cross and set(e["output_tokens"]) <= set(cross)
    run("explain", "--model", run_dir, "--input", text, "--out", tmp_path / "page", check=0)
    page = (tmp_path / "page" / "explanation.html").read_text(encoding="utf-8")
    data = json.loads(page.split('id="gaze-data">', 1)[1].split("</script>", 1)[0])
    assert {b["name"]: b["queries"] for b in data["blocks"]} == (
        {"cross": "output_tokens"} if arch == "rnn" else
        {"encoder": "tokens", "decoder": "output_tokens", "cross": "output_tokens"})
    for path in tmp_path.glob("*.svg"):
        root = ET.parse(path).getroot()
        assert not list(root.iter(ns + "script")) and not list(root.iter("b"))


def test_provenance_names_the_model_checkpoint_code_and_options(classifier, tmp_path):
    import datetime
    import re as regex
    e = gaze.explain(classifier, "great phone", layers=[-1])
    p = e["provenance"]
    assert p["model"] == str((classifier / "best").resolve()) and p["checkpoint"] == "best"
    metrics = [json.loads(line) for line in (classifier / "metrics.jsonl").read_text().splitlines()]
    assert p["step"] == [m["step"] for m in metrics if m.get("best")][-1]
    version = regex.search(r"project\(gaze VERSION ([0-9.]+)", (ROOT / "CMakeLists.txt").read_text()).group(1)
    assert p["gaze_version"] == version and p["gaze_commit"] and p["precision"] == "fp32"
    when = datetime.datetime.strptime(p["date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    assert abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()) < 600
    assert p["options"]["layers"] == [-1] and p["options"]["method"] == "attention"
    last = gaze.explain(classifier / "last", "great phone")["provenance"]
    assert last["checkpoint"] == "last" and last["step"] == metrics[-1]["step"]
    run("explain", "--model", classifier, "--input", "great phone", "--out", tmp_path, check=0)
    saved = json.loads((tmp_path / "attention.json").read_text())
    assert saved["provenance"]["model"] == p["model"] and saved["provenance"]["step"] == p["step"]
    r = open_in_chromium(tmp_path / "explanation.html", tmp_path / "shot.png")
    check_clean(r)
    assert r["provenance"]["model"] == p["model"] and r["provenance"]["checkpoint"] == f"best, step {p['step']}"
    assert r["provenance"]["gaze"].startswith(version + " (")


def test_index_page_of_several_inputs(classifier, tmp_path):
    hostile = 'a </script><script>document.title="pwned"</script> <img src=x onerror=alert(1)>'
    (tmp_path / "in.txt").write_text(f"great phone\n\n{hostile}\nterrible battery\n")
    res = run("explain", "--model", classifier, "--input", tmp_path / "in.txt", "--out", tmp_path / "x", check=0)
    assert str(tmp_path / "x" / "index.html") in res.stdout.split()
    r = open_in_chromium(tmp_path / "x" / "index.html", tmp_path / "shot.png")
    assert r["console_errors"] == [] and r["page_errors"] == [], r
    assert r["title"] == "gaze explain: index"  # the hostile text did not run
    assert r["index_rows"] == ["great phone", hostile, "terrible battery"]  # the blank line 2 skipped
    assert r["index_links"] == ["0001/explanation.html", "0003/explanation.html", "0004/explanation.html"]
    assert r["compare_frames"] == ["0001/explanation.html", "0003/explanation.html"]
    assert all((tmp_path / "x" / link).exists() for link in r["index_links"])
    # The only requests are the two compared pages (the test's browser refuses to load them).
    assert sorted(u.rsplit("/x/", 1)[1] for u in r["requests"]) == ["0001/explanation.html", "0003/explanation.html"]
    # One input: no index.
    run("explain", "--model", classifier, "--input", "great phone", "--out", tmp_path / "one", check=0)
    assert not (tmp_path / "one" / "index.html").exists()


def test_word_level_views_sum_received_and_average_paid_attention(g2p, tmp_path):
    arch, run_dir = g2p
    # CMUdict's letters have no space (it would read as <unk>): one word and the framing </s>.
    # (The C++ tests cover splitting at a char tokenizer's " " pieces.)
    text = "attention"
    pieces = gaze.explain(run_dir, text, method="gradient_x_input")
    words = gaze.explain(run_dir, text, method="gradient_x_input", words=True)
    assert pieces["encoder_tokens"] == list(text) + ["</s>"]
    assert words["encoder_tokens"] == [text, "</s>"] and "sum over its pieces" in words["word_rule"]
    group = np.array([0] * len(text) + [1])
    onehot = np.eye(2)[group]  # [pieces, words]
    def regroup(m, rows, cols):  # rows averaged, columns summed
        if cols:
            m = m @ onehot
        if rows:
            m = (onehot.T @ m) / onehot.sum(0)[:, None]
        return m
    np.testing.assert_allclose(words["alignment"], regroup(pieces["alignment"], False, True), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(words["hard_alignment"], words["alignment"].argmax(1))
    np.testing.assert_allclose(words["attributions"]["gradient_x_input"],
                               pieces["attributions"]["gradient_x_input"] @ onehot, rtol=1e-4, atol=1e-6)
    if arch == "transformer":
        for layer in range(2):
            for head in range(4):
                np.testing.assert_allclose(words["encoder_attention"][layer, head],
                                           regroup(pieces["encoder_attention"][layer, head], True, True),
                                           rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(words["cross_attention"][0, 0],
                                   regroup(pieces["cross_attention"][0, 0], False, True), rtol=1e-5, atol=1e-6)
    run("explain", "--model", run_dir, "--input", text, "--out", tmp_path, "--words", check=0)
    assert json.loads((tmp_path / "attention.json").read_text())["encoder_tokens"] == words["encoder_tokens"]
    r = open_in_chromium(tmp_path / "explanation.html", tmp_path / "shot.png")
    check_clean(r)


def test_tagger_attribution_per_piece_equals_torch(tagger, tmp_path):
    text = "New York is big"
    e = gaze.explain(tagger, text, method="all", steps=32)
    ids = e["token_ids"]
    T = len(ids)
    assert set(e["attributions"]) == {"rollout", "gradient_x_input", "integrated_gradients"}
    np.testing.assert_array_equal(e["attributions"]["rollout"], e["rollout"])
    t = torch_model(tagger, TorchTagger).double()
    table = t.embedding.weight.detach().clone()
    tokens, lengths = torch.tensor([ids]), torch.tensor([T])
    with torch.no_grad():
        best = t(tokens, lengths)[0].argmax(-1)

    def logp(rows):  # [n, T]: each piece's best tag log-probability
        t.embedding = FixedRows(rows)
        n = rows.shape[0]
        return torch.log_softmax(t(tokens.repeat(n, 1), lengths.repeat(n)), -1)[:, torch.arange(T), best]

    x = table[tokens[0]][None]
    got = e["attributions"]["gradient_x_input"]
    assert got.shape == (T, T)
    np.testing.assert_allclose(got, np.array(gradient_x_input_rows(logp, x)), rtol=2e-3, atol=1e-5)
    assert abs(e["integrated_gradients"]["completeness_gap"]) < 0.02 * abs(
        e["integrated_gradients"]["output"] - e["integrated_gradients"]["baseline_output"])
    # Word level: the input axis sums pieces (rows stay per piece: each piece has its own tag).
    words = gaze.explain(tagger, text, method="gradient_x_input", words=True)
    assert words["encoder_tokens" if "encoder_tokens" in words else "tokens"] == text.split()
    group = np.cumsum([p.startswith("\u2581") for p in e["tokens"]]) - 1
    np.testing.assert_allclose(words["attributions"]["gradient_x_input"], got @ np.eye(4)[group], rtol=1e-4, atol=1e-6)
    res = run("explain", "--model", tagger, "--input", text, "--out", tmp_path, "--method", "attention_x_gradient")
    assert res.returncode == 2 and "applies to classifiers; this is a tag model" in res.stderr


def test_translation_faithfulness_over_a_data_set(g2p, tmp_path):
    arch, run_dir = g2p
    (tmp_path / "words.tsv").write_text("word\tphones\n" + "".join(f"{r[0]}\t{r[1]}\n" for r in g2p_rows(5)))
    res = run("explain", "--model", run_dir, "--data", tmp_path / "words.tsv", "--limit", "3", "--out",
              tmp_path / "x", check=0)
    summary = json.loads((tmp_path / "x" / "faithfulness.json").read_text())
    assert summary["inputs"] == 3 and summary["explained_output"] == "log p(translation)"
    assert {m["method"] for m in summary["methods"]} == {"attention", "gradient_x_input", "integrated_gradients",
                                                         "random"}
    assert "most faithful:" in res.stdout
    assert (tmp_path / "x" / "head_statistics.json").exists() == (arch == "transformer")
