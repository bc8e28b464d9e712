"""gaze.nn.utils: clip_grad_norm_, as torch.nn.utils."""
from ..optim import clip_grad_norm_

__all__ = ["clip_grad_norm_"]
