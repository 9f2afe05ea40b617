# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Loaders for the public activity-recognition benchmarks of RelCon (Xu et al., ICLR 2025): Opportunity, PAMAP2,
HHAR and MotionSense.

Each loader reads the files as the public archive unpacks and returns an [`EvaluationDataset`] of windows at 100 Hz
in g. Every recording goes through the same steps:

1. Rows are put in time order, and rows with a repeated timestamp are removed.
2. The recording is cut where the label changes, so no window mixes two activities. Rows of classes outside the
   benchmark (null, transient) are removed.
3. Each labelled run is cut again at time steps longer than `max_gap_seconds`, and each piece is put on an even grid
   at the source rate (`cleaning.to_uniform_grid`), which fills the shorter time steps by linear interpolation.
4. Runs of missing samples (NaN) of at most `max_gap_seconds` are filled by linear interpolation. Every window that
   reads a longer run is dropped and counted under `"non_finite"`.
5. The piece is resampled to 100 Hz by the anti-aliasing polyphase filter of `RelConFeatureExtractor` and cut into
   windows. Windows are clipped to plus or minus `clip_g`.

By default `max_gap_seconds` is a tenth of the window, so filling one gap changes at most 10 % of any window. The
`report` of each dataset counts files, corrupt rows, filled samples and dropped windows.
"""

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.cleaning import order_timestamps, split_at_gaps, to_uniform_grid
from ..data.windowing import DROP_REASONS, window_recording
from ..modeling.feature_extraction_relcon import STANDARD_GRAVITY, RelConFeatureExtractor
from .datasets import EvaluationDataset, register_dataset


logger = logging.getLogger(__name__)

MODEL_SAMPLING_RATE = 100.0
# Fraction of a window that one filled gap may cover when `max_gap_seconds` is not given.
DEFAULT_GAP_FRACTION = 0.1
# Deviation from the even grid, as a fraction of a sample step, left as it is. Millisecond timestamps at 30 Hz
# deviate by up to 0.5 ms, which is 0.015 of a step.
GRID_TOLERANCE = 0.05
# A label that is not part of the benchmark (null class, transient activities, excluded classes).
UNUSED_LABEL = -1

# Opportunity UCI: 30 Hz, acceleration in milli-g, columns as the dataset's column_names.txt numbers them (1-based).
OPPORTUNITY_RATE = 30.0
OPPORTUNITY_NUM_COLUMNS = 250
OPPORTUNITY_COLUMNS = {
    "MILLISEC": 1,
    "Accelerometer RWR accX": 23,
    "Accelerometer RWR accY": 24,
    "Accelerometer RWR accZ": 25,
    "Locomotion": 244,
}
# Locomotion codes of label_legend.txt, in the order of `label_names`. Code 0 is the null class.
OPPORTUNITY_LOCOMOTION = {1: "stand", 2: "walk", 4: "sit", 5: "lie"}
OPPORTUNITY_RUNS = ("ADL1", "ADL2", "ADL3", "ADL4", "ADL5", "Drill")
OPPORTUNITY_SUBJECTS = ("S1", "S2", "S3", "S4")

# PAMAP2 Protocol files: 100 Hz, 54 columns. Column 1 is the time in seconds and column 2 the activity id. The hand
# IMU fills columns 4-20 and the ankle IMU columns 38-54, each with temperature first and then the +-16 g
# accelerometer in m/s^2. Indices here are 0-based.
PAMAP2_RATE = 100.0
PAMAP2_NUM_COLUMNS = 54
PAMAP2_TIME_COLUMN = 0
PAMAP2_ACTIVITY_COLUMN = 1
PAMAP2_ACCELERATION_COLUMNS = {"hand": (4, 5, 6), "ankle": (38, 39, 40)}
PAMAP2_SUBJECTS = tuple(str(number) for number in range(101, 110))
# The 12 activities of the data collection protocol, by activity id, in the order of `label_names`.
PAMAP2_PROTOCOL_ACTIVITIES = {
    1: "lying",
    2: "sitting",
    3: "standing",
    4: "walking",
    5: "running",
    6: "cycling",
    7: "Nordic walking",
    12: "ascending stairs",
    13: "descending stairs",
    16: "vacuum cleaning",
    17: "ironing",
    24: "rope jumping",
}
# The 8 classes of the hand benchmark that RelCon takes from Yuan et al. (2024): activities every subject except 109
# performed. ssl-wearables (OxWearables, data_parsing/README.md) lists these ids and removes subject 109.
PAMAP2_HAND_ACTIVITIES = (1, 2, 3, 4, 12, 13, 16, 17)
PAMAP2_HAND_EXCLUDED_SUBJECTS = ("109",)

# HHAR watch accelerometer: m/s^2, rates between about 100 and 200 Hz by device.
HHAR_FILE = "Watch_accelerometer.csv"
HHAR_COLUMNS = ("Index", "Arrival_Time", "Creation_Time", "x", "y", "z", "User", "Model", "Device", "gt")
# Seconds per unit of each time column: Creation_Time is the sensor event time in nanoseconds, Arrival_Time the
# time the app received the sample in milliseconds.
HHAR_TIME_SCALES = {"Creation_Time": 1e-9, "Arrival_Time": 1e-3}
HHAR_ACTIVITIES = ("bike", "sit", "stand", "walk", "stairsup", "stairsdown")
# Rates outside this range mean the time column is in another unit than `HHAR_TIME_SCALES` states.
HHAR_RATE_RANGE = (20.0, 1000.0)

# MotionSense device motion: 50 Hz, gravity and user acceleration in g, one file per subject and trial.
MOTIONSENSE_RATE = 50.0
MOTIONSENSE_GRAVITY = ("gravity.x", "gravity.y", "gravity.z")
MOTIONSENSE_USER_ACCELERATION = ("userAcceleration.x", "userAcceleration.y", "userAcceleration.z")
MOTIONSENSE_ACTIVITIES = {
    "dws": "downstairs",
    "ups": "upstairs",
    "wlk": "walking",
    "jog": "jogging",
    "sit": "sitting",
    "std": "standing",
}
_MOTIONSENSE_TRIAL = re.compile(r"^([a-z]{3})_(\d+)$")
_MOTIONSENSE_SUBJECT = re.compile(r"^sub_(\d+)\.csv$")
_OPPORTUNITY_COLUMN_LINE = re.compile(r"^\s*Column:\s*(\d+)\s+([^;]+?)\s*(;|$)")


@dataclass
class WindowOptions:
    """
    Window settings shared by every loader.

    Args:
        window_seconds (`float`): Window length in seconds at 100 Hz.
        hop_seconds (`float`): Step between window starts in seconds.
        clip_g (`float`, *optional*): Windows are clipped to plus or minus this many g; `None` keeps every value.
        max_gap_seconds (`float`, *optional*): Longest gap that is filled by linear interpolation. Defaults to a
            tenth of the window.
    """

    window_seconds: float
    hop_seconds: float
    clip_g: float | None = 3.0
    max_gap_seconds: float | None = None

    def __post_init__(self) -> None:
        for name in ("window_seconds", "hop_seconds"):
            value = getattr(self, name)
            samples = value * MODEL_SAMPLING_RATE if isinstance(value, (int, float)) else float("nan")
            if not samples >= 1 or abs(samples - round(samples)) > 1e-6:
                raise ValueError(
                    f"`{name}` must be a positive number of seconds that is a whole number of samples at 100 Hz, "
                    f"got {value!r}."
                )
        if self.clip_g is not None and not self.clip_g > 0:
            raise ValueError(f"`clip_g` must be a positive number of g or None, got {self.clip_g!r}.")
        if self.max_gap_seconds is not None and not self.max_gap_seconds >= 0:
            raise ValueError(
                f"`max_gap_seconds` must be zero or a positive number of seconds, got {self.max_gap_seconds!r}."
            )

    @property
    def gap_seconds(self) -> float:
        """Longest gap that is filled: `max_gap_seconds`, or a tenth of the window when it is `None`."""
        if self.max_gap_seconds is None:
            return DEFAULT_GAP_FRACTION * self.window_seconds
        return float(self.max_gap_seconds)

    @property
    def window_length(self) -> int:
        return round(self.window_seconds * MODEL_SAMPLING_RATE)

    @property
    def hop_length(self) -> int:
        return round(self.hop_seconds * MODEL_SAMPLING_RATE)


@dataclass
class _WindowCollector:
    """Windows and their metadata from all recordings of one dataset, with the counts for `report`."""

    options: WindowOptions
    num_classes: int
    windows: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    subjects: list[np.ndarray] = field(default_factory=list)
    recordings: list[np.ndarray] = field(default_factory=list)
    window_times: list[np.ndarray] = field(default_factory=list)
    report: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.extractor = RelConFeatureExtractor(
            sampling_rate=int(MODEL_SAMPLING_RATE),
            window_length=self.options.window_length,
            hop_length=self.options.hop_length,
        )
        self.report.update(
            {
                "files_read": 0,
                "bad_files": [],
                "missing_files": [],
                "corrupt_rows": 0,
                "out_of_order_rows": 0,
                "duplicate_timestamps": 0,
                "unused_label_seconds": 0.0,
                "time_gaps": 0,
                "filled_samples": 0,
                "clipped_samples": 0,
                "dropped_windows": dict.fromkeys(DROP_REASONS[:1] + DROP_REASONS[-1:], 0),
            }
        )

    def add_bad_file(self, path: Path, error: Exception) -> None:
        logger.error(f"Skipped {path}: {error}")
        self.report["bad_files"].append({"file": str(path), "error": str(error)})

    def add_recording(
        self,
        values: np.ndarray,
        labels: np.ndarray,
        sampling_rate: float,
        *,
        subject: str,
        recording: str,
        timestamps: np.ndarray | None = None,
    ) -> None:
        """
        Window one recording, run by run of constant label.

        Args:
            values (`np.ndarray` of shape `(time, 3)`): Acceleration in g, NaN where a sample is missing.
            labels (`np.ndarray` of shape `(time,)`): Class index of each row, `UNUSED_LABEL` for rows to leave out.
            sampling_rate (`float`): Nominal rate of the rows in Hz.
            subject (`str`), recording (`str`): Ids written with each window.
            timestamps (`np.ndarray` of shape `(time,)`, *optional*): Row times in seconds. Without them the rows
                are taken as evenly spaced at `sampling_rate`.
        """
        if timestamps is not None:
            order = order_timestamps(timestamps)
            self.report["out_of_order_rows"] += order.out_of_order
            self.report["duplicate_timestamps"] += order.duplicates
            timestamps, values, labels = timestamps[order.keep], values[order.keep], labels[order.keep]
            start_time = float(timestamps[0]) if len(timestamps) else 0.0
        else:
            start_time = 0.0

        edges = np.concatenate([[0], np.flatnonzero(labels[1:] != labels[:-1]) + 1, [len(labels)]])
        for start, stop in zip(edges[:-1], edges[1:], strict=True):
            if stop <= start:
                continue
            label = int(labels[start])
            if label == UNUSED_LABEL:
                self.report["unused_label_seconds"] += (stop - start) / sampling_rate
                continue
            if timestamps is None:
                self._add_piece(values[start:stop], sampling_rate, label, subject, recording, start / sampling_rate)
                continue
            run_times = timestamps[start:stop]
            pieces = split_at_gaps(run_times, self.options.gap_seconds)
            self.report["time_gaps"] += len(pieces) - 1
            for piece_start, piece_stop in pieces:
                piece_times = run_times[piece_start:piece_stop]
                grid_values, _ = to_uniform_grid(
                    piece_times,
                    values[start + piece_start : start + piece_stop],
                    sampling_rate,
                    tolerance=GRID_TOLERANCE,
                )
                self.report["filled_samples"] += max(0, len(grid_values) - len(piece_times))
                offset = float(piece_times[0]) - start_time
                self._add_piece(grid_values, sampling_rate, label, subject, recording, offset)

    def _add_piece(
        self, values: np.ndarray, sampling_rate: float, label: int, subject: str, recording: str, offset: float
    ) -> None:
        """Fill short NaN runs of one evenly sampled piece, then resample, window and clip it."""
        missing = ~np.isfinite(values).all(axis=1)
        max_gap_samples = int(math.floor(self.options.gap_seconds * sampling_rate + 1e-9))
        fill = _short_interior_runs(missing, max_gap_samples)
        if fill.any():
            present = np.flatnonzero(~missing)
            values = values.copy()
            for channel in range(values.shape[1]):
                values[fill, channel] = np.interp(np.flatnonzero(fill), present, values[present, channel])
            self.report["filled_samples"] += int(fill.sum())
        removed = missing & ~fill

        if removed.all():
            positions = math.ceil(len(values) * MODEL_SAMPLING_RATE / sampling_rate / self.options.hop_length)
            self.report["dropped_windows"]["non_finite"] += positions
            return
        windowed = window_recording(
            values[~removed], sampling_rate, self.extractor, removed_rows=np.flatnonzero(removed)
        )
        for reason in self.report["dropped_windows"]:
            self.report["dropped_windows"][reason] += windowed.dropped.get(reason, 0)
        if len(windowed) == 0:
            return

        windows = windowed.windows
        if self.options.clip_g is not None:
            self.report["clipped_samples"] += int((np.abs(windows) > self.options.clip_g).sum())
            windows = np.clip(windows, -self.options.clip_g, self.options.clip_g)
        count = len(windows)
        self.windows.append(windows)
        self.labels.append(np.full(count, label, dtype=np.int64))
        self.subjects.append(np.full(count, subject, dtype=object))
        self.recordings.append(np.full(count, recording, dtype=object))
        self.window_times.append(windowed.window_start + offset)

    def build(self, dataset: str, path: Path, **fields) -> EvaluationDataset:
        """Concatenate the windows into an [`EvaluationDataset`], or raise `ValueError` when there are none."""
        if not self.windows:
            raise ValueError(
                f"{dataset}: no window could be cut from the files under {path} "
                f"({self.report['files_read']} files read, {len(self.report['bad_files'])} bad files, windows "
                f"dropped: {self.report['dropped_windows']}). Check the folder layout and the window options."
            )
        labels = np.concatenate(self.labels)
        self.report["windows_per_class"] = np.bincount(labels, minlength=self.num_classes).tolist()
        return EvaluationDataset(
            name=dataset,
            windows=np.concatenate(self.windows),
            subjects=np.concatenate(self.subjects).astype(str),
            task="classification",
            labels=labels,
            sampling_rate=MODEL_SAMPLING_RATE,
            window_times=np.concatenate(self.window_times),
            recordings=np.concatenate(self.recordings).astype(str),
            report=self.report,
            **fields,
        )


def _short_interior_runs(missing: np.ndarray, max_length: int) -> np.ndarray:
    """Mark the runs of `missing` of at most `max_length` samples that have a present sample on both sides."""
    fill = np.zeros(len(missing), dtype=bool)
    if max_length < 1 or not missing.any():
        return fill
    padded = np.concatenate([[False], missing, [False]])
    changes = np.flatnonzero(np.diff(padded.astype(np.int8)))
    for start, stop in zip(changes[::2], changes[1::2], strict=True):
        if start > 0 and stop < len(missing) and stop - start <= max_length:
            fill[start:stop] = True
    return fill


def _class_indices(label_codes: np.ndarray, lookup: np.ndarray) -> np.ndarray:
    """Map the label codes of a file to class indices through `lookup`; codes outside it become `UNUSED_LABEL`."""
    codes = label_codes.astype(np.int64)
    inside = (codes >= 0) & (codes < len(lookup)) & (codes == label_codes)
    return np.where(inside, lookup[np.clip(codes, 0, len(lookup) - 1)], UNUSED_LABEL)


def _find_data_folder(path: str | Path, dataset: str, candidates: Sequence[str], pattern: str, expected: str) -> Path:
    """Return the first of `path / candidate` that contains files matching `pattern`, or raise `ValueError`."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise ValueError(
            f"{dataset}: the path {root} is not a folder. Pass the folder the public archive unpacks "
            f"into, which contains {expected}."
        )
    for candidate in candidates:
        folder = root / candidate
        if folder.is_dir() and any(folder.glob(pattern)):
            return folder
    raise ValueError(
        f"{dataset}: expected {expected} under {root}, but no file matching {pattern!r} was found in "
        f"{', '.join(str(root / candidate) for candidate in candidates)}. Unpack the public archive there."
    )


def _read_space_separated(path: Path, num_columns: int, used_columns: Sequence[int]) -> tuple[np.ndarray, int]:
    """
    Read the used columns of a whitespace-separated numeric table of `num_columns` columns, such as the Opportunity
    and PAMAP2 `.dat` files, which write missing values as NaN.

    Returns:
        `(table, corrupt_rows)`: `table` of shape `(rows, len(used_columns))`, float64, without the corrupt rows. A row
        is corrupt when a used field is missing (a short line) or not a number. pandas reads a line with more than
        `num_columns` fields by its first `num_columns` fields.

    Raises:
        `ValueError`: when the file cannot be parsed or has no row with numbers in the used columns.
    """
    try:
        frame = pd.read_csv(
            path,
            sep=r"\s+",
            header=None,
            names=range(num_columns),
            usecols=list(used_columns),
            engine="c",
            keep_default_na=False,
            na_values=["NaN", "nan"],
            low_memory=False,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as error:
        raise ValueError(f"{path} could not be parsed as {num_columns} space-separated columns: {error}") from error
    if frame.empty:
        raise ValueError(f"{path} contains no data rows; expected {num_columns} space-separated columns.")

    corrupt = np.zeros(len(frame), dtype=bool)
    table = np.empty((len(frame), len(used_columns)), dtype=np.float64)
    for index, column in enumerate(used_columns):
        numbers = pd.to_numeric(frame[column], errors="coerce")
        # A field that is empty (a short line) or text becomes NaN here, unlike the NaN the files use for gaps.
        corrupt |= (numbers.isna() & frame[column].notna()).to_numpy()
        table[:, index] = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    if corrupt.all():
        raise ValueError(
            f"{path} has no row with numbers in the expected columns {[column + 1 for column in used_columns]}; "
            f"expected {num_columns} space-separated numeric columns."
        )
    return table[~corrupt], int(corrupt.sum())


def _read_opportunity_columns(folder: Path) -> dict[str, int]:
    """
    Return the 0-based index of each column in `OPPORTUNITY_COLUMNS`, from column_names.txt when the folder has it.

    Raises:
        `ValueError`: when column_names.txt exists but lacks one of the columns.
    """
    names_file = folder / "column_names.txt"
    if not names_file.is_file():
        logger.warning(f"{names_file} not found; using the column numbers of the public Opportunity UCI layout.")
        return {name: number - 1 for name, number in OPPORTUNITY_COLUMNS.items()}

    numbers: dict[str, int] = {}
    for line in names_file.read_text(encoding="utf-8", errors="replace").splitlines():
        match = _OPPORTUNITY_COLUMN_LINE.match(line)
        if match:
            numbers.setdefault(match.group(2).strip(), int(match.group(1)))
    missing = [name for name in OPPORTUNITY_COLUMNS if name not in numbers]
    if missing:
        raise ValueError(
            f"opportunity: {names_file} does not name the columns {missing}; expected lines such as "
            "'Column: 23 Accelerometer RWR accX; ...' as in the public dataset."
        )
    return {name: numbers[name] - 1 for name in OPPORTUNITY_COLUMNS}


@register_dataset("opportunity")
def load_opportunity(
    path: str | Path,
    *,
    window_seconds: float = 10.0,
    hop_seconds: float = 5.0,
    clip_g: float | None = 3.0,
    max_gap_seconds: float | None = None,
    runs: Sequence[str] = OPPORTUNITY_RUNS,
) -> EvaluationDataset:
    """
    Load Opportunity UCI: right-wrist accelerometer (RWR), 4 locomotion classes, one fold per subject.

    Args:
        path (`str` or `Path`): Folder containing `OpportunityUCIDataset/dataset/S<1-4>-<run>.dat` (the folder the
            archive unpacks into), or the `dataset` folder itself.
        window_seconds (`float`): Window length in seconds; 10 s in the RelCon paper.
        hop_seconds (`float`): Step between windows in seconds; 5 s (50 % overlap) in the RelCon paper.
        clip_g (`float`, *optional*): Clip windows to plus or minus this many g.
        max_gap_seconds (`float`, *optional*): Longest run of missing samples filled by linear interpolation;
            defaults to a tenth of the window. Windows that read a longer run are dropped.
        runs (sequence of `str`): Runs to read for every subject, among "ADL1" to "ADL5" and "Drill".

    Returns:
        [`EvaluationDataset`] with `label_names` ["stand", "walk", "sit", "lie"], subjects "S1" to "S4" and split
        "loso". Rows of the null class (code 0) are removed.
    """
    options = WindowOptions(window_seconds, hop_seconds, clip_g, max_gap_seconds)
    unknown = sorted(set(runs) - set(OPPORTUNITY_RUNS))
    if unknown or not runs:
        raise ValueError(f"opportunity: `runs` must be a non-empty selection of {OPPORTUNITY_RUNS}, got {runs!r}.")
    folder = _find_data_folder(
        path,
        "opportunity",
        ("OpportunityUCIDataset/dataset", "dataset", "."),
        "S*-*.dat",
        "OpportunityUCIDataset/dataset/S1-ADL1.dat ... S4-Drill.dat",
    )
    columns = _read_opportunity_columns(folder)
    used = [columns[name] for name in OPPORTUNITY_COLUMNS]
    codes = np.full(max(OPPORTUNITY_LOCOMOTION) + 1, UNUSED_LABEL, dtype=np.int64)
    for index, code in enumerate(OPPORTUNITY_LOCOMOTION):
        codes[code] = index

    collector = _WindowCollector(options, num_classes=len(OPPORTUNITY_LOCOMOTION))
    for subject in OPPORTUNITY_SUBJECTS:
        for run in runs:
            file = folder / f"{subject}-{run}.dat"
            if not file.is_file():
                logger.warning(f"opportunity: {file} not found; loading the other files.")
                collector.report["missing_files"].append(str(file))
                continue
            try:
                table, corrupt = _read_space_separated(file, OPPORTUNITY_NUM_COLUMNS, used)
            except ValueError as error:
                collector.add_bad_file(file, error)
                continue
            times, values, locomotion = table[:, 0] / 1000.0, table[:, 1:4] / 1000.0, table[:, 4]
            invalid = ~np.isfinite(times) | ~np.isfinite(locomotion)
            collector.report["corrupt_rows"] += corrupt + int(invalid.sum())
            times, values = times[~invalid], values[~invalid]
            labels = _class_indices(locomotion[~invalid], codes)
            collector.report["files_read"] += 1
            collector.add_recording(
                values, labels, OPPORTUNITY_RATE, subject=subject, recording=f"{subject}-{run}", timestamps=times
            )

    return collector.build(
        "opportunity",
        folder,
        description="Opportunity UCI, right-wrist accelerometer, 4 locomotion classes, leave one subject out",
        label_names=list(OPPORTUNITY_LOCOMOTION.values()),
        split="loso",
        standardize_inputs=False,
        body_location="wrist",
        source="Opportunity Activity Recognition, UCI Machine Learning Repository (Roggen et al. 2010)",
    )


def _load_pamap2(
    path: str | Path,
    dataset: str,
    placement: str,
    activities: Sequence[int],
    options: WindowOptions,
    exclude_subjects: Sequence[str],
) -> tuple[_WindowCollector, Path]:
    """Read the PAMAP2 Protocol files with one IMU's +-16 g accelerometer and window the chosen activities."""
    folder = _find_data_folder(
        path,
        dataset,
        ("PAMAP2_Dataset/Protocol", "Protocol", "."),
        "subject10*.dat",
        "PAMAP2_Dataset/Protocol/subject101.dat ... subject109.dat",
    )
    codes = np.full(max(PAMAP2_PROTOCOL_ACTIVITIES) + 1, UNUSED_LABEL, dtype=np.int64)
    for index, activity in enumerate(activities):
        codes[activity] = index
    used = [PAMAP2_TIME_COLUMN, PAMAP2_ACTIVITY_COLUMN, *PAMAP2_ACCELERATION_COLUMNS[placement]]

    collector = _WindowCollector(options, num_classes=len(activities))
    collector.report["excluded_subjects"] = sorted(exclude_subjects)
    for subject in PAMAP2_SUBJECTS:
        if subject in exclude_subjects:
            continue
        file = folder / f"subject{subject}.dat"
        if not file.is_file():
            logger.warning(f"{dataset}: {file} not found; loading the other subjects.")
            collector.report["missing_files"].append(str(file))
            continue
        try:
            table, corrupt = _read_space_separated(file, PAMAP2_NUM_COLUMNS, used)
        except ValueError as error:
            collector.add_bad_file(file, error)
            continue
        times, activity_ids, values = table[:, 0], table[:, 1], table[:, 2:5] / STANDARD_GRAVITY
        invalid = ~np.isfinite(times) | ~np.isfinite(activity_ids)
        collector.report["corrupt_rows"] += corrupt + int(invalid.sum())
        times, values = times[~invalid], values[~invalid]
        labels = _class_indices(activity_ids[~invalid], codes)
        collector.report["files_read"] += 1
        collector.add_recording(
            values, labels, PAMAP2_RATE, subject=subject, recording=f"subject{subject}", timestamps=times
        )
    return collector, folder


@register_dataset("pamap2-hand")
def load_pamap2_hand(
    path: str | Path,
    *,
    window_seconds: float = 10.0,
    hop_seconds: float = 5.0,
    clip_g: float | None = 3.0,
    max_gap_seconds: float | None = None,
    exclude_subjects: Sequence[str] = PAMAP2_HAND_EXCLUDED_SUBJECTS,
) -> EvaluationDataset:
    """
    Load PAMAP2 with the hand (wrist) IMU: 8 classes, one fold per subject.

    The 8 classes are the activities with ids 1, 2, 3, 4, 12, 13, 16 and 17 (lying, sitting, standing, walking,
    ascending stairs, descending stairs, vacuum cleaning, ironing), which every subject but 109 performed. Subject
    109 is left out by default, as in the ssl-wearables protocol that RelCon compares against.

    Args:
        path (`str` or `Path`): Folder containing `PAMAP2_Dataset/Protocol/subject101.dat` ... `subject109.dat`, or
            the `Protocol` folder itself.
        window_seconds, hop_seconds (`float`): Window length and step in seconds; 10 s and 5 s in the RelCon paper.
        clip_g (`float`, *optional*): Clip windows to plus or minus this many g.
        max_gap_seconds (`float`, *optional*): Longest gap filled by linear interpolation; defaults to a tenth of the
            window.
        exclude_subjects (sequence of `str`): Subject ids ("101" to "109") to leave out.

    Returns:
        [`EvaluationDataset`] with split "loso". Transient rows (activity id 0) and other activities are removed.
    """
    options = WindowOptions(window_seconds, hop_seconds, clip_g, max_gap_seconds)
    collector, folder = _load_pamap2(
        path, "pamap2-hand", "hand", PAMAP2_HAND_ACTIVITIES, options, tuple(str(s) for s in exclude_subjects)
    )
    return collector.build(
        "pamap2-hand",
        folder,
        description="PAMAP2 Protocol, hand (wrist) accelerometer, 8 classes, leave one subject out",
        label_names=[PAMAP2_PROTOCOL_ACTIVITIES[activity] for activity in PAMAP2_HAND_ACTIVITIES],
        split="loso",
        standardize_inputs=False,
        body_location="wrist",
        source="PAMAP2 Physical Activity Monitoring, UCI Machine Learning Repository (Reiss and Stricker 2012)",
    )


@register_dataset("pamap2-ankle")
def load_pamap2_ankle(
    path: str | Path,
    *,
    window_seconds: float = 2.0,
    hop_seconds: float = 1.0,
    clip_g: float | None = 3.0,
    max_gap_seconds: float | None = None,
    exclude_subjects: Sequence[str] = (),
) -> EvaluationDataset:
    """
    Load PAMAP2 with the ankle IMU: the 12 protocol activities, 2 s windows, 5 folds of whole subjects.

    Args:
        path (`str` or `Path`): Folder containing `PAMAP2_Dataset/Protocol/subject101.dat` ... `subject109.dat`, or
            the `Protocol` folder itself.
        window_seconds (`float`): Window length in seconds; 2 s (200 samples) in the RelCon paper.
        hop_seconds (`float`): Step between windows in seconds; 1 s (50 % overlap) by default. The paper does not
            state its overlap.
        clip_g (`float`, *optional*): Clip windows to plus or minus this many g.
        max_gap_seconds (`float`, *optional*): Longest gap filled by linear interpolation; defaults to a tenth of the
            window.
        exclude_subjects (sequence of `str`): Subject ids ("101" to "109") to leave out.

    Returns:
        [`EvaluationDataset`] with split "kfold-5" and `standardize_inputs=True`. Transient rows (activity id 0)
        and the optional activities are removed.
    """
    options = WindowOptions(window_seconds, hop_seconds, clip_g, max_gap_seconds)
    activities = tuple(PAMAP2_PROTOCOL_ACTIVITIES)
    collector, folder = _load_pamap2(
        path, "pamap2-ankle", "ankle", activities, options, tuple(str(s) for s in exclude_subjects)
    )
    return collector.build(
        "pamap2-ankle",
        folder,
        description="PAMAP2 Protocol, ankle accelerometer, 12 classes, 5 subject-wise folds",
        label_names=list(PAMAP2_PROTOCOL_ACTIVITIES.values()),
        split="kfold-5",
        standardize_inputs=True,
        body_location="ankle",
        source="PAMAP2 Physical Activity Monitoring, UCI Machine Learning Repository (Reiss and Stricker 2012)",
    )


@register_dataset("hhar")
def load_hhar(
    path: str | Path,
    *,
    window_seconds: float = 2.0,
    hop_seconds: float = 1.0,
    clip_g: float | None = 3.0,
    max_gap_seconds: float | None = None,
    time_column: str = "Creation_Time",
) -> EvaluationDataset:
    """
    Load the smartwatch accelerometer of Heterogeneity HAR (HHAR): 6 classes, 2 s windows, 5 folds of whole subjects.

    Rows are grouped by user and device and sorted by `time_column`. Each device's rate is estimated from the median
    step of its timestamps and rounded to whole Hz (the watches record at about 100 to 200 Hz). Every run of one
    activity is put on an even grid at that rate from its timestamps and resampled to 100 Hz.

    Args:
        path (`str` or `Path`): Folder containing `Activity recognition exp/Watch_accelerometer.csv`, or the
            `Activity recognition exp` folder itself.
        window_seconds, hop_seconds (`float`): Window length and step in seconds; 2 s and 1 s (50 % overlap) by
            default.
        clip_g (`float`, *optional*): Clip windows to plus or minus this many g.
        max_gap_seconds (`float`, *optional*): Longest gap filled by linear interpolation; defaults to a tenth of the
            window.
        time_column (`str`): "Creation_Time" (sensor event time in ns, the default) or "Arrival_Time" (time the
            app received the sample, in ms).

    Returns:
        [`EvaluationDataset`] with `label_names` ["bike", "sit", "stand", "walk", "stairsup", "stairsdown"], subjects
        "a" to "i", split "kfold-5" and `standardize_inputs=True`. Rows labelled "null" are removed.
    """
    options = WindowOptions(window_seconds, hop_seconds, clip_g, max_gap_seconds)
    if time_column not in HHAR_TIME_SCALES:
        raise ValueError(f"hhar: `time_column` must be one of {list(HHAR_TIME_SCALES)}, got {time_column!r}.")
    folder = _find_data_folder(
        path, "hhar", ("Activity recognition exp", "."), HHAR_FILE, f"Activity recognition exp/{HHAR_FILE}"
    )
    file = folder / HHAR_FILE
    try:
        frame = pd.read_csv(file, usecols=lambda name: name in HHAR_COLUMNS, low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ValueError(
            f"hhar: {file} could not be parsed as CSV with columns {', '.join(HHAR_COLUMNS)}: {error}"
        ) from error
    needed = [time_column, "x", "y", "z", "User", "Device", "gt"]
    missing_columns = [name for name in needed if name not in frame.columns]
    if missing_columns:
        raise ValueError(
            f"hhar: {file} lacks the columns {missing_columns}; expected the header {','.join(HHAR_COLUMNS)}."
        )

    collector = _WindowCollector(options, num_classes=len(HHAR_ACTIVITIES))
    collector.report["files_read"] = 1
    collector.report["sampling_rates"] = {}
    numbers = frame[[time_column, "x", "y", "z"]].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    corrupt = ~np.isfinite(numbers[:, 0]) | frame["User"].isna().to_numpy() | frame["Device"].isna().to_numpy()
    collector.report["corrupt_rows"] += int(corrupt.sum())
    activity_codes = {name: index for index, name in enumerate(HHAR_ACTIVITIES)}
    labels = frame["gt"].map(activity_codes).fillna(UNUSED_LABEL).to_numpy(dtype=np.int64)
    times = numbers[:, 0] * HHAR_TIME_SCALES[time_column]
    values = numbers[:, 1:4] / STANDARD_GRAVITY
    keep = np.flatnonzero(~corrupt)
    groups = frame.iloc[keep].groupby(["User", "Device"], sort=True).indices

    for (user, device), positions in groups.items():
        rows = keep[np.asarray(positions)]
        recording = f"{user}-{device}"
        rate = _device_rate(times[rows], recording)
        if rate is None:
            collector.add_bad_file(
                file,
                ValueError(
                    f"the {time_column} values of {recording} do not give a sampling rate between "
                    f"{HHAR_RATE_RANGE[0]:g} and {HHAR_RATE_RANGE[1]:g} Hz; try time_column='Arrival_Time'."
                ),
            )
            continue
        collector.report["sampling_rates"][recording] = rate
        collector.add_recording(
            values[rows], labels[rows], rate, subject=str(user), recording=recording, timestamps=times[rows]
        )

    return collector.build(
        "hhar",
        folder,
        description="Heterogeneity HAR, smartwatch accelerometer, 6 classes, 5 subject-wise folds",
        label_names=list(HHAR_ACTIVITIES),
        split="kfold-5",
        standardize_inputs=True,
        body_location="wrist",
        source="Heterogeneity Activity Recognition, UCI Machine Learning Repository (Stisen et al. 2015)",
    )


def _device_rate(timestamps: np.ndarray, recording: str) -> float | None:
    """Estimate a device's rate in whole Hz from the median step of its sorted, distinct timestamps."""
    steps = np.diff(np.unique(timestamps))
    if len(steps) == 0:
        return None
    rate = float(round(1.0 / float(np.median(steps))))
    if not HHAR_RATE_RANGE[0] <= rate <= HHAR_RATE_RANGE[1]:
        logger.error(f"hhar: {recording} has a median time step of {np.median(steps):.6g} s ({rate:g} Hz).")
        return None
    return rate


@register_dataset("motionsense")
def load_motionsense(
    path: str | Path,
    *,
    window_seconds: float = 2.0,
    hop_seconds: float = 1.0,
    clip_g: float | None = 3.0,
    max_gap_seconds: float | None = None,
) -> EvaluationDataset:
    """
    Load MotionSense device-motion data (iPhone in the front trouser pocket): 6 classes, 2 s windows, 5 folds.

    The acceleration is the total acceleration `gravity + userAcceleration` (both in g), sampled at 50 Hz and
    resampled to 100 Hz. Each file is one trial of one subject and one activity.

    Args:
        path (`str` or `Path`): Folder containing `A_DeviceMotion_data/<activity>_<trial>/sub_<n>.csv`, or the
            `A_DeviceMotion_data` folder itself.
        window_seconds, hop_seconds (`float`): Window length and step in seconds; 2 s and 1 s (50 % overlap) by
            default.
        clip_g (`float`, *optional*): Clip windows to plus or minus this many g.
        max_gap_seconds (`float`, *optional*): Longest run of missing samples filled by linear interpolation;
            defaults to a tenth of the window.

    Returns:
        [`EvaluationDataset`] with `label_names` ["downstairs", "upstairs", "walking", "jogging", "sitting",
        "standing"] (folder codes dws, ups, wlk, jog, sit, std), subjects "1" to "24", split "kfold-5" and
        `standardize_inputs=True`.
    """
    options = WindowOptions(window_seconds, hop_seconds, clip_g, max_gap_seconds)
    folder = _find_data_folder(
        path, "motionsense", ("A_DeviceMotion_data", "."), "*_*/sub_*.csv", "A_DeviceMotion_data/dws_1/sub_1.csv ..."
    )
    codes = {code: index for index, code in enumerate(MOTIONSENSE_ACTIVITIES)}
    collector = _WindowCollector(options, num_classes=len(MOTIONSENSE_ACTIVITIES))
    collector.report["skipped_folders"] = []
    for trial_folder in sorted(p for p in folder.iterdir() if p.is_dir()):
        trial = _MOTIONSENSE_TRIAL.match(trial_folder.name)
        if trial is None or trial.group(1) not in codes:
            collector.report["skipped_folders"].append(trial_folder.name)
            continue
        label = codes[trial.group(1)]
        for file in sorted(trial_folder.glob("sub_*.csv"), key=lambda p: (len(p.name), p.name)):
            subject = _MOTIONSENSE_SUBJECT.match(file.name)
            if subject is None:
                continue
            try:
                values, corrupt = _read_motionsense_file(file)
            except ValueError as error:
                collector.add_bad_file(file, error)
                continue
            collector.report["files_read"] += 1
            collector.report["corrupt_rows"] += corrupt
            collector.add_recording(
                values,
                np.full(len(values), label, dtype=np.int64),
                MOTIONSENSE_RATE,
                subject=subject.group(1),
                recording=f"{trial_folder.name}/{file.stem}",
            )

    return collector.build(
        "motionsense",
        folder,
        description="MotionSense, iPhone in the trouser pocket, total acceleration, 6 classes, 5 subject-wise folds",
        label_names=list(MOTIONSENSE_ACTIVITIES.values()),
        split="kfold-5",
        standardize_inputs=True,
        body_location="trouser pocket (phone)",
        source="MotionSense (Malekzadeh et al. 2019)",
    )


def _read_motionsense_file(file: Path) -> tuple[np.ndarray, int]:
    """
    Read the total acceleration in g of one MotionSense CSV file.

    Rows with a field that is not a number are kept as missing samples (NaN), so the time grid stays intact, and
    counted as corrupt.
    """
    try:
        frame = pd.read_csv(file, low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ValueError(f"{file} could not be parsed as CSV: {error}") from error
    needed = [*MOTIONSENSE_GRAVITY, *MOTIONSENSE_USER_ACCELERATION]
    missing_columns = [name for name in needed if name not in frame.columns]
    if missing_columns:
        raise ValueError(f"{file} lacks the columns {missing_columns}; expected the MotionSense device-motion header.")
    if frame.empty:
        raise ValueError(f"{file} contains no data rows.")
    numbers = frame[needed].apply(pd.to_numeric, errors="coerce")
    corrupt = (numbers.isna() & frame[needed].notna()).any(axis=1).to_numpy() | numbers.isna().any(axis=1).to_numpy()
    array = numbers.to_numpy(dtype=np.float64)
    return array[:, :3] + array[:, 3:], int(corrupt.sum())


__all__ = [
    "WindowOptions",
    "load_hhar",
    "load_motionsense",
    "load_opportunity",
    "load_pamap2_ankle",
    "load_pamap2_hand",
]
