"""Attribution beyond attention (`gaze explain --method`): gradient x input, Integrated Gradients and
attention x gradient against the same quantities computed here with torch's autograd on the same
weights (attention written out explicitly so that its weights have a gradient); IG's completeness;
and the deletion/insertion curves on a model whose answer is known (it reads one word only)."""
import json

import numpy as np
import pytest
import torch

import gaze
from cli_helpers import run, sentiment_rows, write_tsv, write_yaml
from reference_models import FixedRows, TorchClassifier, gradient_x_input_rows, padding

TEXT = "the battery is great but the screen is dull"


def train(d, model):
    rows = sentiment_rows(160)
    data = write_tsv(d / "train.tsv", rows)
    cfg = write_yaml(d / "run.yaml", {
        "task": "classify", "output": str(d / "run"), "data": {"train": str(data), "dev": str(data)},
        "tokenizer": {"kind": "word", "lowercase": True},
        "model": {"d_model": 16, "nhead": 2, "num_layers": 2, "dim_feedforward": 32, "dropout": 0.0, **model},
        "train": {"epochs": 2, "batch_size": 32, "lr": 0.003, "warmup_steps": 2}})
    run("train", cfg, threads=1, check=0)
    return d / "run"


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    return train(tmp_path_factory.mktemp("attribution"), {})


def explicit_attention(mha, store):
    """Replaces nn.MultiheadAttention's forward by softmax(QK^T/sqrt(d)) V written out, keeping the
    weights (with their gradient) in `store`."""
    E, H = mha.embed_dim, mha.num_heads
    D = E // H

    def forward(q, k, v, key_padding_mask=None, need_weights=False, attn_mask=None, **kwargs):
        B, T, _ = q.shape
        qkv = torch.nn.functional.linear(q, mha.in_proj_weight, mha.in_proj_bias)
        Q, K, V = (x.reshape(B, T, H, D).transpose(1, 2) for x in qkv.chunk(3, -1))
        scores = Q @ K.transpose(-1, -2) / D ** 0.5
        if key_padding_mask is not None:
            scores = scores.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
        A = torch.softmax(scores, -1)
        A.retain_grad()
        store.append(A)
        out = (A @ V).transpose(1, 2).reshape(B, T, E)
        return mha.out_proj(out), None

    mha.forward = forward


def torch_reference(run_dir, ids):
    m = gaze.models.load_model(str(run_dir / "best"))
    c = json.loads(m.config) if isinstance(m.config, str) else dict(m.config)
    t = TorchClassifier(c).double()
    t.load_state_dict({k: torch.tensor(v.numpy()).double() for k, v in m.state_dict().items()})
    table = t.embedding.weight.detach().clone()
    tokens = torch.tensor([ids])
    lengths = torch.tensor([len(ids)])

    def f(rows, store=None):  # p(target) for each row of embeddings [n, T, E]
        t.embedding = FixedRows(rows)
        if store is not None:
            for layer in t.encoder.layers:
                explicit_attention(layer.self_attn, store)
        n = rows.shape[0]
        return torch.softmax(t(tokens.repeat(n, 1), lengths.repeat(n)), -1)

    return table[tokens[0]][None], f


def test_gradient_methods_equal_torch_autograd(classifier):
    e = gaze.explain(classifier, TEXT, method="all", steps=64)
    ids = e["token_ids"]
    x, f = torch_reference(classifier, ids)
    target = int(f(x)[0].argmax())
    assert e["explained_output"] == f"p({e['prediction'][0]['label']})"
    attr = e["attributions"]
    assert set(attr) == {"attention", "rollout", "gradient_x_input", "integrated_gradients", "attention_x_gradient",
                         "gradient_rollout"}

    # gradient x input
    want = gradient_x_input_rows(lambda rows: f(rows)[:, [target]], x)[0]
    np.testing.assert_allclose(attr["gradient_x_input"], want, rtol=1e-3, atol=1e-6)

    # Integrated Gradients from the zero baseline, midpoint rule over 64 intervals
    steps = 64
    alphas = (torch.arange(steps, dtype=torch.float64) + 0.5) / steps
    points = (alphas[:, None, None] * x[0]).requires_grad_()
    f(points)[:, target].sum().backward()
    ig = (x[0] * points.grad.mean(0)).sum(-1).numpy()
    np.testing.assert_allclose(attr["integrated_gradients"], ig, rtol=1e-3, atol=1e-6)
    info = e["integrated_gradients"]
    with torch.no_grad():
        fx, f0 = float(f(x)[0, target]), float(f(torch.zeros_like(x))[0, target])
    assert info["output"] == pytest.approx(fx, rel=1e-4) and info["baseline_output"] == pytest.approx(f0, rel=1e-4)
    assert info["completeness_gap"] == pytest.approx(ig.sum() - (fx - f0), abs=1e-4)
    assert abs(info["completeness_gap"]) <= 0.01 * abs(fx - f0)

    # attention x gradient: A * dp/dA per layer and head, summed over layers, heads and queries
    store = []
    f(x.clone(), store)[0, target].backward()
    layers = [(A * A.grad)[0].detach().numpy() for A in store]
    got = e["attention_x_gradient"]
    assert got["layers"] == [0, 1]
    for g, want in zip(got["weights"], layers, strict=True):
        np.testing.assert_allclose(g, want, rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(attr["attention_x_gradient"], sum(w.sum((0, 1)) for w in layers), rtol=1e-3,
                               atol=1e-6)
    # Gradient-weighted rollout (Chefer et al. 2021): R = I, R += mean_h (A * dA)^+ R per layer; mean
    # pooling reads the mean of its rows.
    R = np.eye(len(ids))
    for w in layers:
        R = R + np.maximum(w, 0).mean(0) @ R
    want = R.mean(0) / R.mean(0).sum()
    np.testing.assert_allclose(attr["gradient_rollout"], want, rtol=1e-3, atol=1e-6)


def test_one_method_and_baselines(classifier):
    e = gaze.explain(classifier, TEXT, method="integrated_gradients", steps=8, baseline="unknown")
    assert set(e["attributions"]) == {"attention", "rollout", "integrated_gradients"}
    assert "faithfulness" not in e and "attention_x_gradient" not in e
    # The unknown token's embedding as the baseline: f(baseline) is the all-unknown input's output.
    unk = " ".join(["qqqzzz"] * len(TEXT.split()))
    p_unk = gaze.explain(classifier, unk)["prediction"]
    label = e["explained_output"][2:-1]
    want = next(c["score"] for c in gaze.load(classifier)(unk, top_k=2) if c["label"] == label)
    assert e["integrated_gradients"]["baseline_output"] == pytest.approx(want, rel=1e-4), p_unk
    other = gaze.explain(classifier, TEXT, method="gradient_x_input", target="0")
    assert other["explained_output"] == "p(0)"
    with pytest.raises(gaze.DataError, match="target 'maybe' is not a label of this model"):
        gaze.explain(classifier, TEXT, method="gradient_x_input", target="maybe")


def toy_model(tmp_path, word):
    """A trained folder rewritten so the prediction depends on `word` alone: every layer adds
    nothing (zero projections; no final norm, whose scale invariance would make the output jump
    at the zero baseline), only `word` has a non-zero embedding, max pooling keeps it, and the head
    reads it as evidence for label "1"."""
    run_dir = train(tmp_path, {"positions": "none", "pooling": "max", "num_layers": 1, "final_norm": False})
    best = run_dir / "best"
    vocab = (best / "vocab.txt").read_text(encoding="utf-8").split("\n")
    labels = json.loads((best / "labels.json").read_text())
    state = {k: v.numpy().copy() for k, v in gaze.io.load_safetensors(str(best / "model.safetensors"))[0].items()}
    for k in state:
        state[k][...] = 0
    state["embedding.weight"][vocab.index(word)] = np.tile([1.0, -1.0], 8)
    state["head.weight"][labels.index("1"), 0::2] = 0.25  # logit 2: p 0.88, not saturated
    gaze.io.save_safetensors(str(best / "model.safetensors"), {k: gaze.tensor(v) for k, v in state.items()})
    return run_dir


def test_deletion_and_insertion_find_the_one_word_the_model_reads(tmp_path):
    run_dir = toy_model(tmp_path, "great")
    e = gaze.explain(run_dir, TEXT, method="all", steps=16)
    assert e["prediction"][0]["label"] == "1" and e["explained_output"] == "p(1)"
    great = e["tokens"].index("great")
    curves = e["faithfulness"]
    assert set(curves) == {"attention", "rollout", "gradient_x_input", "integrated_gradients",
                           "attention_x_gradient", "gradient_rollout", "random"}
    n = len(e["tokens"])
    full, none = e["prediction"][0]["score"], 0.5  # without the word every logit is 0
    for method in ("gradient_x_input", "integrated_gradients"):
        assert int(np.argmax(e["attributions"][method])) == great
        c = curves[method]
        assert c["fraction"][:2] == [0.0, 1 / n]
        assert c["deletion"][0] == pytest.approx(full, rel=1e-5) and c["deletion"][1] == pytest.approx(none, abs=1e-6)
        assert c["insertion"][0] == pytest.approx(none, abs=1e-6) and c["insertion"][1] == pytest.approx(full, rel=1e-5)
        assert c["deletion_area"] < curves["random"]["deletion_area"]
        assert c["insertion_area"] > curves["random"]["insertion_area"]
    # The word's IG is the whole output difference (the other embeddings are the zero baseline).
    ig = e["attributions"]["integrated_gradients"]
    assert ig[great] == pytest.approx(full - none, rel=0.01) and np.abs(np.delete(ig, great)).max() < 1e-6
    # The curves' areas, by the trapezoid rule over the fractions.
    c = curves["gradient_x_input"]
    assert c["deletion_area"] == pytest.approx(np.trapz(c["deletion"], c["fraction"]), rel=1e-9)


def test_options_that_do_not_apply_are_errors(classifier, tmp_path):
    res = run("explain", "--model", classifier, "--input", TEXT, "--out", tmp_path / "x", "--steps", "0")
    assert res.returncode == 2 and "steps" in res.stderr
    res = run("explain", "--model", classifier, "--input", TEXT, "--out", tmp_path / "x", "--method", "magic")
    assert res.returncode == 2 and "magic not in {attention,gradient_x_input" in res.stderr


def test_page_shows_attributions_and_faithfulness_of_hostile_text(classifier, tmp_path):
    from test_explain import check_clean, open_in_chromium
    text = 'great </script><script>document.title="pwned"</script> <!-- <img src=x onerror=alert(1)> & "c"'
    run("explain", "--model", classifier, "--input", text, "--out", tmp_path, "--method", "all", check=0)
    saved = json.loads((tmp_path / "attribution.json").read_text(encoding="utf-8"))
    assert len(saved["methods"]["attention_x_gradient"]["per_head"]) == 2  # layers, with the page's data
    r = open_in_chromium(tmp_path / "explanation.html", tmp_path / "shot.png")
    check_clean(r)
    assert r["title"].startswith("gaze explain: great </script>")
    assert r["attribution_tokens"] == saved["tokens"] and r["attribution_legend"] == 1
    assert r["attribution_methods"] == list(saved["methods"])
    predicted = saved["explained_output"][2:-1]  # p(LABEL)
    assert r["prediction_text"].startswith(text) and f"{predicted}" in r["prediction_text"]
    assert "predicted, explained below" in r["prediction_text"]
    assert sorted(r["faithfulness_rows"]) == sorted(saved["faithfulness"])


def numpy_head_statistics(explanations):
    import unicodedata
    sums, counts = {}, {}

    def put(name, layer, head, value):
        sums.setdefault(name, np.zeros((2, 2)))[layer, head] += value
        counts.setdefault(name, np.zeros((2, 2)))[layer, head] += 1

    for e in explanations:
        A, tokens = e["attention"], e["tokens"]
        T = len(tokens)
        punct = np.array([all(unicodedata.category(c)[0] in "PS" for c in t) for t in tokens])
        r = e["rollout"].mean(0)
        r = r / r.sum() * T
        for layer in range(A.shape[0]):
            for head in range(A.shape[1]):
                for q in range(T):
                    a = A[layer, head, q].astype(np.float64)
                    put("entropy", layer, head, -(a[a > 0] * np.log(a[a > 0])).sum())
                    put("framing", layer, head, 0.0)  # the word tokenizer adds no framing tokens
                    put("punctuation", layer, head, a[punct].sum())
                    if q > 0:
                        put("previous", layer, head, a[q - 1])
                    if q + 1 < T:
                        put("next", layer, head, a[q + 1])
                    put("self", layer, head, a[q])
                    put("rollout", layer, head, (a * r).sum())
    return {k: sums[k] / counts[k] for k in sums}


def test_faithfulness_over_a_data_set(classifier, tmp_path):
    import xml.etree.ElementTree as ET
    from cli_helpers import SENTIMENT
    res = run("explain", "--model", classifier, "--data", SENTIMENT, "--limit", "12", "--out", tmp_path, check=0)
    summary = json.loads((tmp_path / "faithfulness.json").read_text())
    assert summary["inputs"] == 12 and len(summary["fraction"]) == 21
    methods = {m["method"]: m for m in summary["methods"]}
    assert set(methods) == {"attention", "rollout", "gradient_x_input", "integrated_gradients",
                            "attention_x_gradient", "gradient_rollout", "random"}
    # The mean areas are the inputs' own, as gaze.explain gives them one by one.
    texts = [r[2] for r in sentiment_rows(12)]
    each = [gaze.explain(classifier, t, method="all")["faithfulness"] for t in texts]
    for name, m in methods.items():
        assert m["deletion_area"] == pytest.approx(np.mean([c[name]["deletion_area"] for c in each]), rel=1e-6)
        assert m["insertion_area"] == pytest.approx(np.mean([c[name]["insertion_area"] for c in each]), rel=1e-6)
    scores = [m["insertion_area"] - m["deletion_area"] for m in summary["methods"]]
    assert scores == sorted(scores, reverse=True) and summary["most_faithful"] == summary["methods"][0]["method"]
    assert f"most faithful: {summary['most_faithful']}" in res.stdout
    svg = ET.parse(tmp_path / "faithfulness.svg").getroot()
    labels = {t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")}
    assert set(methods) <= labels and {"deletion", "insertion"} <= labels
    assert len(list(svg.iter("{http://www.w3.org/2000/svg}polyline"))) == 2 * len(methods)
    # What each head does: the statistics against numpy on the same inputs' attention.
    heads = json.loads((tmp_path / "head_statistics.json").read_text())
    assert heads["inputs"] == 12 and heads["layers"] == [0, 1] and heads["num_heads"] == 2
    want = numpy_head_statistics([gaze.explain(classifier, t) for t in texts])
    for name, values in want.items():
        np.testing.assert_allclose(heads["statistics"][name], values, rtol=1e-4, atol=1e-6, err_msg=name)
    svg = ET.parse(tmp_path / "head_statistics.svg").getroot()
    assert set(want) <= {t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")}
    assert "entropy" in res.stdout and "punctuation" in res.stdout
    res = run("explain", "--model", classifier, "--data", SENTIMENT, "--input", "x", "--out", tmp_path)
    assert res.returncode == 2 and "give one of --text" in res.stderr


def test_notebooks_render_the_page(classifier):
    import html
    import re
    text = 'dull <script>alert("x")</script> & "quoted"'
    e = gaze.explain(classifier, text, method="gradient_x_input")
    assert isinstance(e, dict) and isinstance(e, gaze.Explanation) and "attributions" in e
    page = e.html()
    assert page.startswith("<!DOCTYPE html>") and 'id="gaze-data"' in page and "<script>alert" not in page
    frame = e._repr_html_()
    srcdoc = re.fullmatch(r'<iframe srcdoc="([^"]*)" style="[^"]*" sandbox="allow-scripts"></iframe>', frame)
    assert srcdoc and html.unescape(srcdoc.group(1)) == page
