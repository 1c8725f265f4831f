"""The one trainer that every chapter uses.

A chapter builds a model, a :class:`TrainConfig` with the study's optimisation settings and two
torch Datasets, and calls :meth:`Trainer.fit`::

    seed_everything(seed)                       # before building the model: its init is seeded
    model = DeepYeastNet()
    cfg = TrainConfig(epochs=epochs, batch_size=100, optimizer="sgd", lr=0.1, momentum=0.9,
                      weight_decay=5e-4, schedule="step", step_size=25, gamma=0.5,
                      seed=seed, device=device, checkpoint_dir=run_dir)
    trainer = Trainer(model, cfg, step_fn=classification_step, train_data=train_ds,
                      val_data=val_ds, model_config=model.config)
    history = trainer.fit()                     # resumes from run_dir/last.pt when it exists
    history.to_frame()                          # tidy: epoch, split, term, value

The model contract
------------------
``step_fn(model, batch) -> dict[str, Tensor]`` returns named scalar loss terms with the total
under ``"loss"``. Only ``"loss"`` is backpropagated; every other term is logged (per-epoch mean,
weighted by batch size). Keys starting with ``metric_`` are plain metrics (accuracy, ...): logged,
never part of a loss. Without a ``step_fn`` the trainer calls ``model.compute_losses(*batch)``
(``**batch`` for dict batches). :func:`classification_step` covers ``(image, label)`` batches and
a model returning logits.

Reproducibility and resume
--------------------------
The order of epoch ``e`` depends only on ``(seed, e)``: every epoch builds its loader with a
:class:`~torch.utils.data.DistributedSampler` (one replica when not distributed) and
``set_epoch(e)``, and torch / numpy / :mod:`random` plus the dataset's augmentation generator are
re-seeded from ``(seed, e, rank)`` when the epoch starts. So resuming from the checkpoint of
epoch ``e - 1`` gives bit-identical weights on CPU without depending on RNG-state restore (the
states are still stored and restored). Checkpoints (``checkpoint_dir/last.pt`` every epoch,
``best.pt`` on improvement) are written atomically and hold only tensors and plain Python
types; they are read with ``torch.load(weights_only=True)`` so loading never runs code.

Distributed
-----------
Under ``torchrun --nproc_per_node N`` (``WORLD_SIZE > 1``) the trainer initialises the process
group (nccl on CUDA, gloo on CPU), wraps the model in DistributedDataParallel and shards every
epoch with a DistributedSampler. ``TrainConfig.batch_size`` is the **global** batch (each rank
takes ``batch_size // world_size``), so a paper's settings mean the same thing on any number of
processes. Logged terms are averaged over all ranks; only rank 0 writes checkpoints and shows
progress.
"""
from __future__ import annotations

from atlaskit.train.checkpoints import CHECKPOINT_FORMAT, CheckpointError, History, load_checkpoint, save_checkpoint
from atlaskit.train.config import TrainConfig, config_fingerprint
from atlaskit.train.distributed import get_rank, get_world_size, is_main_process, resolve_device
from atlaskit.train.seeding import seed_everything
from atlaskit.train.steps import StepFn, TrainingError, classification_step, default_step, move_to_device
from atlaskit.train.trainer import Trainer

__all__ = [
    "TrainConfig",
    "Trainer",
    "History",
    "CheckpointError",
    "TrainingError",
    "classification_step",
    "default_step",
    "seed_everything",
    "is_main_process",
    "get_rank",
    "get_world_size",
    "resolve_device",
    "move_to_device",
    "save_checkpoint",
    "load_checkpoint",
    "config_fingerprint",
]

# Modules of this package (the former single module atlaskit/train.py, split by topic):
#   config.py       TrainConfig, config_fingerprint
#   distributed.py  get_rank, get_world_size, is_main_process, resolve_device (process group)
#   seeding.py      seed_everything and the per-epoch seed / RNG-state helpers
#   steps.py        move_to_device, default_step, classification_step, TrainingError, StepFn
#   checkpoints.py  History, save_checkpoint, load_checkpoint, CheckpointError, CHECKPOINT_FORMAT
#   schedules.py    the Keras-style plateau schedule
#   trainer.py      Trainer
