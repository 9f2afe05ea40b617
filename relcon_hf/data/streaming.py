# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Streaming readers of shard folders for the two RelCon training stages, and an in-memory loader for probes.

- [`WindowStream`] yields single windows (stage 1, the motif distance model).
- [`AnchorCandidateStream`] yields anchors, each with `num_candidates` other windows of its own group (stage 2,
  relative contrastive training; RelCon draws K = 20 within-subject candidates per anchor).

Both are `torch.utils.data.IterableDataset`s over a shard folder given as a local path or an fsspec URL. One pass
is one epoch; call `set_epoch` before each pass. Each epoch is planned from the Parquet footers before any window is
read:

1. The candidate groups of the split are put in a random order drawn from `(seed, epoch)`, the same on every rank,
   and the windows of each group in a random order drawn from `(seed, epoch, group)`.
2. That sequence of windows is cut into `world_size` contiguous parts of `total // world_size` windows, one per
   rank, so every rank yields the same number of items and no window twice. The last `total % world_size` windows
   are left out of the epoch. A group can straddle two ranks, and both ranks then read it.
3. A rank's part is cut the same way into one part per DataLoader worker, and each worker mixes its items with a
   shuffle buffer drawn from `(seed, epoch, rank, worker)`.

Rows are read with pyarrow, one Parquet row group at a time, when the first of their items leaves the shuffle
buffer. Because the order is known in advance, a stream restored with `load_state_dict` continues exactly where the
saved one stopped: it replays the shuffle on integers without reading the items before the saved position.
`datasets.IterableDataset.state_dict` (datasets 5.2) cannot do this: after a restore its shuffle buffer starts
empty and its generator starts over, so items are skipped and repeated once the buffer has filled. The shards stay
readable with `datasets.load_dataset("parquet", ...)`.
"""

import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from torch.utils.data import IterableDataset

from .shards import read_manifest


logger = logging.getLogger(__name__)

# Tags that keep the random streams drawn from the same seed apart.
_GROUP_ORDER, _WINDOW_ORDER, _BUFFER, _CANDIDATES = 1, 2, 3, 4
# An item reference packs (group key << _INDEX_BITS) | window index into one Python int.
_INDEX_BITS = 32
_INDEX_MASK = (1 << _INDEX_BITS) - 1
# Shuffle-buffer slots are drawn in blocks of this many, the same way on a first pass and on a restored one.
_RANDOM_BLOCK = 1024
_STATE_KEYS = (
    "stream",
    "epoch",
    "num_workers",
    "first_worker",
    "positions",
    "world_size",
    "seed",
    "shuffle_buffer_size",
    "num_items",
)


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


# ---------------------------------------------------------------------------------------------------------------------
# Where the groups are: read from the Parquet footers


class _GroupTable:
    """
    Location and size of every candidate group (shard row) of one split, in file, row-group and row order.

    The key of a group is its index in this table.
    """

    def __init__(self, paths: list[str], rows: list[tuple[int, int, int, int]]):
        self.paths = paths
        table = np.asarray(rows, dtype=np.int64).reshape(-1, 4)
        self.file_index = table[:, 0]
        self.row_group = table[:, 1]
        self.row = table[:, 2]
        self.num_windows = table[:, 3]

    def __len__(self) -> int:
        return len(self.num_windows)


def _read_group_table(filesystem: fsspec.AbstractFileSystem, paths: list[str], values_per_window: int) -> _GroupTable:
    """
    Count the windows of every row of every file from the footers.

    A row group of one row (what `ShardWriter` writes) contains `num_windows * values_per_window` values in the leaf
    column of `windows`, or 1 for an empty or null list, so the footer is enough. Row groups of several rows (files
    written by other tools) have their `labels` column read, which contains one value per window.
    """
    rows: list[tuple[int, int, int, int]] = []
    for file_index, path in enumerate(paths):
        metadata = pq.read_metadata(path, filesystem=filesystem)
        leaf = next(
            (
                index
                for index in range(metadata.num_columns)
                if metadata.schema.column(index).path.startswith("windows.")
            ),
            None,
        )
        if leaf is None:
            raise ValueError(
                f"Shard file {path} has no `windows` column; it does not follow the shard schema. Prepare the shards "
                "with `relcon-hf prepare`."
            )
        parquet_file = None
        for row_group in range(metadata.num_row_groups):
            chunk = metadata.row_group(row_group)
            values = chunk.column(leaf).num_values
            if chunk.num_rows == 1 and (values == 1 or values % values_per_window == 0):
                counts = [values // values_per_window]
            else:
                if parquet_file is None:
                    parquet_file = pq.ParquetFile(path, filesystem=filesystem)
                labels = parquet_file.read_row_group(row_group, columns=["labels"]).column("labels")
                counts = pc.fill_null(pc.list_value_length(labels), 0).to_pylist()
            rows.extend((file_index, row_group, row, count) for row, count in enumerate(counts))

    return _GroupTable(paths, rows)


class _GroupReader:
    """Read groups by key during one pass, keeping each file open and the last row group of several rows."""

    def __init__(self, table: _GroupTable, filesystem: fsspec.AbstractFileSystem, columns: list[str], shape: tuple):
        self.table = table
        self.filesystem = filesystem
        self.columns = columns
        self.window_shape = shape
        self._files: dict[int, pq.ParquetFile] = {}
        self._cached: tuple[tuple[int, int], pa.Table] | None = None

    def read(self, key: int) -> tuple[np.ndarray, str]:
        """Return the windows `(num_windows, window_length, num_channels)` float32 and the group id of a group."""
        file_index, row_group = int(self.table.file_index[key]), int(self.table.row_group[key])
        if self._cached is not None and self._cached[0] == (file_index, row_group):
            rows = self._cached[1]
        else:
            if file_index not in self._files:
                self._files[file_index] = pq.ParquetFile(self.table.paths[file_index], filesystem=self.filesystem)
            parquet_file = self._files[file_index]
            rows = parquet_file.read_row_group(row_group, columns=self.columns)
            # Keep a row group of several rows, because its other groups are likely needed soon.
            self._cached = ((file_index, row_group), rows) if rows.num_rows > 1 else None
        row = rows.slice(int(self.table.row[key]), 1)
        windows = _flat_windows(row.column("windows"), self.window_shape)
        group_id = str(row.column("group_id")[0].as_py()) if "group_id" in self.columns else ""

        return windows, group_id

    def close(self) -> None:
        for parquet_file in self._files.values():
            parquet_file.close()
        self._files.clear()
        self._cached = None


class _LiveGroup:
    """A loaded group with items still to yield on this worker."""

    __slots__ = ("windows", "group_id")

    def __init__(self, windows: np.ndarray, group_id: str):
        self.windows = windows
        self.group_id = group_id


# ---------------------------------------------------------------------------------------------------------------------
# The streams


class _ShardStream(IterableDataset):
    """Epoch planning, rank and worker split, shuffling and resumable position shared by the two streams."""

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
        min_group_windows: int,
        equal_ranks: bool = True,
    ):
        super().__init__()
        _check_stream_arguments(shuffle_buffer_size, seed, rank, world_size)
        manifest = read_manifest(shard_dir)
        self.shard_dir = str(shard_dir)
        self.split = split
        self.window_length = int(manifest["window_length"])
        self.num_channels = int(manifest["num_channels"])
        self.shuffle_buffer_size = int(shuffle_buffer_size)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.epoch = 0

        self.files = shard_files(shard_dir, split)
        if not self.files:
            raise ValueError(
                f"Split {split!r} of {shard_dir} has no shard files (no subject was assigned to it). Prepare the "
                "shards with a validation_fraction that leaves subjects in both splits, or read another split."
            )
        self._filesystem, root = fsspec.core.url_to_fs(self.shard_dir)
        paths = [f"{root.rstrip('/')}/{relative}" for relative in manifest["splits"][split]["files"]]
        self._groups = _read_group_table(self._filesystem, paths, self.window_length * self.num_channels)

        # Groups too small to give an item are left out of every epoch.
        eligible = self._groups.num_windows >= min_group_windows
        self._eligible_keys = np.flatnonzero(eligible)
        self._eligible_sizes = self._groups.num_windows[eligible]
        total = int(self._eligible_sizes.sum())
        self.num_groups = len(self._groups)
        self.skipped_groups = int((~eligible).sum())
        self.skipped_windows = int(self._groups.num_windows[~eligible].sum())
        # Training needs the same number of items on every rank, so that all ranks step together. Evaluation needs
        # every item once, so with `equal_ranks=False` the first `total % world_size` ranks take one item more.
        self.equal_ranks = bool(equal_ranks)
        share, extra = divmod(total, self.world_size)
        if self.equal_ranks:
            self.num_items, self._first_item = share, self.rank * share
        else:
            self.num_items = share + (1 if self.rank < extra else 0)
            self._first_item = self.rank * share + min(self.rank, extra)
        self.num_left_out = total - share * self.world_size if self.equal_ranks else 0
        row_groups = set(
            zip(self._groups.file_index[eligible].tolist(), self._groups.row_group[eligible].tolist(), strict=True)
        )
        self.max_num_workers = max(1, len(row_groups) // self.world_size)

        self._positions = [0]
        self._resume: dict | None = None

    # -- epoch and position ---------------------------------------------------------------------------------------

    def set_epoch(self, epoch: int) -> None:
        """
        Set the epoch, which changes the item order when shuffling is on. A restored position applies to its own epoch.
        """
        epoch = int(epoch)
        if epoch != self.epoch:
            self._positions = [0]
            if self._resume is not None and self._resume["epoch"] != epoch:
                self._resume = None
        self.epoch = epoch

    def state_dict(self) -> dict:
        """
        Return the position of this stream in its epoch, for [`~_ShardStream.load_state_dict`].

        The position counts the items yielded by the last pass in this process, or is the one last loaded. With
        DataLoader workers the items are yielded in the worker processes, so the stream in the main process does not
        see them: take the state from [`~_ShardStream.loader_state_dict`] instead.

        Returns:
            `dict` of JSON-serialisable values: `epoch`, `num_workers` (0 for a pass in this process), `first_worker`,
            `positions` (items yielded per worker) and the settings a restore must match (`stream`, `world_size`,
            `seed`, `shuffle_buffer_size`, `num_items`).
        """
        resume = self._resume if self._resume is not None and self._resume["epoch"] == self.epoch else None
        if resume is not None and resume["num_workers"] > 0:
            return dict(resume)
        return self._state(num_workers=0, first_worker=0, positions=list(self._positions))

    def loader_state_dict(self, num_batches: int, batch_size: int, num_workers: int) -> dict:
        """
        Return the state after a `DataLoader(stream, batch_size, num_workers=num_workers, drop_last=True)` yielded
        `num_batches` batches of the current epoch.

        Each worker batches its own items and drops its own last partial batch. The DataLoader takes one batch from
        each worker in turn and passes over workers that have run out, so the batches taken from each worker follow
        from `num_batches` alone. Restoring also records which worker is next, so the restored DataLoader takes its
        batches in the same turn as an uninterrupted one.

        Args:
            num_batches (`int`): Batches of this epoch already taken from the DataLoader.
            batch_size (`int`): Items per batch.
            num_workers (`int`): DataLoader workers; 0 batches in the main process.

        Returns:
            `dict`, as from [`~_ShardStream.state_dict`].
        """
        if batch_size < 1 or num_workers < 0 or num_batches < 0:
            raise ValueError(
                f"Expected num_batches >= 0, batch_size >= 1 and num_workers >= 0, got {num_batches}, {batch_size} "
                f"and {num_workers}."
            )
        batches = [count // batch_size for count in self._worker_item_counts(max(num_workers, 1))]
        if num_batches > sum(batches):
            raise ValueError(
                f"num_batches={num_batches} is more than the {sum(batches)} batches of {batch_size} that one epoch "
                f"of this stream gives with {num_workers} workers. Pass the batches taken in the current epoch."
            )
        taken = [0] * len(batches)
        worker = 0
        for _ in range(num_batches):
            while taken[worker] == batches[worker]:
                worker = (worker + 1) % len(batches)
            taken[worker] += 1
            worker = (worker + 1) % len(batches)
        positions = [count * batch_size for count in taken]

        return self._state(num_workers=num_workers, first_worker=worker if num_workers else 0, positions=positions)

    def load_state_dict(self, state: dict) -> None:
        """
        Continue the epoch of `state` from its position: the next pass over that epoch yields exactly the items that
        an uninterrupted pass would have yielded after it, in the same order.

        The position applies to every pass over the saved epoch until `set_epoch` selects another one. A state with
        DataLoader workers must be iterated by a DataLoader with the same number of workers.

        Args:
            state (`dict`): From [`~_ShardStream.state_dict`] or [`~_ShardStream.loader_state_dict`] of a stream over
                the same shards with the same `seed`, `world_size` and `shuffle_buffer_size`.
        """
        missing = [key for key in _STATE_KEYS if key not in state]
        if missing:
            raise ValueError(f"Stream state is missing {missing}; pass the dict returned by `state_dict`.")
        expected = self._state(num_workers=0, first_worker=0, positions=[0])
        for key in ("stream", "world_size", "seed", "shuffle_buffer_size", "num_items"):
            if state[key] != expected[key]:
                raise ValueError(
                    f"Cannot restore a stream state with {key}={state[key]!r} into a stream with {key}="
                    f"{expected[key]!r}. Restore it with the same shards, seed, shuffle buffer and process count."
                )
        num_workers = int(state["num_workers"])
        counts = self._worker_item_counts(max(num_workers, 1))
        positions = [int(position) for position in state["positions"]]
        if len(positions) != len(counts) or any(not 0 <= p <= c for p, c in zip(positions, counts, strict=True)):
            raise ValueError(
                f"Stream state positions {positions} do not fit {len(counts)} workers of {counts} items each."
            )

        self.epoch = int(state["epoch"])
        self._positions = positions if num_workers == 0 else [0]
        self._resume = {key: state[key] for key in _STATE_KEYS} | {"positions": positions, "num_workers": num_workers}

    def _state(self, num_workers: int, first_worker: int, positions: list[int]) -> dict:
        return {
            "stream": type(self).__name__,
            "epoch": self.epoch,
            "num_workers": num_workers,
            "first_worker": first_worker,
            "positions": positions,
            "world_size": self.world_size,
            "seed": self.seed,
            "shuffle_buffer_size": self.shuffle_buffer_size,
            "num_items": self.num_items,
        }

    def _worker_item_counts(self, num_workers: int) -> list[int]:
        share, extra = divmod(self.num_items, num_workers)
        return [share + (1 if worker < extra else 0) for worker in range(num_workers)]

    # -- one pass -------------------------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Any]:
        worker_info = torch.utils.data.get_worker_info()
        slot, num_workers = (worker_info.id, worker_info.num_workers) if worker_info is not None else (0, 0)
        resume = self._resume if self._resume is not None and self._resume["epoch"] == self.epoch else None
        first_worker, start = 0, 0
        if resume is not None:
            if resume["num_workers"] != num_workers:
                raise ValueError(
                    f"The restored stream position was saved with num_workers={resume['num_workers']}, but this pass "
                    f"runs with num_workers={num_workers}. Iterate it with the same number of DataLoader workers."
                )
            first_worker = resume["first_worker"]
        worker = (slot + first_worker) % max(num_workers, 1)
        if resume is not None:
            start = resume["positions"][worker]
        if self.rank == 0 and worker == 0:
            self._log_epoch()

        live: dict[int, _LiveGroup] = {}
        remaining: dict[int, int] = {}
        rng = np.random.default_rng([_BUFFER, self.seed, self.epoch, self.rank, worker])
        arrivals = self._arrivals(worker, max(num_workers, 1), remaining)
        reader = _GroupReader(self._groups, self._filesystem, list(self.columns), self._window_shape)
        try:
            for position, reference in enumerate(_shuffled(arrivals, self.shuffle_buffer_size, rng), start=1):
                key, index = reference >> _INDEX_BITS, reference & _INDEX_MASK
                item = None
                if position > start:
                    if key not in live:
                        live[key] = _LiveGroup(*reader.read(key))
                    item = self._item(key, live[key], index)
                remaining[key] -= 1
                if remaining[key] == 0:
                    del remaining[key]
                    live.pop(key, None)
                if item is not None:
                    if worker_info is None:
                        self._positions = [position]
                    yield item
        finally:
            reader.close()

    @property
    def _window_shape(self) -> tuple[int, int]:
        return (self.window_length, self.num_channels)

    def _arrivals(self, worker: int, num_workers: int, remaining: dict[int, int]) -> Iterator[int]:
        """
        Yield the references of this worker's items in reading order, before shuffling, and count them per group.

        The order of the groups and of the windows in each group is the same on every rank and worker, and each one
        takes its own contiguous part of it.
        """
        shuffle = self.shuffle_buffer_size > 0
        order = np.arange(len(self._eligible_keys))
        if shuffle:
            order = np.random.default_rng([_GROUP_ORDER, self.seed, self.epoch]).permutation(order)
        sizes = self._eligible_sizes[order]
        ends = np.cumsum(sizes)
        counts = self._worker_item_counts(num_workers)
        begin = self._first_item + sum(counts[:worker])
        end = begin + counts[worker]

        for position in range(int(np.searchsorted(ends, begin, side="right")), len(order)):
            group_start = int(ends[position] - sizes[position])
            if group_start >= end:
                break
            key, size = int(self._eligible_keys[order[position]]), int(sizes[position])
            first, last = max(begin - group_start, 0), min(end - group_start, size)
            indices = np.arange(size)
            if shuffle:
                indices = np.random.default_rng([_WINDOW_ORDER, self.seed, self.epoch, key]).permutation(size)
            remaining[key] = last - first
            yield from ((key << _INDEX_BITS) | indices[first:last]).tolist()

    def _item(self, key: int, group: _LiveGroup, index: int) -> Any:
        raise NotImplementedError

    def _log_epoch(self) -> None:
        logger.info(
            f"Epoch {self.epoch} of the {self.split} split: {self.num_items} items on rank {self.rank} of "
            f"{self.world_size}; {self.num_left_out} left out so that every rank gets the same number."
        )


def _shuffled(arrivals: Iterator[int], capacity: int, rng: np.random.Generator) -> Iterator[int]:
    """
    Mix `arrivals` with a shuffle buffer of `capacity` items. A capacity of 0 keeps their order.

    Once the buffer is full, each arrival replaces a random item of the buffer, which is yielded. When arrivals end,
    the buffer is yielded in random order.
    """
    if capacity == 0:
        yield from arrivals
        return
    buffer: list[int] = []
    slots: list[int] = []
    for reference in arrivals:
        if len(buffer) < capacity:
            buffer.append(reference)
            continue
        if not slots:
            slots = rng.integers(capacity, size=_RANDOM_BLOCK).tolist()[::-1]
        slot = slots.pop()
        yield buffer[slot]
        buffer[slot] = reference
    for slot in rng.permutation(len(buffer)).tolist():
        yield buffer[slot]


class WindowStream(_ShardStream):
    """
    Stream the windows of a shard split, each once per epoch and the same number on every rank, for stage 1.

    Args:
        shard_dir (`str` or `os.PathLike`): Shard folder (a local path or an fsspec URL) with a `manifest.json`.
        split (`str`, *optional*, defaults to `"train"`): Split to read.
        shuffle_buffer_size (`int`, *optional*, defaults to 2048): Items in the shuffle buffer. 0 turns all
            shuffling off: groups in file order, windows in group order.
        seed (`int`, *optional*, defaults to 0): Seed of the group, window and buffer shuffles.
        rank (`int`, *optional*, defaults to 0): Rank of this process.
        world_size (`int`, *optional*, defaults to 1): Number of processes; each yields its own
            `num_items = total // world_size` windows.
        equal_ranks (`bool`, *optional*, defaults to `True`): Whether every rank yields the same number of windows,
            leaving out `total % world_size` of them. With `False` no window is left out and the first ranks
            yield one more (for evaluation, where ranks need not step together).

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
        equal_ranks: bool = True,
    ):
        super().__init__(
            shard_dir,
            split,
            shuffle_buffer_size=shuffle_buffer_size,
            seed=seed,
            rank=rank,
            world_size=world_size,
            min_group_windows=1,
            equal_ranks=equal_ranks,
        )

    def _item(self, key: int, group: _LiveGroup, index: int) -> torch.Tensor:
        return torch.from_numpy(np.array(group.windows[index], dtype=np.float32))


class AnchorCandidateStream(_ShardStream):
    """
    Stream every window of every large enough group once per epoch as an anchor with its candidates, for stage 2.

    Candidates are `num_candidates` other windows of the anchor's group, drawn without replacement (never the anchor
    itself) from `(seed, epoch, group, anchor)`, so they do not depend on the rank, the worker or a restore. Groups
    with fewer than `num_candidates + 1` windows are skipped: `skipped_groups` and `skipped_windows` count them, and
    each epoch starts with one log line giving them. Anchors are mixed across groups by a shuffle buffer of anchor
    references, so memory grows with the groups that have an anchor in the buffer (at most `shuffle_buffer_size` of
    them) plus the group being added to it, not with copies of windows.

    `torch.utils.data.default_collate` batches the items: `anchor` `(batch_size, window_length, 3)`, `candidates`
    `(batch_size, num_candidates, window_length, 3)`, `group_id` a list of strings, `anchor_index` `(batch_size,)`
    and `candidate_indices` `(batch_size, num_candidates)`.

    Args:
        shard_dir (`str` or `os.PathLike`): Shard folder (a local path or an fsspec URL) with a `manifest.json`.
        split (`str`, *optional*, defaults to `"train"`): Split to read.
        num_candidates (`int`): Within-group candidates per anchor (K).
        shuffle_buffer_size (`int`, *optional*, defaults to 2048): Anchor references held in the shuffle buffer. 0
            turns all shuffling off: groups in file order, anchors in group order (candidates stay random).
        seed (`int`, *optional*, defaults to 0): Seed of the shuffles and of the candidate draws.
        rank (`int`, *optional*, defaults to 0): Rank of this process.
        world_size (`int`, *optional*, defaults to 1): Number of processes; each yields its own
            `num_items = total // world_size` anchors.
        equal_ranks (`bool`, *optional*, defaults to `True`): Whether every rank yields the same number of anchors,
            leaving out `total % world_size` of them. With `False` no anchor is left out and the first ranks
            yield one more (for evaluation, where ranks need not step together).

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
        equal_ranks: bool = True,
    ):
        if isinstance(num_candidates, bool) or not isinstance(num_candidates, (int, np.integer)) or num_candidates < 1:
            raise ValueError(f"`num_candidates` must be a positive integer, got {num_candidates!r}.")
        self.num_candidates = int(num_candidates)
        super().__init__(
            shard_dir,
            split,
            shuffle_buffer_size=shuffle_buffer_size,
            seed=seed,
            rank=rank,
            world_size=world_size,
            min_group_windows=self.num_candidates + 1,
            equal_ranks=equal_ranks,
        )

    def _item(self, key: int, group: _LiveGroup, index: int) -> dict:
        """Build the item of one anchor, drawing its candidates from the other windows of its group."""
        rng = np.random.default_rng([_CANDIDATES, self.seed, self.epoch, key, index])
        # Draw from the n - 1 other positions, then shift those at or after the anchor past it.
        candidates = rng.choice(len(group.windows) - 1, size=self.num_candidates, replace=False).astype(np.int64)
        candidates[candidates >= index] += 1

        return {
            "anchor": torch.from_numpy(np.array(group.windows[index], dtype=np.float32)),
            "candidates": torch.from_numpy(np.ascontiguousarray(group.windows[candidates], dtype=np.float32)),
            "group_id": group.group_id,
            "anchor_index": index,
            "candidate_indices": torch.from_numpy(candidates),
        }

    def _log_epoch(self) -> None:
        super()._log_epoch()
        message = (
            f"Epoch {self.epoch}: skipped {self.skipped_groups} of {self.num_groups} groups with fewer than "
            f"{self.num_candidates + 1} windows (num_candidates={self.num_candidates} plus the anchor)."
        )
        if self.skipped_groups:
            logger.warning(f"{message} Their {self.skipped_windows} windows are not used as anchors or candidates.")
        else:
            logger.info(message)


def _check_stream_arguments(shuffle_buffer_size: int, seed: int, rank: int, world_size: int) -> None:
    for name, value, minimum in (
        ("shuffle_buffer_size", shuffle_buffer_size, 0),
        ("seed", seed, 0),
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
