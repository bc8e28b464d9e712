"""The command line behaves as its peers' do: a mistyped command or option is named with the
nearest valid one; options that mean nothing for a model's task are errors; --nbest and the beam;
train's shorthand flags; train.max_steps over train.epochs; a warm-up longer than the run."""
import json
import re
import subprocess

import pytest

from cli_helpers import DATA, GAZE, conll_sentences, run, sentiment_rows, write_config, write_conll, write_tsv, write_yaml


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    rows = sentiment_rows()
    train, dev = write_tsv(d / "train.tsv", rows[:160]), write_tsv(d / "dev.tsv", rows[160:200])
    run("train", write_config(d / "c.yaml", train, dev, d / "cls", train={"epochs": 1}), check=0)
    sents = conll_sentences(DATA / "wnut17" / "train.conll")[:40]
    tr = write_conll(d / "t.conll", sents)
    run("train", write_yaml(d / "t.yaml", {
        "task": "tag", "output": str(d / "tag"), "data": {"train": str(tr), "dev": str(tr)},
        "tokenizer": {"kind": "word"}, "model": {"d_model": 16, "nhead": 2, "num_layers": 1, "dim_feedforward": 32},
        "train": {"epochs": 1, "batch_size": 20, "metric": "accuracy"}}), check=0)
    pairs = d / "pairs.tsv"
    pairs.write_text("src\ttgt\n" + "".join(f"{' '.join(w)}\t{' '.join(w).lower()}\n" for w, _ in sents))
    run("train", write_yaml(d / "s.yaml", {
        "task": "translate", "output": str(d / "mt"),
        "data": {"train": str(pairs), "dev": str(pairs), "source_column": "src", "target_column": "tgt"},
        "tokenizer": {"kind": "word"},
        "model": {"d_model": 16, "nhead": 2, "num_encoder_layers": 1, "num_decoder_layers": 1, "dim_feedforward": 32},
        "decode": {"beam_size": 2}, "train": {"epochs": 1, "batch_size": 20, "metric": "bleu"}}), check=0)
    return d


@pytest.mark.parametrize("args,message", [
    (["trian", "x.yaml"], "unknown command 'trian'; did you mean 'train'?"),
    (["explian"], "unknown command 'explian'; did you mean 'explain'?"),
    (["frobnicate"], "unknown command 'frobnicate' (commands: version, train, eval"),
    (["train", "x.yaml", "--epcohs", "3"], "unknown option '--epcohs' for gaze train; did you mean '--epochs'?"),
    (["predict", "--model", "m", "--top_k=3"], "unknown option '--top_k' for gaze predict; did you mean '--top-k'?"),
    (["eval", "--modle", "m"], "did you mean '--model'?"),
])
def test_mistyped_commands_and_options_name_the_nearest(args, message):
    res = run(*args, check=2)
    assert message in res.stderr
    assert res.stderr.count("\n") == 1  # one line


@pytest.mark.parametrize("model,flag", [("tag", ["--top-k", "2"]), ("cls", ["--nbest", "2"]),
                                        ("cls", ["--aggregation", "first"]), ("mt", ["--top-k", "2"]),
                                        ("tag", ["--beam-size", "3"])])
def test_options_of_other_tasks_are_errors(models, model, flag):
    res = run("predict", "--model", models / model, *flag, stdin="a b\n", check=2)
    assert f"{flag[0]} does not apply to a " in res.stderr and str(models / model) in res.stderr


def test_nbest_and_the_beam(models):
    res = run("predict", "--model", models / "mt", "--nbest", "3", "--beam-size", "2", stdin="a b\n", check=2)
    assert "--nbest 3 is more than --beam-size 2" in res.stderr
    res = run("predict", "--model", models / "mt", "--nbest", "3", stdin="a b\n", check=0)
    assert "--nbest 3 widens the model's beam from 2 to 3" in res.stderr
    assert len(json.loads(res.stdout)["nbest"]) == 3
    res = run("translate", "--model", models / "mt", "--nbest", "3", "--beam-size", "1", stdin="a b\n", check=2)
    assert "is more than --beam-size 1" in res.stderr


def test_train_flags_are_set_shorthands_and_max_steps_wins_over_epochs(models, tmp_path):
    rows = sentiment_rows()
    train, dev = write_tsv(tmp_path / "train.tsv", rows[:160]), write_tsv(tmp_path / "dev.tsv", rows[160:200])
    cfg = write_config(tmp_path / "c.yaml", train, dev, tmp_path / "unused", train={"epochs": 1, "batch_size": 16})
    res = run("train", cfg, "--output", tmp_path / "run", "--seed", "7", "--max-steps", "25", check=0)
    config = (tmp_path / "run" / "config.yaml").read_text()
    assert f'output: "{tmp_path / "run"}"' in config and "seed: 7" in config and "max_steps: 25" in config
    # 10 batches an epoch: 25 steps run on into a third epoch though train.epochs is 1.
    assert "trained 25 steps" in res.stderr and "epoch 3/3" in res.stderr
    assert not (tmp_path / "unused").exists()
    res = run("train", "--resume", tmp_path / "run", "--output", tmp_path / "other", check=2)
    assert "--output does not go with --resume" in res.stderr
    res = run("train", cfg, "--output", tmp_path / "short", "--epochs", "1", "--set", "train.warmup_steps=50", check=0)
    assert "warning: train.warmup_steps (50) is longer than the run (10 steps)" in res.stderr


def test_explain_text_file_and_default_folder(models, tmp_path):
    res = run("explain", "--model", models / "cls", "--text", "not bad at all", check=0)
    assert str(models / "cls" / "explain" / "explanation.html") in res.stdout
    # A checkpoint inside the run explains into the run's folder too.
    res = run("explain", "--model", models / "cls" / "best", "--text", "fine", "--format", "json", check=0)
    assert str(models / "cls" / "explain" / "attention.json") in res.stdout
    texts = tmp_path / "texts.txt"
    texts.write_text("good\nbad\n")
    res = run("explain", "--model", models / "cls", "--file", texts, "--out", tmp_path / "e", "--format", "json", check=0)
    assert (tmp_path / "e" / "0001" / "attention.json").exists() and (tmp_path / "e" / "0002").exists()
    # --input keeps its rule (a file if there is one, else the text) but warns about a likely path.
    res = run("explain", "--model", models / "cls", "--input", "notes.txt", "--out", tmp_path / "w", check=0)
    assert "warning: there is no file 'notes.txt'; explaining it as text" in res.stderr
    assert json.loads((tmp_path / "w" / "attention.json").read_text())["text"] == "notes.txt"
    res = run("explain", "--model", models / "cls", "--file", tmp_path / "missing.txt", check=2)
    assert "missing.txt" in res.stderr
    res = run("explain", "--model", models / "cls", "--text", "a", "--file", texts, check=2)
    assert "give one of --text" in res.stderr


def test_label_names_are_what_predict_eval_and_explain_say(tmp_path):
    rows = sentiment_rows()
    train, dev = write_tsv(tmp_path / "train.tsv", rows[:160]), write_tsv(tmp_path / "dev.tsv", rows[160:200])
    cfg = tmp_path / "c.yaml"
    write_config(cfg, train, dev, tmp_path / "run", train={"epochs": 1})
    text = cfg.read_text().replace("data:\n", "data:\n  label_names: {0: negative, 1: positive}\n")
    cfg.write_text(text)
    res = run("train", cfg, check=0)
    assert "labels: 2 (negative, positive)" in res.stderr
    # The record reads back as it was written.
    recorded = (tmp_path / "run" / "config.yaml").read_text()
    assert 'label_names: {"0":"negative","1":"positive"}' in recorded
    assert run("train", tmp_path / "run" / "config.yaml", "--dump-config", check=0).stdout in recorded
    out = json.loads(run("predict", "--model", tmp_path / "run", "--top-k", "2", stdin="Great!\n", check=0).stdout)
    assert sorted(p["label"] for p in out) == ["negative", "positive"]
    # A file with the labels as the data writes them (0/1) is scored under the names.
    report = json.loads(run("eval", "--model", tmp_path / "run", "--data", dev, "--report", "json", check=0).stdout)
    assert report["labels"] == ["negative", "positive"] and sum(map(sum, report["confusion_matrix"])) == 40
    run("explain", "--model", tmp_path / "run", "--text", "Great!", "--format", "json", check=0)
    e = json.loads((tmp_path / "run" / "explain" / "attention.json").read_text())
    assert sorted(p["label"] for p in e["prediction"]) == ["negative", "positive"]
    # --set takes the same mapping; a name for a label the data does not have is an error.
    res = run("train", cfg, "--output", tmp_path / "bad", "--set", "data.label_names={0: negative, 7: positive}",
              check=2)
    assert "data.label_names names label '7', which the training data does not have" in res.stderr
    res = run("train", cfg, "--output", tmp_path / "bad", "--set", "data.label_names={0: same, 1: same}", check=2)
    assert "two labels are named 'same'" in res.stderr


def test_csv_files_are_read_and_comma_data_in_a_tsv_is_named(models, tmp_path):
    rows = sentiment_rows()[:200]
    def csv_field(s):
        return '"' + s.replace('"', '""') + '"' if any(c in s for c in ',"\n') else s
    lines = ["source,label,text"] + [",".join(csv_field(x) for x in r) for r in rows]
    # A quoted field with a line break and a quote in it counts as one text.
    lines.append('amazon,1,"Two lines,\nand a ""quote"" - still one text"')
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "train.csv", tmp_path / "train.csv", tmp_path / "run",
                       train={"epochs": 1})
    res = run("train", cfg, check=0)
    assert "data: 201 train" in res.stderr
    report = json.loads(run("eval", "--model", tmp_path / "run", "--data", tmp_path / "train.csv", "--report", "json",
                            check=0).stdout)
    assert sum(map(sum, report["confusion_matrix"])) == 201
    out = run("predict", "--model", tmp_path / "run", "--input", tmp_path / "train.csv", check=0).stdout.splitlines()
    assert len(out) == 201
    # The same rows comma-separated in a .tsv file: named as what they are.
    (tmp_path / "commas.tsv").write_text("\n".join(lines[:50]) + "\n")
    res = run("eval", "--model", tmp_path / "run", "--data", tmp_path / "commas.tsv", check=2)
    assert "commas.tsv:1: this looks like comma-separated data" in res.stderr
    (tmp_path / "bad.csv").write_text('label,text\n1,"never closed\n0,fine\n')
    assert "bad.csv:2: a quoted field is never closed" in run("eval", "--model", tmp_path / "run", "--data",
                                                               tmp_path / "bad.csv", check=2).stderr
    (tmp_path / "bad2.csv").write_text('label,text\n1,"closed" then more\n')
    assert "bad2.csv:2: text after the closing quote" in run("eval", "--model", tmp_path / "run", "--data",
                                                            tmp_path / "bad2.csv", check=2).stderr


def test_eval_split_output_overlap_and_the_bleu_signature(models, tmp_path):
    # A run with the fixed split: --split test scores its own test rows.
    rows = sentiment_rows()[:300]
    data = write_tsv(tmp_path / "all.tsv", rows)
    cfg = write_config(tmp_path / "c.yaml", data, "", tmp_path / "run", data={"split": "modulo10"},
                       train={"epochs": 1})
    run("train", cfg, check=0)
    res = run("eval", "--model", tmp_path / "run", "--split", "test", "--report", "json",
              "--output", tmp_path / "pred.jsonl", check=0)
    report = json.loads(res.stdout)
    test_rows = [r for i, r in enumerate(rows) if i % 10 == 0]
    assert sum(map(sum, report["confusion_matrix"])) == len(test_rows)
    assert report == json.loads((tmp_path / "run" / "test_report.json").read_text())
    preds = [json.loads(x) for x in (tmp_path / "pred.jsonl").read_text().splitlines()]
    assert [p["input"] for p in preds] == [r[2] for r in test_rows] and [p["gold"] for p in preds] == [r[1] for r in test_rows]
    # Scoring rows the model trained on is allowed, and said.
    res = run("eval", "--model", tmp_path / "run", "--data", data, check=0)
    assert "warning: 240 of 300 evaluated inputs are also in the run's training data" in res.stderr
    res = run("eval", "--model", tmp_path / "run", "--split", "dev", check=0)
    assert "also in the run's training data" not in res.stderr
    assert "give --data FILE" in run("eval", "--model", tmp_path / "run", check=2).stderr
    # Translation: BLEU and chrF with their signatures; outside G2P the exact-match error rate is not "WER".
    res = run("eval", "--model", models / "mt", "--data", models / "pairs.tsv", "--source-column", "src",
              "--target-column", "tgt", check=0)
    assert "signature: nrefs:1|case:mixed|eff:no|tok:13a|smooth:none|version:gaze-" in res.stdout
    assert "signature: nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:gaze-" in res.stdout
    assert "exact-match error rate = " in res.stdout and "WER" not in res.stdout


def test_save_every_and_keep_last(tmp_path):
    rows = sentiment_rows()
    train, dev = write_tsv(tmp_path / "train.tsv", rows[:160]), write_tsv(tmp_path / "dev.tsv", rows[160:200])
    cfg = write_config(tmp_path / "c.yaml", train, dev, tmp_path / "run",
                       train={"epochs": 2, "save_every": 5, "keep_last": 2})
    res = run("train", cfg, check=0)
    assert "step 5: saved" in res.stderr
    kept = sorted(p.name for p in (tmp_path / "run").glob("checkpoint-*"))
    assert kept == ["checkpoint-15", "checkpoint-20"]
    # Each is resumable: continuing from checkpoint-15 ends where the run ended, bit for bit.
    import shutil
    shutil.copytree(tmp_path / "run", tmp_path / "again")
    res = run("train", "--resume", tmp_path / "again" / "checkpoint-15", check=0)
    assert "at step 15" in res.stderr
    a = (tmp_path / "run" / "last" / "model.safetensors").read_bytes()
    b = (tmp_path / "again" / "last" / "model.safetensors").read_bytes()
    assert a == b
    # --overwrite clears them with the rest of the earlier run.
    run("train", cfg, "--overwrite", "--set", "train.save_every=0", check=0)
    assert not list((tmp_path / "run").glob("checkpoint-*"))


def help_examples():
    """Every example line of `gaze --help` and `gaze COMMAND --help`."""
    out = []
    for command in ["", "train", "eval", "predict", "translate", "explain", "embed", "import", "serve",
                    "quantize", "report"]:
        text = run(*([command] if command else []), "--help", check=0).stdout
        out += [line.strip() for line in text.splitlines()
                if re.match(r"\s+(echo .*\| )?(mpirun .*)?gaze ", line)]
    return sorted(set(out))


def test_help_examples_name_files_that_exist_and_parse(tmp_path):
    import shlex
    import shutil
    from cli_helpers import ROOT
    examples = help_examples()
    assert len(examples) > 30
    outputs = {re.search(r"^output: (\S+)", p.read_text(), re.M).group(1) for p in (ROOT / "examples").glob("*/*.yaml")}
    made = {m for e in examples for m in re.findall(r"--out(?:put)? (\S+)", e)}
    for e in examples:
        for path in re.findall(r"\b((?:examples|data|runs|models)/[^\s)]+)", e):
            top, name = path.split("/")[:2]
            if top == "examples":
                assert (ROOT / path).exists(), (e, path)
            elif top == "data":  # fetched by data/get-NAME, which names the file
                script = ROOT / "data" / f"get-{name}"
                assert script.exists() and (len(path.split("/")) < 3 or path.split("/")[-1] in script.read_text()), (e, path)
            elif top == "runs":
                assert f"runs/{name}" in outputs or f"runs/{name}" in made, (e, path)
            else:
                assert f"models/{name}" in made or f"models/{name}" in (ROOT / "Makefile").read_text(), (e, path)
    # Each runs as far as its missing models and data let it: never a command-line error.
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    for e in examples:
        if e.startswith("mpirun") or e.endswith("&") or "~/" in e:
            continue
        stdin = None
        m = re.match(r"echo (.*?) \| (gaze .*)", e)
        if m:
            stdin, e = shlex.split(m.group(1))[0] + "\n", m.group(2)
        e = re.sub(r"\s+\(.*\)$", "", e)  # "(continue where it stopped)"
        if " < " in e:
            e, redirect = e.split(" < ")
            stdin = (tmp_path / redirect).read_text()
        args = shlex.split(e)[1:]
        res = subprocess.run([str(GAZE.resolve()), *args], input=stdin, capture_output=True, text=True, cwd=tmp_path,
                             timeout=120)
        assert res.returncode in (0, 2), (e, res.stderr)
        if re.search(r"File does not exist: data/", res.stderr):
            continue  # a file data/get-* fetches (checked above)
        for sign in ("unknown option", "unknown command", "run `gaze --help`", "does not apply", "--help"):
            assert sign not in res.stderr, (e, res.stderr)


def test_tokenizer_training_is_announced(tmp_path):
    rows = sentiment_rows()
    train, dev = write_tsv(tmp_path / "train.tsv", rows[:200]), write_tsv(tmp_path / "dev.tsv", rows[200:240])
    cfg = write_config(tmp_path / "c.yaml", train, dev, tmp_path / "run", tokenizer={"kind": "sentencepiece", "vocab_size": 200},
                       train={"max_steps": 2})
    res = run("train", cfg, check=0)
    assert re.search(r"tokenizer: training sentencepiece \(200 pieces\) on 200 texts \.\.\. done in [0-9.]+ s", res.stderr)
    # A word vocabulary is counted, not trained: nothing to wait for, nothing said.
    res = run("train", cfg, "--output", tmp_path / "w", "--set", "tokenizer.kind=word", check=0)
    assert "training" not in res.stderr.split("model:")[0]


def read_events(path):
    """The scalars of a TensorBoard event file, read with an independent decoder: TFRecord framing
    (masked CRC-32C of length and data, checked) and the protocol buffers of Event/Summary/Value."""
    import struct
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (0x82F63B78 ^ (c >> 1)) if c & 1 else c >> 1
        table.append(c)

    def crc(b):
        c = 0xFFFFFFFF
        for x in b:
            c = table[(c ^ x) & 0xFF] ^ (c >> 8)
        c ^= 0xFFFFFFFF
        return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    def fields(b):
        i = 0
        while i < len(b):
            k, i = varint(b, i)
            f, w = k >> 3, k & 7
            if w == 0:
                v, i = varint(b, i)
            elif w == 1:
                v, i = b[i:i + 8], i + 8
            elif w == 5:
                v, i = b[i:i + 4], i + 4
            else:
                n, i = varint(b, i)
                v, i = b[i:i + n], i + n
            yield f, v

    def varint(b, i):
        v = s = 0
        while True:
            x = b[i]
            i += 1
            v |= (x & 0x7F) << s
            s += 7
            if x < 0x80:
                return v, i

    data, i, out, version = path.read_bytes(), 0, [], None
    while i < len(data):
        (n,) = struct.unpack("<Q", data[i:i + 8])
        assert struct.unpack("<I", data[i + 8:i + 12])[0] == crc(data[i:i + 8])
        body = data[i + 12:i + 12 + n]
        assert struct.unpack("<I", data[i + 12 + n:i + 16 + n])[0] == crc(body)
        i += 16 + n
        event = dict(fields(body))
        step = event.get(2, 0)
        if 3 in event:
            version = event[3].decode()
        if 5 in event:
            value = dict(fields(dict(fields(event[5]))[1]))
            out.append((value[1].decode(), step, struct.unpack("<f", value[2])[0]))
    return version, out


def test_tensorboard_event_files_hold_what_metrics_jsonl_holds(tmp_path):
    rows = sentiment_rows()
    train, dev = write_tsv(tmp_path / "train.tsv", rows[:160]), write_tsv(tmp_path / "dev.tsv", rows[160:200])
    cfg = write_config(tmp_path / "c.yaml", train, dev, tmp_path / "run",
                       train={"epochs": 2, "tensorboard": True, "eval_every": 10})
    run("train", cfg, check=0)
    files = list((tmp_path / "run").glob("events.out.tfevents.*.gaze"))
    assert len(files) == 1
    version, scalars = read_events(files[0])
    assert version == "brain.Event:2"
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    want = []
    for x in lines:
        if "train_loss" in x:
            want += [(f"train/{k}", x["step"], x[k]) for k in ("train_loss", "lr", "grad_norm", "tokens_per_second")]
        else:
            want += [(f"dev/{k}", x["step"], x[k]) for k in sorted(("accuracy", "loss", "macro_f1"))]
    assert [(t, s) for t, s, _ in scalars] == [(t, s) for t, s, _ in want]
    assert [v for _, _, v in scalars] == pytest.approx([v for _, _, v in want], rel=1e-6)
    # --overwrite clears the earlier run's event files with the rest.
    run("train", cfg, "--overwrite", "--set", "train.tensorboard=false", check=0)
    assert not list((tmp_path / "run").glob("events.out.tfevents.*"))


def test_review_findings_stay_fixed(models, tmp_path):
    """What an adversarial review of this wave found, kept fixed."""
    import os
    import stat
    rows = sentiment_rows()
    train, dev = write_tsv(tmp_path / "train.tsv", rows[:160]), write_tsv(tmp_path / "dev.tsv", rows[160:200])
    cfg = write_config(tmp_path / "c.yaml", train, dev, tmp_path / "run", train={"max_steps": 3})
    # A label named as another label of the data would merge two classes.
    res = run("train", cfg, "--set", 'data.label_names={0: "1"}', check=2)
    assert "names label '0' as '1', which is another label of the data" in res.stderr
    run("train", cfg, check=0)
    # Writing over a device (or FIFO) is refused, and the device stays what it was.
    res = run("eval", "--model", tmp_path / "run", "--data", dev, "--output", "/dev/null", check=2)
    assert "/dev/null: is a character device; gaze writes regular files only" in res.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    res = run("eval", "--model", tmp_path / "run", "--data", dev, "--output", dev, check=2)
    assert "is the file being evaluated" in res.stderr and dev.read_text().startswith("source\tlabel\ttext")
    # A damaged record costs the report its section, not the page.
    with open(tmp_path / "run" / "metrics.jsonl", "a") as f:
        f.write('{"step": null}\n{"step": "6"}\n{"step": 6, "best": "yes"}\n')
    (tmp_path / "run" / "test_report.json").write_text('{"labels": [1, 2], "confusion_matrix": 5}')
    (tmp_path / "run" / "test_predictions.jsonl").write_text('{"input": "x", "gold": [1], "predicted": "1", "confidence": 0.5}\n')
    run("report", tmp_path / "run", check=0)
    assert "not as gaze writes it" in (tmp_path / "run" / "report.html").read_text()
    # A checkpoint-STEP the run would write, taken by the user's folder: refused before training.
    (tmp_path / "clash" / "checkpoint-2").mkdir(parents=True)
    (tmp_path / "clash" / "checkpoint-2" / "mine.txt").write_text("mine")
    res = run("train", cfg, "--output", tmp_path / "clash", "--overwrite", "--set", "train.save_every=1", check=2)
    assert "checkpoint-2: exists and is not a gaze checkpoint" in res.stderr
    assert (tmp_path / "clash" / "checkpoint-2" / "mine.txt").read_text() == "mine"
    assert not (tmp_path / "clash" / "checkpoint-1").exists()
    # A path the system refuses is a missing model folder.
    res = run("predict", "--model", "a" * 300, stdin="x\n", check=2)
    assert "not a model folder" in res.stderr
