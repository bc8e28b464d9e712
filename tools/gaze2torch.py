#!/usr/bin/env python3
"""Converts a gaze checkpoint (model.safetensors, or a directory holding one) to a PyTorch state dict.

    gaze2torch.py CHECKPOINT OUT.pt

Needs torch only. The keys are torch's (gaze's modules use them), so the result loads into the
corresponding torch module with load_state_dict.
"""
import argparse
import json
import os
import struct
import sys

import torch

_DTYPES = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
           "BOOL": torch.bool}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise SystemExit(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise SystemExit(f"{path}: header length {n} exceeds the file size {len(data)}")
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        if not 0 <= begin <= end <= len(body):
            raise SystemExit(f"{path}: tensor {name} lies outside the data")
        dtype = _DTYPES[info["dtype"]]
        raw = bytearray(body[begin:end])
        t = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("out")
    a = p.parse_args(argv)
    path = os.path.join(a.checkpoint, "model.safetensors") if os.path.isdir(a.checkpoint) else a.checkpoint
    sd = read_safetensors(path)
    torch.save(sd, a.out)
    print(f"wrote {len(sd)} tensors to {a.out}")


if __name__ == "__main__":
    sys.exit(main())
