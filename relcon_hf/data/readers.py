# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Readers for 3-axis acceleration recordings in CSV, Parquet and NumPy files.

`read_recording` returns the three acceleration axes of one file in g, with its sampling rate and start time. Each
format has its own reader, which returns a `_RawTable` of values in the file's unit and optional timestamps. The
sampling rate, the unit and the non-finite rows are then resolved the same way for every format, so a new format
needs only a reader.

Not handled yet: gaps and irregular sampling (the rate is the median step of the timestamps and samples are assumed
evenly spaced), device binary formats and device CSV exports with header blocks, and time zones (timestamps without
an offset are read as UTC).
"""

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from ..modeling.feature_extraction_relcon import STANDARD_GRAVITY, normalize_unit


logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".npy", ".npz")
# Time column names matched case-insensitively when `time_column` is not given.
TIME_COLUMN_NAMES = ("time", "timestamp", "t", "datetime")
# Axis column name triples matched case-insensitively when `columns` is not given, in this order.
AXIS_COLUMN_NAMES = (
    ("x", "y", "z"),
    ("acc_x", "acc_y", "acc_z"),
    ("ax", "ay", "az"),
    ("accel_x", "accel_y", "accel_z"),
    ("accx", "accy", "accz"),
    ("acceleration_x", "acceleration_y", "acceleration_z"),
)
# Largest relative difference between a given sampling rate and the one inferred from timestamps.
RATE_TOLERANCE = 0.02
# Median vector magnitude, in g, accepted as a worn or resting sensor: gravity plus or minus movement.
MAGNITUDE_RANGE_G = (0.5, 2.0)
# Numeric timestamps are read as Unix time in the largest unit whose threshold their median magnitude reaches
# (1e8 s is March 1973). Smaller values are read as seconds from the start of the recording.
_UNIX_TIME_SCALES = ((1e17, 1e-9, "nanoseconds"), (1e14, 1e-6, "microseconds"), (1e11, 1e-3, "milliseconds"))
_UNIX_SECONDS_MIN = 1e8


@dataclass
class Recording:
    """
    One 3-axis acceleration recording, converted to g.

    Args:
        values (`np.ndarray` of shape `(time, 3)`, float64):
            Acceleration in g. Rows with a NaN or infinite value in the file are removed, and `non_finite_rows`
            lists their row indices.
        sampling_rate (`float`):
            Sampling rate in Hz: the given rate, or the rate inferred from the timestamps.
        unit (`str`):
            Unit of the values in the file, `"g"` or `"m/s^2"`.
        unit_detected (`bool`):
            Whether `unit` was detected from the median vector magnitude rather than given.
        start_time (`datetime.datetime`, *optional*):
            Time of the first sample as a timezone-aware UTC datetime; `None` without absolute timestamps.
        source (`str`):
            Path of the file.
        columns (`list[str]`, *optional*):
            Names of the three columns read as x, y and z; `None` for NumPy files.
        time_column (`str`, *optional*):
            Name of the column read as timestamps, `"timestamps"` for an `.npz` archive, or `None`.
        rate_inferred (`bool`):
            Whether `sampling_rate` was inferred from timestamps.
        non_finite_rows (`np.ndarray` of shape `(num_non_finite,)`, int64):
            Row indices in the file of the rows removed for holding NaN or infinite values.
        median_magnitude (`float`):
            Median vector magnitude of `values`, in g.
    """

    values: np.ndarray
    sampling_rate: float
    unit: str
    unit_detected: bool
    start_time: datetime | None
    source: str
    columns: list[str] | None
    time_column: str | None
    rate_inferred: bool
    non_finite_rows: np.ndarray
    median_magnitude: float

    @property
    def num_non_finite(self) -> int:
        """Number of rows removed for holding NaN or infinite values."""
        return int(len(self.non_finite_rows))

    @property
    def num_rows(self) -> int:
        """Number of rows in the file, removed rows included."""
        return int(len(self.values)) + self.num_non_finite

    @property
    def duration_seconds(self) -> float:
        """Duration of the recording in seconds, removed rows included."""
        return self.num_rows / self.sampling_rate


@dataclass
class _RawTable:
    """Acceleration and timestamps of one file, before the rate, unit and non-finite rows are resolved."""

    values: np.ndarray  # (time, 3) float64 in the file's unit
    columns: list[str] | None
    time_column: str | None = None
    timestamps: np.ndarray | None = None  # (time,) float64 seconds, Unix time when `timestamps_absolute`
    timestamps_absolute: bool = False
    declared_rate: float | None = None  # a rate stored in the file itself (`.npz`)


def read_recording(
    path: str | os.PathLike,
    *,
    sampling_rate: float | None = None,
    unit: str | None = None,
    columns: Sequence[str] | None = None,
    time_column: str | None = None,
) -> Recording:
    """
    Read the three acceleration axes of a CSV, Parquet or NumPy file and convert them to g.

    Accepted files:

    - `.csv`, `.csv.gz`: a header row, or none (detected when the first row contains numbers; the columns are then
      named `column_0`, `column_1`, ...).
    - `.parquet`: any column types that pandas reads.
    - `.npy`: one array of shape `(time, 3)`; needs `sampling_rate`.
    - `.npz`: an array named `"acceleration"` (or the only array) of shape `(time, 3)`, optional `"timestamps"` of
      shape `(time,)` in Unix seconds, optional scalar `"sampling_rate"` in Hz.

    Args:
        path (`str` or `os.PathLike`):
            File to read.
        sampling_rate (`float`, *optional*):
            Sampling rate in Hz. Required when the file has no timestamps. With timestamps, the rate is inferred
            from the median positive step between them and must agree with this value within 2 %.
        unit (`str`, *optional*):
            `"g"` or `"m/s^2"`. Detected from the median vector magnitude when not given (about 1 for g, about 9.81
            for m/s^2).
        columns (`Sequence[str]`, *optional*):
            Names of the x, y and z columns (CSV and Parquet). By default: columns named x/y/z, acc_x/acc_y/acc_z,
            ax/ay/az or accel_x/accel_y/accel_z (any case), else the first three numeric columns other than time.
        time_column (`str`, *optional*):
            Name of the timestamp column (CSV and Parquet). By default a column named time, timestamp, t or datetime
            (any case), a datetime column, or in a file without a header a first column of dates or Unix times.
            Timestamps are Unix seconds, milliseconds, microseconds or nanoseconds (distinguished by magnitude), small
            numbers read as seconds from the start, or date strings (ISO 8601, read as UTC without an offset).

    Returns:
        [`Recording`] with `values` of shape `(time, 3)` in g.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the format is not supported, the columns are missing, the rate is missing or disagrees with the
            timestamps, or the unit cannot be detected.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Recording file not found: {path}.")
    file_format = _file_format(path)

    # Format-specific part: values in the file's unit and optional timestamps.
    if file_format in ("csv", "parquet"):
        table = _read_tabular(path, file_format, columns=columns, time_column=time_column)
    else:
        if columns is not None or time_column is not None:
            raise ValueError(
                f"`columns` and `time_column` apply to CSV and Parquet files, but {path} is a NumPy file; leave them "
                "unset."
            )
        table = _read_numpy(path, file_format)

    # Shared part: rate, non-finite rows, unit and start time.
    rate, rate_inferred = _resolve_sampling_rate(table, sampling_rate, source=str(path))
    finite = np.isfinite(table.values).all(axis=1)
    non_finite_rows = np.flatnonzero(~finite).astype(np.int64)
    if not finite.any():
        raise ValueError(f"{path} has no row with three finite acceleration values.")
    if len(non_finite_rows):
        logger.warning(f"{path}: removed {len(non_finite_rows)} rows with NaN or infinite acceleration values.")
    values = table.values[finite]
    median_magnitude = float(np.median(np.linalg.norm(values, axis=1)))
    file_unit, unit_detected = _resolve_unit(median_magnitude, unit, source=str(path))
    if file_unit == "m/s^2":
        values = values / STANDARD_GRAVITY
        median_magnitude /= STANDARD_GRAVITY

    return Recording(
        values=np.ascontiguousarray(values, dtype=np.float64),
        sampling_rate=rate,
        unit=file_unit,
        unit_detected=unit_detected,
        start_time=_start_time(table),
        source=str(path),
        columns=table.columns,
        time_column=table.time_column,
        rate_inferred=rate_inferred,
        non_finite_rows=non_finite_rows,
        median_magnitude=median_magnitude,
    )


def recording_stem(path: str | os.PathLike) -> str:
    """Return the file name without its format suffix (`"day1.csv.gz"` -> `"day1"`)."""
    name = Path(path).name
    for suffix in sorted(SUPPORTED_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def detect_unit(median_magnitude: float) -> str | None:
    """Return `"g"` or `"m/s^2"` when the median vector magnitude fits a worn sensor in that unit, else `None`."""
    low, high = MAGNITUDE_RANGE_G
    if low <= median_magnitude <= high:
        return "g"
    if low * STANDARD_GRAVITY <= median_magnitude <= high * STANDARD_GRAVITY:
        return "m/s^2"
    return None


def _file_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".csv") or name.endswith(".csv.gz"):
        return "csv"
    for suffix in (".parquet", ".npy", ".npz"):
        if name.endswith(suffix):
            return suffix[1:]
    raise ValueError(
        f"Unsupported recording file {path}: expected one of {', '.join(SUPPORTED_SUFFIXES)}. Convert device files "
        "to CSV first (time column plus x, y, z)."
    )


# ---------------------------------------------------------------------------------------------------------------------
# CSV and Parquet


def _read_tabular(
    path: Path, file_format: str, *, columns: Sequence[str] | None, time_column: str | None
) -> _RawTable:
    """Read a CSV or Parquet file and pick its axis and time columns."""
    if file_format == "parquet":
        frame, headerless = pd.read_parquet(path), False
    else:
        frame, headerless = _read_csv(path)
    if frame.empty:
        raise ValueError(f"{path} contains no data rows.")

    time_name = _find_time_column(frame, time_column, headerless=headerless, source=str(path))
    axis_names = _choose_axis_columns(frame, columns, time_name, source=str(path))
    values = _numeric_values(frame, axis_names, source=str(path))

    table = _RawTable(values=values, columns=[str(name) for name in axis_names], time_column=time_name)
    if time_name is not None:
        table.timestamps, table.timestamps_absolute = _parse_timestamps(frame[time_name], time_name, str(path))
    return table


def _read_csv(path: Path) -> tuple[pd.DataFrame, bool]:
    """Read a CSV file with its header row, if it has one. Return the frame and whether the file had no header."""
    first_row = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False).iloc[0]
    headerless = any(_is_number(field) for field in first_row)
    if not headerless:
        return pd.read_csv(path), False

    frame = pd.read_csv(path, header=None)
    frame.columns = [f"column_{index}" for index in range(frame.shape[1])]
    return frame, True


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _find_time_column(frame: pd.DataFrame, time_column: str | None, *, headerless: bool, source: str) -> str | None:
    """Return the name of the timestamp column, or `None` when the file has none."""
    if time_column is not None:
        if time_column not in frame.columns:
            raise ValueError(
                f"Time column {time_column!r} not found in {source}. Its columns are {list(frame.columns)}."
            )
        return time_column

    by_lower_name = {str(name).strip().lower(): name for name in frame.columns}
    for name in TIME_COLUMN_NAMES:
        if name in by_lower_name:
            return by_lower_name[name]
    for name in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[name]):
            return name

    # A file without a header row has no names to go by: accept a first column of dates or of Unix times.
    first = frame.columns[0]
    if headerless and _looks_like_time(frame[first]):
        logger.info(f"{source}: reading the first column as timestamps (the file has no header row).")
        return first
    return None


def _looks_like_time(column: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype=np.float64)
        return bool(np.nanmin(values) >= _UNIX_SECONDS_MIN and np.all(np.diff(values) >= 0))
    try:
        pd.to_datetime(column.iloc[:10], utc=True, format="ISO8601")
    except (ValueError, TypeError):
        return False
    return True


def _choose_axis_columns(
    frame: pd.DataFrame, columns: Sequence[str] | None, time_name: str | None, source: str
) -> list[str]:
    """Return the names of the x, y and z columns."""
    if columns is not None:
        if isinstance(columns, str) or len(columns) != 3:
            raise ValueError(f"`columns` must name exactly three columns (x, y, z), got {columns!r}.")
        missing = [name for name in columns if name not in frame.columns]
        if missing:
            raise ValueError(f"Columns {missing} not found in {source}. Its columns are {list(frame.columns)}.")
        return list(columns)

    by_lower_name = {str(name).strip().lower(): name for name in frame.columns}
    for triple in AXIS_COLUMN_NAMES:
        if all(name in by_lower_name for name in triple):
            return [by_lower_name[name] for name in triple]

    # Columns named like time (for example "Timestamp (ms)") are never acceleration, even when not read as time.
    numeric = [
        name
        for name in frame.columns
        if name != time_name and pd.api.types.is_numeric_dtype(frame[name]) and not _named_like_time(name)
    ]
    if len(numeric) < 3:
        raise ValueError(
            f"{source} has no x/y/z columns and only {len(numeric)} numeric columns other than time "
            f"({list(frame.columns)} in all). Pass `columns` (--columns) with the three acceleration columns."
        )
    logger.info(f"{source}: no x/y/z column names found; reading the first three numeric columns {numeric[:3]}.")
    return numeric[:3]


def _named_like_time(name: object) -> bool:
    lower = str(name).lower()
    return "time" in lower or "stamp" in lower


def _numeric_values(frame: pd.DataFrame, names: list[str], source: str) -> np.ndarray:
    """Return the named columns as a float64 array of shape (time, 3). Empty cells become NaN."""
    for name in names:
        if not pd.api.types.is_numeric_dtype(frame[name]):
            example = frame[name].dropna().iloc[0] if frame[name].notna().any() else None
            raise ValueError(f"Column {name!r} of {source} is not numeric (for example {example!r}).")
    return frame[names].to_numpy(dtype=np.float64)


def _parse_timestamps(column: pd.Series, name: str, source: str) -> tuple[np.ndarray, bool]:
    """Return timestamps in seconds and whether they are absolute (Unix time) rather than seconds from the start."""
    if pd.api.types.is_numeric_dtype(column):
        return _numeric_timestamps(column.to_numpy(dtype=np.float64), name, source)

    try:
        # NOTE: strings without an offset are read as UTC, because time zone handling is not built yet.
        parsed = pd.to_datetime(column, utc=True, format="ISO8601")
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"Time column {name!r} of {source} is neither numbers nor ISO 8601 dates (first value "
            f"{column.iloc[0]!r}): {error}. Pass `time_column` to pick another column."
        ) from error
    epoch = pd.Timestamp(0, tz="UTC")
    seconds = ((parsed - epoch) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64, na_value=np.nan)
    return seconds, True


def _numeric_timestamps(values: np.ndarray, name: str, source: str) -> tuple[np.ndarray, bool]:
    magnitude = float(np.nanmedian(np.abs(values)))
    for threshold, scale, unit_name in _UNIX_TIME_SCALES:
        if magnitude >= threshold:
            logger.info(f"{source}: reading time column {name!r} as Unix time in {unit_name}.")
            return values * scale, True
    if magnitude >= _UNIX_SECONDS_MIN:
        return values, True
    logger.info(f"{source}: time column {name!r} is too small for Unix time; reading it as seconds from the start.")
    return values, False


# ---------------------------------------------------------------------------------------------------------------------
# NumPy


def _read_numpy(path: Path, file_format: str) -> _RawTable:
    """Read an `.npy` array or an `.npz` archive of acceleration, timestamps and sampling rate."""
    if file_format == "npy":
        return _RawTable(values=_acceleration_array(np.load(path, allow_pickle=False), path), columns=None)

    with np.load(path, allow_pickle=False) as archive:
        names = list(archive.files)
        if "acceleration" in names:
            array_name = "acceleration"
        elif len(names) == 1:
            array_name = names[0]
        else:
            raise ValueError(
                f"{path} contains the arrays {names}; expected one named 'acceleration' of shape (time, 3), or a "
                "single array."
            )
        table = _RawTable(values=_acceleration_array(archive[array_name], path), columns=None)
        if "timestamps" in names and array_name != "timestamps":
            timestamps = np.asarray(archive["timestamps"], dtype=np.float64).reshape(-1)
            if len(timestamps) != len(table.values):
                raise ValueError(
                    f"{path}: 'timestamps' has {len(timestamps)} values but 'acceleration' has {len(table.values)} "
                    "rows; they must match."
                )
            table.time_column = "timestamps"
            table.timestamps, table.timestamps_absolute = _numeric_timestamps(timestamps, "timestamps", str(path))
        if "sampling_rate" in names:
            table.declared_rate = float(np.asarray(archive["sampling_rate"]).reshape(()))
    return table


def _acceleration_array(array: np.ndarray, path: Path) -> np.ndarray:
    if array.ndim != 2 or array.shape[1] != 3:
        hint = " It looks channels-first; save `array.T`." if array.ndim == 2 and array.shape[0] == 3 else ""
        raise ValueError(f"{path} must hold acceleration of shape (time, 3), got shape {array.shape}.{hint}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{path} must hold numbers, got dtype {array.dtype}.")
    if len(array) == 0:
        raise ValueError(f"{path} contains no samples.")
    return array.astype(np.float64)


# ---------------------------------------------------------------------------------------------------------------------
# Rate, unit and start time, shared by all formats


def _resolve_sampling_rate(table: _RawTable, user_rate: float | None, source: str) -> tuple[float, bool]:
    """Return the sampling rate in Hz and whether it was inferred from timestamps."""
    for name, rate in (("sampling_rate", user_rate), ("the file's sampling_rate", table.declared_rate)):
        if rate is not None and (isinstance(rate, bool) or not math.isfinite(rate) or rate <= 0):
            raise ValueError(f"{source}: {name} must be a positive number of Hz, got {rate!r}.")
    if user_rate is not None and table.declared_rate is not None:
        _check_rates_agree(float(user_rate), table.declared_rate, f"the rate stored in {source}", source)
    stated = float(user_rate) if user_rate is not None else table.declared_rate

    if table.timestamps is None:
        if stated is None:
            raise ValueError(
                f"{source} has no time column, so its sampling rate is unknown. Pass the rate in Hz with "
                "--sampling-rate (`sampling_rate=` in Python)."
            )
        return stated, False

    inferred = _infer_sampling_rate(table.timestamps, source)
    if stated is None:
        logger.info(f"{source}: sampling rate {inferred:.6g} Hz, inferred from the timestamps.")
        return inferred, True
    _check_rates_agree(stated, inferred, "the rate inferred from the timestamps", source)
    # The stated rate agrees with the timestamps, so keep it: it is the nominal rate, free of timing jitter.
    return stated, False


def _infer_sampling_rate(timestamps: np.ndarray, source: str) -> float:
    steps = np.diff(timestamps[np.isfinite(timestamps)])
    steps = steps[steps > 0]
    if len(steps) == 0:
        raise ValueError(f"{source}: the timestamps never increase, so no sampling rate can be inferred from them.")
    return float(1.0 / np.median(steps))


def _check_rates_agree(stated: float, other: float, other_name: str, source: str) -> None:
    if abs(other - stated) > RATE_TOLERANCE * stated:
        raise ValueError(
            f"{source}: the given sampling rate {stated:.6g} Hz differs from {other_name}, {other:.6g} Hz, by more "
            f"than {RATE_TOLERANCE:.0%}. Check the rate, or leave it unset to use {other:.6g} Hz."
        )


def _resolve_unit(median_magnitude: float, unit: str | None, source: str) -> tuple[str, bool]:
    """Return the unit of the file's values and whether it was detected rather than given."""
    detected = detect_unit(median_magnitude)
    if unit is not None:
        unit = normalize_unit(unit)
        if detected is not None and detected != unit:
            logger.warning(
                f"{source}: unit={unit!r} was given, but the median vector magnitude {median_magnitude:.4g} looks "
                f"like {detected}. The values are converted as {unit}; pass unit={detected!r} if that is wrong."
            )
        return unit, False

    if detected is None:
        raise ValueError(
            f"{source}: cannot detect the unit, because the median vector magnitude is {median_magnitude:.4g}, "
            "neither about 1 (g) nor about 9.81 (m/s^2). Raw counts must be converted to g first (divide by the "
            "device's counts per g). Otherwise pass the unit with --unit g or --unit m/s^2 (`unit=` in Python)."
        )
    logger.info(f"{source}: detected unit {detected} from the median vector magnitude {median_magnitude:.4g}.")
    return detected, True


def _start_time(table: _RawTable) -> datetime | None:
    if table.timestamps is None or not table.timestamps_absolute:
        return None
    finite = table.timestamps[np.isfinite(table.timestamps)]
    if len(finite) == 0:
        return None
    return datetime.fromtimestamp(float(finite[0]), tz=timezone.utc)


__all__ = ["Recording", "SUPPORTED_SUFFIXES", "detect_unit", "read_recording", "recording_stem"]
