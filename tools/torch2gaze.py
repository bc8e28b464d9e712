#!/usr/bin/env python3
"""Converts a PyTorch state dict to a gaze checkpoint directory (model.safetensors + config.json).

    torch2gaze.py STATE_DICT.pt OUT_DIR [--config CONFIG.json] [--strip-prefix PREFIX] [--keep-dtype]

Needs torch only (the safetensors file is written with the standard library). A file holding a whole
checkpoint dict is unwrapped from its "state_dict" or "model" entry. Floating tensors become float32
unless --keep-dtype (gaze reads F16/BF16 and widens them on load). The names are kept: gaze's modules
use torch's state-dict keys, so the result loads with load_state_dict / gaze.models.load_model.
"""
import argparse
import json
import os
import struct
import sys

import torch

_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
           torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
           torch.bool: "BOOL"}


def write_safetensors(path, tensors, metadata=None):
    """The Hugging Face safetensors layout: u64 LE header length, JSON header, raw little-endian data."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        if t.dtype == torch.bfloat16:  # no numpy dtype: move the raw 16-bit words
            data = t.view(torch.int16).numpy().tobytes()
        else:
            data = t.numpy().tobytes()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_state_dict(path):
    obj = torch.load(path, map_location="cpu")
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise SystemExit(f"{path}: not a state dict (a mapping of names to tensors)")
    return obj


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("state_dict")
    p.add_argument("out_dir")
    p.add_argument("--config", help="a gaze model configuration (JSON) to store as config.json")
    p.add_argument("--strip-prefix", default="", help="remove this prefix from every key (e.g. 'module.')")
    p.add_argument("--keep-dtype", action="store_true", help="keep float16/bfloat16/float64 instead of float32")
    a = p.parse_args(argv)
    sd = load_state_dict(a.state_dict)
    out = {}
    for k, v in sd.items():
        if a.strip_prefix and k.startswith(a.strip_prefix):
            k = k[len(a.strip_prefix):]
        if v.is_floating_point() and not a.keep_dtype:
            v = v.float()
        out[k] = v
    os.makedirs(a.out_dir, exist_ok=True)
    write_safetensors(os.path.join(a.out_dir, "model.safetensors"), out, {"format": "gaze-checkpoint-1", "source": "torch"})
    if a.config:
        with open(a.config) as f:
            cfg = json.load(f)
        with open(os.path.join(a.out_dir, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
    print(f"wrote {len(out)} tensors to {a.out_dir}/model.safetensors")


if __name__ == "__main__":
    sys.exit(main())
