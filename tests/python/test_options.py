"""Options declared once: the same decoding, prediction and explanation options reach the run's YAML,
task.json, the command-line flags and Python keyword arguments, with the same checks; model folders
written before an option existed still load. Small real models: a copy task on review sentences and a
sentiment classifier."""
import json
import shutil

import pytest

import gaze
from cli_helpers import ROOT, run, sentiment_rows, write_config, write_tsv, write_yaml


def copy_rows(n=60):
    """Review sentences of 4-12 words, to be copied in lower case."""
    rows = [text for _, _, text in sentiment_rows() if 4 <= len(text.split()) <= 12][:n]
    return [(t, t.lower()) for t in rows]


@pytest.fixture(scope="module")
def copy_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("copy")
    pairs = copy_rows()
    data = write_tsv(d / "copy.tsv", pairs, header=("source", "target"))
    cfg = write_yaml(d / "run.yaml", {
        "task": "translate",
        "output": str(d / "run"),
        "data": {"train": str(data), "dev": str(data), "max_length": 32, "max_target_length": 32},
        "tokenizer": {"kind": "word", "lowercase": True},
        "model": {"architecture": "transformer", "d_model": 32, "nhead": 2, "num_encoder_layers": 1,
                  "num_decoder_layers": 1, "dim_feedforward": 64, "dropout": 0.0},
        "decode": {"beam_size": 2},
        "train": {"epochs": 30, "batch_size": 16, "lr": 0.003, "warmup_steps": 5, "weight_decay": 0.0,
                  "metric": "bleu", "log_every": 50},
    })
    run("train", cfg, threads=2, check=0)
    return d, data, pairs


def test_max_length_caps_outputs_in_every_front_end(copy_model):
    d, data, pairs = copy_model
    model = d / "run"
    src = "".join(s + "\n" for s, _ in pairs[:20])
    free = run("translate", "--model", model, stdin=src, check=0).stdout.splitlines()
    assert max(len(t.split()) for t in free) > 3, free  # the cap below has something to cut
    # max_length counts EOS: at most 3 generated tokens, so at most 3 words.
    capped = run("translate", "--model", model, "--max-length", "3", stdin=src, check=0).stdout.splitlines()
    assert len(capped) == 20 and max(len(t.split()) for t in capped) <= 3
    assert capped == [" ".join(t.split()[:3]) for t in capped]
    predicted = [json.loads(x) for x in run("predict", "--model", model, "--max-length", "3", "--method", "greedy",
                                            stdin=src, check=0).stdout.splitlines()]
    assert max(len(p["translation_text"].split()) for p in predicted) <= 3
    pipe = gaze.load(model)
    assert pipe([s for s, _ in pairs[:20]], max_length=3, method="greedy") == predicted
    assert pipe(pairs[0][0], max_length=3, method="greedy") == predicted[0]
    # eval decodes with the flag too: capped outputs score lower.
    full = json.loads(run("eval", "--model", model, "--data", data, "--report", "json", check=0).stdout)
    short = json.loads(run("eval", "--model", model, "--data", data, "--report", "json", "--max-length", "3",
                           check=0).stdout)
    assert short["decode"]["max_length"] == 3 and full["decode"]["max_length"] == 0
    assert short["bleu"] < full["bleu"]
    # The run's decode section is kept in task.json through the same declaration.
    task = json.loads((model / "best" / "task.json").read_text())
    assert task["decode"] == {"method": "beam", "beam_size": 2, "length_penalty": 1.0, "max_length_ratio": 2.0,
                              "max_length_offset": 10, "max_length": 0, "nbest": 1}


def test_a_model_folder_without_the_new_keys_still_loads(copy_model, tmp_path):
    d, _, pairs = copy_model
    old = tmp_path / "old"
    shutil.copytree(d / "run" / "best", old)
    task = json.loads((old / "task.json").read_text())
    del task["decode"]["max_length"]  # as written before the option existed
    (old / "task.json").write_text(json.dumps(task))
    src = "".join(s + "\n" for s, _ in pairs[:5])
    assert (run("translate", "--model", old, stdin=src, check=0).stdout
            == run("translate", "--model", d / "run", stdin=src, check=0).stdout)


@pytest.mark.parametrize("args,message", [
    (["--beam-size", "two"], "--beam-size: expected an integer, got 'two'"),
    (["--beam-size", "0"], "'beam_size' must be in [1,"),
    (["--length-penalty", "1e999"], "--length-penalty: expected a number"),
    (["--max-length", "-1"], "'max_length' must be in [0,"),
    (["--method", "beem"], "--method: beem not in"),
    (["--aggregation", "mean"], "--aggregation: mean not in"),
])
def test_flag_values_are_checked_by_the_declaration(copy_model, args, message):
    d, _, _ = copy_model
    res = run("predict", "--model", d / "run", *args, stdin="a b c\n", check=2)
    assert message in res.stderr and res.stdout == ""


def test_eval_flags_of_another_task_are_errors(copy_model):
    d, data, _ = copy_model
    res = run("eval", "--model", d / "run", "--data", data, "--unknown-tags", "wrong", check=2)
    assert "gaze: error: --unknown-tags does not apply to a translate model" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_python_keyword_arguments_are_checked_by_the_declaration(copy_model):
    d, _, pairs = copy_model
    pipe = gaze.load(d / "run")
    with pytest.raises(gaze.DataError, match="unknown key 'beamsize'; valid keys: scores, alignment"):
        pipe(pairs[0][0], beamsize=2)
    with pytest.raises(gaze.DataError, match="'beam_size' must be an integer"):
        pipe(pairs[0][0], beam_size="2")
    with pytest.raises(gaze.DataError, match="'method' must be one of beam, greedy, got 'beem'"):
        pipe(pairs[0][0], method="beem")
    # n-best lists widen the model's beam as the CLI does; above a beam_size given beside, an error.
    out = pipe(pairs[0][0], nbest=3)
    assert len(out["nbest"]) == 3
    with pytest.raises(gaze.DataError, match="nbest 3 is more than beam_size 1"):
        pipe(pairs[0][0], nbest=3, beam_size=1)
    e = gaze.explain(pipe, pairs[0][0], beam_size=1, max_length=2)
    assert len(e["output_tokens"]) <= 2


def test_classifier_folder_from_before_backbones_loads(tmp_path):
    rows = sentiment_rows(240)
    train, dev = write_tsv(tmp_path / "train.tsv", rows[:200]), write_tsv(tmp_path / "dev.tsv", rows[200:])
    cfg = write_config(tmp_path / "run.yaml", train, dev, tmp_path / "run", train={"epochs": 2})
    run("train", cfg, check=0)
    config = json.loads((tmp_path / "run" / "best" / "config.json").read_text())
    assert config["backbone"] == "transformer"
    old = tmp_path / "old"
    shutil.copytree(tmp_path / "run" / "best", old)
    del config["backbone"]
    (old / "config.json").write_text(json.dumps(config))
    texts = "".join(t + "\n" for _, _, t in rows[200:220])
    assert (run("predict", "--model", old, stdin=texts, check=0).stdout
            == run("predict", "--model", tmp_path / "run", stdin=texts, check=0).stdout)
    # An old run's config.yaml resumes: the keys it has are still keys.
    res = run("train", cfg, "--resume", tmp_path / "run", "--set", "train.epochs=3", check=0)
    assert "trained" in res.stderr


@pytest.mark.parametrize("example", sorted(p.name for p in (ROOT / "examples").glob("*/*.yaml")))
def test_example_configs_load_and_their_dump_reads_back_the_same(example, tmp_path):
    path = next((ROOT / "examples").glob(f"*/{example}"))
    dumped = run("train", path, "--dump-config", check=0).stdout
    again = tmp_path / "dumped.yaml"
    again.write_text(dumped)
    assert run("train", again, "--dump-config", check=0).stdout == dumped


def test_python_and_cli_accept_what_they_did_before(tmp_path):
    import numpy as np
    rows = sentiment_rows(200)
    train, dev = write_tsv(tmp_path / "train.tsv", rows[:160]), write_tsv(tmp_path / "dev.tsv", rows[160:])
    cfg = write_config(tmp_path / "run.yaml", train, dev, tmp_path / "run", train={"epochs": 1})
    run("train", cfg, check=0)
    pipe = gaze.load(tmp_path / "run")
    text = rows[0][2]
    assert isinstance(pipe(text), dict) and pipe(text, top_k=0) == pipe(text)  # 0: the best label
    assert len(pipe(text, 2)) == 2 and pipe(text, np.int64(2)) == pipe(text, top_k=2)
    e = pipe.explain(text, [0], np.array([1]))  # positional layers and heads, numpy values
    assert e["heads"] == [1]
    with pytest.raises(gaze.DataError, match="options"):
        pipe(text, max_length_ratio=float("nan"))
    # enumerated flags take their names only
    res = run("eval", "--model", tmp_path / "run", "--data", dev, "--report", "1", check=2)
    assert "--report: 1 not in {text,json}" in res.stderr


def test_python_options_of_another_task_are_errors(copy_model):
    d, _, pairs = copy_model
    pipe = gaze.load(d / "run")
    with pytest.raises(gaze.DataError, match=r"predict \(translate model\): unknown key 'top_k'"):
        pipe(pairs[0][0], top_k=2)
