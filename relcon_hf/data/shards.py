# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Parquet shards of candidate groups, and the `prepare` steps that write them.

RelCon (Xu et al., ICLR 2025) draws the within-subject candidates of an anchor window from other windows of the same
subject and the same hour. One shard row is one such candidate group: its subject, group id, start time and windows
of shape `(num_windows, window_length, 3)` in g at 100 Hz. A folder of shards looks like:

    output_dir/
        manifest.json                     settings, subject split, files and counts per input
        train/shard-00000.parquet         one row group per candidate group
        validation/shard-00000.parquet

`prepare_watch` writes the seglearn smartwatch corpus; `prepare_recordings` writes the user's own CSV, Parquet and
NumPy recordings. The schema is `shard_features(window_length)`, stored in each file's Arrow schema metadata, so
`datasets.load_dataset("parquet", ...)` reads the columns back with their features.
"""

import hashlib
import json
import logging
import os
import shutil
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone as dt_timezone
from pathlib import Path

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Array3D, Features, List, Value

from ..modeling.feature_extraction_relcon import RelConFeatureExtractor
from .cleaning import DEFAULT_MAX_GAP_SECONDS
from .formats import detect_format
from .readers import DEFAULT_CHUNK_ROWS, Recording, check_timezone, iter_recording_chunks, recording_stem
from .watch import WatchCorpus, find_watch_file, load_watch_corpus
from .windowing import FLAG_REASONS, RecordingWindows, window_clean_recording, window_recording


logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
# Folder of per-input results while `prepare_recordings` runs; removed once the manifest is written.
INPUT_CACHE_NAME = ".inputs"
SPLITS = ("train", "validation")
MODEL_SAMPLING_RATE = 100.0
DEFAULT_TARGET_SHARD_BYTES = 64 * 2**20
UNLABELLED = -1
# Errors that mean "this input file cannot be used". `prepare_recordings` reports them and goes on with the others.
_INPUT_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def shard_features(window_length: int, num_channels: int = 3) -> Features:
    """
    Build the features (schema) of a shard row, one candidate group.

    Args:
        window_length (`int`):
            Samples per window at 100 Hz.
        num_channels (`int`, *optional*, defaults to 3):
            Acceleration axes.

    Returns:
        `datasets.Features` with the columns:

        - `subject_id`, `group_id`: strings.
        - `start_time`: timestamp[ms, UTC], null where unknown.
        - `sampling_rate`: float32, Hz.
        - `windows`: float32 of shape `(num_windows, window_length, num_channels)`, in g.
        - `window_start`: float64 per window, in seconds from `start_time`. Where `start_time` is null, it counts from
          the start of the window's source recording.
        - `labels`: int64 per window, -1 where unlabelled.
        - `recording_id`: string per window.
    """
    return Features(
        {
            "subject_id": Value("string"),
            "group_id": Value("string"),
            "start_time": Value("timestamp[ms, tz=UTC]"),
            "sampling_rate": Value("float32"),
            "windows": Array3D(shape=(None, window_length, num_channels), dtype="float32"),
            "window_start": List(Value("float64")),
            "labels": List(Value("int64")),
            "recording_id": List(Value("string")),
        }
    )


@dataclass
class CandidateGroup:
    """
    One shard row: the windows from which an anchor's within-subject candidates are drawn.

    Args:
        subject_id (`str`): Subject of every window.
        group_id (`str`): Unique id of the group across the whole shard folder.
        start_time (`datetime.datetime`, *optional*): UTC time that `window_start` counts from; `None` if unknown.
        windows (`np.ndarray` of shape `(num_windows, window_length, 3)`, float32): Acceleration in g at 100 Hz.
        window_start (`np.ndarray` of shape `(num_windows,)`, float64): Start of each window in seconds.
        labels (`np.ndarray` of shape `(num_windows,)`, int64): Label of each window, -1 where unlabelled.
        recording_ids (`list[str]`): Source recording of each window.
    """

    subject_id: str
    group_id: str
    start_time: datetime | None
    windows: np.ndarray
    window_start: np.ndarray
    labels: np.ndarray
    recording_ids: list[str]

    def __len__(self) -> int:
        return len(self.windows)


class ShardWriter:
    """
    Write the candidate groups of one split to `{split}/shard-00000.parquet`, `shard-00001.parquet`, ...

    Each group is one row and one Parquet row group. A new file starts when the next group would take the current
    one past `target_shard_bytes` of uncompressed window data. A single larger group gets a file of its own.

    Args:
        output_dir (`str` or `os.PathLike`): Shard folder; the split's subfolder is created.
        split (`str`): Split name, used as the subfolder.
        features (`datasets.Features`): Schema from [`shard_features`].
        target_shard_bytes (`int`, *optional*, defaults to 64 MiB): Size at which files roll over.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        split: str,
        features: Features,
        target_shard_bytes: int = DEFAULT_TARGET_SHARD_BYTES,
    ):
        if target_shard_bytes <= 0:
            raise ValueError(f"`target_shard_bytes` must be positive, got {target_shard_bytes}.")
        self.output_dir = Path(output_dir)
        self.split = split
        self.schema = features.arrow_schema
        self.target_shard_bytes = target_shard_bytes
        self.files: list[str] = []
        self.num_groups = 0
        self.num_windows = 0
        self._writer: pq.ParquetWriter | None = None
        self._file_bytes = 0

    def write(self, group: CandidateGroup) -> None:
        """Append one group as a row, rolling over to a new file first when this one is full."""
        group_bytes = group.windows.nbytes
        if self._writer is not None and self._file_bytes + group_bytes > self.target_shard_bytes:
            self._close_file()
        if self._writer is None:
            self._open_file()
        assert self._writer is not None  # opened just above
        self._writer.write_table(_group_table(group, self.schema))
        self._file_bytes += group_bytes
        self.num_groups += 1
        self.num_windows += len(group)

    def close(self) -> list[str]:
        """Finish the open file and return the written files, relative to `output_dir`."""
        self._close_file()
        return list(self.files)

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._close_file()

    def _open_file(self) -> None:
        relative = f"{self.split}/shard-{len(self.files):05d}.parquet"
        (self.output_dir / self.split).mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(self.output_dir / relative, self.schema)
        self.files.append(relative)
        self._file_bytes = 0

    def _close_file(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _group_table(group: CandidateGroup, schema: pa.Schema) -> pa.Table:
    """Build a one-row Arrow table of `schema` from a group."""
    num_windows, window_length, num_channels = group.windows.shape
    windows_type = schema.field("windows").type
    # Array3D is stored as list<list<list<float>>>. Build it from offsets over the flat values, without Python loops.
    flat = pa.array(np.ascontiguousarray(group.windows, dtype=np.float32).reshape(-1))
    samples = pa.ListArray.from_arrays(_offsets(num_windows * window_length, num_channels), flat)
    windows = pa.ListArray.from_arrays(_offsets(num_windows, window_length), samples)
    rows = pa.ListArray.from_arrays(pa.array(np.array([0, num_windows], dtype=np.int32)), windows)

    columns = {
        "subject_id": pa.array([group.subject_id], type=pa.string()),
        "group_id": pa.array([group.group_id], type=pa.string()),
        "start_time": pa.array([group.start_time], type=schema.field("start_time").type),
        "sampling_rate": pa.array([MODEL_SAMPLING_RATE], type=pa.float32()),
        "windows": pa.ExtensionArray.from_storage(windows_type, rows),
        "window_start": pa.array([group.window_start.astype(np.float64)], type=schema.field("window_start").type),
        "labels": pa.array([group.labels.astype(np.int64)], type=schema.field("labels").type),
        "recording_id": pa.array([list(group.recording_ids)], type=schema.field("recording_id").type),
    }
    return pa.Table.from_arrays([columns[name] for name in schema.names], schema=schema)


def _offsets(count: int, size: int) -> pa.Array:
    return pa.array(np.arange(0, (count + 1) * size, size, dtype=np.int32))


# ---------------------------------------------------------------------------------------------------------------------
# Subject split and manifest


def split_subjects(
    subject_ids: Sequence[str], validation_fraction: float = 0.2, seed: int = 0
) -> tuple[list[str], list[str]]:
    """
    Split subjects into training and validation subjects, deterministically for a seed.

    The same as [`assign_subject_splits`] without a test split.

    Args:
        subject_ids (`Sequence[str]`): Subject ids, repeats allowed.
        validation_fraction (`float`, *optional*, defaults to 0.2): Share of subjects for validation, in [0, 1).
        seed (`int`, *optional*, defaults to 0): Seed of the permutation.

    Returns:
        `(train_subjects, validation_subjects)`, each sorted.
    """
    splits = assign_subject_splits(subject_ids, validation_fraction=validation_fraction, seed=seed)
    return splits["train"], splits["validation"]


def assign_subject_splits(
    subject_ids: Sequence[str], *, validation_fraction: float = 0.2, test_fraction: float = 0.0, seed: int = 0
) -> dict[str, list[str]]:
    """
    Split subjects into training, validation and test subjects, deterministically for a seed.

    The unique ids are sorted and permuted with `numpy.random.default_rng(seed)`. The first
    `round(test_fraction * num_subjects)` go to test, the next `round(validation_fraction * num_subjects)` to
    validation, the rest to training. Each split with a positive fraction gets at least one subject and training
    keeps at least one. With too few subjects for that, validation gets fewer subjects before test does.

    Args:
        subject_ids (`Sequence[str]`): Subject ids, repeats allowed.
        validation_fraction (`float`, *optional*, defaults to 0.2): Share of subjects for validation.
        test_fraction (`float`, *optional*, defaults to 0.0): Share of subjects for test.
        seed (`int`, *optional*, defaults to 0): Seed of the permutation.

    Returns:
        `dict` with `"train"`, `"validation"` and `"test"` lists of subject ids, each sorted.
    """
    for name, fraction in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"`{name}` must be in [0, 1), got {fraction}. Pass a share of subjects such as 0.2.")
    if validation_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"`validation_fraction` + `test_fraction` must be below 1 to leave training subjects, got "
            f"{validation_fraction} + {test_fraction}."
        )
    unique = sorted({str(subject) for subject in subject_ids})
    order = np.random.default_rng(seed).permutation(len(unique))

    def count(fraction: float, available: int) -> int:
        if fraction <= 0 or available < 1:
            return 0
        return min(max(round(fraction * len(unique)), 1), available)

    num_test = count(test_fraction, len(unique) - 1)
    num_validation = count(validation_fraction, len(unique) - 1 - num_test)
    test = sorted(unique[index] for index in order[:num_test])
    validation = sorted(unique[index] for index in order[num_test : num_test + num_validation])
    train = sorted(unique[index] for index in order[num_test + num_validation :])
    return {"train": train, "validation": validation, "test": test}


def read_manifest(shard_dir: str | os.PathLike) -> dict:
    """
    Read `manifest.json` of a shard folder (a local path or an fsspec URL).

    Args:
        shard_dir (`str` or `os.PathLike`): Folder written by [`prepare_watch`] or [`prepare_recordings`].

    Returns:
        `dict` with the manifest fields (see the data documentation).

    Raises:
        FileNotFoundError: the folder has no manifest, so it is not a complete shard folder.
    """
    location = f"{str(shard_dir).rstrip('/')}/{MANIFEST_NAME}"
    try:
        with fsspec.open(location, "r", encoding="utf-8") as file:
            manifest = json.load(file)
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"No {MANIFEST_NAME} in {shard_dir}: it is not a complete shard folder. Write one with "
            "`relcon-hf prepare` (prepare_watch or prepare_recordings)."
        ) from error
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{location} has format_version {manifest.get('format_version')!r}, but this relcon_hf reads version "
            f"{FORMAT_VERSION}. Prepare the shards again with this version."
        )
    return manifest


def _json_normalized(value: object) -> object:
    """Return `value` as it reads back from JSON (tuples become lists), so settings compare equal."""
    return json.loads(json.dumps(value))


def _reusable_manifest(output_dir: Path, settings: dict, overwrite: bool) -> dict | None:
    """Return the manifest of an earlier run with the same settings, or None. Raise if other shards are in the way."""
    manifest_path = output_dir / MANIFEST_NAME
    previous_output = (
        manifest_path.exists()
        or any((output_dir / split).exists() for split in (*SPLITS, "test"))
        or (output_dir / INPUT_CACHE_NAME).exists()
    )
    if overwrite or not previous_output:
        return None

    if manifest_path.exists():
        manifest = read_manifest(output_dir)
        files = [file for split in manifest["splits"].values() for file in split["files"]]
        complete = all((output_dir / file).is_file() for file in files)
        if manifest.get("settings") == _json_normalized(settings) and complete:
            logger.info(f"Reusing the shards in {output_dir}: {MANIFEST_NAME} lists the same settings.")
            return manifest
        if complete:
            previous = manifest.get("settings") or {}
            current = _json_normalized(settings)
            assert isinstance(current, dict)
            changed = sorted(key for key in set(previous) | set(current) if previous.get(key) != current.get(key))
            reason = f"were written with other settings (differing: {', '.join(changed)})"
        else:
            reason = "are incomplete (shard files are missing)"
    else:
        cached_settings = output_dir / INPUT_CACHE_NAME / "settings.json"
        if cached_settings.is_file() and json.loads(cached_settings.read_text()) == _json_normalized(settings):
            logger.info(f"Resuming the interrupted run in {output_dir}: it has the same settings.")
            return None
        reason = f"have no {MANIFEST_NAME} (an interrupted run with other settings?)"
    raise ValueError(
        f"The shards in {output_dir} {reason}. Pass overwrite=True (--overwrite) to replace them, or choose "
        "another output folder."
    )


def _remove_previous_output(output_dir: Path) -> None:
    """Delete the manifest and shard files of an earlier run, leaving any other file in place."""
    (output_dir / MANIFEST_NAME).unlink(missing_ok=True)
    for split in (*SPLITS, "test"):
        split_dir = output_dir / split
        for file in split_dir.glob("shard-*.parquet"):
            file.unlink()
        if split_dir.is_dir() and not any(split_dir.iterdir()):
            split_dir.rmdir()


def _write_manifest(output_dir: Path, manifest: dict) -> None:
    # Written last and renamed into place, so a manifest on disk always describes complete shards.
    temporary = output_dir / f".{MANIFEST_NAME}.tmp"
    temporary.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, output_dir / MANIFEST_NAME)


def _write_splits(
    output_dir: Path,
    groups: Iterable[CandidateGroup],
    validation_subjects: list[str],
    features: Features,
    target_shard_bytes: int,
    test_subjects: Sequence[str] = (),
) -> dict:
    """
    Write groups, as they arrive, to the train, validation or test shards of their subject.

    Returns the manifest's `splits` entry (with a `test` split only when there are test subjects). Only one group
    at a time is held here, so the caller bounds the memory.
    """
    validation, test = set(validation_subjects), set(test_subjects)
    names = SPLITS + (("test",) if test else ())
    writers = {split: ShardWriter(output_dir, split, features, target_shard_bytes) for split in names}
    subjects: dict[str, set[str]] = {split: set() for split in names}
    try:
        for group in groups:
            split = _split_of(group.subject_id, validation, test)
            writers[split].write(group)
            subjects[split].add(group.subject_id)
    finally:
        files = {split: writer.close() for split, writer in writers.items()}

    splits = {}
    for split, writer in writers.items():
        splits[split] = {
            "subjects": sorted(subjects[split]),
            "files": files[split],
            "num_groups": writer.num_groups,
            "num_windows": writer.num_windows,
        }
        logger.info(
            f"Wrote {writer.num_windows} windows in {writer.num_groups} groups of {len(subjects[split])} subjects to "
            f"{len(files[split])} {split} shards in {output_dir / split}."
        )
    return splits


def _split_of(subject: str, validation: set[str], test: set[str]) -> str:
    """Return the split name of a subject."""
    if subject in test:
        return "test"
    if subject in validation:
        return "validation"
    return "train"


def _base_manifest(source: str, settings: dict, label_names: list[str] | None) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "source": source,
        "window_length": settings["window_length"],
        "hop_length": settings["hop_length"],
        "sampling_rate": MODEL_SAMPLING_RATE,
        "num_channels": 3,
        "label_names": label_names,
        "seed": settings["seed"],
        "validation_fraction": settings["validation_fraction"],
        "settings": _json_normalized(settings),
    }


def _check_prepare_arguments(
    window_length: int, hop_length: int, target_shard_bytes: int, validation_fraction: float
) -> None:
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"`validation_fraction` must be in [0, 1), got {validation_fraction!r}.")
    for name, value in (
        ("window_length", window_length),
        ("hop_length", hop_length),
        ("target_shard_bytes", target_shard_bytes),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")


# ---------------------------------------------------------------------------------------------------------------------
# The seglearn watch corpus


def prepare_watch(
    output_dir: str | os.PathLike,
    *,
    window_length: int = 256,
    hop_length: int = 128,
    validation_fraction: float = 0.2,
    seed: int = 0,
    watch_path: str | os.PathLike | None = None,
    overwrite: bool = False,
    target_shard_bytes: int = DEFAULT_TARGET_SHARD_BYTES,
) -> dict:
    """
    Write the seglearn smartwatch exercise corpus as shards.

    Each recording is resampled from 50 Hz to 100 Hz and cut into windows of `window_length` samples every
    `hop_length` samples (tails shorter than a window are dropped). Every window carries its recording's exercise
    label. The corpus has no clock, and each subject's 14 recordings come from one session, so each subject is one
    candidate group. Subjects are split into training and validation with [`split_subjects`].

    Args:
        output_dir (`str` or `os.PathLike`): Shard folder to write.
        window_length (`int`, *optional*, defaults to 256): Window length in samples at 100 Hz.
        hop_length (`int`, *optional*, defaults to 128): Step between window starts in samples at 100 Hz.
        validation_fraction (`float`, *optional*, defaults to 0.2): Share of subjects for validation.
        seed (`int`, *optional*, defaults to 0): Seed of the subject split.
        watch_path (`str` or `os.PathLike`, *optional*): Location of `watch_dataset.npy`; found automatically.
        overwrite (`bool`, *optional*, defaults to `False`): Replace shards of an earlier run in `output_dir`.
        target_shard_bytes (`int`, *optional*, defaults to 64 MiB): Size at which shard files roll over.

    Returns:
        `dict`: the manifest, also written to `output_dir/manifest.json`. An existing manifest with the same
        settings is returned without writing anything.
    """
    _check_prepare_arguments(window_length, hop_length, target_shard_bytes, validation_fraction)
    output_dir = Path(output_dir)
    watch_file = find_watch_file(watch_path)
    settings = {
        "source": "seglearn-watch",
        "watch_file": {"path": str(watch_file), "size": watch_file.stat().st_size},
        "window_length": window_length,
        "hop_length": hop_length,
        "validation_fraction": validation_fraction,
        "seed": seed,
        "target_shard_bytes": target_shard_bytes,
    }
    previous = _reusable_manifest(output_dir, settings, overwrite)
    if previous is not None:
        return previous

    corpus = load_watch_corpus(watch_file)
    extractor = RelConFeatureExtractor(
        sampling_rate=int(MODEL_SAMPLING_RATE), window_length=window_length, hop_length=hop_length
    )
    groups, inputs = _watch_groups(corpus, extractor)
    _, validation_subjects = split_subjects(corpus.subject_ids, validation_fraction, seed)
    for entry in inputs.values():
        entry["split"] = "validation" if entry["subject_id"] in validation_subjects else "train"

    _remove_previous_output(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    manifest = _base_manifest("seglearn-watch", settings, corpus.label_names)
    manifest["splits"] = _write_splits(
        output_dir, groups, validation_subjects, shard_features(window_length), target_shard_bytes
    )
    manifest["inputs"] = inputs
    manifest["failed_inputs"] = []
    _write_manifest(output_dir, manifest)

    return manifest


def _watch_groups(corpus: WatchCorpus, extractor: RelConFeatureExtractor) -> tuple[list[CandidateGroup], dict]:
    """Cut the corpus into windows and gather them into one group per subject."""
    parts: dict[str, list[tuple[str, int, RecordingWindows]]] = {}
    inputs = {}
    for index, (recording, label, subject) in enumerate(
        zip(corpus.recordings, corpus.labels, corpus.subject_ids, strict=True)
    ):
        recording_id = f"{subject}/recording-{index:03d}"
        windowed = window_recording(recording, corpus.sampling_rate, extractor)
        parts.setdefault(subject, []).append((recording_id, int(label), windowed))
        inputs[recording_id] = {
            "subject_id": subject,
            "label": int(label),
            "windows_written": len(windowed),
            "windows_dropped": windowed.dropped,
            "duration_seconds": len(recording) / corpus.sampling_rate,
            "sampling_rate_in": corpus.sampling_rate,
            "unit_in": "g",
        }

    # One subject is one session without a clock, so it is one group. Its start_time is null, and window_start
    # counts from the start of each window's own recording.
    groups = []
    for subject in sorted(parts):
        pieces = parts[subject]
        groups.append(
            CandidateGroup(
                subject_id=subject,
                group_id=f"{subject}/session",
                start_time=None,
                windows=np.concatenate([windowed.windows for _, _, windowed in pieces]),
                window_start=np.concatenate([windowed.window_start for _, _, windowed in pieces]),
                labels=np.concatenate(
                    [np.full(len(windowed), label, dtype=np.int64) for _, label, windowed in pieces]
                ),
                recording_ids=[recording_id for recording_id, _, windowed in pieces for _ in range(len(windowed))],
            )
        )
    return groups, inputs


# ---------------------------------------------------------------------------------------------------------------------
# The user's own recordings


def prepare_recordings(
    inputs: Sequence[str | os.PathLike],
    output_dir: str | os.PathLike,
    *,
    sampling_rate: float | None = None,
    unit: str | None = None,
    columns: Sequence[str] | None = None,
    time_column: str | None = None,
    format: str | None = None,
    timezone: str | None = None,
    subject_ids: Sequence[str] | None = None,
    window_length: int = 256,
    hop_length: int | None = None,
    group_seconds: float = 3600.0,
    max_gap_seconds: float = DEFAULT_MAX_GAP_SECONDS,
    range_g: float | None = None,
    keep_flagged: Sequence[str] = (),
    num_workers: int = 1,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    validation_fraction: float = 0.2,
    test_fraction: float = 0.0,
    seed: int = 0,
    overwrite: bool = False,
    target_shard_bytes: int = DEFAULT_TARGET_SHARD_BYTES,
) -> dict:
    """
    Write the user's recordings as unlabelled shards.

    Each file is read with [`read_recording`], converted to g at 100 Hz and cut into windows. Windows are grouped
    into consecutive blocks of `group_seconds`. With absolute timestamps these are clock blocks, with group ids
    `"{subject}/{YYYY-MM-DDTHH}"` for hours, so files of one subject in the same hour share a group. Without them,
    blocks count from the start of the file, with group ids `"{subject}/{file stem}/{block index}"`. A file that
    cannot be read is logged, listed under `failed_inputs` in the manifest and skipped.

    Subjects are split into training and validation before any file is read. Files are then processed one subject
    at a time, so memory contains the windows of one subject at most. A subject whose files all fail leaves its
    split one subject short.

    Args:
        inputs (`Sequence[str | os.PathLike]`): Recording files (see [`read_recording`] for the formats).
        output_dir (`str` or `os.PathLike`): Shard folder to write.
        sampling_rate (`float`, *optional*): Rate in Hz of every input; required for files without timestamps.
        unit (`str`, *optional*): `"g"` or `"m/s^2"` for every input; detected per file when not given.
        columns (`Sequence[str]`, *optional*): Names of the x, y, z columns in every CSV or Parquet input.
        time_column (`str`, *optional*): Name of the timestamp column in every CSV or Parquet input.
        format (`str`, *optional*): Format of every input (see `FORMATS`); detected per file when not given.
        timezone (`str`, *optional*): Zone of wall-clock timestamps without an offset (see [`read_recording`]).
        subject_ids (`Sequence[str]`, *optional*): Subject of each input; defaults to the subject a WISDM file
            names, else the file stem.
        window_length (`int`, *optional*, defaults to 256): Window length in samples at 100 Hz.
        hop_length (`int`, *optional*): Step between window starts in samples at 100 Hz; defaults to
            `window_length`.
        group_seconds (`float`, *optional*, defaults to 3600.0): Length of a candidate group in seconds.
        max_gap_seconds (`float`, *optional*, defaults to 1.0): Time steps longer than this split a recording;
            shorter ones are filled on the even grid.
        range_g (`float`, *optional*): Device range in g, for inputs whose file does not state one; values beyond
            it are flagged `out_of_range` and runs at it `clipped`.
        keep_flagged (`Sequence[str]`, *optional*): Reasons (`non_finite`, `repeated_block`, `out_of_range`,
            `clipped`, `constant`) whose windows are written anyway. They are counted under `windows_kept_flagged`.
        num_workers (`int`, *optional*, defaults to 1): Processes that read and window inputs in parallel.
        chunk_rows (`int`, *optional*, defaults to 2,160,000): Rows read at a time from CSV, Parquet and `.npy`
            inputs (6 hours at 100 Hz), which bounds memory. Each chunk boundary drops less than one window.
        validation_fraction (`float`, *optional*, defaults to 0.2): Share of subjects for validation.
        test_fraction (`float`, *optional*, defaults to 0.0): Share of subjects for a `test` split, drawn before
            validation (see [`assign_subject_splits`]).
        seed (`int`, *optional*, defaults to 0): Seed of the subject split.
        overwrite (`bool`, *optional*, defaults to `False`): Replace shards of an earlier run in `output_dir`.
        target_shard_bytes (`int`, *optional*, defaults to 64 MiB): Size at which shard files roll over.

    Returns:
        `dict`: the manifest, also written to `output_dir/manifest.json`.

    Raises:
        ValueError: no input could be read, or none gave a window.
    """
    paths = [Path(path) for path in inputs]
    hop_length = window_length if hop_length is None else hop_length
    _check_prepare_arguments(window_length, hop_length, target_shard_bytes, validation_fraction)
    subjects = _input_subjects(paths, subject_ids)
    if not group_seconds > 0:
        raise ValueError(f"`group_seconds` must be a positive number of seconds, got {group_seconds!r}.")

    output_dir = Path(output_dir)
    settings = {
        "source": "recordings",
        "inputs": [_input_fingerprint(path) for path in paths],
        "subject_ids": subjects,
        "sampling_rate": sampling_rate,
        "unit": unit,
        "columns": list(columns) if columns is not None else None,
        "time_column": time_column,
        "format": format,
        "timezone": timezone,
        "max_gap_seconds": max_gap_seconds,
        "range_g": range_g,
        "keep_flagged": sorted(keep_flagged),
        "window_length": window_length,
        "hop_length": hop_length,
        "group_seconds": group_seconds,
        "validation_fraction": validation_fraction,
        "test_fraction": test_fraction,
        "seed": seed,
        "target_shard_bytes": target_shard_bytes,
        "chunk_rows": chunk_rows,
    }
    previous = _reusable_manifest(output_dir, settings, overwrite)
    if previous is not None:
        return previous

    extractor = RelConFeatureExtractor(
        sampling_rate=int(MODEL_SAMPLING_RATE), window_length=window_length, hop_length=hop_length
    )
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
        raise ValueError(f"`num_workers` must be a positive number of processes, got {num_workers!r}.")
    read_options = {
        "sampling_rate": sampling_rate,
        "unit": unit,
        "columns": columns,
        "time_column": time_column,
        "format": format,
        "timezone": timezone,
    }
    clean_options = {"max_gap_seconds": max_gap_seconds, "range_g": range_g, "keep_flagged": sorted(keep_flagged)}
    unknown_reasons = sorted(set(keep_flagged) - set(FLAG_REASONS))
    if unknown_reasons:
        raise ValueError(f"`keep_flagged` must name reasons among {', '.join(FLAG_REASONS)}, got {unknown_reasons}.")
    if not max_gap_seconds > 0:
        raise ValueError(f"`max_gap_seconds` must be a positive number of seconds, got {max_gap_seconds!r}.")
    check_timezone(timezone)
    # The split is drawn over the subjects of all inputs, before reading, so each subject's groups can be written
    # as soon as its files are read.
    subject_splits = assign_subject_splits(
        subjects, validation_fraction=validation_fraction, test_fraction=test_fraction, seed=seed
    )
    validation_subjects, test_subjects = subject_splits["validation"], subject_splits["test"]
    cache_dir = output_dir / INPUT_CACHE_NAME
    cache_dir.mkdir(parents=True, exist_ok=True)
    (cache_dir / "settings.json").write_text(json.dumps(_json_normalized(settings), indent=2) + "\n")
    window_options = {"window_length": window_length, "hop_length": hop_length}
    by_index, failed = _process_inputs(
        paths, subjects, cache_dir, window_options, read_options, clean_options, num_workers, chunk_rows
    )
    keys = [
        _input_key(path, subject, window_options, read_options, clean_options, {"chunk_rows": chunk_rows})
        for path, subject in zip(paths, subjects, strict=True)
    ]
    label_names: list[str] = []
    groups = _recording_groups(
        paths, subjects, cache_dir, keys, by_index, (window_length, 3), group_seconds, label_names
    )

    _remove_previous_output(output_dir)
    splits = _write_splits(
        output_dir, groups, validation_subjects, shard_features(window_length), target_shard_bytes, test_subjects
    )
    reports = {str(paths[index]): by_index[index] for index in sorted(by_index)}
    for report in reports.values():
        report.pop("start_timestamp", None)
    _check_recordings_written(splits, reports, failed, extractor, num_inputs=len(paths))
    if validation_subjects and splits["validation"]["num_groups"] == 0:
        logger.warning(
            f"The validation split is empty: the inputs of its subjects {validation_subjects} gave no window. "
            "Fix or remove those inputs and prepare again, or evaluate on another shard folder."
        )
    for report in reports.values():
        report["split"] = _split_of(report["subject_id"], set(validation_subjects), set(test_subjects))

    manifest = _base_manifest("recordings", settings, label_names or None)
    manifest["splits"] = splits
    manifest["inputs"] = reports
    manifest["failed_inputs"] = failed
    _write_manifest(output_dir, manifest)
    shutil.rmtree(cache_dir, ignore_errors=True)

    return manifest


def _input_subjects(paths: list[Path], subject_ids: Sequence[str] | None) -> list[str]:
    if not paths:
        raise ValueError("`inputs` is empty. Pass at least one recording file.")
    repeated = sorted({str(path) for path in paths if paths.count(path) > 1})
    if repeated:
        raise ValueError(f"Inputs listed more than once: {repeated}. Pass each file once.")
    if subject_ids is None:
        return [_default_subject(path) for path in paths]
    if isinstance(subject_ids, str) or len(subject_ids) != len(paths):
        raise ValueError(
            f"`subject_ids` must give one subject per input: got {subject_ids!r} for {len(paths)} inputs."
        )
    return [str(subject) for subject in subject_ids]


def _default_subject(path: Path) -> str:
    """Return the subject a WISDM file names on its first line, else the file stem."""
    try:
        if detect_format(path) == "wisdm":
            with open(path, encoding="utf-8", errors="replace") as handle:
                return handle.readline().split(",")[0].strip()
    except (OSError, ValueError):
        pass
    return recording_stem(path)


def _input_fingerprint(path: Path) -> dict:
    """Identify an input file by path, size and modification time, so a changed file is not reused."""
    try:
        status = path.stat()
    except OSError:
        return {"path": str(path), "size": None, "modified_ns": None}
    return {"path": str(path), "size": status.st_size, "modified_ns": status.st_mtime_ns}


def _recording_ids(paths: list[Path]) -> list[str]:
    """Return the file stem of each input, with `~2`, `~3`, ... appended to repeated stems."""
    seen: dict[str, int] = {}
    ids = []
    for path in paths:
        stem = recording_stem(path)
        seen[stem] = seen.get(stem, 0) + 1
        ids.append(stem if seen[stem] == 1 else f"{stem}~{seen[stem]}")
    return ids


def _process_inputs(
    paths: list[Path],
    subjects: list[str],
    cache_dir: Path,
    window_options: dict,
    read_options: dict,
    clean_options: dict,
    num_workers: int,
    chunk_rows: int,
) -> tuple[dict[int, dict], list[dict]]:
    """
    Read and window every input not already in `cache_dir`, in `num_workers` processes.

    Each finished input is written to `cache_dir` as one Parquet file, named by a hash of its path, size, modification
    time and every setting that shapes its windows, so a rerun after an interruption skips it. Returns the report of
    each readable input by index, and the failed inputs.
    """
    recording_ids = _recording_ids(paths)
    jobs = []
    reports: dict[int, dict] = {}
    for index, path in enumerate(paths):
        key = _input_key(
            path, subjects[index], window_options, read_options, clean_options, {"chunk_rows": chunk_rows}
        )
        cache_file = cache_dir / f"{key}.parquet"
        if cache_file.is_file() and cache_file.with_suffix(".json").is_file():
            reports[index] = json.loads(cache_file.with_suffix(".json").read_text())
            continue
        jobs.append((index, str(path), subjects[index], recording_ids[index], str(cache_file)))
    if len(reports):
        logger.info(f"Reusing {len(reports)} of {len(paths)} inputs processed by an earlier, interrupted run.")

    arguments = (window_options, read_options, clean_options, chunk_rows)
    failed: list[dict] = []
    if num_workers > 1 and len(jobs) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(num_workers, len(jobs)), mp_context=context) as pool:
            results = list(pool.map(_process_input, jobs, [arguments] * len(jobs)))
    else:
        results = [_process_input(job, arguments) for job in jobs]
    for index, report, error in results:
        if report is not None:
            reports[index] = report
        else:
            failed.append({"input": str(paths[index]), "error": error})
    return reports, failed


def _process_input(job: tuple, arguments: tuple) -> tuple[int, dict | None, str | None]:
    """
    Read, clean and window one input chunk by chunk and stream its windows to its cache file.

    Runs in a worker process when parallel. Memory is bounded by the chunk size, not by the length of the file.
    """
    index, path, subject, recording_id, cache_file = job
    window_options, read_options, clean_options, chunk_rows = arguments
    extractor = RelConFeatureExtractor(sampling_rate=int(MODEL_SAMPLING_RATE), **window_options)
    cache_file = Path(cache_file)
    temporary = cache_file.with_suffix(".tmp")
    reports = []
    first_start = None
    rows_before = 0
    try:
        with _InputCacheWriter(temporary) as writer:
            for recording in iter_recording_chunks(path, chunk_rows=chunk_rows, **read_options):
                windowed = window_clean_recording(recording, extractor, **clean_options)
                if recording.start_time is not None:
                    first_start = recording.start_time if first_start is None else first_start
                    offset = (recording.start_time - first_start).total_seconds()
                else:
                    offset = rows_before / recording.sampling_rate
                rows_before += recording.num_rows
                writer.write(windowed, offset)
                reports.append(_input_report(recording, windowed, subject, recording_id))
    except _INPUT_ERRORS as error:
        temporary.unlink(missing_ok=True)
        logger.error(f"Skipped input {path}: {type(error).__name__}: {error}")
        return index, None, f"{type(error).__name__}: {error}"

    report = _merge_chunk_reports(reports)
    report["start_timestamp"] = first_start.timestamp() if first_start is not None else None
    if report["windows_written"] == 0:
        logger.warning(
            f"{path} gave no window: it lasts {report['duration_seconds']:.2f} s, shorter than one window of "
            f"{extractor.window_length / extractor.sampling_rate:.2f} s after removing bad samples."
        )
    os.replace(temporary, cache_file)
    # The report is written last, so its presence marks the input as done.
    report_file = cache_file.with_suffix(".json")
    temporary_report = cache_file.with_suffix(".json.tmp")
    temporary_report.write_text(json.dumps(report, default=str))
    os.replace(temporary_report, report_file)
    return index, report, None


def _merge_chunk_reports(reports: list[dict]) -> dict:
    """Combine the reports of one input's chunks: counts add up, facts come from the first chunk."""
    merged = dict(reports[0])
    if len(reports) == 1:
        return merged
    for key in (
        "windows_written",
        "non_finite_samples",
        "out_of_order_rows",
        "duplicate_timestamps",
        "repeated_rows",
        "segments",
        "gap_seconds",
    ):
        merged[key] = sum(report[key] for report in reports)
    for key in ("windows_dropped", "windows_kept_flagged", "windows_by_label"):
        if key in merged:
            total: dict[str, int] = {}
            for report in reports:
                for reason, count in report.get(key, {}).items():
                    total[reason] = total.get(reason, 0) + count
            merged[key] = total
    if merged["start_time"] is not None:
        last = reports[-1]
        end = datetime.fromisoformat(last["start_time"]).timestamp() + last["duration_seconds"]
        merged["duration_seconds"] = end - datetime.fromisoformat(merged["start_time"]).timestamp()
    else:
        merged["duration_seconds"] = sum(report["duration_seconds"] for report in reports)
    merged["chunks"] = len(reports)
    return merged


class _InputCacheWriter:
    """Streams one input's windows, starts and labels to a Parquet file, chunk by chunk."""

    def __init__(self, path: Path):
        self.path = path
        self._writer: pq.ParquetWriter | None = None

    def write(self, windowed: RecordingWindows, offset: float) -> None:
        if len(windowed) == 0:
            return
        window_size = int(np.prod(windowed.windows.shape[1:]))
        values = pa.array(np.ascontiguousarray(windowed.windows, dtype=np.float32).reshape(-1))
        table = pa.table(
            {
                "window": pa.FixedSizeListArray.from_arrays(values, window_size),
                "window_start": pa.array(windowed.window_start + offset, type=pa.float64()),
                "label": pa.array(
                    windowed.labels.tolist() if windowed.labels is not None else [None] * len(windowed),
                    type=pa.string(),
                ),
            }
        )
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, table.schema)
        self._writer.write_table(table)

    def __enter__(self) -> "_InputCacheWriter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._writer is not None:
            self._writer.close()
        elif exc_info[0] is None:
            # No window at all: an empty file still marks the input as done.
            schema = pa.schema(
                [("window", pa.list_(pa.float32())), ("window_start", pa.float64()), ("label", pa.string())]
            )
            pq.write_table(schema.empty_table(), self.path)


def _input_key(path: Path, subject: str, *option_sets: dict) -> str:
    fingerprint = _input_fingerprint(path)
    text = json.dumps([fingerprint, subject, *option_sets], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class _CachedInput:
    """
    Row-group access to one input's cache file, so a group's windows are read without loading the whole input.

    Only the window starts of the whole input stay in memory (8 bytes per window). Windows and labels are read one
    Parquet row group at a time, which is one prepare chunk (at most 6 hours at 100 Hz by default). The last row
    group read is kept for the next group.
    """

    def __init__(self, path: Path, window_shape: tuple[int, int]):
        # Without pre-buffering, row groups already read are freed (see readers._iter_tables).
        self.file = pq.ParquetFile(path, pre_buffer=False)
        self.window_shape = window_shape
        self.window_start = self.file.read(columns=["window_start"]).column(0).to_numpy()
        sizes = [self.file.metadata.row_group(index).num_rows for index in range(self.file.num_row_groups)]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._loaded: tuple[int, np.ndarray, list] | None = None

    def take(self, rows: np.ndarray) -> tuple[np.ndarray, list]:
        """Return the windows `(len(rows), *window_shape)` and labels of the given rows (in increasing order)."""
        windows: list[np.ndarray] = []
        labels: list = []
        groups = np.searchsorted(self.offsets, rows, side="right") - 1
        for group in np.unique(groups):
            group_windows, group_labels = self._row_group(int(group))
            local = rows[groups == group] - self.offsets[group]
            windows.append(group_windows[local])
            labels.extend(group_labels[index] for index in local)
        return np.concatenate(windows), labels

    def _row_group(self, index: int) -> tuple[np.ndarray, list]:
        if self._loaded is None or self._loaded[0] != index:
            table = self.file.read_row_group(index, columns=["window", "label"])
            flat = table.column("window").combine_chunks().flatten().to_numpy(zero_copy_only=False)
            self._loaded = (index, flat.reshape((-1, *self.window_shape)), table.column("label").to_pylist())
        return self._loaded[1], self._loaded[2]


def _recording_groups(
    paths: list[Path],
    subjects: list[str],
    cache_dir: Path,
    keys: list[str],
    reports: dict[int, dict],
    window_shape: tuple[int, int],
    group_seconds: float,
    label_names: list[str],
) -> Iterator[CandidateGroup]:
    """
    Yield the groups of every readable input from the cache, one group at a time.

    Only the window starts of one subject's inputs and the windows of one group (plus one cached row group per
    input) are in memory, so memory does not grow with the length of the recordings. Class names are appended to
    `label_names` in the order they are first seen.
    """
    for subject in sorted(set(subjects)):
        members: dict[str, list[tuple[_CachedInput, np.ndarray, dict, float | None]]] = {}
        for index in (index for index, owner in enumerate(subjects) if owner == subject and index in reports):
            report = reports[index]
            if report["windows_written"] == 0:
                continue
            cached = _CachedInput(cache_dir / f"{keys[index]}.parquet", window_shape)
            start = report["start_timestamp"]
            for group_id, rows, block_start in _block_rows(cached.window_start, start, subject, report, group_seconds):
                members.setdefault(group_id, []).append((cached, rows, report, block_start))

        for group_id in sorted(members):
            windows, starts, labels, recording_ids = [], [], [], []
            for cached, rows, report, block_start in members[group_id]:
                group_windows, group_labels = cached.take(rows)
                windows.append(group_windows)
                start = report["start_timestamp"]
                absolute = cached.window_start[rows] + (start if start is not None else 0.0)
                starts.append(absolute - block_start if block_start is not None else cached.window_start[rows])
                labels.extend(group_labels)
                recording_ids.extend([report["recording_id"]] * len(rows))
            window_start = np.concatenate(starts)
            order = np.argsort(window_start, kind="stable")
            label_indices = np.full(len(labels), UNLABELLED, dtype=np.int64)
            for position, name in enumerate(labels):
                if name is not None:
                    if name not in label_names:
                        label_names.append(str(name))
                    label_indices[position] = label_names.index(name)
            first_block_start = members[group_id][0][3]
            yield CandidateGroup(
                subject_id=subject,
                group_id=group_id,
                start_time=datetime.fromtimestamp(first_block_start, tz=dt_timezone.utc)
                if first_block_start is not None
                else None,
                windows=np.concatenate(windows)[order],
                window_start=window_start[order],
                labels=label_indices[order],
                recording_ids=[recording_ids[index] for index in order],
            )


def _block_rows(
    window_start: np.ndarray, start: float | None, subject: str, report: dict, group_seconds: float
) -> Iterator[tuple[str, np.ndarray, float | None]]:
    """
    Yield `(group_id, rows, block_start)` for each block of `group_seconds` that an input's windows fall in.

    With a known start time the blocks are aligned to the Unix epoch, so with 3600 s they are UTC hours. Without
    one they count from the start of the file.
    """
    if start is not None:
        blocks = np.floor((start + window_start) / group_seconds).astype(np.int64)
    else:
        blocks = np.floor(window_start / group_seconds).astype(np.int64)
    for block in np.unique(blocks):
        rows = np.flatnonzero(blocks == block)
        if start is not None:
            block_start = float(block * group_seconds)
            moment = datetime.fromtimestamp(block_start, tz=dt_timezone.utc)
            yield f"{subject}/{_format_block_start(moment, group_seconds)}", rows, block_start
        else:
            yield f"{subject}/{report['recording_id']}/{int(block)}", rows, None


def _check_recordings_written(
    splits: dict, reports: dict, failed: list[dict], extractor: RelConFeatureExtractor, num_inputs: int
) -> None:
    """Raise `ValueError` when no input could be read, or none gave a window."""
    if not reports:
        details = "; ".join(f"{entry['input']}: {entry['error']}" for entry in failed)
        raise ValueError(f"None of the {num_inputs} inputs could be read ({details}).")
    if sum(split["num_windows"] for split in splits.values()) == 0:
        raise ValueError(
            f"The {len(reports)} readable inputs gave no window of {extractor.window_length} samples at "
            f"{extractor.sampling_rate} Hz. Pass longer recordings or a smaller window_length."
        )


def _input_report(recording: Recording, windowed: RecordingWindows, subject: str, recording_id: str) -> dict:
    report = {
        "subject_id": subject,
        "recording_id": recording_id,
        "format": recording.format,
        "windows_written": len(windowed),
        "windows_dropped": windowed.dropped,
        "windows_kept_flagged": windowed.kept_flagged,
        "non_finite_samples": recording.num_non_finite,
        "out_of_order_rows": recording.out_of_order_rows,
        "duplicate_timestamps": recording.duplicate_timestamps,
        "repeated_rows": int(recording.repeated_rows.sum()),
        "segments": windowed.segments,
        "gap_seconds": windowed.gap_seconds,
        "duration_seconds": recording.duration_seconds,
        "sampling_rate_in": recording.sampling_rate,
        "rate_inferred": recording.rate_inferred,
        "unit_in": recording.unit,
        "unit_detected": recording.unit_detected,
        "start_time": recording.start_time.isoformat() if recording.start_time is not None else None,
        "source_timezone": recording.source_timezone,
        "device": recording.device,
    }
    if windowed.labels is not None:
        names, counts = np.unique(windowed.labels, return_counts=True)
        report["windows_by_label"] = {str(name): int(count) for name, count in zip(names, counts, strict=True)}
    return report


def _format_block_start(block_start: datetime, group_seconds: float) -> str:
    if group_seconds % 3600 == 0:
        return block_start.strftime("%Y-%m-%dT%H")
    if group_seconds % 60 == 0:
        return block_start.strftime("%Y-%m-%dT%H:%M")
    return block_start.strftime("%Y-%m-%dT%H:%M:%S")


__all__ = [
    "CandidateGroup",
    "DEFAULT_TARGET_SHARD_BYTES",
    "MODEL_SAMPLING_RATE",
    "ShardWriter",
    "prepare_recordings",
    "prepare_watch",
    "read_manifest",
    "shard_features",
    "split_subjects",
    "assign_subject_splits",
]
