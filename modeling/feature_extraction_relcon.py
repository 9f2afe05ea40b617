# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Feature extractor for RelCon: raw 3-axis acceleration recordings to model windows.

Recordings of any sampling rate and unit are converted to g, resampled to the model's rate (100 Hz for the RelCon
encoder of Xu et al., ICLR 2025) with an anti-aliasing polyphase filter, and cut into windows.
"""

from fractions import Fraction

import numpy as np
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature
from transformers.utils import TensorType, logging


logger = logging.get_logger(__name__)

STANDARD_GRAVITY = 9.80665  # m/s^2 per g
UNITS = ("g", "m/s^2")
_UNIT_ALIASES = {"g": "g", "m/s^2": "m/s^2", "m/s2": "m/s^2", "m/s**2": "m/s^2", "mps2": "m/s^2"}
# Resampling ratios are reduced to up/down with both at most this size; 1000 keeps the rate error below 0.1 %.
MAX_RESAMPLING_FACTOR = 1000
# Largest absolute acceleration accepted after conversion to g; the models check the same limit (modeling_relcon.py).
MAX_ABS_ACCELERATION = 1e4
# Output samples per block of the polyphase filter; bounds the temporary (block, taps, channels) array.
_RESAMPLING_BLOCK = 65536


def normalize_unit(unit: str) -> str:
    """Return the canonical name ("g" or "m/s^2") of an acceleration unit, or raise `ValueError`."""
    canonical = _UNIT_ALIASES.get(str(unit).strip().lower().replace(" ", ""))
    if canonical is None:
        raise ValueError(f"`unit` must be one of {', '.join(repr(u) for u in UNITS)}, got {unit!r}.")
    return canonical


def resampling_factors(source_rate: float, target_rate: float) -> tuple[int, int]:
    """
    Return coprime (up, down) with target_rate / source_rate ~= up / down, both at most 1000.

    Rates too far apart for such a pair (below about 0.1 Hz or above 100 kHz for a 100 Hz target) give (0, 1) or
    (1000, 1); the caller compares `source_rate * up / down` with the target and rejects the pair.
    """
    if Fraction(source_rate).limit_denominator(MAX_RESAMPLING_FACTOR) == 0:
        return MAX_RESAMPLING_FACTOR, 1
    ratio = Fraction(target_rate).limit_denominator(MAX_RESAMPLING_FACTOR) / Fraction(source_rate).limit_denominator(
        MAX_RESAMPLING_FACTOR
    )
    ratio = ratio.limit_denominator(MAX_RESAMPLING_FACTOR)
    if ratio.numerator > MAX_RESAMPLING_FACTOR:
        # limit_denominator bounds only the denominator; bound the numerator through the inverse ratio.
        inverse = (1 / ratio).limit_denominator(MAX_RESAMPLING_FACTOR)
        if inverse == 0:
            return MAX_RESAMPLING_FACTOR, 1
        ratio = 1 / inverse
    return ratio.numerator, ratio.denominator


def design_lowpass_filter(up: int, down: int, half_width: int = 10, kaiser_beta: float = 5.0) -> np.ndarray:
    """
    Kaiser-windowed sinc low-pass filter for polyphase resampling by up/down.

    The cut-off is the lower of the two Nyquist rates, the filter has `2 * half_width * max(up, down) + 1` taps and
    a DC gain of `up`, so a constant signal keeps its value after zero-stuffing. These are the defaults of
    `scipy.signal.resample_poly`.
    """
    max_factor = max(up, down)
    half_length = half_width * max_factor
    taps = np.arange(-half_length, half_length + 1, dtype=np.float64)
    cutoff = 1.0 / max_factor
    response = cutoff * np.sinc(cutoff * taps) * np.kaiser(2 * half_length + 1, kaiser_beta)

    return response * (up / response.sum())


def resample_polyphase(values: np.ndarray, up: int, down: int) -> np.ndarray:
    """
    Resample `values` of shape (time, channels) by up/down with an anti-aliasing polyphase FIR filter.

    The filter is `scipy.signal.resample_poly`'s default with each polyphase branch normalised to unit DC gain. The
    signal is extended with its first and last samples beyond its ends, so a recording with a gravity offset does
    not ring at the borders. Output length is `ceil(time * up / down)`. Work is done in blocks, so memory
    grows with the block size, not with the recording length.
    """
    if up == down == 1:
        return values.astype(np.float64, copy=True)
    num_samples = values.shape[0]
    response = design_lowpass_filter(up, down)
    half_length = (len(response) - 1) // 2

    # Phase p of the filter contains taps p, p + up, p + 2 up, ... Zero taps pad every phase to the same length.
    taps_per_phase = -(-len(response) // up)
    padded = np.zeros(taps_per_phase * up)
    padded[: len(response)] = response
    phases = padded.reshape(taps_per_phase, up).T  # (up, taps_per_phase)
    # Each phase sums to 1 only up to the window's ripple (about 5e-4 for 50 -> 100 Hz), which would turn gravity
    # into a small tone at the old sampling rate; normalising every phase keeps a constant signal constant.
    phases = phases / phases.sum(axis=1, keepdims=True)

    num_outputs = -(-num_samples * up // down)
    output = np.empty((num_outputs, values.shape[1]), dtype=np.float64)
    tap_offsets = np.arange(taps_per_phase)
    for start in range(0, num_outputs, _RESAMPLING_BLOCK):
        # Output m reads upsampled position m * down + half_length: input sample base - j with tap phase + j * up.
        positions = np.arange(start, min(start + _RESAMPLING_BLOCK, num_outputs)) * down + half_length
        base, phase = np.divmod(positions, up)
        indices = np.clip(base[:, None] - tap_offsets[None, :], 0, num_samples - 1)
        output[start : start + len(positions)] = np.einsum("mj,mjc->mc", phases[phase], values[indices])

    return output


class RelConFeatureExtractor(SequenceFeatureExtractor):
    r"""
    Turns raw 3-axis acceleration recordings into RelCon model inputs.

    Each recording is converted to g, resampled to `sampling_rate` (the model's rate) with an anti-aliasing
    polyphase filter, and cut into windows of `window_length` samples every `hop_length` samples. A tail shorter
    than one window is dropped.

    Args:
        feature_size (`int`, *optional*, defaults to 3):
            Number of acceleration axes.
        sampling_rate (`int`, *optional*, defaults to 100):
            Rate in Hz that the model expects; every recording is resampled to it.
        window_length (`int`, *optional*, defaults to 256):
            Default window length in samples at `sampling_rate` (256 = 2.56 s, the pre-training window).
        hop_length (`int`, *optional*):
            Default step between window starts in samples; defaults to `window_length` (no overlap).
        padding_value (`float`, *optional*, defaults to 0.0):
            Value used by `pad`; windows produced here are never padded.
        do_resample (`bool`, *optional*, defaults to `True`):
            Whether to resample recordings to `sampling_rate`. With `False`, a recording at another rate raises.

    Example:

    ```python
    >>> import numpy as np
    >>> from relcon_hf import RelConFeatureExtractor

    >>> extractor = RelConFeatureExtractor()
    >>> recording = np.random.randn(50 * 60, 3)  # one minute at 50 Hz, in g
    >>> extractor(recording, sampling_rate=50, return_tensors="pt")["input_values"].shape
    torch.Size([23, 256, 3])
    ```
    """

    model_input_names = ["input_values"]

    def __init__(
        self,
        feature_size: int = 3,
        sampling_rate: int = 100,
        window_length: int = 256,
        hop_length: int | None = None,
        padding_value: float = 0.0,
        do_resample: bool = True,
        **kwargs,
    ):
        kwargs.setdefault("return_attention_mask", False)
        super().__init__(feature_size=feature_size, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs)
        self.window_length = window_length
        self.hop_length = hop_length if hop_length is not None else window_length
        self.do_resample = do_resample
        _check_window_arguments(self.window_length, self.hop_length)

    def __call__(
        self,
        raw_acceleration: np.ndarray | list[np.ndarray] | list[list[float]] | list[list[list[float]]],
        sampling_rate: float | list[float] | None = None,
        unit: str | list[str] = "g",
        window_length: int | None = -1,
        hop_length: int | None = None,
        return_tensors: str | TensorType | None = None,
        return_window_positions: bool = False,
        **kwargs,
    ) -> BatchFeature:
        r"""
        Convert, resample and window one or many recordings.

        Args:
            raw_acceleration (`np.ndarray`, `torch.Tensor`, `list[np.ndarray]` or nested lists of floats):
                One recording of shape `(time, 3)`, a batch of equal-length recordings of shape
                `(num_recordings, time, 3)`, or a list of recordings of any lengths. Axes are last.
            sampling_rate (`float` or `list[float]`):
                Rate of the recordings in Hz, one value for all or one per recording. Required: the extractor
                resamples to `self.sampling_rate` and cannot guess the source rate.
            unit (`str` or `list[str]`, *optional*, defaults to `"g"`):
                `"g"` or `"m/s^2"`, one for all or one per recording. Output is always in g.
            window_length (`int`, *optional*):
                Window length in samples at `self.sampling_rate`. Defaults to `self.window_length`. `None` returns
                each recording whole, which needs recordings of equal length after resampling.
            hop_length (`int`, *optional*):
                Step between window starts in samples. Defaults to `self.hop_length` when `window_length` is the
                default, otherwise to `window_length`.
            return_tensors (`str` or [`~transformers.utils.TensorType`], *optional*):
                `"pt"` for PyTorch tensors or `"np"` for NumPy arrays; lists otherwise.
            return_window_positions (`bool`, *optional*, defaults to `False`):
                Also return `recording_index` (which input each window came from) and `window_start` (start of
                each window in seconds from the start of its recording). Drop these keys before calling the model.

        Returns:
            [`~transformers.feature_extraction_utils.BatchFeature`] with `input_values` of shape
            `(num_windows, window_length, 3)`, float32, in g at `self.sampling_rate`.
        """
        if kwargs:
            raise TypeError(f"RelConFeatureExtractor got unexpected keyword arguments: {', '.join(sorted(kwargs))}.")

        # Rate and unit checks come first: without the source rate, resampling would be silently wrong.
        recordings = self._as_recordings(raw_acceleration)
        rates = _per_recording("sampling_rate", sampling_rate, len(recordings), self.sampling_rate)
        units = [normalize_unit(value) for value in _per_recording("unit", unit, len(recordings))]
        if window_length == -1:
            window_length = self.window_length
            hop_length = hop_length if hop_length is not None else self.hop_length
        elif window_length is not None:
            hop_length = hop_length if hop_length is not None else window_length
        if window_length is not None:
            _check_window_arguments(window_length, hop_length)

        # Convert each recording to g at the model's rate.
        converted = []
        for index, (recording, rate, recording_unit) in enumerate(zip(recordings, rates, units, strict=True)):
            converted.append(self._convert_recording(recording, rate, recording_unit, index))

        # Cut windows, or keep whole recordings.
        if window_length is None:
            lengths = {len(recording) for recording in converted}
            if len(lengths) != 1:
                raise ValueError(
                    "With `window_length=None` every recording must have the same length after resampling, got "
                    f"lengths {sorted(lengths)} samples. Pass a `window_length` to cut windows instead."
                )
            windows = np.stack(converted).astype(np.float32)
            recording_index = np.arange(len(converted), dtype=np.int64)
            window_start = np.zeros(len(converted), dtype=np.float64)
        else:
            hop = hop_length if hop_length is not None else window_length
            windows, recording_index, window_start = self._window_recordings(converted, window_length, hop)

        features: dict[str, np.ndarray] = {"input_values": windows}
        if return_window_positions:
            features["recording_index"] = recording_index
            features["window_start"] = window_start
        return BatchFeature(features, tensor_type=return_tensors)

    def _as_recordings(self, raw_acceleration: object) -> list[np.ndarray]:
        if hasattr(raw_acceleration, "detach") and hasattr(raw_acceleration, "cpu"):
            raw_acceleration = raw_acceleration.detach().cpu().numpy()
        if isinstance(raw_acceleration, np.ndarray):
            if raw_acceleration.ndim == 2:
                items = [raw_acceleration]
            elif raw_acceleration.ndim == 3:
                items = list(raw_acceleration)
            else:
                raise ValueError(
                    "`raw_acceleration` must have shape (time, 3), (num_recordings, time, 3) or be a list of "
                    f"(time, 3) arrays, got an array of shape {raw_acceleration.shape}."
                )
        elif isinstance(raw_acceleration, (list, tuple)):
            if len(raw_acceleration) == 0:
                raise ValueError("`raw_acceleration` is empty; pass at least one recording of shape (time, 3).")
            first = np.asarray(raw_acceleration[0]) if not hasattr(raw_acceleration[0], "detach") else None
            if first is not None and first.ndim == 1:
                items = [np.asarray(raw_acceleration)]  # a single recording given as a list of samples
            else:
                items = [
                    item.detach().cpu().numpy() if hasattr(item, "detach") else np.asarray(item)
                    for item in raw_acceleration
                ]
        else:
            raise TypeError(
                "`raw_acceleration` must be a NumPy array, a torch tensor or a list of them, got "
                f"{type(raw_acceleration).__name__}."
            )

        for index, item in enumerate(items):
            self._validate_recording(item, index)
        return items

    def _validate_recording(self, recording: np.ndarray, index: int) -> None:
        channels = self.feature_size
        if recording.ndim != 2:
            raise ValueError(
                f"Recording {index} must have shape (time, {channels}), got an array of shape {recording.shape}."
            )
        if recording.shape[1] != channels:
            hint = ""
            if recording.shape[0] == channels:
                hint = " It looks channels-first; pass `recording.T`."
            raise ValueError(
                f"Recording {index} must have shape (time, {channels}) with the axes last, got "
                f"{recording.shape}.{hint}"
            )
        if recording.shape[0] == 0:
            raise ValueError(f"Recording {index} is empty (shape {recording.shape}).")
        if not (np.issubdtype(recording.dtype, np.floating) or np.issubdtype(recording.dtype, np.integer)):
            raise TypeError(f"Recording {index} must hold numbers, got dtype {recording.dtype}.")

    def _convert_recording(self, recording: np.ndarray, rate: float, unit: str, index: int) -> np.ndarray:
        values = recording.astype(np.float64)
        non_finite = int((~np.isfinite(values)).any(axis=1).sum())
        if non_finite:
            raise ValueError(
                f"Recording {index} contains {non_finite} samples with NaN or infinite values. Remove or split the "
                "recording at them first (`relcon-hf prepare` does this and reports the count)."
            )

        if unit == "m/s^2":
            values /= STANDARD_GRAVITY
        else:
            median_magnitude = float(np.median(np.linalg.norm(values, axis=1)))
            if 7.0 < median_magnitude < 12.0:
                logger.warning(
                    f"Recording {index} has a median vector magnitude of {median_magnitude:.2f}, close to 9.81: it "
                    "looks like m/s^2, but unit='g' was given. Pass unit='m/s^2' if so."
                )
        peak = float(np.abs(values).max())
        if peak > MAX_ABS_ACCELERATION:
            raise ValueError(
                f"Recording {index} must be acceleration with absolute values up to {MAX_ABS_ACCELERATION:g} g after "
                f"conversion from {unit!r}, got a maximum of {peak:.4g} g. Raw sensor counts must be converted to g "
                "first; for m/s^2 pass unit='m/s^2'."
            )

        if rate != self.sampling_rate and not self.do_resample:
            raise ValueError(
                f"Recording {index} is sampled at {rate} Hz but the model expects {self.sampling_rate} Hz and "
                "`do_resample` is False. Resample it first or set `do_resample=True`."
            )
        if rate != self.sampling_rate:
            up, down = resampling_factors(rate, self.sampling_rate)
            achieved = rate * up / down
            if abs(achieved - self.sampling_rate) > 1e-3 * self.sampling_rate:
                raise ValueError(
                    f"Cannot resample recording {index} from {rate} Hz to {self.sampling_rate} Hz with a ratio of "
                    f"integers at most {MAX_RESAMPLING_FACTOR}; the closest gives {achieved:.4f} Hz."
                )
            values = resample_polyphase(values, up, down)

        return values

    def _window_recordings(
        self, recordings: list[np.ndarray], window_length: int, hop_length: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        windows, recording_index, window_start = [], [], []
        short = []
        for index, recording in enumerate(recordings):
            if len(recording) < window_length:
                short.append((index, len(recording)))
                continue
            view = np.lib.stride_tricks.sliding_window_view(recording, window_length, axis=0)[::hop_length]
            windows.append(view.transpose(0, 2, 1).astype(np.float32))
            recording_index.append(np.full(len(view), index, dtype=np.int64))
            window_start.append(np.arange(len(view), dtype=np.float64) * hop_length / self.sampling_rate)

        if short:
            details = ", ".join(f"recording {index}: {length} samples" for index, length in short)
            if not windows:
                raise ValueError(
                    f"No recording is long enough for one window of {window_length} samples at "
                    f"{self.sampling_rate} Hz ({details}). Pass a smaller `window_length`."
                )
            logger.warning(
                f"Skipped {len(short)} recordings shorter than one window of {window_length} samples ({details}); "
                "use return_window_positions=True to see which recording each window comes from."
            )

        return np.concatenate(windows), np.concatenate(recording_index), np.concatenate(window_start)


def _check_window_arguments(window_length: object, hop_length: object) -> None:
    for name, value in (("window_length", window_length), ("hop_length", hop_length)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"`{name}` must be a positive number of samples, got {value!r}.")


def _per_recording(name: str, value: object, count: int, model_rate: float | None = None) -> list:
    if value is None and name == "sampling_rate":
        raise ValueError(
            f"`sampling_rate` is required: pass the rate of the recordings in Hz. The model expects {model_rate} Hz "
            "and the extractor resamples from the rate you give."
        )
    if value is None:
        raise ValueError(f"`{name}` must not be None.")
    values = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value] * count
    if len(values) != count:
        raise ValueError(f"Got {len(values)} values of `{name}` for {count} recordings; pass one value or one each.")
    if name == "sampling_rate":
        for rate in values:
            if (
                isinstance(rate, bool)
                or not isinstance(rate, (int, float, np.integer, np.floating))
                or not 0 < rate < float("inf")
            ):
                raise ValueError(
                    f"`sampling_rate` must be a positive, finite number of Hz, got {rate!r}. Pass the rate the device "
                    "recorded at."
                )
    return values


__all__ = ["RelConFeatureExtractor", "design_lowpass_filter", "resample_polyphase", "resampling_factors"]
