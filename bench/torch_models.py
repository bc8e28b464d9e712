"""torch 1.13's side of the model benchmarks, printed as JSON: the TransformerClassifier of
bench/models_bench.cpp (vocab 8000, d_model 256, 4 heads, ffn 1024, 4 layers, GELU, pre-norm, final
LayerNorm, sinusoidal positions, mean pooling, dropout 0.1) trained with AdamW on 32 x 128 tokens,
and inference (eval, no_grad, which lets torch take its fused encoder fast path) at 32 x 128 and
1 x 128, also in bfloat16 and after quantize_dynamic (int8). Usage: torch_models.py THREADS [train]
(train: the fp32 training step only, for compare_torch.py's paired rounds)
"""
import copy
import json
import sys

import torch
import torch.nn.functional as F

from torch_ops import best_time  # the same timing rule as the op benchmarks


class Classifier(torch.nn.Module):
    def __init__(self, vocab=8000, d=256, heads=4, ffn=1024, layers=4, classes=2, dropout=0.1):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab, d, padding_idx=0)
        layer = torch.nn.TransformerEncoderLayer(d, heads, ffn, dropout, activation="gelu", batch_first=True,
                                                 norm_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, layers, norm=torch.nn.LayerNorm(d))
        self.dropout = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(d, classes)
        pos = torch.arange(512, dtype=torch.float64)[:, None]
        freq = torch.pow(10000.0, -torch.arange(0, d, 2, dtype=torch.float64) / d)
        pe = torch.zeros(512, d, dtype=torch.float64)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
        self.register_buffer("pe", pe.float())

    def forward(self, tokens):
        x = self.dropout(self.embedding(tokens) + self.pe[: tokens.shape[1]])
        return self.head(self.dropout(self.encoder(x).mean(1)))


def main(threads, train_only=False):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = Classifier()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    tokens = torch.randint(1, 8000, (32, 128))
    labels = torch.arange(32) % 2

    def train_step():
        opt.zero_grad()
        F.cross_entropy(model(tokens), labels).backward()
        opt.step()

    def train_step_bf16():  # torch's CPU mixed precision (autocast to bfloat16), fp32 master weights
        opt.zero_grad()
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            loss = F.cross_entropy(model(tokens), labels)
        loss.backward()
        opt.step()

    model.train()
    out = {"train_s": best_time(train_step, 3.0, repeats=3)}
    if train_only:
        return out
    out["train_bf16_s"] = best_time(train_step_bf16, 3.0, repeats=3)
    model.eval()
    one = tokens[:1]
    with torch.no_grad():
        out["infer_32x128_s"] = best_time(lambda: model(tokens), 1.0, repeats=3)
        out["infer_1x128_s"] = best_time(lambda: model(one), 1.0, repeats=3)
        # torch's own reduced precision on the same model: the model in bfloat16 (torch 1.13's CPU
        # autocast fails inside the fused encoder layer: "expected scalar type BFloat16 but found
        # Float"), and dynamic int8 quantization of its Linear layers (quantize_dynamic; the attention
        # in-projection is not an nn.Linear and stays fp32, as torch does it).
        b16 = copy.deepcopy(model).to(torch.bfloat16)
        out["bf16_infer_32x128_s"] = best_time(lambda: b16(tokens), 1.0, repeats=3)
        out["bf16_infer_1x128_s"] = best_time(lambda: b16(one), 1.0, repeats=3)
        q = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)
        # torch 1.13's fused encoder path cannot take quantized layers ("'function' object has no
        # attribute 'is_cuda'"); train mode with every dropout at 0 takes the composed path, which
        # computes what eval mode does.
        for m in q.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
            elif isinstance(m, torch.nn.TransformerEncoderLayer):
                m.dropout1.p = m.dropout2.p = m.dropout.p = 0.0
                m.self_attn.dropout = 0.0
        q.train()
        out["int8_infer_32x128_s"] = best_time(lambda: q(tokens), 1.0, repeats=3)
        out["int8_infer_1x128_s"] = best_time(lambda: q(one), 1.0, repeats=3)
    return out


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), len(sys.argv) > 2 and sys.argv[2] == "train")))
