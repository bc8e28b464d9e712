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
