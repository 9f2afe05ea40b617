# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Cleaning steps between reading a recording and cutting it into windows.

Every step returns what it changed, so the manifest can count each decision:

- `order_timestamps`: sorts rows that are out of order and removes rows whose timestamp repeats an earlier one.
- `infer_sampling_rate`: the rate from timestamps with jitter, millisecond rounding and gaps.
- `split_at_gaps`: contiguous segments, split wherever the time step exceeds `max_gap_seconds`.
- `to_uniform_grid`: resamples a segment's samples onto an even time grid (this fills short gaps and removes jitter).
- `find_repeated_blocks`: runs of rows that repeat an earlier run exactly (copy errors in some exports).
- `flag_samples` and `still_windows`: values outside the device range, clipped runs, and still stretches of a
  device off the wrist.
"""

import logging
from dataclasses import dataclass

import numpy as np


logger = logging.getLogger(__name__)

# A time step longer than this splits a recording; shorter gaps are filled by interpolation on the even grid.
DEFAULT_MAX_GAP_SECONDS = 1.0
# Minimum length of a run of rows that must repeat an earlier run exactly to count as a repeated block.
DEFAULT_REPEAT_MIN_ROWS = 200
# A clipped run: at least this many consecutive samples within `CLIP_MARGIN` of the device range on one axis.
CLIP_MIN_RUN = 3
CLIP_MARGIN = 0.005
# Still windows: each axis has a standard deviation below 13 mg over a stretch of at least 60 minutes. These are the
# non-wear thresholds of GGIR (van Hees et al. 2011, 2013).
STILL_STD_G = 0.013
STILL_MIN_SECONDS = 3600.0


@dataclass
class TimestampOrder:
    """
    Result of `order_timestamps`.

    Args:
        keep (`np.ndarray` of shape `(num_kept,)`, int64): Row indices to keep, in time order.
        out_of_order (`int`): Rows whose timestamp is earlier than the row before them in the file.
        duplicates (`int`): Rows removed because their timestamp equals that of an earlier kept row.
    """

    keep: np.ndarray
    out_of_order: int
    duplicates: int


def order_timestamps(timestamps: np.ndarray) -> TimestampOrder:
    """Sort rows by time (stable) and drop rows that repeat a timestamp, keeping the first occurrence in the file."""
    steps = np.diff(timestamps)
    out_of_order = int((steps < 0).sum())
    order = np.argsort(timestamps, kind="stable")
    ordered = timestamps[order]
    unique = np.ones(len(order), dtype=bool)
    unique[1:] = ordered[1:] != ordered[:-1]
    return TimestampOrder(keep=order[unique], out_of_order=out_of_order, duplicates=int((~unique).sum()))


def infer_sampling_rate(timestamps: np.ndarray) -> float:
    """
    Infer the sampling rate in Hz from sorted, unique timestamps in seconds.

    The rate is the inverse of the mean step over the steps between half and one and a half times the median step.
    The mean removes the bias of millisecond rounding (at 30 Hz, steps of 33 and 34 ms) that the median keeps, and
    the bounds leave out dropped samples and gaps, so the result is the device's nominal rate.
    """
    steps = np.diff(timestamps)
    steps = steps[steps > 0]
    if len(steps) == 0:
        raise ValueError("The timestamps never increase, so no sampling rate can be inferred from them.")
    median = float(np.median(steps))
    regular = steps[(steps >= 0.5 * median) & (steps <= 1.5 * median)]
    return float(1.0 / regular.mean())


def split_at_gaps(timestamps: np.ndarray, max_gap_seconds: float) -> list[tuple[int, int]]:
    """Return `(start, stop)` row ranges of sorted timestamps, split wherever a step exceeds `max_gap_seconds`."""
    breaks = np.flatnonzero(np.diff(timestamps) > max_gap_seconds) + 1
    edges = np.concatenate([[0], breaks, [len(timestamps)]])
    return [(int(start), int(stop)) for start, stop in zip(edges[:-1], edges[1:], strict=True) if stop > start]


def to_uniform_grid(
    timestamps: np.ndarray, values: np.ndarray, sampling_rate: float, *, tolerance: float = 0.01
) -> tuple[np.ndarray, np.ndarray]:
    """
    Resample one gap-free segment onto an even grid starting at its first timestamp.

    Args:
        timestamps (`np.ndarray` of shape `(time,)`): Sorted, unique times in seconds.
        values (`np.ndarray` of shape `(time, channels)`): Samples, NaN where a sample is not finite.
        sampling_rate (`float`): Rate of the grid in Hz.
        tolerance (`float`): Largest deviation from the grid, as a fraction of a step, left as it is.

    Returns:
        `(grid_values, nearest)`: `grid_values` of shape `(grid_length, channels)`, by linear interpolation between
        finite samples (NaN where the nearest sample is not finite), and `nearest` of shape `(grid_length,)`, the
        row of `values` nearest to each grid point, which carries per-row flags over to the grid.
    """
    step = 1.0 / sampling_rate
    offsets = (timestamps - timestamps[0]) / step
    finite = np.isfinite(values).all(axis=1)
    if np.abs(offsets - np.arange(len(offsets))).max(initial=0.0) <= tolerance or finite.sum() < 2:
        # Already on the grid: keep the samples as they are.
        return values.copy(), np.arange(len(values))

    length = int(np.floor(offsets[-1] + tolerance)) + 1
    grid = np.arange(length, dtype=np.float64)
    grid_values = np.empty((length, values.shape[1]), dtype=np.float64)
    for channel in range(values.shape[1]):
        grid_values[:, channel] = np.interp(grid, offsets[finite], values[finite, channel])
    upper = np.clip(np.searchsorted(offsets, grid), 1, len(offsets) - 1)
    nearest = np.where(grid - offsets[upper - 1] <= offsets[upper] - grid, upper - 1, upper)
    grid_values[~finite[nearest]] = np.nan
    return grid_values, nearest


def find_repeated_blocks(values: np.ndarray, min_rows: int = DEFAULT_REPEAT_MIN_ROWS) -> np.ndarray:
    """
    Mark rows inside runs of at least `min_rows` rows that repeat an earlier run exactly.

    Each distinct row gets a random 64-bit code, and a run's fingerprint is the sum of its codes, so equal runs have
    equal fingerprints. Candidate pairs are confirmed by comparing the rows. The first occurrence stays unmarked.

    Returns:
        `np.ndarray` of shape `(time,)`, bool.
    """
    repeated = np.zeros(len(values), dtype=bool)
    if len(values) < 2 * min_rows:
        return repeated
    _, inverse = np.unique(
        np.ascontiguousarray(values).view(np.dtype((np.void, values.dtype.itemsize * values.shape[1]))),
        return_inverse=True,
    )
    codes = np.random.default_rng(0).integers(0, 2**63, size=int(inverse.max()) + 1, dtype=np.uint64)
    cumulative = np.concatenate([[np.uint64(0)], np.cumsum(codes[inverse.reshape(-1)], dtype=np.uint64)])
    fingerprints = cumulative[min_rows:] - cumulative[:-min_rows]
    first_seen: dict[int, int] = {}
    for start, fingerprint in enumerate(fingerprints.tolist()):
        earlier = first_seen.setdefault(fingerprint, start)
        if earlier != start and start - earlier >= min_rows:
            if np.array_equal(values[earlier : earlier + min_rows], values[start : start + min_rows]):
                repeated[start : start + min_rows] = True
    return repeated


def flag_samples(values: np.ndarray, range_g: float | None) -> dict[str, np.ndarray]:
    """
    Flag samples outside the device range and samples in clipped runs, for a device range of plus or minus `range_g`.

    Args:
        values (`np.ndarray` of shape `(time, 3)`): Acceleration in g, non-finite samples included.
        range_g (`float`, *optional*): Device range in g. Without it nothing is flagged.

    Returns:
        `dict` with `"out_of_range"` (beyond the range by more than `CLIP_MARGIN`) and `"clipped"` (runs of at least
        `CLIP_MIN_RUN` samples within `CLIP_MARGIN` of the range on one axis), each a bool array of shape `(time,)`.
    """
    empty = np.zeros(len(values), dtype=bool)
    if range_g is None:
        return {"out_of_range": empty, "clipped": empty.copy()}
    with np.errstate(invalid="ignore"):
        magnitude = np.abs(values)
        out_of_range = (magnitude > range_g * (1 + CLIP_MARGIN)).any(axis=1)
        at_rail = (magnitude >= range_g * (1 - CLIP_MARGIN)) & (magnitude <= range_g * (1 + CLIP_MARGIN))
    clipped = np.zeros(len(values), dtype=bool)
    for channel in range(values.shape[1]):
        clipped |= _runs_at_least(at_rail[:, channel], CLIP_MIN_RUN)
    return {"out_of_range": out_of_range, "clipped": clipped & ~out_of_range}


def _runs_at_least(mask: np.ndarray, length: int) -> np.ndarray:
    """Keep only the True runs of `mask` that are at least `length` long."""
    padded = np.concatenate([[False], mask, [False]])
    changes = np.flatnonzero(np.diff(padded.astype(np.int8)))
    result = np.zeros(len(mask), dtype=bool)
    for start, stop in zip(changes[::2], changes[1::2], strict=True):
        if stop - start >= length:
            result[start:stop] = True
    return result


def still_windows(
    windows: np.ndarray,
    window_start: np.ndarray,
    window_seconds: float,
    *,
    std_g: float = STILL_STD_G,
    min_seconds: float = STILL_MIN_SECONDS,
) -> np.ndarray:
    """
    Mark windows inside still stretches: consecutive windows whose three axes all have a standard deviation below
    `std_g`, spanning at least `min_seconds` from the first window's start to the last window's end.

    Args:
        windows (`np.ndarray` of shape `(num_windows, window_length, 3)`): Windows of one segment, in time order.
        window_start (`np.ndarray` of shape `(num_windows,)`): Start of each window in seconds.
        window_seconds (`float`): Duration of one window in seconds.

    Returns:
        `np.ndarray` of shape `(num_windows,)`, bool.
    """
    if len(windows) == 0:
        return np.zeros(0, dtype=bool)
    still = (windows.std(axis=1) < std_g).all(axis=1)
    marked = np.zeros(len(windows), dtype=bool)
    padded = np.concatenate([[False], still, [False]])
    changes = np.flatnonzero(np.diff(padded.astype(np.int8)))
    for start, stop in zip(changes[::2], changes[1::2], strict=True):
        if window_start[stop - 1] + window_seconds - window_start[start] >= min_seconds:
            marked[start:stop] = True
    return marked


__all__ = [
    "DEFAULT_MAX_GAP_SECONDS",
    "DEFAULT_REPEAT_MIN_ROWS",
    "TimestampOrder",
    "find_repeated_blocks",
    "flag_samples",
    "infer_sampling_rate",
    "order_timestamps",
    "split_at_gaps",
    "still_windows",
    "to_uniform_grid",
]
