"""gaze.optim: torch.optim's SGD, Adam and AdamW (same defaults and update equations), learning-rate
schedules and gradient clipping. Optimizers take a list of parameters (e.g. ``model.parameters()``)."""
from .._C import _optim

Optimizer = _optim.Optimizer
SGD = _optim.SGD
Adam = _optim.Adam
LRScheduler = _optim.LRScheduler
ExponentialAverage = _optim.ExponentialAverage
ExponentialAverage.__doc__ = """An exponential moving average of parameters (train.ema_decay): update() after each
optimizer step, swap() to put the average into the parameters (and again to take it out)."""
schedule_factor = _optim.schedule_factor


def AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    """Adam with PyTorch's decoupled weight decay (torch.optim.AdamW, amsgrad off)."""
    return _optim.Adam.adamw(list(params), lr, tuple(betas), eps, weight_decay)


def clip_grad_norm_(parameters, max_norm):
    """Scales gradients to a global L2 norm of at most max_norm; returns the norm before clipping."""
    return _optim.clip_grad_norm_(list(parameters), float(max_norm))


class lr_scheduler:  # noqa: N801 - mirrors the torch.optim.lr_scheduler namespace
    LRScheduler = LRScheduler


__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "LRScheduler", "ExponentialAverage", "clip_grad_norm_", "schedule_factor", "lr_scheduler"]
