"""Subprocess worker for the checkpoint tests: trains a small TransformerClassifier with dropout,
AdamW, a warm-up schedule and clipping, saving or resuming checkpoints, and prints the losses as JSON.

    resume_worker.py train STEPS [SAVE_DIR]     train from scratch, optionally save at the end
    resume_worker.py resume DIR STEPS           load DIR in this fresh process and train STEPS more
    resume_worker.py save_twice DIR             save a checkpoint, then save again (used with fault injection)
    resume_worker.py save_two DIR               save a checkpoint, train 2 steps, save it again; prints a
                                                fingerprint (sum of |weights|) of each
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.environ["GAZE_PYTHONPATH"])
import gaze  # noqa: E402

CONFIG = dict(vocab_size=50, num_classes=3, d_model=16, nhead=2, num_layers=2, dim_feedforward=32, dropout=0.2)


def batch(step):  # the data of step `step` (position-addressable, like a resumable data stream)
    r = np.random.default_rng(1000 + step)
    tokens = r.integers(1, 50, size=(4, 7))
    lengths = r.integers(2, 8, size=4)
    return gaze.tensor(tokens), gaze.tensor(lengths), gaze.tensor(r.integers(0, 3, size=4))


def setup(model=None):
    gaze.manual_seed(7)
    model = model or gaze.models.TransformerClassifier(**CONFIG)
    opt = gaze.optim.AdamW(model.parameters(), lr=3e-3)
    sched = gaze.optim.LRScheduler(opt, "linear", warmup_steps=3, total_steps=40)
    return model, opt, sched


def train(model, opt, sched, first, steps):
    losses = []
    for step in range(first, first + steps):
        tokens, lengths, labels = batch(step)
        loss = gaze.nn.functional.cross_entropy(model(tokens, lengths), labels, label_smoothing=0.1)
        opt.zero_grad()
        loss.backward()
        gaze.optim.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


def main():
    mode = sys.argv[1]
    if mode == "train":
        steps = int(sys.argv[2])
        model, opt, sched = setup()
        losses = train(model, opt, sched, 0, steps)
        if len(sys.argv) > 3:
            gaze.io.save_checkpoint(sys.argv[3], model, opt, sched, json.dumps({"next_step": steps}))
        print(json.dumps(losses))
    elif mode == "resume":
        model = gaze.models.load_model(sys.argv[2])
        _, opt, sched = setup(model)
        progress = json.loads(gaze.io.restore_training(sys.argv[2], opt, sched))
        print(json.dumps(train(model, opt, sched, progress["next_step"], int(sys.argv[3]))))
    elif mode == "save_two":
        model, opt, sched = setup()
        firsts = []
        for _ in range(2):
            firsts.append(round(sum(float(np.abs(t.numpy()).sum()) for t in model.state_dict().values()), 3))
            gaze.io.save_checkpoint(sys.argv[2], model, opt, sched)
            train(model, opt, sched, 0, 2)
        print(json.dumps(firsts))
    elif mode == "save_twice":
        model, opt, sched = setup()
        gaze.io.save_checkpoint(sys.argv[2], model, opt, sched)
        train(model, opt, sched, 0, 2)
        os.environ["GAZE_FAULT_INJECT"] = "checkpoint_save"  # read by the C++ side at save time
        gaze.io.save_checkpoint(sys.argv[2], model, opt, sched)
        print("not reached: the save should have been killed")


if __name__ == "__main__":
    main()
