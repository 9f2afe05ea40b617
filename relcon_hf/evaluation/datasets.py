# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Labelled windows for downstream evaluation, and the registry of dataset loaders that `relcon-hf evaluate` reads.

Every loader returns an [`EvaluationDataset`]: windows at 100 Hz in g, one subject id per window, and either
integer class labels (activity recognition) or float targets in physical units (gait regression), together with
the split the published protocol uses.
"""

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


logger = logging.getLogger(__name__)

TASK_TYPES = ("classification", "regression")


@dataclass
class EvaluationDataset:
    """
    Windows with labels or targets and subject ids, ready for a probe or fine-tuning.

    Args:
        name (`str`): Short name, as given to `relcon-hf evaluate --dataset`.
        description (`str`): One line for results tables and model cards.
        windows (`np.ndarray` of shape `(num_windows, window_length, 3)`): Acceleration in g, float32, at
            `sampling_rate`.
        subjects (`np.ndarray` of shape `(num_windows,)`): Subject id of each window, as strings.
        task (`str`): "classification" or "regression".
        label_names (`list[str]`): Class names (classification, `labels` index them) or target names (regression,
            the columns of `targets`).
        labels (`np.ndarray` of shape `(num_windows,)`, *optional*): Integer class of each window.
        targets (`np.ndarray` of shape `(num_windows, num_targets)`, *optional*): Regression targets, float32.
        target_units (`list[str]`): Unit of each target, e.g. "m/s" (regression only).
        sampling_rate (`float`): Samples per second of `windows`.
        split (`str`): Subject-wise split of the published protocol: "loso" (leave one subject out) or
            "kfold-<k>" (k folds of whole subjects).
        standardize_inputs (`bool`): Whether the protocol z-scores each channel with the training folds' mean and
            standard deviation before the encoder, as RelCon's 2 s benchmarks (HHAR, MotionSense, PAMAP2 ankle) do.
        body_location (`str`): Where the sensor was worn ("wrist", "lower back", ...).
        source (`str`): Where the data comes from and its licence, for results tables.
        window_times (`np.ndarray` of shape `(num_windows,)`, *optional*): Start of each window in seconds within
            its recording, where known.
        recordings (`np.ndarray` of shape `(num_windows,)`, *optional*): Recording (or bout) id of each window.
        report (`dict`): Counts from loading: files read, windows dropped and why.
    """

    name: str
    description: str
    windows: np.ndarray
    subjects: np.ndarray
    task: str
    label_names: list[str]
    labels: np.ndarray | None = None
    targets: np.ndarray | None = None
    target_units: list[str] = field(default_factory=list)
    sampling_rate: float = 100.0
    split: str = "kfold-5"
    standardize_inputs: bool = False
    body_location: str = "wrist"
    source: str = ""
    window_times: np.ndarray | None = None
    recordings: np.ndarray | None = None
    report: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.windows = np.asarray(self.windows, dtype=np.float32)
        self.subjects = np.asarray(self.subjects).astype(str)
        if self.task not in TASK_TYPES:
            raise ValueError(f"`task` must be one of {', '.join(TASK_TYPES)}, got {self.task!r}.")
        if self.windows.ndim != 3 or self.windows.shape[-1] != 3:
            raise ValueError(
                f"{self.name}: `windows` must have shape (num_windows, window_length, 3), got {self.windows.shape}."
            )
        num_windows = len(self.windows)
        if num_windows == 0:
            raise ValueError(f"{self.name}: the dataset has no windows; check the input path and its layout.")
        if self.subjects.shape != (num_windows,):
            raise ValueError(f"{self.name}: `subjects` must have shape ({num_windows},), got {self.subjects.shape}.")
        if self.task == "classification":
            if self.labels is None:
                raise ValueError(f"{self.name}: a classification dataset needs `labels`.")
            self.labels = np.asarray(self.labels, dtype=np.int64)
            if self.labels.shape != (num_windows,):
                raise ValueError(f"{self.name}: `labels` must have shape ({num_windows},), got {self.labels.shape}.")
            if self.labels.min() < 0 or self.labels.max() >= len(self.label_names):
                raise ValueError(
                    f"{self.name}: labels must lie in [0, {len(self.label_names) - 1}] to index `label_names`, got "
                    f"values from {self.labels.min()} to {self.labels.max()}."
                )
        else:
            if self.targets is None:
                raise ValueError(f"{self.name}: a regression dataset needs `targets`.")
            self.targets = np.asarray(self.targets, dtype=np.float32)
            if self.targets.ndim == 1:
                self.targets = self.targets[:, None]
            if self.targets.shape != (num_windows, len(self.label_names)):
                raise ValueError(
                    f"{self.name}: `targets` must have shape ({num_windows}, {len(self.label_names)}) to match "
                    f"`label_names`, got {self.targets.shape}."
                )
            if len(self.target_units) != len(self.label_names):
                raise ValueError(
                    f"{self.name}: `target_units` must name one unit per target ({len(self.label_names)}), got "
                    f"{self.target_units!r}."
                )
        check_split(self.split)

    def __len__(self) -> int:
        return len(self.windows)

    @property
    def num_subjects(self) -> int:
        return len(np.unique(self.subjects))

    @property
    def window_length(self) -> int:
        return int(self.windows.shape[1])


def check_split(split: str) -> int | None:
    """
    Parse a split name: "loso" gives `None` (one fold per subject), "kfold-<k>" gives `k`.

    Raises:
        `ValueError`: for any other value.
    """
    if split == "loso":
        return None
    if split.startswith("kfold-"):
        suffix = split.removeprefix("kfold-")
        if suffix.isdigit() and int(suffix) >= 2:
            return int(suffix)
    raise ValueError(f"The split must be 'loso' or 'kfold-<k>' with k >= 2, got {split!r}.")


DatasetLoader = Callable[..., EvaluationDataset]

# name -> loader(path, **options). Loaders register themselves with `register_dataset` when their module is
# imported; `get_dataset_loader` imports the modules that define them.
DATASET_LOADERS: dict[str, DatasetLoader] = {}


def register_dataset(name: str) -> Callable[[DatasetLoader], DatasetLoader]:
    """Decorator that adds a loader to [`DATASET_LOADERS`] under `name`."""

    def decorator(loader: DatasetLoader) -> DatasetLoader:
        if name in DATASET_LOADERS:
            raise ValueError(f"A dataset loader named {name!r} is already registered.")
        DATASET_LOADERS[name] = loader
        return loader

    return decorator


# Modules whose import registers loaders. Listed here so `get_dataset_loader` can find every name without the
# caller importing them first.
_LOADER_MODULES = (
    "relcon_hf.evaluation.datasets",
    "relcon_hf.evaluation.benchmarks",
    "relcon_hf.evaluation.local_datasets",
)


def get_dataset_loader(name: str) -> DatasetLoader:
    """
    Return the loader registered as `name`.

    Raises:
        `ValueError`: when no loader has that name; the message lists the names there are.
    """
    import importlib

    for module in _LOADER_MODULES:
        importlib.import_module(module)
    if name not in DATASET_LOADERS:
        raise ValueError(f"Unknown dataset {name!r}. Choose one of: {', '.join(sorted(DATASET_LOADERS))}.")
    return DATASET_LOADERS[name]


def load_evaluation_dataset(name: str, path: str | None = None, **options) -> EvaluationDataset:
    """Load the dataset registered as `name` from `path` (the loader's default location when `None`)."""
    loader = get_dataset_loader(name)
    if path is None:
        parameters = list(inspect.signature(loader).parameters.values())
        if parameters and parameters[0].default is inspect.Parameter.empty:
            raise ValueError(
                f"The {name} dataset is read from files you download: pass their folder with --data-path (Python: "
                f"the `path` argument). docs/evaluation-datasets.md lists where to get them and the layout expected."
            )
    dataset = loader(path, **options)
    logger.info(
        f"Loaded {dataset.name}: {len(dataset)} windows of {dataset.window_length} samples from "
        f"{dataset.num_subjects} subjects ({dataset.task}, {len(dataset.label_names)} "
        f"{'classes' if dataset.task == 'classification' else 'targets'})."
    )
    return dataset


@register_dataset("watch")
def load_watch_exercises(
    path: str | None = None, *, window_length: int = 256, hop_length: int = 128
) -> EvaluationDataset:
    """
    Load the seglearn smartwatch exercises: 7 shoulder exercises of 10 subjects, 50 Hz resampled to 100 Hz.

    Args:
        path (`str`, *optional*): The `watch_dataset.npy` file; by default the copy installed with seglearn.
        window_length (`int`): Samples per window at 100 Hz (256 = 2.56 s, the pre-training length).
        hop_length (`int`): Samples between window starts (128: half-overlapping, as `relcon-hf prepare` cuts them).

    Returns:
        [`EvaluationDataset`] for 7-class classification with 5 subject-wise folds.
    """
    from ..data.watch import load_watch_corpus
    from ..data.windowing import window_recording
    from ..modeling import RelConFeatureExtractor

    corpus = load_watch_corpus(path)
    extractor = RelConFeatureExtractor(window_length=window_length, hop_length=hop_length)
    windows, labels, subjects, recordings, times = [], [], [], [], []
    dropped = 0
    for index, (recording, label, subject) in enumerate(
        zip(corpus.recordings, corpus.labels, corpus.subject_ids, strict=True)
    ):
        windowed = window_recording(recording, corpus.sampling_rate, extractor)
        dropped += sum(windowed.dropped.values())
        windows.append(windowed.windows)
        labels.append(np.full(len(windowed), label))
        subjects.append(np.full(len(windowed), subject))
        recordings.append(np.full(len(windowed), f"{subject}/recording-{index:03d}"))
        times.append(windowed.window_start)
    return EvaluationDataset(
        name="watch",
        description="seglearn smartwatch exercises, 7 shoulder exercises, 10 subjects",
        windows=np.concatenate(windows),
        subjects=np.concatenate(subjects),
        task="classification",
        label_names=list(corpus.label_names),
        labels=np.concatenate(labels),
        split="kfold-5",
        body_location="wrist",
        source=f"{corpus.source} (seglearn 1.2.5, BSD-3-Clause)",
        window_times=np.concatenate(times).astype(np.float64),
        recordings=np.concatenate(recordings),
        report={"recordings": len(corpus), "windows_dropped": dropped},
    )
