"""Hugging Face BERT-family checkpoints imported into gaze: WordPiece with BertTokenizer's semantics
against reference encodings; a BERT and a DistilBERT built in torch from the published
architecture (tests/python/bert_reference.py, Hugging Face names) saved as Hugging Face folders,
imported, and compared — hidden states, pooled output and every parameter's gradient (rel <= 1e-4);
checkpoint variants (bert. prefix with a task head, float16, old gamma/beta names); fine-tuning an
imported BERT for classification and tagging from YAML; explain on it; bad checkpoints named."""
import gzip
import json

import numpy as np
import pytest
import torch

import bert_reference as ref
import gaze
from cli_helpers import DATA, conll_sentences, run, sentiment_rows, write_conll, write_tsv, write_yaml

FIX = DATA / "bert"
CONFIG = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32,
          "max_position_embeddings": 64, "type_vocab_size": 2}


@pytest.fixture(scope="module")
def vocab():
    with gzip.open(FIX / "vocab.txt.gz", "rt", encoding="utf-8") as f:
        return f.read().splitlines()


@pytest.fixture(scope="module")
def tokenizer(vocab, tmp_path_factory):
    d = tmp_path_factory.mktemp("wp")
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (d / "tokenizer.json").write_text(json.dumps({"kind": "wordpiece", "vocab": "vocab.txt", "lowercase": True}))
    return gaze.text.load_tokenizer(str(d))


def test_wordpiece_matches_bert_tokenizer(tokenizer):
    with gzip.open(FIX / "wordpiece_reference.json.gz", "rt", encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    assert len(cases) >= 60
    for c in cases:
        assert tokenizer.tokenize(c["text"]) == c["tokens"], c["text"]
        assert tokenizer.encode(c["text"]) == c["ids"], c["text"]
    assert tokenizer.tokenize("Héllo WÖRLD") == ["hello", "world"]  # lower-cased, accents stripped
    assert tokenizer.tokenize("hello[SEP]world") == ["hello", "[SEP]", "world"]
    assert tokenizer.tokenize("x" * 101) == ["[UNK]"]
    assert tokenizer.decode(tokenizer.encode("the unaffable dog")) == "the unaffable dog"


def _build(kind, vocab, seed=7):
    torch.manual_seed(seed)
    cfg = dict(CONFIG, vocab_size=len(vocab))
    if kind == "bert":
        model = ref.TinyBert(cfg)
    else:
        model = ref.TinyDistilBert({"vocab_size": len(vocab), "dim": 16, "n_layers": 2, "n_heads": 2,
                                    "hidden_dim": 32, "max_position_embeddings": 64})
    ref.randomize_parameters_(model, seed)
    return model.eval()


def _import(folder, out):
    ignored = gaze.import_bert(folder, out)
    model = gaze.models.load_model(str(out))
    model.eval()
    return model, ignored


def _batch(vocab):
    tok_ids = {t: i for i, t in enumerate(vocab)}
    texts = [["[CLS]", "the", "movie", "was", "great", "!", "[SEP]"], ["[CLS]", "i", "hate", "it", "[SEP]"]]
    T = max(map(len, texts))
    ids = np.zeros((2, T), dtype=np.int64)
    for b, t in enumerate(texts):
        ids[b, :len(t)] = [tok_ids[x] for x in t]
    lengths = np.array([len(t) for t in texts])
    return ids, lengths


# gaze name -> the Hugging Face tensors it is made of (concatenated along dim 0)
def _hf_names(name, kind):
    layer = lambda i: (f"encoder.layer.{i}." if kind == "bert" else f"transformer.layer.{i}.")  # noqa: E731
    if name.startswith("encoder.layers."):
        i, rest = name.split(".", 3)[2], name.split(".", 3)[3]
        h = layer(i)
        table = {
            "bert": {"self_attn.in_proj_": ["attention.self.query.", "attention.self.key.", "attention.self.value."],
                     "self_attn.out_proj.": ["attention.output.dense."], "norm1.": ["attention.output.LayerNorm."],
                     "linear1.": ["intermediate.dense."], "linear2.": ["output.dense."],
                     "norm2.": ["output.LayerNorm."]},
            "distilbert": {"self_attn.in_proj_": ["attention.q_lin.", "attention.k_lin.", "attention.v_lin."],
                           "self_attn.out_proj.": ["attention.out_lin."], "norm1.": ["sa_layer_norm."],
                           "linear1.": ["ffn.lin1."], "linear2.": ["ffn.lin2."], "norm2.": ["output_layer_norm."]},
        }[kind]
        for k, parts in table.items():
            if rest.startswith(k):
                suffix = rest[len(k):]
                return [h + p + suffix for p in parts]
    fixed = {"embedding.weight": "embeddings.word_embeddings.weight",
             "positions.weight": "embeddings.position_embeddings.weight",
             "token_type_embedding.weight": "embeddings.token_type_embeddings.weight",
             "embedding_norm.weight": "embeddings.LayerNorm.weight", "embedding_norm.bias": "embeddings.LayerNorm.bias",
             "pooler.weight": "pooler.dense.weight", "pooler.bias": "pooler.dense.bias"}
    return [fixed[name]]


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
def test_import_matches_outputs_and_gradients(kind, vocab, tmp_path):
    model = _build(kind, vocab)
    ref.save_hf_folder(model, tmp_path / "hf", vocab)
    g, ignored = _import(tmp_path / "hf", tmp_path / "gaze")
    assert ignored == []
    ids, lengths = _batch(vocab)
    mask = torch.tensor((np.arange(ids.shape[1])[None] < lengths[:, None]).astype(np.int64))
    out = model(torch.tensor(ids), mask)
    hidden_t = out[0] if isinstance(out, tuple) else out
    hidden_g = g.hidden_states(gaze.tensor(ids), gaze.tensor(lengths))
    for b, n in enumerate(lengths):
        a, r = hidden_g.detach().numpy()[b, :n], hidden_t.detach().numpy()[b, :n]
        assert np.abs(a - r).max() <= 1e-4 * np.abs(r).max()
    if kind == "bert":  # the [CLS] pooler, as gaze's sentence embedding
        pooled = g.forward(gaze.tensor(ids), gaze.tensor(lengths)).detach().numpy()
        np.testing.assert_allclose(pooled, out[1].detach().numpy(), rtol=1e-4, atol=1e-5)
    # Gradients of the same loss on the real positions, for every parameter.
    weights = np.random.default_rng(0).standard_normal(hidden_t.shape).astype(np.float32)
    keep = mask.numpy()[:, :, None].astype(np.float32)
    (hidden_t * torch.tensor(weights * keep)).sum().backward()
    (hidden_g * gaze.tensor(weights * keep)).sum().backward()
    hf = dict(model.named_parameters())
    checked = 0
    for name, p in g.named_parameters():
        if name.startswith("pooler."):
            continue  # not part of the hidden states
        want = torch.cat([hf[n].grad.reshape(-1) for n in _hf_names(name, kind)]).numpy()
        got = p.grad.numpy().reshape(-1)
        assert np.abs(got - want).max() <= 1e-4 * max(np.abs(want).max(), 1e-6), name
        checked += 1
    assert checked == len([n for n in hf if not n.startswith("pooler.")]) - (2 * 2 * CONFIG["num_hidden_layers"])



def test_checkpoint_variants_import_alike(vocab, tmp_path):
    model = _build("bert", vocab)
    ref.save_hf_folder(model, tmp_path / "plain", vocab)
    base, _ = _import(tmp_path / "plain", tmp_path / "g_plain")
    ids, lengths = _batch(vocab)
    want = base.hidden_states(gaze.tensor(ids), gaze.tensor(lengths)).detach().numpy()
    head = {"classifier.weight": np.ones((2, 16), np.float32), "classifier.bias": np.zeros(2, np.float32)}
    variants = {"prefixed": dict(prefix="bert.", extra_tensors=head), "f16": dict(dtype="F16"),
                "legacy": dict(legacy_layernorm_names=True, include_position_ids=True)}
    for name, opts in variants.items():
        ref.save_hf_folder(model, tmp_path / name, vocab, **opts)
        g, ignored = _import(tmp_path / name, tmp_path / f"g_{name}")
        got = g.hidden_states(gaze.tensor(ids), gaze.tensor(lengths)).detach().numpy()
        tol = 5e-2 if name == "f16" else 1e-6
        assert np.abs(got - want).max() <= tol * np.abs(want).max(), name
        assert sorted(ignored) == (["classifier.bias", "classifier.weight"] if name == "prefixed" else []), name


def test_fine_tune_imported_bert_for_classification_and_tagging(vocab, tmp_path):
    ref.save_hf_folder(_build("bert", vocab), tmp_path / "hf", vocab)
    res = run("import", "bert", tmp_path / "hf", "--out", tmp_path / "bert", check=0)
    assert "bert (" in res.stderr
    rows = sentiment_rows()
    train = write_tsv(tmp_path / "train.tsv", rows[:200])
    dev = write_tsv(tmp_path / "dev.tsv", rows[1500:1540])
    cfg = write_yaml(tmp_path / "c.yaml", {
        "task": "classify", "output": str(tmp_path / "cls"),
        "data": {"train": str(train), "dev": str(dev), "max_length": 48},
        "model": {"pretrained": str(tmp_path / "bert")},
        "train": {"epochs": 2, "batch_size": 16, "lr": 0.001, "backbone_lr": 0.0005, "warmup_steps": 5,
                  "layer_lr_decay": 0.8}})
    res = run("train", cfg, threads=2, check=0)
    assert "pretrained: " in res.stderr and "tokenizer: wordpiece" in res.stderr
    cfg_json = json.loads((tmp_path / "cls" / "best" / "config.json").read_text())
    assert cfg_json["pooling"] == "cls" and cfg_json["pooler"] == "tanh" and cfg_json["token_types"] == 2
    out = json.loads(run("predict", "--model", tmp_path / "cls", stdin="Great phone!\n", check=0).stdout)
    assert out["label"] in ("0", "1")
    e = gaze.explain(tmp_path / "cls", "Great phone!")
    assert e["tokens"] == ["[CLS]", "great", "phone", "!", "[SEP]"] and e["attention"].shape == (2, 2, 5, 5)
    # Tagging: each word's first piece, after [CLS].
    sents = conll_sentences(DATA / "wnut17" / "train.conll")[:80]
    tr = write_conll(tmp_path / "t.conll", sents)
    cfg = write_yaml(tmp_path / "t.yaml", {
        "task": "tag", "output": str(tmp_path / "tag"),
        "data": {"train": str(tr), "dev": str(tr), "max_length": 64},
        "model": {"pretrained": str(tmp_path / "bert"), "crf": True},
        "train": {"epochs": 2, "batch_size": 16, "lr": 0.001, "warmup_steps": 2}})
    run("train", cfg, threads=2, check=0)
    out = json.loads(run("predict", "--model", tmp_path / "tag", stdin="Jane Austen lived in Bath\n", check=0).stdout)
    assert out["words"] == ["Jane", "Austen", "lived", "in", "Bath"] and len(out["tags"]) == 5


def test_bad_checkpoints_name_the_file_and_the_key(vocab, tmp_path):
    model = _build("bert", vocab)
    out = tmp_path / "out"

    def attempt(name, **opts):
        ref.save_hf_folder(model, tmp_path / name, vocab, **opts)
        return tmp_path / name

    folder = attempt("missing")
    tensors = ref.read_safetensors(folder / "model.safetensors")[0]
    del tensors["encoder.layer.1.output.dense.weight"]
    ref.write_safetensors(folder / "model.safetensors", tensors)
    res = run("import", "bert", folder, "--out", out)
    assert res.returncode == 2 and "model.safetensors: missing weight 'encoder.layer.1.output.dense.weight'" in res.stderr
    folder = attempt("extra", extra_tensors={"encoder.layer.9.surprise": np.zeros(3, np.float32)})
    res = run("import", "bert", folder, "--out", out)
    assert res.returncode == 2 and "unexpected weight 'encoder.layer.9.surprise'" in res.stderr
    folder = attempt("shape")
    config = json.loads((folder / "config.json").read_text())
    config["intermediate_size"] = 48
    (folder / "config.json").write_text(json.dumps(config))
    res = run("import", "bert", folder, "--out", out)
    assert res.returncode == 2 and "'encoder.layer.0.intermediate.dense.weight' is [32, 16], expected [48, 16]" in res.stderr
    folder = attempt("vocab")
    (folder / "vocab.txt").write_text("\n".join(vocab[:-5]) + "\n")
    res = run("import", "bert", folder, "--out", out)
    assert res.returncode == 2 and "vocabulary has 30517 pieces but config.json's vocab_size is 30522" in res.stderr
    folder = attempt("type")
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "roberta"
    (folder / "config.json").write_text(json.dumps(config))
    res = run("import", "bert", folder, "--out", out)
    assert res.returncode == 2 and "model_type 'roberta'; gaze imports bert and distilbert" in res.stderr
    (folder / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    config["model_type"] = "bert"
    (folder / "config.json").write_text(json.dumps(config))
    res = run("import", "bert", folder, "--out", out)
    assert res.returncode == 2 and "model.safetensors" in res.stderr
    assert not out.exists()
