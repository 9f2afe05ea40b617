# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Cut one recording into model windows at 100 Hz, and count the windows that were dropped and why.

Resampling and windowing are done by `RelConFeatureExtractor`, so shards and model inputs go through the same code.
Window starts lie on one grid per recording: every `hop_length` samples at the model rate from the first sample.
A window is dropped when it runs past the end of the recording (`"short_tail"`) or when it overlaps rows that were
removed for holding NaN or infinite values (`"non_finite"`). So written plus dropped windows equal the number of
grid positions inside the recording.
"""

import math
from dataclasses import dataclass

import numpy as np

from ..modeling.feature_extraction_relcon import RelConFeatureExtractor, design_lowpass_filter, resampling_factors


DROP_REASONS = ("non_finite", "short_tail")


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
            Number of grid positions without a window, by reason (`"non_finite"`, `"short_tail"`).
    """

    windows: np.ndarray
    window_start: np.ndarray
    dropped: dict[str, int]

    def __len__(self) -> int:
        return len(self.windows)


def window_recording(
    values: np.ndarray,
    sampling_rate: float,
    extractor: RelConFeatureExtractor,
    *,
    removed_rows: np.ndarray | None = None,
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
    dropped = {"non_finite": 0, "short_tail": num_positions - num_full_windows}
    if num_full_windows == 0:
        empty = np.zeros((0, window_length, extractor.feature_size), dtype=np.float32)
        return RecordingWindows(empty, np.zeros(0, dtype=np.float64), dropped)

    features = extractor(
        full, sampling_rate=sampling_rate, unit="g", return_window_positions=True, return_tensors="np"
    )
    windows, window_start = features["input_values"], features["window_start"]

    # Drop windows that read interpolated samples.
    if len(removed_rows):
        affected = _affected_samples(removed_rows, up, down, resampled_length)
        starts = np.arange(len(windows)) * hop_length
        counts = np.concatenate([[0], np.cumsum(affected)])
        keep = counts[starts + window_length] == counts[starts]
        dropped["non_finite"] = int((~keep).sum())
        windows, window_start = windows[keep], window_start[keep]

    return RecordingWindows(np.ascontiguousarray(windows), window_start.astype(np.float64), dropped)


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


__all__ = ["DROP_REASONS", "RecordingWindows", "window_recording"]
