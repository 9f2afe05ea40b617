# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Fine-tuning a `RelConForSequenceClassification` on labelled windows through the pre-training Accelerate loop.

The windows live in memory. A [`WindowStream`] serves them to the loop as an `IterableDataset` with a new seeded
order every epoch, one validation pass per epoch picks the best weights, and the loop's checkpointing, logging and
multi-process handling apply unchanged.
"""

import logging
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from torch.utils.data import IterableDataset, get_worker_info
from transformers import PreTrainedModel

from ..modeling import RelConConfig, RelConFeatureExtractor, RelConForSequenceClassification, RelConModel
from ..training.loop import TrainingSettings, process_state, run_training
from .datasets import EvaluationDataset
from .protocols import EvaluationSettings, dataset_targets, head_config


logger = logging.getLogger(__name__)


class WindowStream(IterableDataset):
    """
    Labelled windows from memory, as the training loop reads them: `{"input_values", "labels"}` items.

    Each epoch shuffles `rows` with a seed derived from `seed` and the epoch (when `shuffle`), then deals the items
    to the ranks in turn and gives every DataLoader worker its share. With `equal_ranks`, every rank gets
    `len(rows) // world_size` items and the remainder is left out of that epoch, so all ranks take the same number
    of training steps. Without it (validation), every item is served once and the first ranks take one more.

    Args:
        windows (`np.ndarray` of shape `(num_windows, window_length, 3)`): All windows of the dataset.
        targets (`np.ndarray` of shape `(num_windows,)` or `(num_windows, num_targets)`): Class indices or targets.
        rows (`np.ndarray`): Indices of the windows this stream serves.
        rank (`int`), world_size (`int`): This process and the number of processes.
        shuffle (`bool`): Whether the order changes every epoch.
        seed (`int`): Seed of the order.
    """

    def __init__(
        self,
        windows: np.ndarray,
        targets: np.ndarray,
        rows: np.ndarray,
        *,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        seed: int = 0,
        equal_ranks: bool = True,
    ):
        super().__init__()
        self.windows, self.targets, self.rows = windows, targets, np.asarray(rows)
        self.rank, self.world_size = rank, world_size
        self.shuffle, self.seed, self.equal_ranks = shuffle, seed, equal_ranks
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        if self.equal_ranks:
            return len(self.rows) // self.world_size
        return len(range(self.rank, len(self.rows), self.world_size))

    def __iter__(self):
        rows = self.rows
        if self.shuffle:
            rows = rows[np.random.default_rng([self.seed, self.epoch]).permutation(len(rows))]
        if self.equal_ranks:
            rows = rows[: len(self) * self.world_size]
        rows = rows[self.rank :: self.world_size]
        worker = get_worker_info()
        if worker is not None:
            rows = rows[worker.id :: worker.num_workers]
        classification = np.issubdtype(self.targets.dtype, np.integer)
        for row in rows:
            target = self.targets[row]
            yield {
                "input_values": torch.from_numpy(np.ascontiguousarray(self.windows[row], dtype=np.float32)),
                "labels": torch.tensor(target, dtype=torch.long if classification else torch.float32),
            }


@dataclass
class FinetuneTask:
    """A [`~relcon_hf.training.loop.TrainingTask`] that trains a sequence classifier on labelled windows."""

    model_factory: Callable[[], PreTrainedModel]
    windows: np.ndarray
    targets: np.ndarray
    train_rows: np.ndarray
    validation_rows: np.ndarray
    seed: int
    feature_extractor: RelConFeatureExtractor
    name: str = "finetune"

    def build_model(self) -> PreTrainedModel:
        return self.model_factory()

    def train_dataset(self, rank: int, world_size: int) -> IterableDataset:
        return WindowStream(
            self.windows, self.targets, self.train_rows, rank=rank, world_size=world_size, seed=self.seed
        )

    def eval_dataset(self, rank: int, world_size: int) -> IterableDataset | None:
        return WindowStream(
            self.windows,
            self.targets,
            self.validation_rows,
            rank=rank,
            world_size=world_size,
            shuffle=False,
            equal_ranks=False,
        )

    def prepare(self, accelerator: Accelerator) -> None:
        pass

    def compute_loss(self, model: torch.nn.Module, batch: Any, generator: torch.Generator) -> torch.Tensor:
        return model(input_values=batch["input_values"], labels=batch["labels"]).loss

    def save_artifacts(self, model: PreTrainedModel, output_dir: Path, summary: dict) -> None:
        self.feature_extractor.save_pretrained(output_dir)


def train_head(
    model_dir: str | Path,
    dataset: EvaluationDataset,
    settings: EvaluationSettings,
    *,
    train_rows: np.ndarray,
    validation_rows: np.ndarray,
    output_dir: str | Path,
    input_mean: np.ndarray | None = None,
    input_std: np.ndarray | None = None,
) -> RelConForSequenceClassification:
    """
    Train an encoder with an MLP head on `train_rows` for `settings.epochs` epochs, evaluating on `validation_rows`
    after every epoch, and return the model with the weights of the lowest validation loss (also saved to
    `output_dir`).

    `settings.protocol == "scratch"` starts from random weights of the checkpoint's architecture; otherwise the
    encoder weights come from `model_dir`. The head is new in both cases. Files of an earlier run in `output_dir`
    are removed first, so its log and weights are not mixed with the new ones.
    """
    encoder_config = RelConConfig.from_pretrained(model_dir)
    config = head_config(
        encoder_config, dataset, settings, target_rows=train_rows, input_mean=input_mean, input_std=input_std
    )

    def build() -> PreTrainedModel:
        # The head is always new and seeded by the loop. Only the encoder's weights come from `model_dir`, which
        # may be an encoder or an earlier task head.
        model = RelConForSequenceClassification(config)
        if settings.protocol != "scratch":
            model.relcon.load_state_dict(RelConModel.from_pretrained(model_dir).state_dict())
        return model

    world_size = process_state().num_processes
    steps_per_epoch = len(train_rows) // (settings.batch_size * world_size)
    # The validation pass keeps the last partial batch, so every validation window is scored once.
    validation_batches = math.ceil(len(validation_rows) / (settings.batch_size * world_size))
    if steps_per_epoch < 1 or len(validation_rows) < world_size:
        raise ValueError(
            f"Fine-tuning needs at least one batch of {settings.batch_size} training windows and one validation "
            f"window per process, got {len(train_rows)} training and {len(validation_rows)} validation windows on "
            f"{world_size} processes. Lower --batch-size or use fewer processes."
        )
    try:
        feature_extractor = RelConFeatureExtractor.from_pretrained(model_dir)
    except OSError:
        feature_extractor = RelConFeatureExtractor(window_length=dataset.window_length)
    feature_extractor.window_length = dataset.window_length
    feature_extractor.hop_length = dataset.window_length

    task = FinetuneTask(
        model_factory=build,
        windows=dataset.windows,
        targets=dataset_targets(dataset),
        train_rows=np.asarray(train_rows),
        validation_rows=np.asarray(validation_rows),
        seed=settings.seed,
        feature_extractor=feature_extractor,
        name=settings.protocol,
    )
    training = TrainingSettings(
        output_dir=str(output_dir),
        shards=f"{dataset.name} (windows in memory)",
        max_steps=settings.epochs * steps_per_epoch,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        checkpoint_steps=0,
        eval_steps=steps_per_epoch,
        eval_batches=validation_batches,
        logging_steps=max(1, min(50, steps_per_epoch)),
        seed=settings.seed,
        report_to=["jsonl"],
    )
    logger.info(
        f"{settings.protocol}: {settings.epochs} epochs of {steps_per_epoch} steps, validation every epoch on "
        f"{len(validation_rows)} windows"
    )
    if process_state().is_main_process:
        shutil.rmtree(output_dir, ignore_errors=True)
    process_state().wait_for_everyone()
    run_training(task, training)
    return RelConForSequenceClassification.from_pretrained(output_dir).eval()


@torch.no_grad()
def predict(
    model: RelConForSequenceClassification, windows: np.ndarray, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """
    Run a sequence classifier on windows in evaluation mode.

    Returns:
        `(outputs, embeddings)`: `np.ndarray` of shape `(num_windows, num_labels)` (class logits, or targets in
        their units for regression) and of shape `(num_windows, hidden_size)`.
    """
    model = model.eval()
    device = next(model.parameters()).device
    outputs, embeddings = [], []
    for start in range(0, len(windows), batch_size):
        batch = torch.as_tensor(np.asarray(windows[start : start + batch_size]), dtype=torch.float32, device=device)
        output = model(input_values=batch)
        outputs.append(output.logits.float().cpu().numpy())
        embeddings.append(output.embeddings.float().cpu().numpy())
    if not outputs:
        return np.zeros((0, model.config.num_labels), np.float32), np.zeros((0, model.config.hidden_size), np.float32)
    return np.concatenate(outputs), np.concatenate(embeddings)
