# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Loaders for three labelled accelerometry sets in their public file layouts: WISDM 2019 smartwatch activities,
the scikit-digital-health wrist ambulation files, and the Mobilise-D (mobgap) laboratory walking bouts.

Every loader cuts windows with [`window_clean_recording`], the cleaning and windowing path of `relcon-hf prepare`:
acceleration in g, resampled to 100 Hz, windows that read non-finite samples, repeated blocks, out-of-range or
clipped values dropped and counted by reason. A file that cannot be read is logged, listed in
`report["files_failed"]` and skipped, and the other files still load.

Keys of `EvaluationDataset.report` shared by the three loaders:

- `files_found`, `files_read` (`int`): files matching the layout, and files read without error.
- `files_failed` (`dict[str, str]`): path of each skipped file and the error it raised.
- `windows` (`int`): windows in the dataset.
- `windows_dropped` (`dict[str, int]`): grid positions without a window, by reason (`windowing.DROP_REASONS`).
- `windows_kept_flagged` (`dict[str, int]`): flagged windows kept because their reason is in `keep_flagged`.

Each loader adds its own keys, listed in its docstring.
"""

import logging
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.io import loadmat
from scipy.io.matlab import MatReadError

from ..data.cleaning import find_repeated_blocks
from ..data.formats import WISDM_ACTIVITIES
from ..data.readers import Recording, detect_unit, read_recording
from ..data.windowing import DROP_REASONS, FLAG_REASONS, RecordingWindows, window_clean_recording
from ..modeling.feature_extraction_relcon import STANDARD_GRAVITY, RelConFeatureExtractor
from .datasets import EvaluationDataset, check_split, register_dataset


logger = logging.getLogger(__name__)

# Errors that mark one file as unreadable or malformed, so the loader skips it and loads the rest.
_FILE_ERRORS = (
    ValueError,
    KeyError,
    TypeError,
    IndexError,
    AttributeError,
    OSError,
    NotImplementedError,
    MatReadError,  # a damaged MATLAB file
)

# WISDM 2019: the six activity codes of the copy kept with the project, in the order of the dataset description.
WISDM_EVALUATION_ACTIVITIES = ("A", "B", "C", "D", "E", "M")
_WISDM_FILE = re.compile(r"^data_(?P<subject>[^_]+)_accel_watch\.txt$")
_WISDM_LAYOUT = "data_<subject>_accel_watch.txt files (WISDM 2019 'wisdm-dataset/raw/watch/accel' folder)"

# scikit-digital-health ambulation files: no label column, one class per file. scikit-digital-health's ambulation
# tests read test1 as walking (at least 85 % of 3 s epochs must be detected) and test2 as not walking.
SKDH_AMBULATION_LABELS = {"ambulation_test1": "walking", "ambulation_test2": "not walking"}
SKDH_AMBULATION_RATE = 20.0
_SKDH_LAYOUT = (
    "headerless ambulation_test*.csv files of x, y, z in g at 20 Hz, in the folder or in its context/data/ "
    "subfolder (scikit-digital-health test data)"
)

# Mobilise-D laboratory data as distributed with mobgap: data/lab/<cohort>/<participant>/data.mat.
MOBGAP_TARGETS = ("walking_speed", "stride_length", "cadence")
MOBGAP_TARGET_UNITS = ("m/s", "m", "steps/min")
# Bout-level fields of the reference walking bouts that contain the same targets, used where no stride value is known.
_MOBGAP_BOUT_FIELDS = ("WalkingSpeed", "AverageStrideLength", "Cadence")
_MOBGAP_LAYOUT = (
    "data/lab/<cohort>/<participant>/data.mat files (MATLAB v5, mobgap example data) under the folder, or "
    "<cohort>/<participant>/data.mat directly in it"
)


@register_dataset("wisdm")
def load_wisdm(
    path: str | os.PathLike,
    *,
    subjects: Iterable[str | int] | None = None,
    activities: Iterable[str] = WISDM_EVALUATION_ACTIVITIES,
    window_length: int = 256,
    hop_length: int | None = None,
    split: str = "kfold-5",
    standardize_inputs: bool = False,
    keep_flagged: Iterable[str] = (),
) -> EvaluationDataset:
    """
    Load WISDM 2019 smartwatch accelerometer files as activity windows.

    Each file `data_<subject>_accel_watch.txt` contains lines `subject,activity,x,y,z;` in m/s^2 at 20 Hz with
    no timestamps. Rows are converted to g, resampled to 100 Hz and windowed per activity run, so no window mixes
    two activities. Windows inside blocks that repeat an earlier block of at least 200 rows (some files contain
    whole copies of their data) are dropped and counted under `"repeated_block"`.

    Args:
        path (`str` or `os.PathLike`): Folder of the `data_<subject>_accel_watch.txt` files.
        subjects (`Iterable[str | int]`, *optional*): Subject ids to load, such as `[1600, 1601]`; all by default.
        activities (`Iterable[str]`): Activity codes to keep, by default A, B, C, D, E and M (walking, jogging,
            stairs, sitting, standing, kicking). Windows of other activities are counted and left out.
        window_length (`int`): Window length in samples at 100 Hz; 256 is 2.56 s.
        hop_length (`int`, *optional*): Step between window starts in samples at 100 Hz; defaults to
            `window_length` (no overlap).
        split (`str`): Subject-wise split, "kfold-<k>" or "loso".
        standardize_inputs (`bool`): Value of `EvaluationDataset.standardize_inputs`.
        keep_flagged (`Iterable[str]`): Reasons in `windowing.FLAG_REASONS` whose windows are kept.

    Returns:
        [`EvaluationDataset`] for classification, with `recordings` set to the file stem and `window_times` in
        seconds from the first row of the file. Extra `report` keys: `windows_other_activities` (windows of
        activities outside `activities`) and `windows_by_label`.

    Raises:
        `ValueError`: the folder is missing, contains no WISDM file, a requested subject or activity code is
            unknown, or no file could be read.
    """
    folder = _check_folder(path, "wisdm", _WISDM_LAYOUT)
    files = {}
    for file in sorted(folder.iterdir()):
        match = _WISDM_FILE.match(file.name)
        if match and file.is_file():
            files[match.group("subject")] = file
    if not files:
        raise ValueError(f"wisdm: no WISDM file found in {folder}. Expected {_WISDM_LAYOUT}.")
    files = _select_subjects(files, subjects, folder)

    codes = [str(code) for code in activities]
    unknown = [code for code in codes if code not in WISDM_ACTIVITIES]
    if unknown or not codes:
        raise ValueError(
            f"wisdm: `activities` must be WISDM 2019 activity codes among {', '.join(WISDM_ACTIVITIES)}, got "
            f"{codes!r}. Pass codes such as ['A', 'B'] for walking and jogging."
        )
    label_names = [WISDM_ACTIVITIES[code] for code in codes]
    extractor = RelConFeatureExtractor(window_length=window_length, hop_length=hop_length)
    collector = _WindowCollector(files_found=len(files))
    collector.report["windows_other_activities"] = 0

    for subject, file in files.items():
        try:
            recording = read_recording(file)
            if recording.subject_id != subject:
                raise ValueError(
                    f"the file name gives subject {subject} but its rows give subject {recording.subject_id}"
                )
            windowed = window_clean_recording(recording, extractor, keep_flagged=_keep_flagged(keep_flagged))
        except _FILE_ERRORS as error:
            collector.fail(file, error)
            continue

        assert windowed.labels is not None  # WISDM rows always carry an activity
        kept = np.isin(windowed.labels, label_names)
        collector.report["windows_other_activities"] += int((~kept).sum())
        collector.add(
            windowed,
            kept,
            subject=subject,
            recording=file.stem,
            labels=np.array([label_names.index(name) for name in windowed.labels[kept]], dtype=np.int64),
        )

    collector.check_any_read("wisdm", folder)
    return _warn_split(
        EvaluationDataset(
            name="wisdm",
            description="WISDM 2019 smartwatch accelerometer, dominant wrist, 20 Hz resampled to 100 Hz, "
            f"{len(label_names)} activities",
            task="classification",
            label_names=label_names,
            split=split,
            standardize_inputs=standardize_inputs,
            body_location="wrist",
            source="WISDM Smartphone and Smartwatch Activity and Biometrics Dataset (Weiss 2019), UCI, CC BY 4.0",
            **collector.arrays(label_names=label_names),
        )
    )


@register_dataset("skdh-ambulation")
def load_skdh_ambulation(
    path: str | os.PathLike,
    *,
    file_labels: Mapping[str, str] | None = None,
    sampling_rate: float = SKDH_AMBULATION_RATE,
    window_length: int = 256,
    hop_length: int | None = None,
    split: str = "loso",
    standardize_inputs: bool = False,
    keep_flagged: Iterable[str] = (),
) -> EvaluationDataset:
    """
    Load the scikit-digital-health wrist ambulation test files as walking / not-walking windows.

    The files `ambulation_test*.csv` have no header, no timestamps and no label column: three columns x, y, z in g
    at 20 Hz. Each file carries one class, taken from `file_labels` by file stem. By default test1 is walking
    (120 s) and test2 is not walking (60 s), the roles scikit-digital-health's own ambulation tests give them.
    Each file is taken as one subject, because the files name none.

    The set is tiny: about 69 windows of 2.56 s from two recordings, one per class. So every subject-wise split
    trains on a single class, and a classifier cannot be fit. Use it to check the loading and evaluation path, not
    to compare models.

    Args:
        path (`str` or `os.PathLike`): Folder of the `ambulation_test*.csv` files, or a scikit-digital-health test
            data folder with them in `context/data/`.
        file_labels (`Mapping[str, str]`, *optional*): Class name of each file stem; defaults to
            `SKDH_AMBULATION_LABELS`. Files matching the pattern without an entry are skipped and reported.
        sampling_rate (`float`): Rate of the files in Hz.
        window_length (`int`): Window length in samples at 100 Hz.
        hop_length (`int`, *optional*): Step between window starts at 100 Hz; defaults to `window_length`.
        split (`str`): Subject-wise split, "loso" or "kfold-<k>".
        standardize_inputs (`bool`): Value of `EvaluationDataset.standardize_inputs`.
        keep_flagged (`Iterable[str]`): Reasons in `windowing.FLAG_REASONS` whose windows are kept.

    Returns:
        [`EvaluationDataset`] for classification, with subjects and recordings set to the file stem and
        `window_times` in seconds from the first row. Extra `report` key: `windows_by_label`.

    Raises:
        `ValueError`: the folder is missing, contains no `ambulation_test*.csv` file, or no file could be read.
    """
    folder = _check_folder(path, "skdh-ambulation", _SKDH_LAYOUT)
    files = sorted(folder.glob("ambulation_test*.csv")) or sorted(folder.glob("context/data/ambulation_test*.csv"))
    if not files:
        raise ValueError(f"skdh-ambulation: no ambulation_test*.csv file found in {folder}. Expected {_SKDH_LAYOUT}.")
    file_labels = dict(SKDH_AMBULATION_LABELS if file_labels is None else file_labels)
    label_names = list(dict.fromkeys(file_labels.values()))
    extractor = RelConFeatureExtractor(window_length=window_length, hop_length=hop_length)
    collector = _WindowCollector(files_found=len(files))

    for file in files:
        try:
            if file.stem not in file_labels:
                raise ValueError(
                    f"{file.stem!r} is missing from `file_labels`, so its class is unknown. Add it there."
                )
            recording = read_recording(file, sampling_rate=sampling_rate, unit="g")
            windowed = window_clean_recording(recording, extractor, keep_flagged=_keep_flagged(keep_flagged))
        except _FILE_ERRORS as error:
            collector.fail(file, error)
            continue
        label = label_names.index(file_labels[file.stem])
        collector.add(
            windowed,
            np.ones(len(windowed), dtype=bool),
            subject=file.stem,
            recording=file.stem,
            labels=np.full(len(windowed), label, dtype=np.int64),
        )

    collector.check_any_read("skdh-ambulation", folder)
    arrays = collector.arrays(label_names=label_names)
    classes_per_subject = {
        subject: len(np.unique(arrays["labels"][arrays["subjects"] == subject]))
        for subject in np.unique(arrays["subjects"])
    }
    if max(classes_per_subject.values()) == 1:
        logger.warning(
            "skdh-ambulation: every subject (file) carries a single class, so each subject-wise training fold holds "
            "one class and no classifier can be fit. The dataset checks the loading path only."
        )
    return _warn_split(
        EvaluationDataset(
            name="skdh-ambulation",
            description="scikit-digital-health wrist ambulation test files, 20 Hz resampled to 100 Hz, walking "
            "vs not walking (tiny: one recording per class)",
            task="classification",
            label_names=label_names,
            split=split,
            standardize_inputs=standardize_inputs,
            body_location="wrist",
            source="scikit-digital-health test data (Pfizer), MIT",
            **arrays,
        )
    )


@register_dataset("mobgap-gait")
def load_mobgap_gait(
    path: str | os.PathLike,
    *,
    reference_system: str = "INDIP",
    reference_level: str = "MicroWB",
    window_length: int = 256,
    hop_length: int = 128,
    split: str = "loso",
    standardize_inputs: bool = False,
    keep_flagged: Iterable[str] = (),
) -> EvaluationDataset:
    """
    Load Mobilise-D laboratory recordings (mobgap example data) as gait windows with reference targets.

    Each `data.mat` holds, per time measure, test and trial, the lower-back IMU (`SU/LowerBack/Acc` in g at
    `Fs.Acc`, 100 Hz in the distributed files) and the reference walking bouts of `Standards/<reference_system>`.
    Windows are cut inside each reference bout only, from the bout's first sample every `hop_length` samples, and
    never run past the bout's last sample. The targets of a window are walking speed (m/s), stride length (m) and
    cadence (steps/min), each the mean over the reference strides whose interval (initial contact to initial
    contact) overlaps the window, skipping strides where that value is NaN. Stride cadence is 120 / stride duration,
    which is how the bout cadence of these files is computed. A window without a finite stride value takes the
    bout's own value of that target; a window still without a value is dropped.

    The sensor is on the lower back, not the wrist, so results on this set do not measure how a model does on
    wrist data.

    Args:
        path (`str` or `os.PathLike`): The mobgap example data folder (with `data/lab/`), or the `lab` folder.
        reference_system (`str`): Reference system under `Standards`, "INDIP" (inertial modules on the feet and
            lower back) by default.
        reference_level (`str`): Bout level, "MicroWB" (walking bouts) or "ContinuousWalkingPeriod".
        window_length (`int`): Window length in samples at 100 Hz; 256 is 2.56 s.
        hop_length (`int`): Step between window starts at 100 Hz; 128 is 1.28 s (half-overlapping windows).
        split (`str`): Subject-wise split, "loso" (three participants in the example data) or "kfold-<k>".
        standardize_inputs (`bool`): Value of `EvaluationDataset.standardize_inputs`.
        keep_flagged (`Iterable[str]`): Reasons in `windowing.FLAG_REASONS` whose windows are kept.

    Returns:
        [`EvaluationDataset`] for regression with subjects "<cohort>/<participant>", `recordings` naming the bout
        ("HA/001/TimeMeasure1/Test11/Trial1/bout-2") and `window_times` in seconds from the start of the trial.
        Extra `report` keys: `trials`, `trials_failed` (id and error of each malformed trial, skipped),
        `trials_without_reference`, `bouts`, `bouts_without_reference`,
        `bouts_shorter_than_window`, `windows_without_reference` and `targets_from_bout_average` (per target).

    Raises:
        `ValueError`: the folder is missing, contains no `data.mat` file, or no file could be read.
    """
    folder = _check_folder(path, "mobgap-gait", _MOBGAP_LAYOUT)
    files = sorted(folder.glob("data/lab/*/*/data.mat")) or sorted(folder.glob("*/*/data.mat"))
    if not files:
        raise ValueError(f"mobgap-gait: no data.mat file found in {folder}. Expected {_MOBGAP_LAYOUT}.")
    extractor = RelConFeatureExtractor(window_length=window_length, hop_length=hop_length)
    collector = _WindowCollector(files_found=len(files))
    for key in ("trials", "trials_without_reference", "bouts", "bouts_without_reference", "bouts_shorter_than_window"):
        collector.report[key] = 0
    collector.report["trials_failed"] = {}
    collector.report["windows_without_reference"] = 0
    collector.report["targets_from_bout_average"] = dict.fromkeys(MOBGAP_TARGETS, 0)

    for file in files:
        subject = f"{file.parent.parent.name}/{file.parent.name}"
        try:
            trials = _read_mobgap_trials(file)
        except _FILE_ERRORS as error:
            collector.fail(file, error)
            continue
        for trial_id, trial in trials:
            source = f"{file}:{trial_id}"
            try:
                _window_mobgap_trial(
                    trial,
                    f"{subject}/{trial_id}",
                    subject,
                    extractor,
                    collector,
                    reference_system=reference_system,
                    reference_level=reference_level,
                    keep_flagged=_keep_flagged(keep_flagged),
                )
            except _FILE_ERRORS as error:
                # A malformed trial is skipped alone. Its bouts are windowed only after all its fields were read.
                message = f"{type(error).__name__}: {error}"
                logger.error(f"Skipped trial {source}: {message}")
                collector.report["trials_failed"][source] = message

    collector.check_any_read("mobgap-gait", folder)
    return _warn_split(
        EvaluationDataset(
            name="mobgap-gait",
            description="Mobilise-D laboratory walking (mobgap example data), lower-back IMU at 100 Hz, "
            f"{reference_system} reference strides",
            task="regression",
            label_names=list(MOBGAP_TARGETS),
            target_units=list(MOBGAP_TARGET_UNITS),
            split=split,
            standardize_inputs=standardize_inputs,
            body_location="lower back",
            source="Mobilise-D example data distributed with mobgap, Apache-2.0",
            **collector.arrays(num_targets=len(MOBGAP_TARGETS)),
        )
    )


# ---------------------------------------------------------------------------------------------------------------------
# Mobilise-D trials and reference bouts


def _read_mobgap_trials(file: Path) -> list[tuple[str, dict]]:
    """Return `(id, trial)` for every trial in a mobgap `data.mat`, the id as "TimeMeasure1/Test5/Trial1"."""
    content = loadmat(file, simplify_cells=True)
    if "data" not in content or not isinstance(content["data"], dict):
        raise ValueError("the file has no struct named 'data' (time measure -> test -> trial)")
    trials = []
    for time_measure, tests in content["data"].items():
        for test, test_trials in tests.items():
            for trial, values in test_trials.items():
                trials.append((f"{time_measure}/{test}/{trial}", values))
    if not trials:
        raise ValueError("the 'data' struct contains no trial")
    return trials


@dataclass
class _ReferenceBout:
    """One reference walking bout: its span, bout-level targets and stride targets (see `_stride_targets`)."""

    start_seconds: float
    end_seconds: float
    averages: np.ndarray
    stride_times: np.ndarray
    stride_values: np.ndarray


def _window_mobgap_trial(
    trial: dict,
    trial_id: str,
    subject: str,
    extractor: RelConFeatureExtractor,
    collector: "_WindowCollector",
    *,
    reference_system: str,
    reference_level: str,
    keep_flagged: frozenset[str],
) -> None:
    """Cut windows inside the reference bouts of one trial and add them, with their targets, to `collector`."""
    # Every field is read before any window is added, so a malformed trial adds nothing.
    sensor = trial["SU"]["LowerBack"]
    sampling_rate = float(sensor["Fs"]["Acc"])
    acceleration = _acceleration_in_g(np.asarray(sensor["Acc"], dtype=np.float64))
    raw_bouts = _reference_bouts(trial, reference_system, reference_level)
    bouts = []
    if raw_bouts is not None:
        reference_rate = float(trial["Standards"][reference_system].get("Fs", sampling_rate))
        for fields in raw_bouts:
            stride_times, stride_values = _stride_targets(fields, reference_rate)
            averages = np.array([float(fields[name]) for name in _MOBGAP_BOUT_FIELDS])
            bouts.append(
                _ReferenceBout(float(fields["Start"]), float(fields["End"]), averages, stride_times, stride_values)
            )

    report = collector.report
    report["trials"] += 1
    if raw_bouts is None:
        report["trials_without_reference"] += 1
        return
    window_seconds = extractor.window_length / extractor.sampling_rate
    for index, bout in enumerate(bouts):
        report["bouts"] += 1
        if not np.isfinite(bout.averages).any() and not np.isfinite(bout.stride_values).any():
            report["bouts_without_reference"] += 1
            continue

        # The bout spans its first to its last initial contact, both included.
        first_row = max(0, round(bout.start_seconds * sampling_rate))
        stop_row = min(len(acceleration), round(bout.end_seconds * sampling_rate) + 1)
        if (stop_row - first_row) / sampling_rate < window_seconds:
            report["bouts_shorter_than_window"] += 1
            continue
        recording = _recording_from_array(acceleration[first_row:stop_row], sampling_rate, f"{trial_id}/bout-{index}")
        windowed = window_clean_recording(recording, extractor, keep_flagged=keep_flagged)
        windowed.window_start = windowed.window_start + first_row / sampling_rate

        targets = _window_targets(bout, windowed.window_start, window_seconds, report["targets_from_bout_average"])
        complete = np.isfinite(targets).all(axis=1)
        report["windows_without_reference"] += int((~complete).sum())
        collector.add(
            windowed, complete, subject=subject, recording=f"{trial_id}/bout-{index}", targets=targets[complete]
        )


def _window_targets(
    bout: _ReferenceBout, window_start: np.ndarray, window_seconds: float, from_average: dict[str, int]
) -> np.ndarray:
    """
    Average the stride targets of the strides overlapping each window, falling back to the bout's values.

    Returns:
        `np.ndarray` of shape `(num_windows, 3)`, NaN where neither a stride nor the bout has a value. Targets taken
        from the bout are counted in `from_average`, by target name.
    """
    targets = np.full((len(window_start), len(MOBGAP_TARGETS)), np.nan)
    for position, start in enumerate(window_start):
        overlapping = (bout.stride_times[:, 0] < start + window_seconds) & (bout.stride_times[:, 1] > start)
        for column, name in enumerate(MOBGAP_TARGETS):
            values = bout.stride_values[overlapping, column]
            values = values[np.isfinite(values)]
            if len(values):
                targets[position, column] = values.mean()
            elif np.isfinite(bout.averages[column]):
                targets[position, column] = bout.averages[column]
                from_average[name] += 1
    return targets


def _reference_bouts(trial: dict, reference_system: str, reference_level: str) -> list[dict] | None:
    """Return the trial's reference bouts at `reference_level`, or `None` when the trial has none."""
    standards = trial.get("Standards")
    if not isinstance(standards, dict) or not isinstance(standards.get(reference_system), dict):
        return None
    bouts = standards[reference_system].get(reference_level)
    # loadmat with `simplify_cells` gives a dict for one bout, a list for several, an empty array for none.
    if isinstance(bouts, dict):
        return [bouts]
    if isinstance(bouts, list) and bouts:
        return bouts
    return None


def _stride_targets(bout: dict, reference_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """
    Return the stride intervals and per-stride targets of one reference bout.

    Returns:
        `(times, values)`: `times` of shape `(num_strides, 2)`, the first and last initial contact of each stride in
        seconds from the start of the trial, and `values` of shape `(num_strides, 3)`: speed (m/s), length (m) and
        cadence (steps/min). Strides whose initial contacts are not finite are left out.
    """
    contacts = np.asarray(bout["Stride_InitialContacts"], dtype=np.float64).reshape(-1, 2) / reference_rate
    duration = np.atleast_1d(np.asarray(bout["Stride_Duration"], dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        cadence = np.where(duration > 0, 120.0 / duration, np.nan)
    values = np.column_stack(
        [
            np.atleast_1d(np.asarray(bout["Stride_Speed"], dtype=np.float64)),
            np.atleast_1d(np.asarray(bout["Stride_Length"], dtype=np.float64)),
            cadence,
        ]
    )
    if len(values) != len(contacts):
        raise ValueError(
            f"a reference bout lists {len(contacts)} strides in Stride_InitialContacts but {len(values)} stride values"
        )
    placed = np.isfinite(contacts).all(axis=1)
    return contacts[placed], values[placed]


def _acceleration_in_g(values: np.ndarray) -> np.ndarray:
    """Check a trial's acceleration of shape `(time, 3)` and return it in g, detecting the unit from its magnitude."""
    if values.ndim != 2 or values.shape[1] != 3:
        raise ValueError(f"the acceleration must have shape (time, 3), got {values.shape}")
    finite = np.isfinite(values).all(axis=1)
    if not finite.any():
        raise ValueError("the acceleration has no finite row")
    median_magnitude = float(np.median(np.linalg.norm(values[finite], axis=1)))
    unit = detect_unit(median_magnitude)
    if unit is None:
        raise ValueError(
            f"the median acceleration magnitude is {median_magnitude:.3g}, neither about 1 (g) nor about "
            "9.81 (m/s^2), so the unit cannot be told"
        )
    return values / STANDARD_GRAVITY if unit == "m/s^2" else values


def _recording_from_array(values: np.ndarray, sampling_rate: float, source: str) -> Recording:
    """Wrap acceleration in g of shape `(time, 3)` as a [`Recording`] without timestamps, for the cleaning path."""
    finite = np.isfinite(values).all(axis=1)
    return Recording(
        values=np.ascontiguousarray(values[finite]),
        sampling_rate=sampling_rate,
        unit="g",
        unit_detected=False,
        start_time=None,
        source=source,
        columns=None,
        time_column=None,
        rate_inferred=False,
        non_finite_rows=np.flatnonzero(~finite).astype(np.int64),
        median_magnitude=float(np.median(np.linalg.norm(values[finite], axis=1))) if finite.any() else math.nan,
        format="mat",
        repeated_rows=find_repeated_blocks(values),
    )


# ---------------------------------------------------------------------------------------------------------------------
# Shared steps


def _check_folder(path: str | os.PathLike, name: str, layout: str) -> Path:
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"{name}: the dataset path {folder} is not a folder. Pass the folder of {layout}.")
    return folder


def _select_subjects(files: dict[str, Path], subjects: Iterable[str | int] | None, folder: Path) -> dict[str, Path]:
    """Keep the files of the requested subjects, raising `ValueError` for a subject without a file."""
    if subjects is None:
        return files
    requested = [str(subject) for subject in subjects]
    missing = [subject for subject in requested if subject not in files]
    if missing or not requested:
        raise ValueError(
            f"wisdm: `subjects` must name subjects with a file in {folder}, got {requested!r}, but there is no "
            f"file for {missing}. Available: {', '.join(files)}."
        )
    return {subject: files[subject] for subject in dict.fromkeys(requested)}


def _keep_flagged(reasons: Iterable[str]) -> frozenset[str]:
    reasons = frozenset(reasons)
    unknown = sorted(reasons - set(FLAG_REASONS))
    if unknown:
        raise ValueError(f"`keep_flagged` must contain reasons among {', '.join(FLAG_REASONS)}, got {unknown}.")
    return reasons


def _warn_split(dataset: EvaluationDataset) -> EvaluationDataset:
    """Log a warning when the split needs more subjects than the dataset has, and return the dataset."""
    folds = check_split(dataset.split)
    needed = 2 if folds is None else folds
    if dataset.num_subjects < needed:
        logger.warning(
            f"{dataset.name}: split {dataset.split!r} needs at least {needed} subjects but the dataset has "
            f"{dataset.num_subjects}. Load more subjects or pass another `split`."
        )
    return dataset


class _WindowCollector:
    """Windows, their metadata and the report of one loader, gathered file by file."""

    def __init__(self, files_found: int):
        self.windows: list[np.ndarray] = []
        self.subjects: list[np.ndarray] = []
        self.window_times: list[np.ndarray] = []
        self.recordings: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.targets: list[np.ndarray] = []
        self.report: dict = {
            "files_found": files_found,
            "files_read": 0,
            "files_failed": {},
            "windows": 0,
            "windows_dropped": dict.fromkeys(DROP_REASONS, 0),
            "windows_kept_flagged": {},
        }

    def add(
        self,
        windowed: RecordingWindows,
        keep: np.ndarray,
        *,
        subject: str,
        recording: str,
        labels: np.ndarray | None = None,
        targets: np.ndarray | None = None,
    ) -> None:
        """Add the kept windows of one recording, and count the windows the cleaning dropped or kept flagged."""
        for reason, count in windowed.dropped.items():
            self.report["windows_dropped"][reason] += count
        for reason, count in windowed.kept_flagged.items():
            kept_flagged = self.report["windows_kept_flagged"]
            kept_flagged[reason] = kept_flagged.get(reason, 0) + count
        num_kept = int(keep.sum())
        self.windows.append(windowed.windows[keep])
        self.subjects.append(np.full(num_kept, subject, dtype=object))
        self.window_times.append(windowed.window_start[keep])
        self.recordings.append(np.full(num_kept, recording, dtype=object))
        if labels is not None:
            self.labels.append(labels)
        if targets is not None:
            self.targets.append(targets)

    def fail(self, file: Path, error: Exception) -> None:
        """Record a file that could not be read."""
        message = f"{type(error).__name__}: {error}"
        logger.error(f"Skipped {file}: {message}")
        self.report["files_failed"][str(file)] = message

    def check_any_read(self, name: str, folder: Path) -> None:
        """Count the files read, and raise `ValueError` when every file failed."""
        self.report["files_read"] = self.report["files_found"] - len(self.report["files_failed"])
        if self.report["files_read"] == 0:
            details = "; ".join(f"{file}: {error}" for file, error in self.report["files_failed"].items())
            raise ValueError(
                f"{name}: none of the {self.report['files_found']} files in {folder} could be read ({details})."
            )

    def arrays(self, *, label_names: list[str] | None = None, num_targets: int = 0) -> dict:
        """Return the `EvaluationDataset` arrays, and finish the report with the window counts."""
        window_length = self.windows[0].shape[1] if self.windows else 0
        arrays: dict = {
            "windows": np.concatenate(self.windows) if self.windows else np.zeros((0, window_length, 3)),
            "subjects": np.concatenate(self.subjects).astype(str) if self.subjects else np.zeros(0, dtype=str),
            "window_times": np.concatenate(self.window_times) if self.window_times else np.zeros(0),
            "recordings": np.concatenate(self.recordings).astype(str) if self.recordings else np.zeros(0, dtype=str),
            "report": self.report,
        }
        if label_names is not None:
            labels = np.concatenate(self.labels) if self.labels else np.zeros(0, dtype=np.int64)
            arrays["labels"] = labels
            counts = np.bincount(labels, minlength=len(label_names))
            self.report["windows_by_label"] = {
                name: int(count) for name, count in zip(label_names, counts, strict=True)
            }
        if num_targets:
            arrays["targets"] = np.concatenate(self.targets) if self.targets else np.zeros((0, num_targets))
        self.report["windows"] = len(arrays["windows"])
        return arrays
