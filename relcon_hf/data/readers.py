# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Read 3-axis acceleration recordings from CSV, Parquet, NumPy, device and WISDM files, in g with UTC timestamps.

`read_recording` detects the format (`formats.detect_format`), runs that format's reader, which returns a `RawTable`
in the file's unit with optional timestamps, and then resolves the time zone, the row order, the sampling rate, the
non-finite rows and the unit the same way for every format. A new format needs only a reader.
"""

import logging
import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ..modeling.feature_extraction_relcon import STANDARD_GRAVITY, normalize_unit
from .cleaning import (
    DEFAULT_REPEAT_MIN_ROWS,
    find_repeated_blocks,
    infer_sampling_rate,
    order_timestamps,
)
from .formats import (
    RawTable,
    detect_format,
    read_actigraph_csv,
    read_cwa,
    read_geneactiv_bin,
    read_geneactiv_csv,
    read_gt3x,
    read_wisdm,
)


logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".npy", ".npz", ".cwa", ".bin", ".gt3x", ".txt")
FORMATS = ("csv", "geneactiv-csv", "actigraph-csv", "parquet", "npy", "npz", "cwa", "geneactiv-bin", "gt3x", "wisdm")
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
    ("accelerometer x", "accelerometer y", "accelerometer z"),
)
# Largest relative difference between a given sampling rate and the one inferred from timestamps.
RATE_TOLERANCE = 0.02
# Rates inferred below this are taken as misread timestamps (raw accelerometers sample at 10 Hz or more).
MIN_SAMPLING_RATE = 1.0
# A wall-clock step back by more than this is a change from summer time (in seconds).
_JUMP_BACK_SECONDS = 1800
# Rows per chunk when long recordings are read in chunks: 6 hours at 100 Hz.
DEFAULT_CHUNK_ROWS = 6 * 3600 * 100
# An inferred rate this close to a whole number of Hz is taken as that nominal rate.
NOMINAL_RATE_TOLERANCE = 0.01
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
        format (`str`):
            Format the file was read as, one of `FORMATS`.
        timestamps (`np.ndarray` of shape `(num_rows,)`, float64, *optional*):
            Time of every row in seconds, non-finite rows included, sorted and unique: Unix time (UTC) when
            `start_time` is set, else seconds from the start. `None` for files without timestamps.
        labels (`np.ndarray` of shape `(num_rows,)`, str, *optional*):
            Class name of every row, for labelled formats (WISDM activity codes).
        subject_id (`str`, *optional*):
            Subject named in the file (WISDM).
        device (`dict`):
            Facts the file states: device type, serial number, `range_g` (the range is plus or minus this many g).
        source_timezone (`str`, *optional*):
            Zone of the file's wall-clock times: an IANA name or offset such as `"+02:00"`, `"UTC"` for times with
            an offset, `"unknown (read as UTC)"` for wall-clock times of an unknown zone, `None` without timestamps.
        out_of_order_rows (`int`):
            Rows whose timestamp was earlier than the row before them; they were sorted into place.
        duplicate_timestamps (`int`):
            Rows removed because their timestamp repeated an earlier row's.
        repeated_rows (`np.ndarray` of shape `(num_rows,)`, bool):
            Rows inside a block that repeats an earlier block of at least `repeat_min_rows` rows exactly.
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
    format: str = "csv"
    timestamps: np.ndarray | None = None
    labels: np.ndarray | None = None
    subject_id: str | None = None
    device: dict = field(default_factory=dict)
    source_timezone: str | None = None
    out_of_order_rows: int = 0
    duplicate_timestamps: int = 0
    repeated_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

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
        """Duration of the recording in seconds from the first row to the end of the last, gaps included."""
        if self.timestamps is not None and len(self.timestamps):
            return float(self.timestamps[-1] - self.timestamps[0]) + 1.0 / self.sampling_rate
        return self.num_rows / self.sampling_rate

    def full_values(self) -> np.ndarray:
        """Return all `num_rows` rows of shape `(num_rows, 3)` in g, NaN in the rows removed as non-finite."""
        full = np.full((self.num_rows, 3), np.nan)
        present = np.ones(self.num_rows, dtype=bool)
        present[self.non_finite_rows] = False
        full[present] = self.values
        return full


def read_recording(
    path: str | os.PathLike,
    *,
    sampling_rate: float | None = None,
    unit: str | None = None,
    columns: Sequence[str] | None = None,
    time_column: str | None = None,
    format: str | None = None,
    timezone: str | None = None,
    repeat_min_rows: int = DEFAULT_REPEAT_MIN_ROWS,
) -> Recording:
    """
    Read the three acceleration axes of a recording file, convert them to g and put its timestamps in UTC.

    Accepted files (the format is detected from the suffix and the first lines; `format` overrides it):

    - `csv` (`.csv`, `.csv.gz`): a header row, or none (detected when the first row contains numbers; the columns
      are then named `column_0`, `column_1`, ...).
    - `geneactiv-csv`, `actigraph-csv`: GENEActiv PC Software and ActiLife raw CSV exports, with their header blocks.
    - `parquet`: any column types that pandas reads.
    - `npy`: one array of shape `(time, 3)`; needs `sampling_rate`.
    - `npz`: an array named `"acceleration"` (or the only array) of shape `(time, 3)`, optional `"timestamps"` of
      shape `(time,)` in Unix seconds, optional scalar `"sampling_rate"` in Hz.
    - `cwa` (Axivity), `geneactiv-bin` (GENEActiv `.bin`), `gt3x` (ActiGraph): device files, read with the libraries
      of the `devices` extra.
    - `wisdm` (`.txt`): WISDM 2019 lines `subject,activity,x,y,z;` in m/s^2, labelled by activity.

    Args:
        path (`str` or `os.PathLike`):
            File to read.
        sampling_rate (`float`, *optional*):
            Sampling rate in Hz. Required when the file has no timestamps and states no rate. With timestamps, the
            rate is inferred from them (`cleaning.infer_sampling_rate`) and must agree with this value within 2 %.
        unit (`str`, *optional*):
            `"g"` or `"m/s^2"`. Taken from the file when it states one, otherwise detected from the median vector
            magnitude (about 1 for g, about 9.81 for m/s^2).
        columns (`Sequence[str]`, *optional*):
            Names of the x, y and z columns (CSV and Parquet). By default: columns named x/y/z, acc_x/acc_y/acc_z,
            ax/ay/az or accel_x/accel_y/accel_z (any case), else the first three numeric columns other than time.
        time_column (`str`, *optional*):
            Name of the timestamp column (CSV and Parquet). By default a column named time, timestamp, t or datetime
            (any case), a datetime column, or in a file without a header a first column of dates or Unix times.
            Timestamps are Unix seconds, milliseconds, microseconds or nanoseconds (distinguished by magnitude), small
            numbers read as seconds from the start, or ISO 8601 strings with or without an offset.
        format (`str`, *optional*):
            One of `FORMATS`, to override detection.
        timezone (`str`, *optional*):
            IANA zone (such as `"Europe/London"`) or offset (`"+02:00"`) of wall-clock timestamps without an offset.
            Ambiguous times in the repeated hour when clocks go back are resolved by their order in the file.
            Without it, such timestamps are read as UTC and `source_timezone` records that. Ignored for timestamps with
            an offset and for Unix times.
        repeat_min_rows (`int`, *optional*, defaults to 200):
            Minimum length of a block of rows that repeats an earlier block exactly to be marked in `repeated_rows`.

    Returns:
        [`Recording`] with `values` of shape `(time, 3)` in g.

    Raises:
        FileNotFoundError: the file does not exist.
        ImportError: a device file needs a library of the `devices` extra that is not installed.
        ValueError: the format is not supported, the columns are missing, the rate is missing or disagrees with the
            timestamps, or the unit cannot be detected.
    """
    path = Path(path)
    file_format = _check_path_and_format(path, format)
    check_timezone(timezone)
    table = _read_table_as(path, file_format, format, columns=columns, time_column=time_column)
    return _recording_from_table(table, path, file_format, sampling_rate, unit, timezone, repeat_min_rows)


def iter_recording_chunks(
    path: str | os.PathLike,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    sampling_rate: float | None = None,
    unit: str | None = None,
    columns: Sequence[str] | None = None,
    time_column: str | None = None,
    format: str | None = None,
    timezone: str | None = None,
    repeat_min_rows: int = DEFAULT_REPEAT_MIN_ROWS,
) -> Iterator[Recording]:
    """
    Read a recording in consecutive chunks of at most `chunk_rows` rows, so memory is bounded by the chunk size.

    CSV, Parquet and `.npy` files are read chunk by chunk; other formats are read whole and yield one chunk. Each
    chunk is a [`Recording`] cleaned as by [`read_recording`], with the same options. Rows are sorted and
    de-duplicated within a chunk. The daylight-saving change is resolved across chunk boundaries: the last
    wall-clock time of a chunk is carried into the next. The unit is detected on the first chunk and kept.
    """
    path = Path(path)
    file_format = _check_path_and_format(path, format)
    check_timezone(timezone)
    if not isinstance(chunk_rows, int) or isinstance(chunk_rows, bool) or chunk_rows < 2:
        raise ValueError(f"`chunk_rows` must be an integer of at least 2, got {chunk_rows!r}.")
    clock = _WallClockState()
    tables = _iter_tables(path, file_format, columns=columns, time_column=time_column, chunk_rows=chunk_rows)
    for table in _tables_as(tables, path, format):
        before = clock.copy()
        if table.timestamps is not None and table.timestamps_naive and len(table.timestamps):
            clock.update(table.timestamps)
        recording = _recording_from_table(
            table, path, file_format, sampling_rate, unit, timezone, repeat_min_rows, before
        )
        # Later chunks keep the first chunk's unit and rate, so a quiet stretch cannot flip the unit detection.
        unit = unit or recording.unit
        sampling_rate = sampling_rate or recording.sampling_rate
        yield recording


@dataclass
class _WallClockState:
    """Wall-clock facts carried between chunks: the last time, and the time just after the last jump back."""

    last: float | None = None
    after_last_jump: float | None = None

    def copy(self) -> "_WallClockState":
        return _WallClockState(self.last, self.after_last_jump)

    def update(self, seconds: np.ndarray) -> None:
        extended = seconds if self.last is None else np.concatenate([[self.last], seconds])
        jumps = np.flatnonzero(np.diff(extended) < -_JUMP_BACK_SECONDS) + 1
        if len(jumps):
            self.after_last_jump = float(extended[jumps[-1]])
        self.last = float(seconds[-1])


_FORMAT_ERRORS = (ValueError, KeyError, OSError, UnicodeDecodeError)


def _wrong_format(path: Path, forced: str, error: Exception) -> ValueError:
    return ValueError(
        f"{path} could not be read as format {forced!r} ({type(error).__name__}: {error}). Leave --format "
        "(`format=`) unset to detect the format from the file."
    )


def _read_table_as(
    path: Path, file_format: str, forced: str | None, *, columns: Sequence[str] | None, time_column: str | None
) -> RawTable:
    """Read the table of `path`, and when the user forced the format, explain a failure as a wrong format."""
    try:
        return _read_table(path, file_format, columns=columns, time_column=time_column)
    except _FORMAT_ERRORS as error:
        if forced is None or isinstance(error, FileNotFoundError):
            raise
        raise _wrong_format(path, forced, error) from None


def _tables_as(tables: Iterator[RawTable], path: Path, forced: str | None) -> Iterator[RawTable]:
    """Yield the chunk tables, and when the user forced the format, explain a failure as a wrong format."""
    try:
        yield from tables
    except _FORMAT_ERRORS as error:
        if forced is None or isinstance(error, FileNotFoundError):
            raise
        raise _wrong_format(path, forced, error) from None


def _check_path_and_format(path: Path, format: str | None) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"Recording file not found: {path}.")
    if format is not None and format not in FORMATS:
        raise ValueError(f"`format` must be one of {', '.join(FORMATS)}, got {format!r}.")
    return format or detect_format(path)


def _recording_from_table(
    table: RawTable,
    path: Path,
    file_format: str,
    sampling_rate: float | None,
    unit: str | None,
    timezone: str | None,
    repeat_min_rows: int,
    clock: "_WallClockState | None" = None,
) -> Recording:
    """Resolve the time zone, row order, rate, non-finite rows and unit of a table read from `path`."""
    source = str(path)

    # Time zone, then row order: wall-clock times are converted to UTC in file order, because only the row order
    # separates the two passes through the repeated hour of a daylight-saving change.
    source_timezone = None
    order = None
    if table.timestamps is not None:
        source_timezone = _localize(table, timezone, source, clock)
        order = order_timestamps(table.timestamps)
        if order.out_of_order or order.duplicates:
            logger.warning(
                f"{source}: sorted {order.out_of_order} rows that were out of time order and removed "
                f"{order.duplicates} rows with a repeated timestamp."
            )
        _take_rows(table, order.keep)

    rate, rate_inferred = _resolve_sampling_rate(table, sampling_rate, source)
    finite = np.isfinite(table.values).all(axis=1)
    non_finite_rows = np.flatnonzero(~finite).astype(np.int64)
    if not finite.any():
        raise ValueError(f"{path} has no row with three finite acceleration values.")
    if len(non_finite_rows):
        logger.warning(f"{path}: removed {len(non_finite_rows)} rows with NaN or infinite acceleration values.")
    values = table.values[finite]
    median_magnitude = float(np.median(np.linalg.norm(values, axis=1)))
    file_unit, unit_detected = _resolve_unit(median_magnitude, unit if unit is not None else table.unit, source)
    unit_detected = unit_detected and unit is None and table.unit is None
    if file_unit == "m/s^2":
        values = values / STANDARD_GRAVITY
        median_magnitude /= STANDARD_GRAVITY

    repeated = find_repeated_blocks(table.values, repeat_min_rows)
    if repeated.any():
        logger.warning(
            f"{source}: {int(repeated.sum())} rows repeat an earlier block of at least {repeat_min_rows} rows."
        )

    return Recording(
        values=np.ascontiguousarray(values, dtype=np.float64),
        sampling_rate=rate,
        unit=file_unit,
        unit_detected=unit_detected,
        start_time=_start_time(table),
        source=source,
        columns=table.columns,
        time_column=table.time_column,
        rate_inferred=rate_inferred,
        non_finite_rows=non_finite_rows,
        median_magnitude=median_magnitude,
        format=file_format,
        timestamps=table.timestamps,
        labels=table.labels,
        subject_id=table.subject_id,
        device=table.device,
        source_timezone=source_timezone,
        out_of_order_rows=order.out_of_order if order is not None else 0,
        duplicate_timestamps=order.duplicates if order is not None else 0,
        repeated_rows=repeated,
    )


def _read_table(path: Path, file_format: str, *, columns: Sequence[str] | None, time_column: str | None) -> RawTable:
    """Run the reader of `file_format`."""
    if file_format in ("csv", "parquet"):
        return _read_tabular(path, file_format, columns=columns, time_column=time_column)
    if columns is not None or time_column is not None:
        raise ValueError(
            f"`columns` and `time_column` apply to plain CSV and Parquet files, but {path} is read as {file_format}; "
            "leave them unset, or pass format='csv' to read it as a plain CSV file."
        )
    readers = {
        "npy": lambda: _read_numpy(path, "npy"),
        "npz": lambda: _read_numpy(path, "npz"),
        "cwa": lambda: read_cwa(path),
        "geneactiv-bin": lambda: read_geneactiv_bin(path),
        "gt3x": lambda: read_gt3x(path),
        "geneactiv-csv": lambda: read_geneactiv_csv(path),
        "actigraph-csv": lambda: read_actigraph_csv(path),
        "wisdm": lambda: read_wisdm(path),
    }
    try:
        table = readers[file_format]()
    except (ImportError, ValueError):
        raise
    except Exception as error:  # decoder libraries raise their own types for damaged files
        raise ValueError(
            f"{path} could not be decoded as {file_format}: {type(error).__name__}: {error}. Check that the file is "
            "complete (not truncated during download) and of this format, or pass `format=`."
        ) from error
    if len(table.values) == 0:
        raise ValueError(f"{path} contains no samples.")
    return table


def check_timezone(zone: str | None) -> None:
    """Raise `ValueError` unless `zone` is None, an IANA zone name or an offset from -12:00 to +14:00."""
    if zone is None:
        return
    match = re.fullmatch(r"([+-])(\d{2}):(\d{2})", str(zone))
    if match:
        if int(match.group(2)) * 60 + int(match.group(3)) <= 14 * 60 and int(match.group(3)) < 60:
            return
    else:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(str(zone))
            return
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    raise ValueError(
        f"Unknown time zone {zone!r}: expected an IANA zone name such as 'Europe/London' or 'America/New_York', or "
        "an offset such as '+02:00' or '-05:30'."
    )


def _localize(table: RawTable, zone: str | None, source: str, clock: _WallClockState | None = None) -> str:
    """Convert wall-clock timestamps to UTC in place; return the source zone to record."""
    assert table.timestamps is not None
    if not table.timestamps_absolute:
        return "none (seconds from the start)"
    if not table.timestamps_naive:
        return table.source_timezone or "UTC"
    if zone is None:
        logger.info(
            f"{source}: the timestamps are wall-clock times without a zone, read as UTC. Pass --timezone "
            "(`timezone=`) with the zone of the recording to store them in UTC."
        )
        return "unknown (read as UTC)"

    wall_clock = pd.DatetimeIndex(pd.to_datetime(table.timestamps, unit="s"))
    try:
        if re.fullmatch(r"[+-]\d{2}:\d{2}", zone):
            localized = wall_clock.tz_localize(zone)
        else:
            is_dst = _daylight_saving_flags(wall_clock, table.timestamps, zone, clock or _WallClockState(), source)
            localized = wall_clock.tz_localize(zone, ambiguous=is_dst, nonexistent="raise")
    except ValueError as error:
        if str(error).startswith(source):
            raise
        raise ValueError(
            f"{source}: cannot convert its wall-clock timestamps from time zone {zone!r}: {error}."
        ) from None
    except Exception as error:  # zoneinfo errors for unknown zones
        raise ValueError(
            f"{source}: cannot convert its wall-clock timestamps from time zone {zone!r}: {type(error).__name__}: "
            f"{error}. Check the zone name (an IANA name such as 'Europe/London' or an offset such as '+02:00'), "
            "and that the rows are in recording order around daylight-saving changes."
        ) from None
    table.timestamps = (localized.tz_convert("UTC") - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    table.timestamps = np.asarray(table.timestamps, dtype=np.float64)
    table.timestamps_naive = False
    return zone


def _daylight_saving_flags(
    wall_clock: pd.DatetimeIndex, seconds: np.ndarray, zone: str, clock: _WallClockState, source: str = ""
) -> np.ndarray:
    """
    Tell apart the two passes through the repeated hour when clocks go back, by the order of the rows.

    A wall-clock time in that hour is on standard time when the clock jumped back (by at least half an hour)
    earlier in the file and the time is at most an hour past the time just after the jump. It is on summer time
    otherwise: before the jump, or in a file that lies wholly inside the repeated hour, where nothing separates the
    passes (a warning is logged). `clock` carries the last time and the last jump of earlier chunks. Unlike pandas'
    `ambiguous="infer"`, this tolerates duplicated and swapped rows near the change.

    Returns:
        `np.ndarray` of shape `(time,)`, bool: True for rows on summer time. Rows that are not ambiguous get False,
        which pandas ignores for them.
    """
    skipped = np.asarray(wall_clock.tz_localize(zone, ambiguous=False, nonexistent="NaT").isna())
    skipped &= np.isfinite(seconds)
    if skipped.any():
        first = wall_clock[np.flatnonzero(skipped)[0]]
        raise ValueError(
            f"{source}: {int(skipped.sum())} rows have wall-clock times inside the hour skipped when clocks go "
            f"forward in {zone} (the first is {first}). Such times do not exist in that zone: check --timezone, or "
            "whether the device clock kept standard time all year (then pass its fixed offset, such as '+01:00')"
        )
    ambiguous = np.asarray(wall_clock.tz_localize(zone, ambiguous="NaT", nonexistent="shift_forward").isna())
    ambiguous &= np.isfinite(seconds)
    flags = np.zeros(len(seconds), dtype=bool)
    if not ambiguous.any():
        return flags
    extended = seconds if clock.last is None else np.concatenate([[clock.last], seconds])
    shift = 0 if clock.last is None else 1
    # Index in `seconds` of the first row after each jump back.
    jumps = np.flatnonzero(np.diff(extended) < -_JUMP_BACK_SECONDS) + 1 - shift
    rows = np.flatnonzero(ambiguous)
    if len(jumps) == 0 and clock.after_last_jump is None:
        logger.warning(
            f"{source}: {len(rows)} rows fall in the repeated hour of a change from summer time in {zone}, with no "
            "jump back in the file to separate the two passes. They are read as summer time."
        )
        flags[rows] = True
        return flags
    previous = np.searchsorted(jumps, rows, side="right") - 1
    jump_values = np.where(
        previous >= 0,
        seconds[jumps[np.maximum(previous, 0)]] if len(jumps) else np.nan,
        np.nan if clock.after_last_jump is None else clock.after_last_jump,
    )
    with np.errstate(invalid="ignore"):
        after_jump = (seconds[rows] - jump_values >= 0) & (seconds[rows] - jump_values <= 3600)
    flags[rows] = ~after_jump
    return flags


def _take_rows(table: RawTable, rows: np.ndarray) -> None:
    if len(rows) == len(table.values) and np.array_equal(rows, np.arange(len(rows))):
        return
    table.values = table.values[rows]
    assert table.timestamps is not None
    table.timestamps = table.timestamps[rows]
    if table.labels is not None:
        table.labels = table.labels[rows]


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


# ---------------------------------------------------------------------------------------------------------------------
# CSV and Parquet


def _iter_tables(
    path: Path, file_format: str, *, columns: Sequence[str] | None, time_column: str | None, chunk_rows: int
) -> Iterator[RawTable]:
    """Yield the tables of consecutive row chunks (CSV, Parquet, `.npy`), or of the whole file (other formats)."""
    if file_format == "npy":
        array = np.load(path, mmap_mode="r", allow_pickle=False)
        _acceleration_array(array[:1], path)
        for start in range(0, len(array), chunk_rows):
            yield RawTable(values=np.asarray(array[start : start + chunk_rows], dtype=np.float64), columns=None)
        return
    if file_format not in ("csv", "parquet"):
        yield _read_table(path, file_format, columns=columns, time_column=time_column)
        return

    if file_format == "parquet":
        # pre_buffer=False: with pre-buffering, pyarrow keeps the file's column chunks allocated while iterating
        # (measured: 440 MB left allocated after reading 3 days at 100 Hz), so memory grew with the file.
        parquet_file = pq.ParquetFile(path, pre_buffer=False)
        frames: Iterator[pd.DataFrame] = (
            batch.to_pandas() for batch in parquet_file.iter_batches(batch_size=chunk_rows)
        )
        headerless = False
    else:
        headerless = _csv_is_headerless(path)
        frames = iter(pd.read_csv(path, header=None if headerless else "infer", chunksize=chunk_rows))
    first = True
    for frame in frames:
        if headerless:
            frame.columns = [f"column_{index}" for index in range(frame.shape[1])]
        if first and frame.empty:
            raise ValueError(f"{path} contains no data rows.")
        table = _table_from_frame(frame, path, columns=columns, time_column=time_column, headerless=headerless)
        if first:
            # Later chunks use the columns chosen on the first one.
            columns, time_column, first = table.columns, table.time_column, False
        yield table


def _read_tabular(path: Path, file_format: str, *, columns: Sequence[str] | None, time_column: str | None) -> RawTable:
    """Read a CSV or Parquet file and pick its axis and time columns."""
    if file_format == "parquet":
        frame, headerless = pd.read_parquet(path), False
    else:
        frame, headerless = _read_csv(path)
    if frame.empty:
        raise ValueError(f"{path} contains no data rows.")
    return _table_from_frame(frame, path, columns=columns, time_column=time_column, headerless=headerless)


def _table_from_frame(
    frame: pd.DataFrame,
    path: Path,
    *,
    columns: Sequence[str] | None,
    time_column: str | None,
    headerless: bool,
) -> RawTable:
    """Pick the axis and time columns of a CSV or Parquet frame."""
    time_name = _find_time_column(frame, time_column, headerless=headerless, source=str(path))
    axis_names = _choose_axis_columns(frame, columns, time_name, source=str(path))
    values = _numeric_values(frame, axis_names, source=str(path))

    table = RawTable(values=values, columns=[str(name) for name in axis_names], time_column=time_name)
    if time_name is not None:
        timestamps, absolute, naive = _parse_timestamps(frame[time_name], time_name, str(path))
        table.timestamps, table.timestamps_absolute, table.timestamps_naive = timestamps, absolute, naive
    return table


def _csv_is_headerless(path: Path) -> bool:
    """Return whether a CSV file starts with a row of data rather than column names."""
    try:
        first_row = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False).iloc[0]
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty: expected a CSV file with x, y, z columns.") from None
    return any(_is_number(field) for field in first_row)


def _read_csv(path: Path) -> tuple[pd.DataFrame, bool]:
    """Read a CSV file with its header row, if it has one. Return the frame and whether the file had no header."""
    headerless = _csv_is_headerless(path)
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


def _parse_timestamps(column: pd.Series, name: str, source: str) -> tuple[np.ndarray, bool, bool]:
    """
    Return timestamps in seconds, whether they are absolute (Unix time) rather than seconds from the start, and
    whether they are wall-clock times without an offset.
    """
    if pd.api.types.is_numeric_dtype(column):
        seconds, absolute = _numeric_timestamps(column.to_numpy(dtype=np.float64), name, source)
        return seconds, absolute, False

    try:
        parsed = pd.to_datetime(column, format="ISO8601")
    except (ValueError, TypeError):
        parsed = None
    if parsed is None or not (pd.api.types.is_datetime64_any_dtype(parsed)):
        # Mixed offsets (for example across a daylight-saving change) parse only when converted to UTC.
        try:
            parsed = pd.to_datetime(column, utc=True, format="ISO8601")
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"Time column {name!r} of {source} is neither numbers nor ISO 8601 dates (first value "
                f"{column.iloc[0]!r}): {error}. Pass `time_column` to pick another column."
            ) from error
    naive = getattr(parsed.dt, "tz", None) is None
    if naive:
        seconds = (parsed - pd.Timestamp(0)) / pd.Timedelta(seconds=1)
    else:
        seconds = (parsed.dt.tz_convert("UTC") - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    return seconds.to_numpy(dtype=np.float64, na_value=np.nan), True, naive


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


def _read_numpy(path: Path, file_format: str) -> RawTable:
    """Read an `.npy` array or an `.npz` archive of acceleration, timestamps and sampling rate."""
    try:
        return _read_numpy_arrays(path, file_format)
    except ValueError as error:
        if "pickled" not in str(error):
            raise
        raise ValueError(
            f"{path} contains pickled Python objects, which are not loaded because unpickling can run code. Save "
            "plain numeric arrays with numpy.save or numpy.savez."
        ) from None


def _read_numpy_arrays(path: Path, file_format: str) -> RawTable:
    if file_format == "npy":
        return RawTable(values=_acceleration_array(np.load(path, allow_pickle=False), path), columns=None)

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
        table = RawTable(values=_acceleration_array(archive[array_name], path), columns=None)
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


def _resolve_sampling_rate(table: RawTable, user_rate: float | None, source: str) -> tuple[float, bool]:
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

    finite_times = table.timestamps[np.isfinite(table.timestamps)]
    try:
        inferred = infer_sampling_rate(finite_times)
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None
    if inferred < MIN_SAMPLING_RATE:
        raise ValueError(
            f"{source}: the timestamps of column {table.time_column!r} give {inferred:.4g} Hz, below the "
            f"{MIN_SAMPLING_RATE:g} Hz of any raw accelerometer. If the column counts milliseconds (or other units) "
            "from the start, convert it to seconds, or pass --sampling-rate and another --time-column."
        )
    if stated is None:
        nominal = float(round(inferred))
        if nominal > 0 and abs(inferred - nominal) <= NOMINAL_RATE_TOLERANCE * nominal:
            # Device clocks run slightly fast or slow. The even grid uses the nominal rate, and the timestamps
            # place each sample on it, so the drift does not stretch the recording.
            logger.info(f"{source}: sampling rate {nominal:g} Hz, from {inferred:.6g} Hz measured on the timestamps.")
            return nominal, True
        logger.info(f"{source}: sampling rate {inferred:.6g} Hz, inferred from the timestamps.")
        return inferred, True
    _check_rates_agree(stated, inferred, "the rate inferred from the timestamps", source)
    # The stated rate agrees with the timestamps, so keep it: it is the nominal rate, free of timing jitter.
    return stated, False


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


def _start_time(table: RawTable) -> datetime | None:
    if table.timestamps is None or not table.timestamps_absolute:
        return None
    finite = table.timestamps[np.isfinite(table.timestamps)]
    if len(finite) == 0:
        return None
    return datetime.fromtimestamp(float(finite[0]), tz=timezone.utc)


__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "FORMATS",
    "Recording",
    "SUPPORTED_SUFFIXES",
    "detect_unit",
    "check_timezone",
    "iter_recording_chunks",
    "read_recording",
    "recording_stem",
]
