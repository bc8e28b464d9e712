"""gaze.nn: neural-network building blocks (functional ops for now), mirroring torch.nn."""
from . import functional
