"""Parity with torch 1.13 for LSTM / GRU (layers, directions, variable lengths through torch's packed
sequences) and LSTMCell / GRUCell: outputs, final states, input and every parameter gradient."""
import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import gaze
from parity import REDUCTION, assert_close, rng


def torch_run(t, x, lengths, batch_first, mode):
    if lengths is None:
        out, state = t(x)
    else:
        packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)
        out, state = t(packed)
        out, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=x.shape[1 if batch_first else 0])
    return out, (state if mode == "gru" else state)


@pytest.mark.parametrize("mode", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("variable_lengths", [False, True])
def test_rnn(mode, bidirectional, num_layers, batch_first, variable_lengths):
    I, H, B, T = 5, 7, 4, 9
    torch.manual_seed(1)
    tcls, gcls = (torch.nn.LSTM, gaze.nn.LSTM) if mode == "lstm" else (torch.nn.GRU, gaze.nn.GRU)
    t = tcls(I, H, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first)
    g = gcls(I, H, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first)
    assert list(g.state_dict()) == list(t.state_dict())
    g.load_state_dict(t.state_dict())
    shape = (B, T, I) if batch_first else (T, B, I)
    x = rng(2).standard_normal(shape).astype(np.float32)
    lengths = np.array([9, 4, 1, 7], np.int64) if variable_lengths else None
    gx, tx = gaze.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    gout, gstate = g(gx, lengths=gaze.tensor(lengths) if lengths is not None else None)
    tout, tstate = torch_run(t, tx, lengths, batch_first, mode)
    assert_close(gout.detach().numpy(), tout.detach().numpy(), **REDUCTION, what="output")
    gstates = gstate if mode == "lstm" else (gstate,)
    tstates = tstate if mode == "lstm" else (tstate,)
    for gs, ts in zip(gstates, tstates):
        assert_close(gs.detach().numpy(), ts.detach().numpy(), **REDUCTION, what="final state")
    r = rng(3)
    ups = [r.standard_normal(tuple(a.shape)).astype(np.float32) for a in (tout,) + tuple(tstates)]
    gl = (gout * gaze.tensor(ups[0])).sum()
    tl = (tout * torch.tensor(ups[0])).sum()
    for gs, ts, up in zip(gstates, tstates, ups[1:]):
        gl = gl + (gs * gaze.tensor(up)).sum()
        tl = tl + (ts * torch.tensor(up)).sum()
    gl.backward()
    tl.backward()
    assert_close(gx.grad.numpy(), tx.grad.numpy(), **REDUCTION, what="input grad")
    tg = dict(t.named_parameters())
    for name, p in g.named_parameters():
        assert_close(p.grad.numpy(), tg[name].grad.numpy(), **REDUCTION, what=f"grad {name}")


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_initial_states(mode):
    torch.manual_seed(4)
    tcls, gcls = (torch.nn.LSTM, gaze.nn.LSTM) if mode == "lstm" else (torch.nn.GRU, gaze.nn.GRU)
    t, g = tcls(3, 4, num_layers=2, bidirectional=True), gcls(3, 4, num_layers=2, bidirectional=True)
    g.load_state_dict(t.state_dict())
    r = rng(5)
    x = r.standard_normal((6, 2, 3)).astype(np.float32)
    h0 = r.standard_normal((4, 2, 4)).astype(np.float32)
    c0 = r.standard_normal((4, 2, 4)).astype(np.float32)
    if mode == "lstm":
        go, (gh, gc) = g(gaze.tensor(x), (gaze.tensor(h0), gaze.tensor(c0)))
        to, (th, tc) = t(torch.tensor(x), (torch.tensor(h0), torch.tensor(c0)))
        assert_close(gc.detach().numpy(), tc.detach().numpy(), **REDUCTION)
    else:
        go, gh = g(gaze.tensor(x), gaze.tensor(h0))
        to, th = t(torch.tensor(x), torch.tensor(h0))
    assert_close(go.detach().numpy(), to.detach().numpy(), **REDUCTION)
    assert_close(gh.detach().numpy(), th.detach().numpy(), **REDUCTION)


def test_cells():
    torch.manual_seed(6)
    for tcls, gcls in ((torch.nn.LSTMCell, gaze.nn.LSTMCell), (torch.nn.GRUCell, gaze.nn.GRUCell)):
        t, g = tcls(5, 6), gcls(5, 6)
        g.load_state_dict(t.state_dict())
        r = rng(7)
        x, h = r.standard_normal((3, 5)).astype(np.float32), r.standard_normal((3, 6)).astype(np.float32)
        gx, tx = gaze.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        if tcls is torch.nn.LSTMCell:
            c = r.standard_normal((3, 6)).astype(np.float32)
            gh, gc = g(gx, (gaze.tensor(h), gaze.tensor(c)))
            th, tc = t(tx, (torch.tensor(h), torch.tensor(c)))
            (gh.sum() + (gc * 2).sum()).backward()
            (th.sum() + (tc * 2).sum()).backward()
            assert_close(gc.detach().numpy(), tc.detach().numpy(), **REDUCTION)
        else:
            gh, th = g(gx, gaze.tensor(h)), t(tx, torch.tensor(h))
            gh.sum().backward()
            th.sum().backward()
        assert_close(gh.detach().numpy(), th.detach().numpy(), **REDUCTION)
        assert_close(gx.grad.numpy(), tx.grad.numpy(), **REDUCTION)
        tg = dict(t.named_parameters())
        for name, p in g.named_parameters():
            assert_close(p.grad.numpy(), tg[name].grad.numpy(), **REDUCTION, what=name)


def test_bad_inputs():
    g = gaze.nn.LSTM(3, 4)
    with pytest.raises(ValueError, match="input must be"):
        g(gaze.ones([5, 2, 2]))
    with pytest.raises(IndexError, match="lengths"):
        g(gaze.ones([5, 2, 3]), lengths=gaze.tensor([6, 1]))
    with pytest.raises(ValueError, match="h0 must be"):
        g(gaze.ones([5, 2, 3]), (gaze.ones([2, 2, 4]), gaze.ones([1, 2, 4])))
