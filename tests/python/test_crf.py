"""gaze.nn.CRF against a PyTorch linear-chain CRF written here from the published definition (Lafferty
et al. 2001; the algorithm and API of pytorch-crf's torchcrf.CRF): log-likelihoods for every reduction,
masks and layouts, gradients of the emissions and of the three score tables, Viterbi paths, and bad
input."""
import json

import numpy as np
import pytest
import torch

import gaze
from parity import assert_close, rng


class TorchCRF(torch.nn.Module):
    """torchcrf.CRF's computation, batch-first: score of the gold path minus the log partition."""

    def __init__(self, start, end, trans):
        super().__init__()
        self.start_transitions = torch.nn.Parameter(torch.tensor(start))
        self.end_transitions = torch.nn.Parameter(torch.tensor(end))
        self.transitions = torch.nn.Parameter(torch.tensor(trans))

    def forward(self, emissions, tags, mask, reduction):
        e, tags, mask = emissions.transpose(0, 1), tags.transpose(0, 1), mask.transpose(0, 1)  # [T, B, ...]
        llh = self._score(e, tags, mask) - self._normalizer(e, mask)
        if reduction == "none":
            return llh
        if reduction == "sum":
            return llh.sum()
        if reduction == "mean":
            return llh.mean()
        return llh.sum() / mask.to(llh.dtype).sum()

    def _score(self, e, tags, mask):
        T, B = tags.shape
        m = mask.to(e.dtype)
        score = self.start_transitions[tags[0]] + e[0, torch.arange(B), tags[0]]
        for t in range(1, T):
            score = score + (self.transitions[tags[t - 1], tags[t]] + e[t, torch.arange(B), tags[t]]) * m[t]
        last = tags[mask.long().sum(0) - 1, torch.arange(B)]
        return score + self.end_transitions[last]

    def _normalizer(self, e, mask):
        score = self.start_transitions + e[0]
        for t in range(1, e.shape[0]):
            nxt = torch.logsumexp(score.unsqueeze(2) + self.transitions + e[t].unsqueeze(1), dim=1)
            score = torch.where(mask[t].unsqueeze(1), nxt, score)
        return torch.logsumexp(score + self.end_transitions, dim=1)

    def decode(self, emissions, mask):
        out = []
        for b in range(emissions.shape[0]):
            n = int(mask[b].sum())
            delta, back = self.start_transitions + emissions[b, 0], []
            for t in range(1, n):
                v = delta.unsqueeze(1) + self.transitions  # [from, to]
                back.append(v.argmax(0))
                delta = v.max(0).values + emissions[b, t]
            path = [int((delta + self.end_transitions).argmax())]
            for idx in reversed(back):
                path.append(int(idx[path[-1]]))
            out.append(path[::-1])
        return out


def make(seed, B=4, T=6, K=5):
    r = rng(seed)
    e = r.standard_normal((B, T, K))
    tags = r.integers(0, K, (B, T))
    lengths = r.integers(1, T + 1, B)
    lengths[0] = T
    mask = np.arange(T)[None, :] < lengths[:, None]
    return e, tags, mask


@pytest.mark.parametrize("reduction", ["none", "sum", "mean", "token_mean"])
@pytest.mark.parametrize("batch_first", [True, False])
def test_log_likelihood_and_gradients_match_torch(reduction, batch_first):
    e, tags, mask = make(1)
    crf = gaze.nn.CRF(5, batch_first=batch_first).double()
    ref = TorchCRF(*(p.detach().numpy() for p in (crf.start_transitions, crf.end_transitions, crf.transitions))).double()
    flip = (lambda a: a) if batch_first else (lambda a: np.ascontiguousarray(np.swapaxes(a, 0, 1)))
    ge = gaze.tensor(flip(e), requires_grad=True)
    got = crf(ge, gaze.tensor(flip(tags)), mask=gaze.tensor(flip(mask)), reduction=reduction)
    te = torch.tensor(e, requires_grad=True)
    want = ref(te, torch.tensor(tags), torch.tensor(mask), reduction)
    assert_close(got.detach().numpy(), want.detach().numpy(), 1e-10, 1e-10, "log-likelihood")
    w = rng(2).standard_normal(want.shape)
    (got * gaze.tensor(w)).sum().backward()
    (want * torch.tensor(w)).sum().backward()
    assert_close(flip(ge.grad.numpy()), te.grad.numpy(), 1e-9, 1e-9, "d emissions")
    for name in ("start_transitions", "end_transitions", "transitions"):
        assert_close(getattr(crf, name).grad.numpy(), getattr(ref, name).grad.numpy(), 1e-9, 1e-9, name)


def test_float32_and_default_mask():
    e, tags, _ = make(3)
    crf = gaze.nn.CRF(5, batch_first=True)
    ref = TorchCRF(*(p.detach().numpy() for p in (crf.start_transitions, crf.end_transitions, crf.transitions)))
    got = crf(gaze.tensor(e.astype(np.float32)), gaze.tensor(tags), reduction="none")
    want = ref(torch.tensor(e, dtype=torch.float32), torch.tensor(tags), torch.ones(tags.shape, dtype=torch.bool),
               "none")
    assert_close(got.detach().numpy(), want.detach().numpy(), 1e-5, 1e-5, "float32")


def test_any_thread_count_gives_the_same_bits():
    """Sequences are shared out between threads; each is computed alone, and the shared tables'
    gradients are summed in sequence order, so 1, 2 and 3 threads agree exactly (7 sequences: runs
    of unequal length)."""
    e, tags, mask = make(6, B=7, T=9, K=6)
    crf = gaze.nn.CRF(6, batch_first=True).double()
    before = gaze.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            gaze.set_num_threads(threads)
            ge = gaze.tensor(e, requires_grad=True)
            crf.zero_grad()
            ll = crf(ge, gaze.tensor(tags), mask=gaze.tensor(mask), reduction="none")
            ll.sum().backward()
            results.append([ll.detach().numpy(), ge.grad.numpy(), crf.transitions.grad.numpy(),
                            crf.start_transitions.grad.numpy(), crf.end_transitions.grad.numpy(),
                            crf.decode(gaze.tensor(e), mask=gaze.tensor(mask))])
    finally:
        gaze.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0][:5], other[:5]):
            assert np.array_equal(a, b)
        assert other[5] == results[0][5]


def test_viterbi_matches_the_reference_and_beats_every_other_path():
    e, _, mask = make(4, B=6, T=7, K=4)
    crf = gaze.nn.CRF(4, batch_first=True).double()
    ref = TorchCRF(*(p.detach().numpy() for p in (crf.start_transitions, crf.end_transitions, crf.transitions))).double()
    got = crf.decode(gaze.tensor(e), mask=gaze.tensor(mask))
    assert got == ref.decode(torch.tensor(e), torch.tensor(mask))
    assert [len(p) for p in got] == list(mask.sum(1))
    # the decoded path has the highest log-likelihood of a few thousand random ones
    b = 0
    best = crf(gaze.tensor(e[b:b + 1]), gaze.tensor(np.array([got[b]])), reduction="sum").item()
    paths = rng(5).integers(0, 4, (2000, 7))
    lls = crf(gaze.tensor(np.repeat(e[b:b + 1], 2000, 0)), gaze.tensor(paths), reduction="none").detach().numpy()
    assert best >= lls.max() - 1e-12


def test_constraints_penalise_forbidden_transitions_in_likelihood_and_decoding():
    # tags: O, B-x, I-x; I-x may follow only B-x or I-x and may not start
    allowed = [[True, True, False], [True, True, True], [True, True, True]]
    start, end = [True, True, False], [True, True, True]
    e, tags, mask = make(6, B=5, T=6, K=3)
    e[:, :, 2] += 3.0  # emissions that would rather say I-x everywhere
    crf = gaze.nn.CRF(3, batch_first=True).double()
    crf.constrain(allowed, start, end)
    penalty = lambda ok: np.where(np.array(ok), 0.0, -10000.0)
    ref = TorchCRF(crf.start_transitions.detach().numpy() + penalty(start),
                   crf.end_transitions.detach().numpy() + penalty(end),
                   crf.transitions.detach().numpy() + penalty(allowed)).double()
    got = crf(gaze.tensor(e), gaze.tensor(tags), mask=gaze.tensor(mask), reduction="none")
    assert_close(got.detach().numpy(), ref(torch.tensor(e), torch.tensor(tags), torch.tensor(mask), "none")
                 .detach().numpy(), 1e-10, 1e-10, "constrained log-likelihood")
    for path in crf.decode(gaze.tensor(e), mask=gaze.tensor(mask)):
        assert path[0] != 2 and all(not (a == 0 and b == 2) for a, b in zip(path, path[1:])), path
    with pytest.raises(ValueError, match="constrain"):
        crf.constrain([[True]], [True], [True])


def test_parameters_and_state_dict_use_torchcrf_names():
    crf = gaze.nn.CRF(3)
    assert [k for k, _ in crf.named_parameters()] == ["start_transitions", "end_transitions", "transitions"]
    assert crf.transitions.detach().numpy().shape == (3, 3)
    assert np.abs(crf.transitions.detach().numpy()).max() <= 0.1  # torchcrf's uniform(-0.1, 0.1) start


@pytest.mark.parametrize("call,error,pattern", [
    (lambda c, e, t: c(e, t, mask=gaze.tensor(np.array([[True, False, True]]))), ValueError, "not a prefix"),
    (lambda c, e, t: c(e, t, mask=gaze.tensor(np.array([[False, False, False]]))), ValueError,
     "first timestep must all be on"),
    (lambda c, e, t: c(e, gaze.tensor(np.array([[0, 7, 1]]))), IndexError, r"tags\[0, 1\] = 7"),
    (lambda c, e, t: c(e, gaze.tensor(np.array([[0, 1]]))), ValueError, "tags must have"),
    (lambda c, e, t: c(gaze.tensor(np.zeros((1, 3, 4))), t), ValueError, "emissions must be"),
    (lambda c, e, t: c(e, t, reduction="avg"), ValueError, "reduction must be one of"),
    (lambda c, e, t: gaze.nn.CRF(0), ValueError, "invalid number of tags"),
])
def test_bad_input(call, error, pattern):
    crf = gaze.nn.CRF(3, batch_first=True).double()
    e, t = gaze.tensor(np.zeros((1, 3, 3))), gaze.tensor(np.array([[0, 1, 2]]))
    with pytest.raises(error, match=pattern):
        call(crf, e, t)


def test_a_crf_tagger_trains_predicts_evaluates_and_explains(tmp_path):
    from cli_helpers import DATA, conll_sentences, run, write_conll, write_yaml
    sents = conll_sentences(DATA / "wnut17" / "train.conll", 40)
    train = write_conll(tmp_path / "train.conll", sents)
    cfg = write_yaml(tmp_path / "run.yaml", {
        "task": "tag", "output": str(tmp_path / "run"),
        "data": {"train": str(train), "dev": str(train)},
        "tokenizer": {"kind": "word", "lowercase": True},
        "model": {"d_model": 32, "nhead": 2, "num_layers": 1, "dim_feedforward": 64, "dropout": 0.0, "crf": True},
        "train": {"epochs": 40, "batch_size": 16, "lr": 0.003, "warmup_steps": 5, "metric": "accuracy",
                  "log_every": 100},
    })
    res = run("train", cfg, threads=2, check=0)
    losses = [float(line.split("loss ")[1].split()[0]) for line in res.stderr.splitlines() if "validation:" in line]
    assert losses[-1] < 0.5 * losses[0], losses  # the CRF's NLL per word falls
    folder = tmp_path / "run" / "best"
    assert json.loads((folder / "config.json").read_text())["crf"] is True
    names = [k for k, _ in gaze.models.load_model(str(folder)).named_parameters()]
    assert {"crf.start_transitions", "crf.end_transitions", "crf.transitions"} <= set(names)
    report = json.loads(run("eval", "--model", folder, "--data", train, "--report", "json", check=0).stdout)
    assert report["token_accuracy"] >= 0.9, report["token_accuracy"]
    lines = "".join(" ".join(w) + "\n" for w, _ in sents[:5])
    out = [json.loads(x) for x in run("predict", "--model", folder, stdin=lines, check=0).stdout.splitlines()]
    assert [len(o["tags"]) for o in out] == [len(w) for w, _ in sents[:5]]
    assert all(0 <= s <= 1 for o in out for s in o["scores"])
    # model.crf_constraints (on by default): no I-x first or after anything but B-x / I-x
    everything = "".join(" ".join(w) + "\n" for w, _ in sents)
    for o in (json.loads(x) for x in run("predict", "--model", folder, stdin=everything, check=0).stdout.splitlines()):
        for prev, tag in zip(["O"] + o["tags"], o["tags"]):
            assert not tag.startswith("I-") or prev in ("B-" + tag[2:], tag), o["tags"]
    run("explain", "--model", folder, "--input", lines.splitlines()[0], "--out", tmp_path / "ex", check=0)
    # the CRF replaces the per-token loss: its options are refused together
    bad = run("train", cfg, "--set", "train.class_weights=sqrt", check=2)
    assert "model.crf trains by the CRF's likelihood" in bad.stderr
