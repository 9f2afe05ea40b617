# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Cut one recording into model windows at 100 Hz, and count the windows that were dropped and why.

Resampling and windowing are done by `RelConFeatureExtractor`, so shards and model inputs go through the same code.
Window starts lie on one grid per recording: every `hop_length` samples at the model rate from the first sample.
A window is dropped when it runs past the end of the recording (`"short_tail"`) or when it overlaps rows that were
removed for holding NaN or infinite values (`"non_finite"`). So written plus dropped windows equal the number of
grid positions inside the recording.
"""

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..modeling.feature_extraction_relcon import RelConFeatureExtractor, design_lowpass_filter, resampling_factors
from .cleaning import (
    DEFAULT_MAX_GAP_SECONDS,
    STILL_MIN_SECONDS,
    STILL_STD_G,
    flag_samples,
    split_at_gaps,
    still_windows,
    to_uniform_grid,
)


if TYPE_CHECKING:
    from .readers import Recording


# Reasons a window position has no window, in the order a window with several problems is counted.
DROP_REASONS = ("non_finite", "repeated_block", "out_of_range", "clipped", "constant", "short_tail")
# Reasons the user can choose to keep instead of dropping (`keep_flagged`).
FLAG_REASONS = ("non_finite", "repeated_block", "out_of_range", "clipped", "constant")


@dataclass
class RecordingWindows:
    """
    Windows cut from one recording.

    Args:
        windows (`np.ndarray` of shape `(num_windows, window_length, 3)`, float32):
            Acceleration in g at the extractor's sampling rate.
        window_start (`np.ndarray` of shape `(num_windows,)`, float64):
            Start of each window in seconds from the first sample of the recording.
        dropped (`dict[str, int]`):
            Number of grid positions without a window, by reason (`DROP_REASONS`).
        labels (`np.ndarray` of shape `(num_windows,)`, str, *optional*):
            Class name of each window, for labelled recordings.
        kept_flagged (`dict[str, int]`):
            Windows written although flagged, by reason, for the reasons in `keep_flagged`.
        segments (`int`):
            Number of gap-free segments the recording was cut into.
        gap_seconds (`float`):
            Total time in the gaps between segments, in seconds.
    """

    windows: np.ndarray
    window_start: np.ndarray
    dropped: dict[str, int]
    labels: np.ndarray | None = None
    kept_flagged: dict[str, int] = field(default_factory=dict)
    segments: int = 1
    gap_seconds: float = 0.0

    def __len__(self) -> int:
        return len(self.windows)


def window_recording(
    values: np.ndarray,
    sampling_rate: float,
    extractor: RelConFeatureExtractor,
    *,
    removed_rows: np.ndarray | None = None,
    flagged_rows: dict[str, np.ndarray] | None = None,
    keep_flagged: frozenset[str] = frozenset(),
) -> RecordingWindows:
    """
    Resample a recording to the extractor's rate and cut it into windows.

    Args:
        values (`np.ndarray` of shape `(time, 3)`):
            Acceleration in g, with removed rows already taken out.
        sampling_rate (`float`):
            Rate of `values` in Hz.
        extractor ([`RelConFeatureExtractor`]):
            Sets the target rate, `window_length` and `hop_length` (in samples at the target rate).
        removed_rows (`np.ndarray` of shape `(num_removed,)`, *optional*):
            Indices, in the original row order, of rows that were removed for holding non-finite values. Their
            places are filled by linear interpolation so the time grid stays intact, and every window whose samples
            depend on them (through the resampling filter) is dropped.
        flagged_rows (`dict[str, np.ndarray]`, *optional*):
            Row indices in the original row order flagged for a reason in `FLAG_REASONS`, such as
            `{"out_of_range": rows}`. Windows that depend on them are dropped and counted under the first reason in
            `DROP_REASONS` order.
        keep_flagged (`frozenset[str]`):
            Reasons whose windows are written anyway, and counted in `kept_flagged`.

    Returns:
        [`RecordingWindows`].
    """
    window_length, hop_length = extractor.window_length, extractor.hop_length
    removed_rows = np.zeros(0, dtype=np.int64) if removed_rows is None else np.asarray(removed_rows, dtype=np.int64)
    full = _restore_removed_rows(values, removed_rows)

    # Length at the target rate, as `resample_polyphase` produces it, and the window grid inside it.
    up, down = resampling_factors(sampling_rate, extractor.sampling_rate)
    resampled_length = -(-len(full) * up // down)
    num_positions = math.ceil(resampled_length / hop_length)
    num_full_windows = max(0, (resampled_length - window_length) // hop_length + 1)
    dropped = dict.fromkeys(DROP_REASONS, 0)
    dropped["short_tail"] = num_positions - num_full_windows
    if num_full_windows == 0:
        empty = np.zeros((0, window_length, extractor.feature_size), dtype=np.float32)
        return RecordingWindows(empty, np.zeros(0, dtype=np.float64), dropped)

    features = extractor(
        full, sampling_rate=sampling_rate, unit="g", return_window_positions=True, return_tensors="np"
    )
    windows, window_start = features["input_values"], features["window_start"]

    # Drop windows that read interpolated or flagged samples, each counted under its first reason.
    rows_by_reason = dict(flagged_rows or {})
    rows_by_reason["non_finite"] = removed_rows
    starts = np.arange(len(windows)) * hop_length
    keep = np.ones(len(windows), dtype=bool)
    counted = np.zeros(len(windows), dtype=bool)
    kept_flagged: dict[str, int] = {}
    for reason in FLAG_REASONS:
        rows = np.asarray(rows_by_reason.get(reason, ()), dtype=np.int64)
        if len(rows) == 0:
            continue
        counts = np.concatenate([[0], np.cumsum(_affected_samples(rows, up, down, resampled_length))])
        hit = (counts[starts + window_length] != counts[starts]) & ~counted
        counted |= hit
        if reason in keep_flagged:
            kept_flagged[reason] = int(hit.sum())
        else:
            dropped[reason] = int(hit.sum())
            keep &= ~hit
    windows, window_start = windows[keep], window_start[keep]

    return RecordingWindows(
        np.ascontiguousarray(windows), window_start.astype(np.float64), dropped, kept_flagged=kept_flagged
    )


def window_clean_recording(
    recording: "Recording",
    extractor: RelConFeatureExtractor,
    *,
    max_gap_seconds: float = DEFAULT_MAX_GAP_SECONDS,
    range_g: float | None = None,
    keep_flagged: frozenset[str] = frozenset(),
    still_std_g: float = STILL_STD_G,
    still_min_seconds: float = STILL_MIN_SECONDS,
) -> RecordingWindows:
    """
    Cut a recording into windows segment by segment, dropping and counting flagged windows.

    The recording is split at gaps longer than `max_gap_seconds` (never interpolated across) and, for labelled
    recordings, where the label changes. Each segment with timestamps is put on an even grid at the recording's rate
    (`cleaning.to_uniform_grid`), which fills shorter gaps and removes jitter, and is then windowed by
    [`window_recording`]. Windows that depend on non-finite samples, repeated blocks, values outside the device range
    or clipped runs, and windows in still stretches, are dropped unless their reason is in `keep_flagged`.

    Args:
        recording ([`Recording`]): A recording from [`read_recording`].
        extractor ([`RelConFeatureExtractor`]): Sets the model rate, `window_length` and `hop_length`.
        max_gap_seconds (`float`): Longest time step that is filled instead of splitting the recording.
        range_g (`float`, *optional*): Device range in g; defaults to the range the file states. Without one,
            nothing is flagged as out of range or clipped.
        keep_flagged (`frozenset[str]`): Reasons in `FLAG_REASONS` whose windows are written anyway.
        still_std_g, still_min_seconds (`float`): Thresholds of `cleaning.still_windows`.

    Returns:
        [`RecordingWindows`] with `window_start` in seconds from the recording's first row.
    """
    unknown = sorted(set(keep_flagged) - set(FLAG_REASONS))
    if unknown:
        raise ValueError(f"`keep_flagged` must contain reasons among {', '.join(FLAG_REASONS)}, got {unknown}.")
    full = recording.full_values()
    timestamps = recording.timestamps
    range_g = range_g if range_g is not None else recording.device.get("range_g")
    sample_flags = flag_samples(full, range_g)
    if len(recording.repeated_rows):
        sample_flags["repeated_block"] = recording.repeated_rows

    if timestamps is not None and len(timestamps) > 1 and max_gap_seconds < 1.5 / recording.sampling_rate:
        raise ValueError(
            f"{recording.source}: `max_gap_seconds` ({max_gap_seconds:g} s) is shorter than the recording's sample "
            f"step ({1 / recording.sampling_rate:.4g} s at {recording.sampling_rate:g} Hz), so every step would be a "
            "gap. Pass a --max-gap-seconds of at least two sample steps."
        )
    segments = split_at_gaps(timestamps, max_gap_seconds) if timestamps is not None else [(0, len(full))]
    if recording.labels is not None:
        segments = _split_at_label_changes(segments, recording.labels)
    gap_seconds = 0.0
    if timestamps is not None:
        steps = np.diff(timestamps)
        gap_seconds = float(steps[steps > max_gap_seconds].sum())

    parts = []
    dropped = dict.fromkeys(DROP_REASONS, 0)
    kept: dict[str, int] = {}
    window_seconds = extractor.window_length / extractor.sampling_rate
    for start, stop in segments:
        values = full[start:stop]
        if timestamps is not None:
            grid_values, nearest = to_uniform_grid(timestamps[start:stop], values, recording.sampling_rate)
            offset = float(timestamps[start] - timestamps[0])
        else:
            grid_values, nearest = values, np.arange(stop - start)
            offset = start / recording.sampling_rate
        missing = ~np.isfinite(grid_values).all(axis=1)
        if missing.all():
            up, down = resampling_factors(recording.sampling_rate, extractor.sampling_rate)
            dropped["non_finite"] += math.ceil(-(-len(grid_values) * up // down) / extractor.hop_length)
            continue
        flagged = {reason: np.flatnonzero(mask[start:stop][nearest]) for reason, mask in sample_flags.items()}
        windowed = window_recording(
            grid_values[~missing],
            recording.sampling_rate,
            extractor,
            removed_rows=np.flatnonzero(missing),
            flagged_rows=flagged,
            keep_flagged=keep_flagged,
        )
        still = still_windows(
            windowed.windows, windowed.window_start, window_seconds, std_g=still_std_g, min_seconds=still_min_seconds
        )
        if "constant" in keep_flagged:
            windowed.kept_flagged["constant"] = int(still.sum())
        else:
            windowed.dropped["constant"] += int(still.sum())
            windowed.windows, windowed.window_start = windowed.windows[~still], windowed.window_start[~still]
        for reason, count in windowed.dropped.items():
            dropped[reason] += count
        for reason, count in windowed.kept_flagged.items():
            kept[reason] = kept.get(reason, 0) + count
        labels = None
        if recording.labels is not None:
            labels = np.full(len(windowed), recording.labels[start], dtype=object)
        parts.append((windowed.windows, windowed.window_start + offset, labels))

    window_length = extractor.window_length
    return RecordingWindows(
        windows=np.concatenate([part[0] for part in parts])
        if parts
        else np.zeros((0, window_length, 3), dtype=np.float32),
        window_start=np.concatenate([part[1] for part in parts]) if parts else np.zeros(0),
        dropped=dropped,
        labels=np.concatenate([part[2] for part in parts]).astype(str) if recording.labels is not None else None,
        kept_flagged=kept,
        segments=len(segments),
        gap_seconds=gap_seconds,
    )


def _split_at_label_changes(segments: list[tuple[int, int]], labels: np.ndarray) -> list[tuple[int, int]]:
    """Split row ranges wherever the label changes, so no window mixes two activities."""
    changes = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    result: list[tuple[int, int]] = []
    for start, stop in segments:
        inner = changes[(changes > start) & (changes < stop)]
        edges = [start, *inner.tolist(), stop]
        result.extend(zip(edges[:-1], edges[1:], strict=True))
    return result


def _restore_removed_rows(values: np.ndarray, removed_rows: np.ndarray) -> np.ndarray:
    """Put removed rows back in place, filled by linear interpolation between their neighbours."""
    if len(removed_rows) == 0:
        return values
    total = len(values) + len(removed_rows)
    present = np.ones(total, dtype=bool)
    present[removed_rows] = False
    present_rows = np.flatnonzero(present)

    full = np.empty((total, values.shape[1]), dtype=np.float64)
    full[present] = values
    for channel in range(values.shape[1]):
        full[removed_rows, channel] = np.interp(removed_rows, present_rows, values[:, channel])
    return full


def _affected_samples(removed_rows: np.ndarray, up: int, down: int, resampled_length: int) -> np.ndarray:
    """Mark the resampled samples within the resampling filter's reach of a removed row."""
    # Output sample m is centred on input position m * down / up, and the filter reaches `reach` input samples
    # each way from there.
    reach = 0.0 if up == down == 1 else ((len(design_lowpass_filter(up, down)) - 1) // 2) / up
    first = np.clip(np.ceil((removed_rows - reach) * up / down).astype(np.int64), 0, resampled_length)
    last = np.clip(np.floor((removed_rows + reach) * up / down).astype(np.int64), -1, resampled_length - 1)

    delta = np.zeros(resampled_length + 1, dtype=np.int64)
    valid = first <= last
    np.add.at(delta, first[valid], 1)
    np.add.at(delta, last[valid] + 1, -1)
    return (np.cumsum(delta[:-1]) > 0).astype(np.int64)


__all__ = ["DROP_REASONS", "FLAG_REASONS", "RecordingWindows", "window_clean_recording", "window_recording"]
