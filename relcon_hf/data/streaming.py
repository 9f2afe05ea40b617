# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Streaming readers of shard folders for the two RelCon training stages, and an in-memory loader for probes.

Shards are streamed with `datasets` (`load_dataset("parquet", ..., streaming=True)`), one candidate group per row.

- [`WindowStream`] yields single windows (stage 1, the motif distance model).
- [`AnchorCandidateStream`] yields anchors, each with `num_candidates` other windows of its own group (stage 2,
  relative contrastive training; RelCon draws K = 20 within-subject candidates per anchor).

Both are `torch.utils.data.IterableDataset`s. One pass is one epoch; call `set_epoch` before each pass. Group
order is shuffled by `datasets` (`shuffle(seed=..., buffer_size=...)` plus `set_epoch`), and items are mixed across
groups by a shuffle buffer of their own, seeded by `(seed, epoch, rank, worker id)`. With `num_workers=0` the
order is a function of `(seed, epoch, rank, world_size)` alone. Ranks read disjoint groups through
`datasets.distributed.split_dataset_by_node`: whole files when the number of files is a multiple of `world_size`,
otherwise every `world_size`-th group.
"""

import logging
import os
from collections.abc import Iterator, Sequence

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from datasets import load_dataset
from datasets.distributed import split_dataset_by_node
from torch.utils.data import IterableDataset

from .shards import read_manifest


logger = logging.getLogger(__name__)

DEFAULT_GROUP_BUFFER_SIZE = 16


def shard_files(shard_dir: str | os.PathLike, split: str) -> list[str]:
    """
    List the shard files of one split, as paths or URLs under `shard_dir`.

    Args:
        shard_dir (`str` or `os.PathLike`): Shard folder (a local path or an fsspec URL) with a `manifest.json`.
        split (`str`): Split name, `"train"` or `"validation"`.

    Returns:
        `list[str]` of files in manifest order; empty when the split has no subjects.
    """
    splits = read_manifest(shard_dir)["splits"]
    if split not in splits:
        raise ValueError(f"Split {split!r} not found in {shard_dir}. Its splits are {sorted(splits)}.")
    root = str(shard_dir).rstrip("/")
    return [f"{root}/{relative}" for relative in splits[split]["files"]]


class _ShardStream(IterableDataset):
    """Group-level streaming, shuffling and rank splitting shared by the two streams."""

    # Columns read from the shards. Each subclass reads only the columns it needs.
    columns: tuple[str, ...] = ("windows",)

    def __init__(
        self,
        shard_dir: str | os.PathLike,
        split: str,
        *,
        shuffle_buffer_size: int,
        seed: int,
        rank: int,
        world_size: int,
        group_buffer_size: int,
    ):
        super().__init__()
        _check_stream_arguments(shuffle_buffer_size, group_buffer_size, rank, world_size)
        manifest = read_manifest(shard_dir)
        self.shard_dir = str(shard_dir)
        self.split = split
        self.window_length = int(manifest["window_length"])
        self.num_channels = int(manifest["num_channels"])
        self.shuffle_buffer_size = shuffle_buffer_size
        self.group_buffer_size = group_buffer_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

        self.files = shard_files(shard_dir, split)
        if not self.files:
            raise ValueError(
                f"Split {split!r} of {shard_dir} has no shard files (no subject was assigned to it). Prepare the "
                "shards with a validation_fraction that leaves subjects in both splits, or read another split."
            )
        self._dataset = self._build_dataset()

    def _build_dataset(self):
        dataset = load_dataset(
            "parquet", data_files=self.files, split="train", streaming=True, columns=list(self.columns)
        )
        if self.shuffle_buffer_size > 0:
            # The same seed on every rank gives every rank the same file order, which the rank split relies on.
            # Feed the buffer from one file at a time. With more, datasets 5.2 reads files in threads and then
            # sleeps 5 s (`config.SLEEP_TIME_ON_THREADS_SHUTDOWN`) at the end of every pass. The item buffers in
            # __iter__ mix items across groups.
            dataset = dataset.shuffle(seed=self.seed, buffer_size=self.group_buffer_size, max_buffer_input_shards=1)
        if self.world_size > 1:
            dataset = split_dataset_by_node(dataset, rank=self.rank, world_size=self.world_size)
        return dataset.with_format("numpy")

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch, which changes the group and item order when shuffling is on."""
        self.epoch = int(epoch)
        if self.shuffle_buffer_size > 0:
            self._dataset.set_epoch(self.epoch)

    def _rng(self) -> np.random.Generator:
        worker = torch.utils.data.get_worker_info()
        worker_id = worker.id if worker is not None else 0
        return np.random.default_rng([self.seed, self.epoch, self.rank, worker_id])

    def _groups(self) -> Iterator[dict]:
        yield from self._dataset


class WindowStream(_ShardStream):
    """
    Stream every window of a shard split once per epoch, for stage 1.

    Args:
        shard_dir (`str` or `os.PathLike`): Shard folder with a `manifest.json`.
        split (`str`, *optional*, defaults to `"train"`): Split to read.
        shuffle_buffer_size (`int`, *optional*, defaults to 2048): Windows held in the shuffle buffer. 0 turns all
            shuffling off: groups in file order, windows in group order.
        seed (`int`, *optional*, defaults to 0): Seed of the group and window shuffles.
        rank (`int`, *optional*, defaults to 0): Rank of this process.
        world_size (`int`, *optional*, defaults to 1): Number of processes; each reads its own groups.
        group_buffer_size (`int`, *optional*, defaults to 16): Groups held in the `datasets` shuffle buffer.

    Yields:
        `torch.FloatTensor` of shape `(window_length, 3)`, acceleration in g at 100 Hz.
    """

    columns = ("windows",)

    def __init__(
        self,
        shard_dir: str | os.PathLike,
        split: str = "train",
        *,
        shuffle_buffer_size: int = 2048,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        group_buffer_size: int = DEFAULT_GROUP_BUFFER_SIZE,
    ):
        super().__init__(
            shard_dir,
            split,
            shuffle_buffer_size=shuffle_buffer_size,
            seed=seed,
            rank=rank,
            world_size=world_size,
            group_buffer_size=group_buffer_size,
        )

    def __iter__(self) -> Iterator[torch.Tensor]:
        rng = self._rng()
        capacity = self.shuffle_buffer_size
        buffer: list[np.ndarray] = []
        for group in self._groups():
            for window in group["windows"]:
                window = np.array(window, dtype=np.float32)  # own copy, so the group can be freed
                if capacity == 0:
                    yield torch.from_numpy(window)
                elif len(buffer) < capacity:
                    buffer.append(window)
                else:
                    index = int(rng.integers(capacity))
                    yield torch.from_numpy(buffer[index])
                    buffer[index] = window

        for index in rng.permutation(len(buffer)):
            yield torch.from_numpy(buffer[index])


class AnchorCandidateStream(_ShardStream):
    """
    Stream every window of every large enough group once per epoch as an anchor with its candidates, for stage 2.

    Candidates are `num_candidates` other windows of the anchor's group, drawn without replacement (never the anchor
    itself). Groups with fewer than `num_candidates + 1` windows are skipped. `skipped_groups` is their count in the
    last epoch, and each epoch ends with one log line giving it. Anchors are mixed across groups by a shuffle buffer
    of (group, anchor index) references, so memory grows with the groups that have an anchor in the buffer (at most
    `shuffle_buffer_size` of them), not with copies of windows. Candidates are drawn when an anchor leaves the buffer.

    `torch.utils.data.default_collate` batches the items: `anchor` `(batch_size, window_length, 3)`, `candidates`
    `(batch_size, num_candidates, window_length, 3)`, `group_id` a list of strings, `anchor_index` `(batch_size,)`
    and `candidate_indices` `(batch_size, num_candidates)`.

    Args:
        shard_dir (`str` or `os.PathLike`): Shard folder with a `manifest.json`.
        split (`str`, *optional*, defaults to `"train"`): Split to read.
        num_candidates (`int`): Within-group candidates per anchor (K).
        shuffle_buffer_size (`int`, *optional*, defaults to 2048): Anchor references held in the shuffle buffer. 0
            turns all shuffling off: groups in file order, anchors in group order (candidates stay random).
        seed (`int`, *optional*, defaults to 0): Seed of the shuffles and of the candidate draws.
        rank (`int`, *optional*, defaults to 0): Rank of this process.
        world_size (`int`, *optional*, defaults to 1): Number of processes; each reads its own groups.
        group_buffer_size (`int`, *optional*, defaults to 16): Groups held in the `datasets` shuffle buffer.

    Yields:
        `dict` with `anchor` (`torch.FloatTensor` of shape `(window_length, 3)`), `candidates`
        (`torch.FloatTensor` of shape `(num_candidates, window_length, 3)`), `group_id` (`str`), `anchor_index`
        (`int`, index of the anchor in its group) and `candidate_indices` (`torch.LongTensor` of shape
        `(num_candidates,)`, indices in the group).
    """

    columns = ("group_id", "windows")

    def __init__(
        self,
        shard_dir: str | os.PathLike,
        split: str = "train",
        *,
        num_candidates: int,
        shuffle_buffer_size: int = 2048,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        group_buffer_size: int = DEFAULT_GROUP_BUFFER_SIZE,
    ):
        if isinstance(num_candidates, bool) or not isinstance(num_candidates, (int, np.integer)) or num_candidates < 1:
            raise ValueError(f"`num_candidates` must be a positive integer, got {num_candidates!r}.")
        self.num_candidates = int(num_candidates)
        self.skipped_groups = 0
        super().__init__(
            shard_dir,
            split,
            shuffle_buffer_size=shuffle_buffer_size,
            seed=seed,
            rank=rank,
            world_size=world_size,
            group_buffer_size=group_buffer_size,
        )

    def __iter__(self) -> Iterator[dict]:
        rng = self._rng()
        capacity = self.shuffle_buffer_size
        live: dict[int, _LiveGroup] = {}
        buffer: list[tuple[int, int]] = []
        skipped = seen = 0

        for key, group in enumerate(self._groups()):
            seen += 1
            windows = group["windows"]
            if len(windows) < self.num_candidates + 1:
                skipped += 1
                continue
            live[key] = _LiveGroup(windows, str(group["group_id"]), remaining=len(windows))
            anchors = rng.permutation(len(windows)) if capacity else range(len(windows))
            for anchor_index in anchors:
                reference = (key, int(anchor_index))
                if capacity == 0:
                    yield self._draw(reference, live, rng)
                elif len(buffer) < capacity:
                    buffer.append(reference)
                else:
                    index = int(rng.integers(capacity))
                    reference, buffer[index] = buffer[index], reference
                    yield self._draw(reference, live, rng)

        for index in rng.permutation(len(buffer)):
            yield self._draw(buffer[index], live, rng)
        self._log_skipped(skipped, seen)

    def _draw(self, reference: tuple[int, int], live: dict[int, "_LiveGroup"], rng: np.random.Generator) -> dict:
        """Build the item of one anchor, drawing its candidates from the other windows of its group."""
        key, anchor_index = reference
        group = live[key]
        # Draw from the n - 1 other positions, then shift those at or after the anchor past it.
        candidates = rng.choice(len(group.windows) - 1, size=self.num_candidates, replace=False).astype(np.int64)
        candidates[candidates >= anchor_index] += 1

        item = {
            "anchor": torch.from_numpy(np.array(group.windows[anchor_index], dtype=np.float32)),
            "candidates": torch.from_numpy(np.ascontiguousarray(group.windows[candidates], dtype=np.float32)),
            "group_id": group.group_id,
            "anchor_index": anchor_index,
            "candidate_indices": torch.from_numpy(candidates),
        }
        group.remaining -= 1
        if group.remaining == 0:
            del live[key]
        return item

    def _log_skipped(self, skipped: int, seen: int) -> None:
        self.skipped_groups = skipped
        message = (
            f"Epoch {self.epoch}, rank {self.rank}: skipped {skipped} of {seen} groups with fewer than "
            f"{self.num_candidates + 1} windows (num_candidates={self.num_candidates} plus the anchor)."
        )
        if skipped:
            logger.warning(f"{message} Their windows are not used as anchors or candidates.")
        else:
            logger.info(message)


class _LiveGroup:
    """A group with anchors still in the shuffle buffer."""

    __slots__ = ("windows", "group_id", "remaining")

    def __init__(self, windows: np.ndarray, group_id: str, remaining: int):
        self.windows = windows
        self.group_id = group_id
        self.remaining = remaining


def _check_stream_arguments(shuffle_buffer_size: int, group_buffer_size: int, rank: int, world_size: int) -> None:
    for name, value, minimum in (
        ("shuffle_buffer_size", shuffle_buffer_size, 0),
        ("group_buffer_size", group_buffer_size, 1),
        ("world_size", world_size, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise ValueError(f"`{name}` must be an integer of at least {minimum}, got {value!r}.")
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 0 <= rank < world_size:
        raise ValueError(f"`rank` must be an integer in [0, world_size={world_size}), got {rank!r}.")


# ---------------------------------------------------------------------------------------------------------------------
# In-memory loading for probes on small corpora


def load_labelled_windows(
    shard_dir: str | os.PathLike, splits: Sequence[str] = ("train", "validation")
) -> dict[str, np.ndarray]:
    """
    Load every window of the given splits into memory, with its label and subject.

    Meant for linear probes and activity evaluation on small corpora such as the seglearn watch corpus. Use the
    streams for anything that does not fit in memory.

    Args:
        shard_dir (`str` or `os.PathLike`): Shard folder with a `manifest.json`.
        splits (`Sequence[str]`, *optional*, defaults to `("train", "validation")`): Splits to load, in this order.

    Returns:
        `dict` of NumPy arrays with one entry per window: `windows` `(num_windows, window_length, 3)` float32 in g,
        `labels` `(num_windows,)` int64 (-1 where unlabelled), `subject_ids`, `group_ids`, `recording_ids` and
        `split` `(num_windows,)` strings.
    """
    manifest = read_manifest(shard_dir)
    window_shape = (int(manifest["window_length"]), int(manifest["num_channels"]))
    filesystem, root = fsspec.core.url_to_fs(str(shard_dir))
    parts: dict[str, list[np.ndarray]] = {
        name: [] for name in ("windows", "labels", "subject_ids", "group_ids", "recording_ids", "split")
    }

    for split in splits:
        if split not in manifest["splits"]:
            raise ValueError(f"Split {split!r} not found in {shard_dir}. Its splits are {sorted(manifest['splits'])}.")
        for relative in manifest["splits"][split]["files"]:
            table = pq.read_table(
                f"{root.rstrip('/')}/{relative}",
                columns=["subject_id", "group_id", "windows", "labels", "recording_id"],
                filesystem=filesystem,
            )
            counts = pc.list_value_length(table.column("labels")).to_numpy(zero_copy_only=False)
            parts["windows"].append(_flat_windows(table.column("windows"), window_shape))
            parts["labels"].append(pc.list_flatten(table.column("labels")).to_numpy().astype(np.int64))
            parts["recording_ids"].append(_strings(pc.list_flatten(table.column("recording_id"))))
            parts["subject_ids"].append(np.repeat(_strings(table.column("subject_id")), counts))
            parts["group_ids"].append(np.repeat(_strings(table.column("group_id")), counts))
            parts["split"].append(np.full(int(counts.sum()), split, dtype=object))

    if not parts["windows"]:
        empty = {name: np.zeros(0, dtype=object) for name in parts}
        empty["windows"] = np.zeros((0, *window_shape), dtype=np.float32)
        empty["labels"] = np.zeros(0, dtype=np.int64)
        return empty
    return {name: np.concatenate(values) for name, values in parts.items()}


def _flat_windows(column: pa.ChunkedArray, window_shape: tuple[int, int]) -> np.ndarray:
    """Turn an `Array3D` column into one float32 array of shape (num_windows, window_length, num_channels)."""
    chunks = []
    for chunk in column.chunks:
        storage = chunk.storage if isinstance(chunk, pa.ExtensionArray) else chunk
        values = storage.flatten().flatten().flatten().to_numpy(zero_copy_only=False)
        chunks.append(values.astype(np.float32, copy=False).reshape(-1, *window_shape))
    return np.concatenate(chunks) if chunks else np.zeros((0, *window_shape), dtype=np.float32)


def _strings(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(array.to_pylist(), dtype=object)


__all__ = ["AnchorCandidateStream", "WindowStream", "load_labelled_windows", "shard_files"]
