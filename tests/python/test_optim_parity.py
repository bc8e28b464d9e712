"""Optimizers against torch.optim (SGD, Adam, AdamW), clip_grad_norm_ against torch's, and the
learning-rate schedules against torch's LambdaLR running the standard formulas."""
import math

import numpy as np
import pytest
import torch

import gaze
from parity import assert_close, rng


def run_both(make_gaze, make_torch, steps=6, seed=0):
    r = rng(seed)
    shapes = [(5, 3), (7,), (2, 2, 2)]
    init = [r.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[r.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(steps)]
    gp = [gaze.tensor(a, requires_grad=True) for a in init]
    tp = [torch.tensor(a, requires_grad=True) for a in init]
    go, to = make_gaze(gp), make_torch(tp)
    for step in grads:
        for p, g in zip(gp, step):
            p.grad = gaze.tensor(g)
        for p, g in zip(tp, step):
            p.grad = torch.tensor(g)
        go.step()
        to.step()
    for g, t in zip(gp, tp):
        assert_close(g.detach().numpy(), t.detach().numpy(), rtol=2e-6, atol_scale=1e-6)


@pytest.mark.parametrize("kw", [dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.1, momentum=0.9, nesterov=True),
                                dict(lr=0.05, momentum=0.5, dampening=0.3, weight_decay=0.01),
                                dict(lr=0.1, weight_decay=0.1)])
def test_sgd(kw):
    run_both(lambda p: gaze.optim.SGD(p, **kw), lambda p: torch.optim.SGD(p, **kw))


@pytest.mark.parametrize("kw", [dict(lr=1e-2), dict(lr=1e-3, betas=(0.8, 0.99), eps=1e-6), dict(lr=1e-2, weight_decay=0.1)])
def test_adam(kw):
    run_both(lambda p: gaze.optim.Adam(p, **kw), lambda p: torch.optim.Adam(p, **kw))


@pytest.mark.parametrize("kw", [dict(lr=1e-2), dict(lr=1e-3, weight_decay=0.05, betas=(0.9, 0.98), eps=1e-9)])
def test_adamw(kw):
    run_both(lambda p: gaze.optim.AdamW(p, **kw), lambda p: torch.optim.AdamW(p, **kw))


def test_parameters_without_gradients_are_skipped_and_count_their_own_steps():
    a, b = gaze.tensor([1.0, 2.0], requires_grad=True), gaze.tensor([3.0], requires_grad=True)
    ta, tb = torch.tensor([1.0, 2.0], requires_grad=True), torch.tensor([3.0], requires_grad=True)
    go, to = gaze.optim.Adam([a, b], lr=0.1), torch.optim.Adam([ta, tb], lr=0.1)
    for step in range(4):
        a.grad, ta.grad = gaze.tensor([0.5, -1.0]), torch.tensor([0.5, -1.0])
        if step % 2:  # b only gets a gradient every other step
            b.grad, tb.grad = gaze.tensor([2.0]), torch.tensor([2.0])
        else:
            b.grad, tb.grad = None, None
        go.step(), to.step()
    assert_close(a.detach().numpy(), ta.detach().numpy(), rtol=1e-6, atol_scale=1e-7)
    assert_close(b.detach().numpy(), tb.detach().numpy(), rtol=1e-6, atol_scale=1e-7)


@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm(max_norm):
    r = rng(1)
    grads = [r.standard_normal(s).astype(np.float32) for s in ((4, 4), (9,))]
    gp = [gaze.tensor(np.zeros_like(g), requires_grad=True) for g in grads]
    tp = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for p, g, q in zip(gp, grads, tp):
        p.grad, q.grad = gaze.tensor(g), torch.tensor(g)
    gn = gaze.nn.utils.clip_grad_norm_(gp, max_norm)
    tn = torch.nn.utils.clip_grad_norm_(tp, max_norm)
    assert abs(gn - tn.item()) < 1e-5 * tn.item()
    for p, q in zip(gp, tp):
        assert_close(p.grad.numpy(), q.grad.numpy(), rtol=1e-6, atol_scale=1e-7)


def linear_lambda(warmup, total):  # transformers.get_linear_schedule_with_warmup
    return lambda s: s / max(1, warmup) if s < warmup else max(0.0, (total - s) / max(1, total - warmup))


def cosine_lambda(warmup, total):  # transformers.get_cosine_schedule_with_warmup (num_cycles 0.5)
    def f(s):
        if s < warmup:
            return s / max(1, warmup)
        progress = (s - warmup) / max(1, total - warmup)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
    return f


def inverse_sqrt_lambda(warmup, total):  # fairseq's inverse_sqrt from zero
    return lambda s: s / warmup if s < warmup else math.sqrt(warmup / s)


@pytest.mark.parametrize("kind,make", [("constant", lambda w, t: (lambda s: 1.0)), ("linear", linear_lambda),
                                       ("cosine", cosine_lambda), ("inverse_sqrt", inverse_sqrt_lambda)])
def test_schedules_follow_lambdalr(kind, make):
    warmup, total = 5, 30
    p = torch.zeros(1, requires_grad=True)
    topt = torch.optim.SGD([p], lr=0.5)
    tsched = torch.optim.lr_scheduler.LambdaLR(topt, make(warmup, total))
    g = gaze.zeros([1])
    g.requires_grad = True
    gopt = gaze.optim.SGD([g], lr=0.5)
    gsched = gaze.optim.LRScheduler(gopt, kind, warmup_steps=warmup, total_steps=total)
    for _ in range(total + 1):  # past total_steps gaze holds the final rate (HF's cosine would rise again)
        assert abs(gopt.lr - topt.param_groups[0]["lr"]) < 1e-12, (kind, gsched.last_step)
        topt.step(), tsched.step()
        gopt.step(), gsched.step()
    assert gaze.optim.schedule_factor(kind, 10 * total, warmup, total) == gaze.optim.schedule_factor(kind, total, warmup, total) \
        or kind == "inverse_sqrt"


def test_bad_arguments():
    p = [gaze.zeros([2])]
    p[0].requires_grad = True
    with pytest.raises(ValueError, match="learning rate"):
        gaze.optim.SGD(p, lr=-1)
    with pytest.raises(ValueError, match="betas"):
        gaze.optim.Adam(p, betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="nesterov"):
        gaze.optim.SGD(p, nesterov=True)
    with pytest.raises(ValueError, match="requires grad"):
        gaze.optim.SGD([gaze.zeros([2])])
    with pytest.raises(ValueError, match="schedule must be"):
        gaze.optim.LRScheduler(gaze.optim.SGD(p), "exp")
    with pytest.raises(ValueError, match="total_steps"):
        gaze.optim.schedule_factor("linear", 10, warmup_steps=5, total_steps=5)


def test_exponential_average_follows_the_formula_swaps_and_refuses_updates_while_swapped():
    """train.ema_decay's average: avg += (1 - d_n) (p - avg) with d_n = min(decay, (1 + n) / (10 + n)) at the n-th
    update (n from 0), against numpy in float64."""
    r = rng(3)
    init = [r.standard_normal(s).astype(np.float32) for s in [(4, 3), (5,)]]
    params = [gaze.tensor(a, requires_grad=True) for a in init]
    avg = gaze.optim.ExponentialAverage(params, decay=0.9)
    opt = gaze.optim.SGD(params, lr=0.1)
    expected = [a.astype(np.float64) for a in init]
    for n in range(30):
        for p in params:
            p.grad = gaze.tensor(r.standard_normal(tuple(p.shape)).astype(np.float32))
        opt.step()
        avg.update()
        d = min(0.9, (1 + n) / (10 + n))
        expected = [e + (1 - d) * (p.detach().numpy().astype(np.float64) - e) for e, p in zip(expected, params)]
    assert avg.updates == 30
    trained = [p.detach().numpy().copy() for p in params]
    state = avg.state_tensors()
    for i, e in enumerate(expected):
        assert_close(state[str(i)].numpy(), e, rtol=1e-5, atol_scale=1e-6)
    avg.swap()
    assert avg.swapped
    for p, e, t in zip(params, expected, trained):
        assert_close(p.detach().numpy(), e, rtol=1e-5, atol_scale=1e-6)
        assert not np.array_equal(p.detach().numpy(), t)
    with pytest.raises(RuntimeError, match="swapped"):
        avg.update()
    avg.swap()
    for p, t in zip(params, trained):
        assert np.array_equal(p.detach().numpy(), t)
    with pytest.raises(ValueError, match="decay"):
        gaze.optim.ExponentialAverage(params, decay=1.0)
