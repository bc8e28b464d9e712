"""`gaze train/eval/predict/translate` for sequence-to-sequence tasks, end to end on real text: a
copy-like task on 64 Bible verses (both architectures reach BLEU >= 90 on their training data), the
CMUdict spelling -> phonemes data with several pronunciations per word, decoding options, and every
bad-input case of parallel data."""
import gzip
import json
import re

import pytest

from cli_helpers import DATA, run, write_yaml

BIBLE = DATA / "bible" / "bible_en-kjv_es-rv1909.tsv.gz"
CMUDICT = DATA / "cmudict" / "cmudict04_g2p.tsv.gz"


def bible_rows(n):
    with gzip.open(BIBLE, "rt", encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    return rows[:n]


def seq2seq_config(path, train_file, dev_file, output, architecture="transformer", **sections):
    model = ({"d_model": 64, "nhead": 4, "num_encoder_layers": 2, "num_decoder_layers": 2,
              "dim_feedforward": 128, "dropout": 0.0}
             if architecture == "transformer" else
             {"embed_dim": 48, "hidden_size": 48, "decoder_hidden_size": 64, "attention_dim": 48,
              "readout_dim": 64, "dropout": 0.0})
    base = {
        "task": "translate",
        "output": str(output),
        "data": {"train": str(train_file), "dev": str(dev_file), "source_column": "en",
                 "target_column": "copy", "max_length": 40, "max_target_length": 40},
        "tokenizer": {"kind": "word"},
        "model": {"architecture": architecture, **model},
        "decode": {"beam_size": 3},
        "train": {"epochs": 80, "batch_size": 16, "lr": 0.003, "warmup_steps": 10, "log_every": 20,
                  "weight_decay": 0.0, "eval_every": 100, "metric": "bleu"},
    }
    return write_yaml(path, base, **sections)


def copy_pairs(d, n=64):
    """n short verses, as a copy task (target = the source, lower-cased: a little more than copying)."""
    rows = [r for r in bible_rows(400) if len(r[1].split()) <= 14][:n]
    path = d / "copy.tsv"
    path.write_text("en\tcopy\n" + "".join(f"{en}\t{en.lower()}\n" for _, en, _ in rows), encoding="utf-8")
    return path, [(en, en.lower()) for _, en, _ in rows]


@pytest.fixture(scope="module", params=["transformer", "rnn"])
def copy_model(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(request.param)
    data, pairs = copy_pairs(d)
    epochs = 80 if request.param == "transformer" else 150
    cfg = seq2seq_config(d / "run.yaml", data, data, d / "run", request.param, train={"epochs": epochs})
    res = run("train", cfg, threads=2, check=0)
    return d, data, pairs, res


def test_copy_task_reaches_bleu_90_on_its_training_data(copy_model):
    d, data, pairs, res = copy_model
    r = json.loads(run("eval", "--model", d / "run", "--data", data, "--report", "json", check=0).stdout)
    assert r["bleu"] >= 90, res.stderr[-3000:]
    assert r["pairs"] == r["sources"] == 64 and r["chrf"] >= 90 and r["per"] <= 10
    text = run("eval", "--model", d / "run", "--data", data, "--method", "greedy", check=0).stdout
    assert text.startswith("BLEU = ") and "chrF2 = " in text and "decoding: greedy" in text


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_reduced_precision_translates_as_well_and_quantized_folders_match(copy_model, precision):
    """Both architectures in bf16 and int8 (the Transformer's tied output projection and the LSTMs'
    recurrent matrices included): BLEU on the training pairs stays within 2 of fp32's (tiny models,
    64 verses: one changed word moves BLEU by about 1), and a quantized folder translates exactly as
    the conversion in memory."""
    d, data, pairs, _ = copy_model
    probe = run("translate", "--model", d / "run", "--precision", precision, stdin="x\n", check=0)
    if "running fp32" in probe.stderr:
        pytest.skip(f"this CPU has no {precision} instructions")
    bleu = {p: json.loads(run("eval", "--model", d / "run", "--data", data, "--report", "json",
                              "--precision", p, check=0).stdout)["bleu"] for p in ("fp32", precision)}
    assert bleu[precision] >= bleu["fp32"] - 2, bleu
    out = d / f"q-{precision}"
    if not out.exists():
        run("quantize", d / "run", "--out", out, "--precision", precision, check=0)
    src = "\n".join(en for en, _ in pairs[:16]) + "\n"
    mem = run("translate", "--model", d / "run", "--precision", precision, "--scores", stdin=src, check=0).stdout
    assert run("translate", "--model", out, "--scores", stdin=src, check=0).stdout == mem


def test_predict_and_translate_outputs(copy_model):
    d, _, pairs, _ = copy_model
    src = "\n".join(en for en, _ in pairs[:5]) + "\n"
    out = [json.loads(x) for x in run("predict", "--model", d / "run", stdin=src, check=0).stdout.splitlines()]
    assert [set(o) for o in out] == [{"translation_text"}] * 5
    plain = run("translate", "--model", d / "run", stdin=src, check=0).stdout.splitlines()
    assert plain == [o["translation_text"] for o in out]
    # --log-throughput changes nothing on stdout and counts what it wrote
    logged = run("translate", "--model", d / "run", "--log-throughput", stdin=src, check=0)
    assert logged.stdout.splitlines() == plain
    m = re.fullmatch(r"gaze: translated 5 lines into (\d+) words in ([0-9.]+) s \((\d+) words/s\); "
                     r"loading the model took ([0-9.]+) s\n", logged.stderr)
    assert m, logged.stderr
    assert int(m[1]) == sum(len(x.split()) for x in plain) and float(m[2]) > 0 and float(m[4]) > 0
    words, secs = int(m[1]), float(m[2])  # the seconds are printed to the millisecond
    assert words / (secs + 5e-4) - 1 <= int(m[3]) <= words / max(secs - 5e-4, 1e-9) + 1
    # beam size 1 is greedy search
    b1 = run("translate", "--model", d / "run", "--beam-size", "1", stdin=src, check=0).stdout
    assert b1 == run("translate", "--model", d / "run", "--method", "greedy", stdin=src, check=0).stdout
    rich = [json.loads(x) for x in run("predict", "--model", d / "run", "--nbest", "3", "--scores", "--alignment",
                                       stdin=src, check=0).stdout.splitlines()]
    for o, (en, _) in zip(rich, pairs):
        assert o["score"] <= 0 and o["log_prob"] <= 0
        assert len(o["nbest"]) == 3 and o["nbest"][0]["translation_text"] == o["translation_text"]
        assert [h["score"] for h in o["nbest"]] == sorted((h["score"] for h in o["nbest"]), reverse=True)
        a = o["alignment"]
        assert a["source_tokens"][-1] == "</s>" and len(a["source_tokens"]) >= len(en.split()) + 1
        assert len(a["weights"]) == len(a["target_tokens"]) == len(a["hard"])
        for row, h in zip(a["weights"], a["hard"]):
            assert len(row) == len(a["source_tokens"]) and abs(sum(row) - 1) < 1e-4
            assert row[h] == max(row)
    if "transformer" in str(d):  # another layer's cross-attention: same translation, other weights
        first = [json.loads(x) for x in run("predict", "--model", d / "run", "--alignment", "--alignment-layer", "0",
                                            stdin=src, check=0).stdout.splitlines()]
        assert [o["translation_text"] for o in first] == [o["translation_text"] for o in rich]
        assert first[0]["alignment"]["weights"] != rich[0]["alignment"]["weights"]
        bad = run("predict", "--model", d / "run", "--alignment", "--alignment-layer", "7", stdin=src, check=2)
        assert "alignment layer 7 out of range for a decoder of 2 layers" in bad.stderr


def test_a_batch_decodes_each_source_as_alone(copy_model):
    # Sources of different lengths finish at different steps; the searches drop their rows from
    # the batch as they finish. Every source must still get exactly what it gets alone.
    import gaze
    d, _, pairs, _ = copy_model
    model = gaze.load(str(d / "run"))
    sources = [en for en, _ in pairs[:12]] + ["And", "the"]
    for options in ({}, {"method": "greedy"}, {"nbest": 3, "scores": True, "alignment": True}):
        alone = [model([s], **options)[0] for s in sources]
        assert model(sources, **options) == alone, options


def test_two_threads_translate_as_one_does(copy_model):
    # With several threads, the batches are halved and decoded side by side, one thread each: the
    # output must be what one thread gives, scores, n-best lists and alignments included.
    d, _, pairs, _ = copy_model
    src = "\n".join(en for en, _ in pairs) + "\n"  # 64 sources: one batch, halved for 2 threads
    for args in (("translate", "--scores"), ("translate", "--method", "greedy"),
                 ("predict", "--nbest", "3", "--scores", "--alignment")):
        one = run(*args, "--model", d / "run", stdin=src, threads=1, check=0).stdout
        assert len(one.splitlines()) == 64
        assert run(*args, "--model", d / "run", stdin=src, threads=2, check=0).stdout == one, args


def test_g2p_with_several_pronunciations(tmp_path):
    with gzip.open(CMUDICT, "rt", encoding="utf-8") as f:
        lines = [next(f) for _ in range(400)]
    (tmp_path / "g2p.tsv").write_text("".join(lines), encoding="utf-8")
    words = [line.split("\t")[0] for line in lines[1:]]
    cfg = seq2seq_config(tmp_path / "run.yaml", tmp_path / "g2p.tsv", tmp_path / "g2p.tsv", tmp_path / "run",
                         data={"source_column": "word", "target_column": "phones"},
                         tokenizer={"kind": "char"}, target_tokenizer={"kind": "word"},
                         train={"epochs": 2, "metric": "wer"})
    run("train", cfg, check=0)
    assert (tmp_path / "run" / "best" / "target_tokenizer" / "tokenizer.json").exists()
    r = json.loads(run("eval", "--model", tmp_path / "run", "--data", tmp_path / "g2p.tsv", "--report", "json",
                       check=0).stdout)
    assert r["pairs"] == len(words) and r["sources"] == len(set(words)) < len(words)
    assert 0 <= r["wer"] <= 100 and 0 <= r["per"]


def test_two_aligned_files_and_their_errors(tmp_path):
    rows = bible_rows(30)
    src, tgt = tmp_path / "train.en", tmp_path / "train.es"
    src.write_text("".join(r[1] + "\n" for r in rows), encoding="utf-8")
    tgt.write_text("".join(r[2] + "\n" for r in rows), encoding="utf-8")
    cfg = seq2seq_config(tmp_path / "run.yaml", src, src, tmp_path / "run",
                         data={"train_target": str(tgt), "dev_target": str(tgt)},
                         train={"epochs": 1})
    run("train", cfg, check=0)
    ok = run("eval", "--model", tmp_path / "run", "--data", src, "--target", tgt, check=0)
    assert "30 pairs" in ok.stdout
    short = tmp_path / "short.es"
    short.write_text("".join(r[2] + "\n" for r in rows[:29]), encoding="utf-8")
    r = run("eval", "--model", tmp_path / "run", "--data", src, "--target", short, check=2)
    assert f"{src}: 30 lines but {short} has 29; the two files must be aligned line by line" in r.stderr
    holes = tmp_path / "holes.es"
    holes.write_text("".join((r[2] if i != 4 else "  ") + "\n" for i, r in enumerate(rows)), encoding="utf-8")
    r = run("eval", "--model", tmp_path / "run", "--data", src, "--target", holes, check=2)
    assert f"{holes}:5: empty line" in r.stderr
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("en\tcopy\nIn the beginning\t\n", encoding="utf-8")
    r = run("eval", "--model", tmp_path / "run", "--data", tsv, check=2)
    assert f"{tsv}:2:" in r.stderr
    bad = seq2seq_config(tmp_path / "bad.yaml", src, src, tmp_path / "bad", data={"test_target": str(tgt)})
    assert "data.test_target is set but data.test" in run("train", bad, check=2).stderr
    cls = run("translate", "--model", tmp_path / "nowhere", stdin="x\n", check=2)
    assert "not a model folder" in cls.stderr
