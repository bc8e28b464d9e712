"""safetensors and checkpoints: round trips, the torch converters, rejection of corrupt files, a crash
in the middle of a save, and exact resume in a fresh process."""
import json
import os
import pathlib
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch

import gaze
from parity import REDUCTION, assert_close, rng

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"
WORKER = pathlib.Path(__file__).with_name("resume_worker.py")


def run_tool(*args):
    subprocess.run([sys.executable, *map(str, args)], check=True, capture_output=True, text=True)


def worker(*args, env_extra=None):
    env = dict(os.environ, GAZE_PYTHONPATH=gaze.__path__[0] + "/..", GAZE_NUM_THREADS="1")
    env.update(env_extra or {})
    return subprocess.run([sys.executable, str(WORKER), *map(str, args)], capture_output=True, text=True, env=env)


def test_safetensors_round_trip(tmp_path):
    t = {"a": gaze.randn([3, 4]), "b": gaze.tensor(np.arange(5, dtype=np.int64)), "c": gaze.tensor([True, False]),
         "d": gaze.tensor(np.ones((2, 0, 3))), "e": gaze.tensor(np.float64(2.5))}
    gaze.io.save_safetensors(str(tmp_path / "x.safetensors"), t, {"k": "v"})
    back, meta = gaze.io.load_safetensors(str(tmp_path / "x.safetensors"))
    assert meta == {"k": "v"}
    for k, v in t.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape
        np.testing.assert_array_equal(back[k].numpy(), v.numpy())
    assert not list(tmp_path.glob("*.tmp*"))  # the temporary file was renamed away


def test_converters_and_narrow_dtypes(tmp_path):
    sd = {"w16": torch.tensor([1.5, -2.25], dtype=torch.float16), "wbf": torch.tensor([3.0, 0.5], dtype=torch.bfloat16),
          "i32": torch.tensor([7, -8], dtype=torch.int32), "u8": torch.tensor([255, 0], dtype=torch.uint8),
          "f32": torch.randn(2, 3), "b": torch.tensor([True])}
    torch.save(sd, tmp_path / "sd.pt")
    run_tool(TOOLS / "torch2gaze.py", tmp_path / "sd.pt", tmp_path / "ck", "--keep-dtype")
    back, _ = gaze.io.load_safetensors(str(tmp_path / "ck" / "model.safetensors"))
    assert back["w16"].dtype == gaze.float32 and back["i32"].dtype == gaze.int64
    for k, v in sd.items():
        want = v.float().numpy() if v.is_floating_point() else v.numpy().astype(np.int64 if v.dtype != torch.bool else bool)
        np.testing.assert_array_equal(back[k].numpy(), want)
    run_tool(TOOLS / "gaze2torch.py", tmp_path / "ck", tmp_path / "back.pt")
    rt = torch.load(tmp_path / "back.pt")
    assert torch.equal(rt["f32"], sd["f32"]) and rt["w16"].dtype == torch.float16


def test_load_state_dict_assign_shares_the_given_tensors():
    # torch's assign=True: the module takes the tensors themselves, so a change to one shows in it.
    lin = gaze.nn.Linear(3, 2)
    sd = {"weight": gaze.tensor(np.full((2, 3), 0.25, np.float32)), "bias": gaze.tensor(np.zeros(2, np.float32))}
    lin.load_state_dict(sd, assign=True)
    sd["weight"].fill_(0.5)
    np.testing.assert_array_equal(lin.state_dict()["weight"].numpy(), np.full((2, 3), 0.5, np.float32))
    sd["weight"] = gaze.tensor(np.full((2, 3), 0.5, np.float32))
    lin.load_state_dict(sd)  # copies
    sd["weight"].fill_(1.0)
    np.testing.assert_array_equal(lin.state_dict()["weight"].numpy(), np.full((2, 3), 0.5, np.float32))


def through_converter(tmp_path, torch_module, gaze_module, name):
    torch.save(torch_module.state_dict(), tmp_path / f"{name}.pt")
    run_tool(TOOLS / "torch2gaze.py", tmp_path / f"{name}.pt", tmp_path / name)
    sd, _ = gaze.io.load_safetensors(str(tmp_path / name / "model.safetensors"))
    gaze_module.load_state_dict(sd)


def test_transformer_and_lstm_weights_through_the_converter(tmp_path):
    torch.manual_seed(3)
    t = torch.nn.Transformer(16, 2, 2, 2, 32, dropout=0.0, batch_first=True, norm_first=True)
    g = gaze.nn.Transformer(16, 2, 2, 2, 32, dropout=0.0, batch_first=True, norm_first=True)
    through_converter(tmp_path, t, g, "transformer")
    r = rng(4)
    src, tgt = r.standard_normal((2, 6, 16)).astype(np.float32), r.standard_normal((2, 5, 16)).astype(np.float32)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(5)
    assert_close(g(gaze.tensor(src), gaze.tensor(tgt), tgt_mask=gaze.tensor(mask.numpy())).detach().numpy(),
                 t(torch.tensor(src), torch.tensor(tgt), tgt_mask=mask).detach().numpy(), **REDUCTION)
    tl, gl = torch.nn.LSTM(4, 5, num_layers=2, bidirectional=True), gaze.nn.LSTM(4, 5, num_layers=2, bidirectional=True)
    through_converter(tmp_path, tl, gl, "lstm")
    x = r.standard_normal((7, 3, 4)).astype(np.float32)
    assert_close(gl(gaze.tensor(x))[0].detach().numpy(), tl(torch.tensor(x))[0].detach().numpy(), **REDUCTION)


def good_file(tmp_path):
    p = tmp_path / "good.safetensors"
    gaze.io.save_safetensors(str(p), {"a": gaze.ones([4, 4]), "b": gaze.ones([3])})
    return p.read_bytes()


def with_header(data, header):
    (n,) = struct.unpack("<Q", data[:8])
    body = data[8 + n:]
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + body


@pytest.mark.parametrize("corruption,pattern", [
    (lambda d: d[:5], "too short"),
    (lambda d: d[:-10], "outside the .* bytes of data"),
    (lambda d: struct.pack("<Q", 10**6) + d[8:], "header length 1000000 exceeds the file size"),
    (lambda d: d[:8] + b"{not json" + d[17:], "not valid JSON"),
    (lambda d: with_header(d, {"a": {"dtype": "C64", "shape": [4], "data_offsets": [0, 32]}}), "unsupported dtype C64"),
    (lambda d: with_header(d, {"a": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 60]}}), "has 60 bytes but F32"),
    (lambda d: with_header(d, {"a": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]},
                               "b": {"dtype": "F32", "shape": [3], "data_offsets": [60, 72]}}), "overlap"),
    (lambda d: with_header(d, {"a": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}), "invalid shape"),
    (lambda d: with_header(d, {"a": {"dtype": "F32", "shape": [4]}}), "data_offsets"),
])
def test_corrupt_files_are_rejected(tmp_path, corruption, pattern):
    p = tmp_path / "bad.safetensors"
    p.write_bytes(corruption(good_file(tmp_path)))
    with pytest.raises(gaze.DataError, match=pattern) as e:
        gaze.io.load_safetensors(str(p))
    assert str(p) in str(e.value)  # the message names the file


def test_paths_may_be_path_objects(tmp_path):
    # Every file and folder argument takes a str or an os.PathLike, as gaze.load and Python's own
    # open() do.
    m = gaze.models.TransformerClassifier(vocab_size=30, num_classes=2, d_model=8, nhead=2, num_layers=1,
                                          dim_feedforward=16)
    opt = gaze.optim.AdamW(m.parameters(), lr=1e-3)
    gaze.io.save_checkpoint(tmp_path / "ck", m, optimizer=opt)
    loaded = gaze.models.load_model(tmp_path / "ck")
    assert set(loaded.state_dict()) == set(m.state_dict())
    assert gaze.io.load_checkpoint(tmp_path / "ck")["has_training_state"]
    gaze.io.restore_training(tmp_path / "ck", opt)
    gaze.io.save_safetensors(tmp_path / "t.safetensors", {"x": gaze.ones([2, 3])})
    tensors, _ = gaze.io.load_safetensors(tmp_path / "t.safetensors")
    assert tuple(tensors["x"].shape) == (2, 3)
    (tmp_path / "v.txt").write_text("the 0.5 0.25\nof 1 2\n")
    words, vectors = gaze.io.read_word_vectors(tmp_path / "v.txt")
    assert words == ["the", "of"] and tuple(vectors.shape) == (2, 2)


def test_mismatched_checkpoint_is_rejected(tmp_path):
    m = gaze.models.TransformerClassifier(vocab_size=30, num_classes=2, d_model=8, nhead=2, num_layers=1, dim_feedforward=16)
    gaze.io.save_checkpoint(str(tmp_path / "ck"), m)
    cfg = json.loads((tmp_path / "ck" / "config.json").read_text())
    cfg["vocab_size"] = 31
    (tmp_path / "ck" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(gaze.DataError, match=r"do not fit the model in config.json: .*size mismatch for embedding.weight "
                                             r"\(expected \[31, 8\], got \[30, 8\]\)"):
        gaze.models.load_model(str(tmp_path / "ck"))
    cfg["vocab_size"], cfg["unknown"] = 30, 1
    (tmp_path / "ck" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(gaze.DataError, match="unknown key 'unknown'; valid keys: vocab_size, d_model"):
        gaze.models.load_model(str(tmp_path / "ck"))
    with pytest.raises(gaze.DataError, match="no such checkpoint directory"):
        gaze.models.load_model(str(tmp_path / "nothing"))


def test_crash_in_the_middle_of_a_save_keeps_the_previous_checkpoint(tmp_path):
    ck = tmp_path / "ck"
    r = worker("save_twice", ck)
    assert r.returncode == -9, (r.returncode, r.stdout, r.stderr)  # SIGKILL during the second save
    model = gaze.models.load_model(str(ck))  # the first checkpoint, complete
    first = json.loads((ck / "config.json").read_text())
    assert first["model_type"] == "transformer_classifier" and len(model.state_dict()) > 0
    assert gaze.io.load_checkpoint(str(ck))["has_training_state"]


def test_resume_in_a_fresh_process_continues_exactly(tmp_path):
    full = worker("train", 12)
    assert full.returncode == 0, full.stderr
    first = worker("train", 6, tmp_path / "ck")
    assert first.returncode == 0, first.stderr
    second = worker("resume", tmp_path / "ck", 6)
    assert second.returncode == 0, second.stderr
    assert json.loads(first.stdout) + json.loads(second.stdout) == json.loads(full.stdout)


RENAMES = "rename,renameat,renameat2"


def fingerprint(ck):
    """A number that tells two checkpoints' weights apart."""
    return round(sum(float(np.abs(t.numpy()).sum()) for t in gaze.models.load_model(str(ck)).state_dict().values()), 3)


@pytest.mark.parametrize("fault", ["", "no_rename_exchange"])
def test_a_kill_at_any_rename_of_a_save_leaves_a_complete_checkpoint(tmp_path, fault):
    """strace kills the worker at its N-th rename-family call, for every N of the second save: the
    checkpoint is then always the first or the second one, complete, and loads by its path, from the
    run folder (`best`) and through the CLI. no_rename_exchange takes the two-rename path of file
    systems without RENAME_EXCHANGE, whose gap load_checkpoint and the next save recover from."""
    env = {"GAZE_FAULT_INJECT": fault} if fault else {}
    log = tmp_path / "trace"
    traced = subprocess.run(["strace", "-f", "-o", str(log), "-e", f"trace={RENAMES}", sys.executable,
                             str(WORKER), "save_two", str(tmp_path / "full" / "best")],
                            capture_output=True, text=True, env=dict(
                                os.environ, GAZE_PYTHONPATH=gaze.__path__[0] + "/..", GAZE_NUM_THREADS="1", **env))
    assert traced.returncode == 0, traced.stderr
    firsts = json.loads(traced.stdout)
    calls = [line for line in log.read_text().splitlines() if "rename" in line and "resumed" not in line]
    # Each save's first rename puts its config.json in place: the second save's calls follow the second.
    starts = [i for i, c in enumerate(calls) if 'config.json") = 0' in c]
    assert len(starts) == 2 and len(calls) - starts[1] >= 4, calls
    swaps = [c for c in calls[starts[1]:] if ".tmp-" not in c]  # the directory renames of the swap
    if fault:
        assert len(swaps) == 2, swaps
    else:
        assert len(swaps) == 1 and "renameat2" in swaps[0] and "RENAME_EXCHANGE" in swaps[0], swaps
    names = [c.split()[1].split("(")[0] for c in calls]  # "PID renameat2(...": the syscall
    for n in range(starts[1], len(calls)):
        # strace counts each syscall's calls on its own: kill at this call of this syscall.
        name, nth = names[n], names[:n + 1].count(names[n])
        run_dir = tmp_path / f"kill{n}"
        ck = run_dir / "best"
        r = subprocess.run(["strace", "-f", "-o", "/dev/null", "-e", f"inject={name}:signal=SIGKILL:when={nth}",
                            sys.executable, str(WORKER), "save_two", str(ck)], capture_output=True, text=True,
                           env=dict(os.environ, GAZE_PYTHONPATH=gaze.__path__[0] + "/..", GAZE_NUM_THREADS="1",
                                    **env))
        assert r.returncode != 0, f"{calls[n]}: the worker was not killed"
        assert fingerprint(ck) in firsts, n
        assert gaze.io.load_checkpoint(str(ck))["has_training_state"]
        # the run folder resolves to the surviving checkpoint
        assert pathlib.Path(gaze._C._tasks.resolve_model_dir(str(run_dir))).name in ("best", "best.old")
        # and the next save into it recovers, leaving one complete checkpoint and no leftovers
        again = worker("save_two", ck, env_extra=env)
        assert again.returncode == 0, again.stderr
        assert sorted(p.name for p in run_dir.iterdir()) == ["best"], n
        assert fingerprint(ck) == firsts[1]


def test_save_checkpoint_replaces_only_checkpoints(tmp_path):
    model = gaze.models.build_model(json.dumps({"model_type": "transformer_classifier", "vocab_size": 10,
                                                "d_model": 8, "nhead": 2, "num_layers": 1, "dim_feedforward": 8}))
    run = tmp_path / "run"
    (run / "best").mkdir(parents=True)
    (run / "metrics.jsonl").write_text("{}\n")
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    for target in (run, notes, run / "best"):  # a run folder, a user's file, a folder of other things
        (run / "best" / "x.txt").write_text("keep")
        with pytest.raises(gaze.DataError, match="is not a gaze checkpoint; refusing to replace it"):
            gaze.io.save_checkpoint(str(target), model)
    assert (run / "metrics.jsonl").read_text() == "{}\n" and notes.read_text() == "mine"
    assert (run / "best" / "x.txt").read_text() == "keep"
    # leftovers named like a save's temporaries are removed only when they are gaze's own
    (tmp_path / "ck.tmp").write_text("a user's file")
    with pytest.raises(gaze.DataError, match="ck.tmp: exists and is not a gaze checkpoint; refusing to remove"):
        gaze.io.save_checkpoint(str(tmp_path / "ck"), model)
    assert (tmp_path / "ck.tmp").read_text() == "a user's file"
    (tmp_path / "ck.tmp").unlink()
    gaze.io.save_checkpoint(str(tmp_path / "ck"), model)
    gaze.io.save_checkpoint(str(tmp_path / "ck"), model)  # replacing its own checkpoint is fine
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck", "notes.txt", "run"]
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == [".gaze-checkpoint", "config.json",
                                                                    "model.safetensors"]
    # A folder with a model.safetensors of someone else's (a Hugging Face download) is not gaze's,
    # nor is one named like a leftover of a save.
    hf = tmp_path / "hf"
    hf.mkdir()
    gaze.io.save_safetensors(str(hf / "model.safetensors"), {"w": gaze.ones([2])}, {"format": "pt"})
    (hf / "README.md").write_text("model card")
    with pytest.raises(gaze.DataError, match="hf: exists and is not a gaze checkpoint"):
        gaze.io.save_checkpoint(str(hf), model)
    (tmp_path / "mine.old").mkdir()
    gaze.io.save_safetensors(str(tmp_path / "mine.old" / "model.safetensors"), {"w": gaze.ones([2])}, {})
    with pytest.raises(gaze.DataError, match="mine.old: exists and is not a gaze checkpoint"):
        gaze.io.save_checkpoint(str(tmp_path / "mine"), model)
    assert (hf / "README.md").exists() and (tmp_path / "mine.old" / "model.safetensors").exists()
    # A checkpoint written before markers (gaze's format in its header) is still replaced, and a
    # symlink to a checkpoint is replaced as a link, its target untouched.
    (tmp_path / "ck" / ".gaze-checkpoint").unlink()
    gaze.io.save_checkpoint(str(tmp_path / "ck"), model)
    (tmp_path / "link").symlink_to(tmp_path / "ck")
    gaze.io.save_checkpoint(str(tmp_path / "link"), model)
    assert (tmp_path / "ck" / "model.safetensors").exists()
