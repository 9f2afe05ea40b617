# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""The seglearn smartwatch exercise corpus, the default real pre-training and activity corpus.

The file `seglearn/data/watch_dataset.npy` ships in the `seglearn==1.2.5` wheel (BSD-3-Clause, David M. Burns). It
contains 140 recordings of a smartwatch's 6-axis inertial sensor at 50 Hz: 10 subjects each performed 7 shoulder
physiotherapy exercises (20 recordings per exercise), from the study of Burns et al., "Shoulder Physiotherapy
Exercise Recognition: Machine Learning the Inertial Signals from a Smartwatch" (arXiv:1802.01489). Only the data
file is used; seglearn's code is never imported.
"""

import importlib.metadata
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


logger = logging.getLogger(__name__)

WATCH_DATASET_ENV = "RELCON_WATCH_DATASET"
WATCH_DISTRIBUTION = "seglearn"
WATCH_FILE_IN_DISTRIBUTION = "seglearn/data/watch_dataset.npy"
WATCH_SAMPLING_RATE = 50.0
# The first three of the file's six columns (ax ay az wx wy wz) are acceleration in g.
WATCH_ACCELERATION_COLUMNS = slice(0, 3)


@dataclass
class WatchCorpus:
    """
    Acceleration recordings of the seglearn smartwatch exercise corpus.

    Args:
        recordings (`list[np.ndarray]`):
            140 arrays of shape `(time, 3)`, float64, acceleration in g (columns ax, ay, az of the file).
        sampling_rate (`float`):
            50.0 Hz.
        labels (`np.ndarray` of shape `(num_recordings,)`, int64):
            Exercise of each recording, an index into `label_names`.
        label_names (`list[str]`):
            The 7 exercise names, as stored in the file.
        subject_ids (`list[str]`):
            Subject of each recording, `"watch-01"` to `"watch-10"`.
        sides (`np.ndarray` of shape `(num_recordings,)`, int64):
            Side of the exercising arm: 1 right, 0 left.
        source (`str`):
            Path of the file that was read.

    The corpus has no timestamps.
    """

    recordings: list[np.ndarray]
    sampling_rate: float
    labels: np.ndarray
    label_names: list[str]
    subject_ids: list[str]
    sides: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.recordings)


def find_watch_file(path: str | os.PathLike | None = None) -> Path:
    """
    Locate `watch_dataset.npy`.

    Args:
        path (`str` or `os.PathLike`, *optional*):
            Explicit location of the file. Without it, the environment variable `RELCON_WATCH_DATASET` is used, then
            the file inside the installed `seglearn` distribution (found through its metadata, without importing
            seglearn).

    Returns:
        `pathlib.Path` of an existing file.

    Raises:
        FileNotFoundError: the file is at none of these locations.
    """
    if path is not None:
        candidate = Path(path)
        if not candidate.is_file():
            raise FileNotFoundError(f"Watch dataset file not found at the given path {candidate}.")
        return candidate

    from_env = os.environ.get(WATCH_DATASET_ENV)
    if from_env:
        candidate = Path(from_env)
        if not candidate.is_file():
            raise FileNotFoundError(f"Watch dataset file not found at {candidate}, the path in ${WATCH_DATASET_ENV}.")
        return candidate

    try:
        distribution = importlib.metadata.distribution(WATCH_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        distribution = None
    if distribution is not None:
        candidate = Path(str(distribution.locate_file(WATCH_FILE_IN_DISTRIBUTION)))
        if candidate.is_file():
            return candidate

    raise FileNotFoundError(
        "The seglearn watch dataset (seglearn/data/watch_dataset.npy) was not found. Install it with "
        '`pip install seglearn==1.2.5` (or `pip install "relcon-hf[watch]"`), or pass the path to the file or set '
        f"${WATCH_DATASET_ENV}."
    )


def load_watch_corpus(path: str | os.PathLike | None = None) -> WatchCorpus:
    """
    Load the acceleration recordings of the seglearn smartwatch exercise corpus.

    Args:
        path (`str` or `os.PathLike`, *optional*):
            Location of `watch_dataset.npy`; see [`find_watch_file`] for the default.

    Returns:
        [`WatchCorpus`] with 140 recordings of shape `(time, 3)` in g at 50 Hz.
    """
    file = find_watch_file(path)
    # The file is a pickled dict, so it needs allow_pickle. It comes from the seglearn wheel on the package index
    # (or a path the user chose), which is trusted like any installed code.
    content = np.load(file, allow_pickle=True).item()
    _check_watch_content(content, file)

    recordings = [
        np.ascontiguousarray(np.asarray(recording, dtype=np.float64)[:, WATCH_ACCELERATION_COLUMNS])
        for recording in content["X"]
    ]
    corpus = WatchCorpus(
        recordings=recordings,
        sampling_rate=WATCH_SAMPLING_RATE,
        labels=np.asarray(content["y"], dtype=np.int64),
        label_names=[str(name) for name in content["y_labels"]],
        subject_ids=[f"watch-{int(subject):02d}" for subject in content["subject"]],
        sides=np.asarray(content["side"]).astype(np.int64),
        source=str(file),
    )
    logger.info(f"Loaded {len(corpus)} watch recordings of {len(set(corpus.subject_ids))} subjects from {file}.")

    return corpus


def _check_watch_content(content: object, file: Path) -> None:
    """Raise `ValueError` unless the file contains the dict layout of seglearn 1.2.5."""
    expected = ("X", "y", "y_labels", "subject", "side")
    if not isinstance(content, dict) or any(key not in content for key in expected):
        found = sorted(content) if isinstance(content, dict) else type(content).__name__
        raise ValueError(
            f"{file} is not the seglearn watch dataset: expected a dict with keys {list(expected)}, got {found}. "
            "Use the file from seglearn==1.2.5."
        )
    count = len(content["X"])
    for key in ("y", "subject", "side"):
        if len(content[key]) != count:
            raise ValueError(f"{file}: {key!r} has {len(content[key])} entries for {count} recordings.")
    for index, recording in enumerate(content["X"]):
        shape = np.shape(recording)
        if len(shape) != 2 or shape[1] < 3:
            raise ValueError(f"{file}: recording {index} has shape {shape}, expected (time, 6) with ax ay az first.")


__all__ = ["WatchCorpus", "find_watch_file", "load_watch_corpus"]
