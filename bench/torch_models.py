"""torch 1.13's side of the model benchmarks, printed as JSON: the TransformerClassifier of
bench/models_bench.cpp (vocab 8000, d_model 256, 4 heads, ffn 1024, 4 layers, GELU, pre-norm, final
LayerNorm, sinusoidal positions, mean pooling, dropout 0.1) trained with AdamW on 32 x 128 tokens,
and inference (eval, no_grad, which lets torch take its fused encoder fast path) at 32 x 128 and
1 x 128. Usage: torch_models.py THREADS
"""
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


def main(threads):
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

    model.train()
    out = {"train_s": best_time(train_step, 3.0, repeats=3)}
    model.eval()
    with torch.no_grad():
        out["infer_32x128_s"] = best_time(lambda: model(tokens), 1.0, repeats=3)
        one = tokens[:1]
        out["infer_1x128_s"] = best_time(lambda: model(one), 1.0, repeats=3)
    return out


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]))))
