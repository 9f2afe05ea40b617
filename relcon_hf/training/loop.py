# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""One Accelerate training loop for both RelCon stages.

The stage-specific parts (model, data streams, loss) come from a `TrainingTask`. Everything else is shared: mixed
precision, gradient accumulation, a learning-rate schedule, `save_state` checkpoints every N steps, exact resume
(model, optimizer, scheduler, random state and data position), tracker logging and evaluation on held-out
subjects. The loop keeps the weights with the best validation loss and saves them with `save_pretrained`.

Run it through the CLI on one process (`relcon-hf pretrain ...`) or several
(`accelerate launch --multi_gpu --num_processes 2 -m relcon_hf.cli pretrain ...`). Streaming data has no length, so
training is measured in optimizer steps (`max_steps`), not epochs.
"""

import dataclasses
import json
import math
import os
import pickle
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import torch
from accelerate import Accelerator, PartialState
from accelerate.logging import get_logger
from accelerate.utils import set_seed
from safetensors import SafetensorError
from torch.utils.data import DataLoader, IterableDataset
from tqdm.auto import tqdm
from transformers import PreTrainedModel, get_scheduler

from ..allocator import retain_freed_memory
from .checkpoints import copy_folder, fsync_file, replace_folder, verify_checkpoint_files, write_file_list
from .trackers import JSONLinesTracker


logger = get_logger(__name__)

CHECKPOINT_PREFIX = "step_"
TRAINING_STATE_FILE = "training_state.json"
BEST_FOLDER = "best"
MIXED_PRECISION_CHOICES = ("no", "bf16", "fp16")


@dataclass
class TrainingSettings:
    """
    Settings shared by both pre-training stages.

    Args:
        output_dir (`str`):
            Folder of the final checkpoint. Training states go to `<output_dir>/checkpoints/step_<n>`, the best
            weights so far to `<output_dir>/best`, metrics to `<output_dir>/training_log.jsonl`.
        shards (`str`):
            Folder written by `relcon-hf prepare`, with `train/` and `validation/` shards and `manifest.json`.
        max_steps (`int`): Optimizer steps to train for.
        batch_size (`int`): Windows (stage 1) or anchors (stage 2) per process and micro-batch.
        learning_rate (`float`): Peak learning rate of Adam.
        weight_decay (`float`): L2 penalty of Adam.
        lr_scheduler (`str`): Name of a transformers schedule ("constant", "cosine", "linear", ...).
        warmup_steps (`int`): Steps of linear warm-up.
        gradient_accumulation_steps (`int`): Micro-batches per optimizer step.
        max_grad_norm (`float`, *optional*): Clip the gradient norm to this value; `None` disables clipping.
        mixed_precision (`str`): "no", "bf16" or "fp16" autocast.
        checkpoint_steps (`int`): Save a resumable training state every this many steps; 0 disables it.
        checkpoints_to_keep (`int`): Newest training states kept on disk.
        eval_steps (`int`): Evaluate on the validation subjects every this many steps and at the end; 0 only at
            the end.
        eval_batches (`int`): Maximum validation batches per evaluation.
        logging_steps (`int`): Log the mean training loss every this many steps.
        resume_from (`str`, *optional*): A `step_<n>` folder, or "latest" for the newest one in `output_dir`.
        seed (`int`): Seed of the model initialisation, data order and augmentations.
        num_workers (`int`): DataLoader worker processes per training process.
        shuffle_buffer_size (`int`): Windows or anchors in the streaming shuffle buffer.
        report_to (`list[str]`): Accelerate trackers; "jsonl" is built in.
    """

    output_dir: str
    shards: str
    max_steps: int = 1000
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    lr_scheduler: str = "constant"
    warmup_steps: int = 0
    gradient_accumulation_steps: int = 1
    max_grad_norm: float | None = None
    mixed_precision: str = "no"
    checkpoint_steps: int = 500
    checkpoints_to_keep: int = 2
    eval_steps: int = 100
    eval_batches: int = 20
    logging_steps: int = 10
    resume_from: str | None = None
    seed: int = 0
    num_workers: int = 0
    shuffle_buffer_size: int = 2048
    report_to: list[str] = field(default_factory=lambda: ["jsonl"])

    def __post_init__(self) -> None:
        positive = ("max_steps", "batch_size", "gradient_accumulation_steps", "eval_batches", "logging_steps")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        non_negative = ("warmup_steps", "checkpoint_steps", "eval_steps", "num_workers", "shuffle_buffer_size")
        for name in non_negative:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"`{name}` must be a non-negative integer, got {value!r}.")
        if self.checkpoints_to_keep < 1:
            raise ValueError(f"`checkpoints_to_keep` must be at least 1, got {self.checkpoints_to_keep}.")
        if not self.learning_rate > 0:
            raise ValueError(f"`learning_rate` must be positive, got {self.learning_rate}.")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"`max_grad_norm` must be positive or None, got {self.max_grad_norm}.")
        if self.mixed_precision not in MIXED_PRECISION_CHOICES:
            raise ValueError(
                f"`mixed_precision` must be one of {', '.join(MIXED_PRECISION_CHOICES)}, got {self.mixed_precision!r}."
            )


class TrainingTask(Protocol):
    """Interface of a pre-training stage: its model, data streams, loss and saved artifacts."""

    name: str

    def build_model(self) -> PreTrainedModel: ...

    def train_dataset(self, rank: int, world_size: int) -> IterableDataset: ...

    def eval_dataset(self, rank: int, world_size: int) -> IterableDataset | None: ...

    def prepare(self, accelerator: Accelerator) -> None: ...

    def compute_loss(self, model: torch.nn.Module, batch: Any, generator: torch.Generator) -> torch.Tensor: ...

    def save_artifacts(self, model: PreTrainedModel, output_dir: Path, summary: dict) -> None: ...


@dataclass
class TrainingState:
    """
    Progress saved with every checkpoint so a resumed run continues at the same step and data position.

    `data_state` is the training stream's `loader_state_dict` at the checkpoint, or `None` for a stream without one.
    Checkpoints written before it existed load with `None`, and the position is then derived from `epoch` and
    `batches_in_epoch`.
    """

    completed_steps: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    best_eval_loss: float | None = None
    best_step: int | None = None
    data_state: dict | None = None

    def save(self, folder: Path) -> None:
        with open(folder / TRAINING_STATE_FILE, "w") as handle:
            json.dump(dataclasses.asdict(self), handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())

    @classmethod
    def load(cls, folder: Path) -> "TrainingState":
        path = folder / TRAINING_STATE_FILE
        try:
            with open(path) as handle:
                return cls(**json.load(handle))
        except (OSError, json.JSONDecodeError, TypeError) as error:
            raise ValueError(f"Checkpoint {folder} has no readable {TRAINING_STATE_FILE}: {error}") from error


@dataclass
class TrainingResult:
    """Output folder, step count and losses of a finished training run."""

    output_dir: Path
    completed_steps: int
    final_train_loss: float | None
    final_eval_loss: float | None
    best_eval_loss: float | None
    best_step: int | None
    summary: dict = field(default_factory=dict)


def launched_on_cpu_only() -> bool:
    """Whether this process is one of several started by a launcher on a machine without an accelerator."""
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1 or int(os.environ.get("LOCAL_RANK", "-1")) != -1
    return launched and not torch.accelerator.is_available()


def process_state() -> PartialState:
    """
    The Accelerate process state, set up for CPU processes when a launcher started several on a CPU-only machine.

    Accelerate 1.16 treats processes started by `accelerate launch --multi_gpu` or `torchrun` on a machine without
    GPUs as independent single processes unless told to use the CPU. They would then train separately and overwrite
    each other's files, so this passes `cpu=True` there, which joins them in a gloo process group.
    """
    return PartialState(cpu=launched_on_cpu_only())


def run_training(task: TrainingTask, settings: TrainingSettings) -> TrainingResult:
    """
    Train `task`'s model for `settings.max_steps` optimizer steps and save it with `save_pretrained`.

    Returns:
        [`TrainingResult`]: the output folder, the step count and the losses.
    """
    output_dir = Path(settings.output_dir)
    # Without this, a CPU step re-maps (and the kernel zeroes) its activations on every step.
    retain_freed_memory()

    # 1. Accelerator, trackers and seed.
    trackers: list[Any] = [
        JSONLinesTracker(task.name, output_dir) if name == "jsonl" else name for name in settings.report_to
    ]
    accelerator = Accelerator(
        cpu=launched_on_cpu_only(),
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        mixed_precision=settings.mixed_precision,
        log_with=trackers or None,
        project_dir=str(output_dir),
    )
    set_seed(settings.seed)

    # 2. Model, optimizer and schedule.
    model = task.build_model()
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    scheduler = get_scheduler(
        settings.lr_scheduler,
        optimizer,
        num_warmup_steps=settings.warmup_steps * accelerator.num_processes,
        num_training_steps=settings.max_steps * accelerator.num_processes,
    )
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    task.prepare(accelerator)

    # 3. Data: every process streams its own shards, so batches are not dispatched through accelerate.
    rank, world_size = accelerator.process_index, accelerator.num_processes
    train_dataset = task.train_dataset(rank, world_size)
    eval_dataset = task.eval_dataset(rank, world_size)
    train_loader = _data_loader(train_dataset, settings)
    eval_loader = _data_loader(eval_dataset, settings, drop_last=False) if eval_dataset is not None else None

    accelerator.init_trackers(task.name, config=_tracker_config(settings))
    total_batch = settings.batch_size * settings.gradient_accumulation_steps * world_size
    logger.info(f"***** Training {task.name} *****", main_process_only=True)
    logger.info(f"  Processes = {world_size}, device = {accelerator.device}", main_process_only=True)
    logger.info(f"  Batch size per process = {settings.batch_size}", main_process_only=True)
    logger.info(f"  Total batch size (with accumulation and processes) = {total_batch}", main_process_only=True)
    logger.info(f"  Gradient accumulation steps = {settings.gradient_accumulation_steps}", main_process_only=True)
    logger.info(f"  Optimizer steps = {settings.max_steps}", main_process_only=True)
    logger.info(f"  DataLoader workers per process = {train_loader.num_workers}", main_process_only=True)

    # 4. Resume.
    state = TrainingState()
    if settings.resume_from:
        checkpoint, state = load_checkpoint(accelerator, settings.resume_from, output_dir)
        restore_best_weights(accelerator, checkpoint, output_dir)
        logger.info(f"Resumed from {checkpoint} at step {state.completed_steps}", main_process_only=True)

    # 5. Loop.
    batches = _iterate_batches(train_loader, train_dataset, state)
    progress = tqdm(
        total=settings.max_steps,
        initial=state.completed_steps,
        desc=f"{task.name} training",
        disable=not accelerator.is_local_main_process,
    )
    running_loss, running_count, last_train_loss, last_eval_loss = 0.0, 0, None, None
    model.train()
    while state.completed_steps < settings.max_steps:
        step_loss = 0.0
        for micro_step in range(settings.gradient_accumulation_steps):
            batch = next(batches)
            generator = _step_generator(settings.seed, state.completed_steps, micro_step, rank, accelerator.device)
            with accelerator.accumulate(model):
                with accelerator.autocast():
                    loss = task.compute_loss(model, batch, generator)
                accelerator.backward(loss)
                if accelerator.sync_gradients and settings.max_grad_norm is not None:
                    accelerator.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            step_loss += loss.detach().float().item() / settings.gradient_accumulation_steps
        if not math.isfinite(step_loss):
            raise FloatingPointError(
                f"{task.name} training loss became {step_loss} at step {state.completed_steps + 1}. Lower the "
                "learning rate, or resume from an earlier checkpoint with --resume-from."
            )

        state.completed_steps += 1
        progress.update(1)
        running_loss += step_loss
        running_count += 1
        step = state.completed_steps

        if step % settings.logging_steps == 0 or step == settings.max_steps:
            last_train_loss = running_loss / running_count
            accelerator.log({"train_loss": last_train_loss, "learning_rate": scheduler.get_last_lr()[0]}, step=step)
            progress.set_postfix(loss=f"{last_train_loss:.4g}")
            running_loss, running_count = 0.0, 0

        evaluate_now = step == settings.max_steps or (settings.eval_steps and step % settings.eval_steps == 0)
        checkpoint_now = settings.checkpoint_steps and step % settings.checkpoint_steps == 0
        if evaluate_now or checkpoint_now:
            average_batch_norm_statistics(accelerator, model)
        if eval_loader is not None and eval_dataset is not None and evaluate_now:
            last_eval_loss = evaluate(task, model, eval_loader, eval_dataset, settings, accelerator)
            accelerator.log({"eval_loss": last_eval_loss}, step=step)
            logger.info(f"{task.name} step {step}: validation loss {last_eval_loss:.6g}", main_process_only=True)
            if state.best_eval_loss is None or last_eval_loss < state.best_eval_loss:
                state.best_eval_loss, state.best_step = last_eval_loss, step
                _save_best_model(accelerator, model, output_dir)
            model.train()

        if checkpoint_now:
            state.data_state = _data_state(train_loader, train_dataset, state)
            save_checkpoint(accelerator, state, output_dir, settings.checkpoints_to_keep)
    progress.close()
    average_batch_norm_statistics(accelerator, model)

    # 6. Final model: the weights with the best validation loss, else the last ones.
    unwrapped = accelerator.unwrap_model(model)
    best_dir = output_dir / BEST_FOLDER
    if state.best_step is not None and (best_dir / "model.safetensors").exists():
        _load_weights(unwrapped, best_dir / "model.safetensors")
        logger.info(f"Keeping the weights of step {state.best_step} (validation loss {state.best_eval_loss:.6g})")
    summary = {
        "task": task.name,
        "completed_steps": state.completed_steps,
        "final_train_loss": last_train_loss,
        "final_eval_loss": last_eval_loss,
        "best_eval_loss": state.best_eval_loss,
        "best_step": state.best_step,
        "num_processes": world_size,
        "device": str(accelerator.device),
        "settings": _tracker_config(settings),
    }
    if accelerator.is_main_process:
        _save_model(accelerator, model, output_dir)
        task.save_artifacts(unwrapped, output_dir, summary)
        with open(output_dir / "training_summary.json", "w") as handle:
            json.dump(summary, handle, indent=2, default=str)
    accelerator.wait_for_everyone()
    # Not `end_training`: it also destroys the process group, which the next stage of the same job still needs.
    for tracker in accelerator.trackers:
        tracker.finish()
    logger.info(f"Saved the {task.name} model to {output_dir}", main_process_only=True)

    return TrainingResult(
        output_dir=output_dir,
        completed_steps=state.completed_steps,
        final_train_loss=last_train_loss,
        final_eval_loss=last_eval_loss,
        best_eval_loss=state.best_eval_loss,
        best_step=state.best_step,
        summary=summary,
    )


@torch.no_grad()
def evaluate(
    task: TrainingTask,
    model: torch.nn.Module,
    eval_loader: DataLoader,
    eval_dataset: IterableDataset,
    settings: TrainingSettings,
    accelerator: Accelerator,
) -> float:
    """
    Compute the mean loss over at most `settings.eval_batches` validation batches, the same ones at every evaluation.

    Processes can hold different numbers of validation batches, so the forward passes use the unwrapped model: a
    DistributedDataParallel forward broadcasts BatchNorm buffers, a collective that would wait forever for a process
    that has run out of batches. The only collective is the final reduction of the loss sums.

    Each batch loss is weighted by its windows (stage 1) or anchors (stage 2), and the validation streams give every
    item to exactly one process with the last, shorter batch kept, so when `eval_batches` covers the split the result
    is the mean over every validation item, each counted once.
    """
    model.eval()
    local_model = accelerator.unwrap_model(model)
    if hasattr(eval_dataset, "set_epoch"):
        eval_dataset.set_epoch(0)
    total = torch.zeros(2, device=accelerator.device)
    for index, batch in enumerate(eval_loader):
        if index >= settings.eval_batches:
            break
        # A fixed seed per batch keeps the augmentations, and so the loss, comparable between evaluations.
        generator = _step_generator(settings.seed + 1, index, 0, accelerator.process_index, accelerator.device)
        with accelerator.autocast():
            loss = task.compute_loss(local_model, batch, generator)
        num_items = float(batch_length(batch))
        total += torch.stack([loss.detach().float() * num_items, torch.tensor(num_items, device=accelerator.device)])
    total = accelerator.reduce(total, reduction="sum")
    if total[1].item() == 0:
        raise ValueError(
            f"The validation split of {settings.shards} produced no batch of {settings.batch_size}. Lower "
            "--batch-size or prepare shards with more validation subjects."
        )

    return (total[0] / total[1]).item()


def save_checkpoint(accelerator: Accelerator, state: TrainingState, output_dir: Path, keep: int) -> Path:
    """
    Save a resumable training state to `<output_dir>/checkpoints/step_<n>`.

    The state is written to a temporary folder and renamed once complete, so an interrupted save never leaves a
    folder that looks like a valid checkpoint. Before the rename the folder receives a copy of `best/` (the best
    weights up to this step, restored on resume), `checkpoint_files.json` (size and SHA-256 digest of every file,
    checked on resume) and, last, `training_state.json`; every file is flushed to disk first.
    """
    checkpoints = output_dir / "checkpoints"
    final = checkpoints / f"{CHECKPOINT_PREFIX}{state.completed_steps}"
    partial = checkpoints / f"{final.name}.incomplete"
    if accelerator.is_main_process and partial.exists():
        shutil.rmtree(partial)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        best_dir = output_dir / BEST_FOLDER
        if state.best_step is not None and (best_dir / "model.safetensors").exists():
            shutil.copytree(best_dir, partial / BEST_FOLDER)
        write_file_list(partial)
        state.save(partial)
        replace_folder(partial, final)
        for old in list_checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old)
        logger.info(f"Saved training state to {final}")
    accelerator.wait_for_everyone()

    return final


def list_checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints in `<output_dir>/checkpoints`, oldest first."""
    folder = Path(output_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    complete = []
    for path in folder.iterdir():
        suffix = path.name[len(CHECKPOINT_PREFIX) :]
        if path.name.startswith(CHECKPOINT_PREFIX) and suffix.isdigit() and (path / TRAINING_STATE_FILE).exists():
            complete.append((int(suffix), path))

    return [path for _, path in sorted(complete)]


def load_checkpoint(accelerator: Accelerator, resume_from: str, output_dir: Path) -> tuple[Path, TrainingState]:
    """
    Restore the model, optimizer, scheduler and random states of a checkpoint and return it with its training state.

    Each checkpoint's files are first checked against the sizes and SHA-256 digests recorded when it was saved. With
    `resume_from="latest"` a damaged checkpoint is reported with the file at fault and the next older one is tried.
    A named checkpoint that is damaged raises.

    Raises:
        `FileNotFoundError`: no complete checkpoint exists.
        `ValueError`: the named checkpoint, or with "latest" every checkpoint, is damaged; the message names the file.
    """
    if resume_from == "latest":
        candidates = list(reversed(list_checkpoints(output_dir)))
        if not candidates:
            resolve_checkpoint(resume_from, output_dir)  # raises FileNotFoundError with the usual message
    else:
        candidates = [resolve_checkpoint(resume_from, output_dir)]

    for index, checkpoint in enumerate(candidates):
        try:
            verify_checkpoint_files(checkpoint)
            state = TrainingState.load(checkpoint)
            _load_accelerator_state(accelerator, checkpoint)
        except ValueError as error:
            if index + 1 == len(candidates):
                if len(candidates) > 1:
                    message = f"No usable checkpoint in {checkpoint.parent}; the oldest failed too: {error}"
                    raise ValueError(message) from error
                raise
            logger.warning(f"{error} Resuming from the previous checkpoint, {candidates[index + 1]}, instead.")
            continue
        return checkpoint, state

    raise AssertionError("unreachable: the loop returns or raises")


def restore_best_weights(accelerator: Accelerator, checkpoint: Path, output_dir: Path) -> None:
    """
    Make `<output_dir>/best` the best weights as of `checkpoint`.

    After a crash `best/` can contain weights from steps after the checkpoint, which the resumed run may never reach
    again. Keeping them would make the final model depend on where the crash happened, so the checkpoint's own copy
    replaces them. Without a copy (no validation yet) the folder is removed.
    """
    if accelerator.is_main_process:
        saved, best_dir = checkpoint / BEST_FOLDER, output_dir / BEST_FOLDER
        if saved.is_dir():
            copy_folder(saved, best_dir)
        elif TrainingState.load(checkpoint).best_step is not None:
            # NOTE: checkpoints written before best weights were copied into them; best/ may be newer than them.
            logger.warning(f"{checkpoint} has no copy of the best weights; keeping {best_dir} as it is.")
        elif best_dir.exists():
            logger.info(f"Removing {best_dir}: it was written after {checkpoint}, which has no validation result.")
            shutil.rmtree(best_dir)
    accelerator.wait_for_everyone()


def average_batch_norm_statistics(accelerator: Accelerator, model: torch.nn.Module) -> None:
    """
    Replace the BatchNorm running means and variances of every process with their mean over the processes.

    Each process normalises its own micro-batches and updates its running statistics from them (BatchNorm is not
    synchronised across processes during the forward pass), so the processes drift apart between DDP's buffer
    broadcasts. Averaging them before every evaluation, checkpoint and the final save makes every process evaluate
    and hold the statistics that are saved. Does nothing on one process.
    """
    if accelerator.num_processes == 1:
        return
    buffers = [
        buffer
        for module in accelerator.unwrap_model(model).modules()
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and module.track_running_stats
        for buffer in (module.running_mean, module.running_var)
        if buffer is not None
    ]
    if not buffers:
        return
    flat = torch.cat([buffer.detach().float().reshape(-1) for buffer in buffers])
    flat = cast(torch.Tensor, accelerator.reduce(flat, reduction="sum")) / accelerator.num_processes
    offset = 0
    for buffer in buffers:
        buffer.copy_(flat[offset : offset + buffer.numel()].view_as(buffer))
        offset += buffer.numel()


def batch_length(batch: Any) -> int:
    """Return the number of items in a batch: the first dimension of a tensor, or of a dict's first tensor."""
    if isinstance(batch, torch.Tensor):
        return batch.shape[0]
    if isinstance(batch, dict):
        for value in batch.values():
            if isinstance(value, torch.Tensor):
                return value.shape[0]
    raise TypeError(f"Cannot count the items of a batch of type {type(batch).__name__}; expected a tensor or dict.")


def _load_accelerator_state(accelerator: Accelerator, checkpoint: Path) -> None:
    try:
        accelerator.load_state(str(checkpoint))
    except (OSError, RuntimeError, EOFError, KeyError, pickle.UnpicklingError, SafetensorError) as error:
        raise ValueError(
            f"Checkpoint {checkpoint} could not be loaded: {type(error).__name__}: {error}. It is damaged or was "
            "saved by an incompatible version; resume from another checkpoint."
        ) from error


def resolve_checkpoint(resume_from: str, output_dir: Path) -> Path:
    """Turn `--resume-from` ("latest" or a folder) into a checkpoint folder, or raise `FileNotFoundError`."""
    if resume_from == "latest":
        checkpoints = list_checkpoints(output_dir)
        if not checkpoints:
            raise FileNotFoundError(
                f"--resume-from latest: no complete checkpoint in {Path(output_dir) / 'checkpoints'}. Start without "
                "--resume-from, or pass a checkpoint folder."
            )
        return checkpoints[-1]
    path = Path(resume_from)
    if not (path / TRAINING_STATE_FILE).exists():
        raise FileNotFoundError(
            f"--resume-from {resume_from}: not a complete checkpoint (no {TRAINING_STATE_FILE}). Pass a "
            f"checkpoints/{CHECKPOINT_PREFIX}<n> folder or 'latest'."
        )

    return path


def _data_loader(dataset: IterableDataset, settings: TrainingSettings, drop_last: bool = True) -> DataLoader:
    # A stream gives each worker its own part of the items. Workers beyond `max_num_workers` (the row groups that one
    # process reads, on average) would read the same row groups again. The limit is the same on every rank, so every
    # rank keeps the same number of workers and of batches.
    num_workers = settings.num_workers
    max_num_workers = getattr(dataset, "max_num_workers", None)
    if max_num_workers is not None and num_workers > max_num_workers:
        split = getattr(dataset, "split", None)
        logger.warning(
            f"num_workers={num_workers} is more than the {max_num_workers} shard row groups that each process reads "
            f"from {f'the {split} split' if split else 'the dataset'}; using {max_num_workers} DataLoader workers, "
            "since more would read the same row groups twice."
        )
        num_workers = max_num_workers

    # Each new loader iterator draws a seed from `generator`. A generator of its own keeps those draws out of the
    # global random state that dropout uses, so an evaluation pass does not change the training randomness.
    return DataLoader(
        dataset,
        batch_size=settings.batch_size,
        num_workers=num_workers,
        drop_last=drop_last,
        persistent_workers=False,
        generator=torch.Generator().manual_seed(settings.seed),
        in_order=True,  # `loader_state_dict` relies on batches taken from the workers in turn
    )


def _iterate_batches(loader: DataLoader, dataset: IterableDataset, state: TrainingState) -> Iterator[Any]:
    """
    Yield batches forever, epoch after epoch, continuing the current epoch after the batches already trained on.

    A stream with `loader_state_dict` is restored to that position without reading the items before it. Any other
    dataset is read from the start of the epoch and its first `batches_in_epoch` batches are dropped.
    """
    skip = 0
    if state.batches_in_epoch and hasattr(dataset, "loader_state_dict"):
        cast(Any, dataset).load_state_dict(_resume_data_state(loader, dataset, state))
    else:
        skip = state.batches_in_epoch
    while True:
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(state.epoch)
        # A restored epoch can have no batch left, when the checkpoint was taken after its last one.
        produced = state.batches_in_epoch > 0
        for index, batch in enumerate(loader):
            produced = True
            if index < skip:
                continue
            state.batches_in_epoch += 1
            yield batch
        if not produced:
            raise ValueError(
                f"Epoch {state.epoch} of the training stream produced no full batch. The shards hold fewer windows "
                "(or anchors) than one batch for this process: lower --batch-size or add data."
            )
        state.epoch += 1
        state.batches_in_epoch = 0
        skip = 0


def _data_state(loader: DataLoader, dataset: Any, state: TrainingState) -> dict | None:
    """Return the stream position after the batches of the current epoch trained on, for the checkpoint."""
    if not hasattr(dataset, "loader_state_dict"):
        return None
    assert loader.batch_size is not None  # set by `_data_loader`
    return dataset.loader_state_dict(state.batches_in_epoch, loader.batch_size, loader.num_workers)


def _resume_data_state(loader: DataLoader, dataset: Any, state: TrainingState) -> dict:
    """Return the stream position saved in the checkpoint, after checking it against this run's DataLoader."""
    if state.data_state is None:
        # A checkpoint from before stream positions were saved. The position follows from the batch count, but
        # the items before it were ordered by the streams of that version.
        logger.warning(
            f"The checkpoint has no stream position; continuing epoch {state.epoch} after batch "
            f"{state.batches_in_epoch} in the order of this version's streams, so part of that epoch may be "
            "repeated or left out."
        )
        assert loader.batch_size is not None  # set by `_data_loader`
        return dataset.loader_state_dict(state.batches_in_epoch, loader.batch_size, loader.num_workers)
    saved_workers = state.data_state.get("num_workers")
    if saved_workers != loader.num_workers:
        raise ValueError(
            f"The checkpoint's stream position was saved with {saved_workers} DataLoader workers per process, but "
            f"this run uses {loader.num_workers}. Resume with --num-workers {saved_workers} (a value above the "
            "shard row groups per process is lowered to that number)."
        )
    if state.data_state.get("epoch") != state.epoch:
        raise ValueError(
            f"The checkpoint's stream position is in epoch {state.data_state.get('epoch')}, but its training state "
            f"is in epoch {state.epoch}. The checkpoint is inconsistent; resume from another one."
        )
    return state.data_state


def _step_generator(seed: int, step: int, micro_step: int, rank: int, device: torch.device) -> torch.Generator:
    # Derived from the step, not drawn from a running stream, so a resumed run makes the same random choices.
    generator = torch.Generator(device=device)
    generator.manual_seed((seed * 1_000_003 + step * 1009 + micro_step * 101 + rank) % (2**63))
    return generator


def _save_model(accelerator: Accelerator, model: torch.nn.Module, folder: Path) -> None:
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(folder, is_main_process=True, save_function=accelerator.save)


def _save_best_model(accelerator: Accelerator, model: torch.nn.Module, output_dir: Path) -> None:
    # Written aside and swapped in whole, so a kill during the save leaves the previous best weights readable.
    if accelerator.is_main_process:
        partial = output_dir / f"{BEST_FOLDER}.incomplete"
        if partial.exists():
            shutil.rmtree(partial)
        _save_model(accelerator, model, partial)
        for path in partial.iterdir():
            fsync_file(path)
        replace_folder(partial, output_dir / BEST_FOLDER)


def _load_weights(model: PreTrainedModel, path: Path) -> None:
    from safetensors.torch import load_file

    state_dict = load_file(str(path), device=str(next(model.parameters()).device))
    model.load_state_dict(state_dict, strict=True)


def _tracker_config(settings: TrainingSettings) -> dict:
    config = dataclasses.asdict(settings)
    config["report_to"] = ",".join(settings.report_to)
    return {key: value for key, value in config.items() if isinstance(value, (int, float, str, bool, type(None)))}
