"""gaze.io: safetensors files and checkpoints (config.json + model.safetensors [+ training state])."""
from ._C import _io

save_safetensors = _io.save_safetensors
load_safetensors = _io.load_safetensors
load_checkpoint = _io.load_checkpoint
restore_training = _io.restore_training
read_word_vectors = _io.read_word_vectors  # (words, float32 [N, D] tensor) of GloVe / word2vec text


def save_checkpoint(dir, model, optimizer=None, scheduler=None, progress="{}", config=None):
    """Writes model (and optimizer/scheduler/RNG state if given) to `dir` atomically. The model's own
    configuration is used unless `config` (a JSON string) is given."""
    if config is None:
        config = model.config
    return _io.save_checkpoint(dir, model, config, optimizer, scheduler, progress)


__all__ = ["save_safetensors", "load_safetensors", "save_checkpoint", "load_checkpoint", "restore_training",
           "read_word_vectors"]
