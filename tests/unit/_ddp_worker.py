"""Worker for ``test_train.py::test_ddp_two_processes_gloo``, started by torchrun (2 CPU ranks).

Also imported by the test itself for the single-process reference run, so data, model and
configuration are defined once, here.
"""
from __future__ import annotations

import sys

import torch
from torch import nn
from torch.utils.data import TensorDataset

from atlaskit.train import TrainConfig, Trainer, classification_step, get_rank, is_main_process


def make_data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(80, 6, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return TensorDataset(x[:48], y[:48]), TensorDataset(x[48:], y[48:])  # 48 train = 3 global batches


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 2))  # no dropout / batch norm


def make_config(checkpoint_dir=None) -> TrainConfig:
    # batch_size is global: 16 = one process × 16 or two ranks × 8. SGD (not Adam) keeps the
    # comparison with the single-process run well conditioned (Adam divides by tiny moments).
    return TrainConfig(
        epochs=3, batch_size=16, optimizer="sgd", lr=0.2, momentum=0.9, seed=3,
        device="cpu", progress=False, checkpoint_dir=checkpoint_dir,
    )


def run(checkpoint_dir=None):
    train, val = make_data()
    trainer = Trainer(make_model(), make_config(checkpoint_dir), step_fn=classification_step,
                      train_data=train, val_data=val, model_config={"net": "mlp-6-16-2"})
    history = trainer.fit(resume=False)
    return trainer, history


if __name__ == "__main__":
    torch.set_num_threads(1)
    out = sys.argv[1]
    trainer, history = run(checkpoint_dir=f"{out}/ckpt")
    torch.save(
        {
            "rank": get_rank(),
            "world_size": trainer.world_size,
            "distributed": trainer.distributed,
            "main": is_main_process(),
            "state": trainer.model.state_dict(),
            "history": history.to_dict(),
        },
        f"{out}/rank{get_rank()}.pt",
    )
