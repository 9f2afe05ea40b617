# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Downstream metrics, shipped as local `evaluate` modules so that they load offline.

Each metric is a folder with one script of the same name (`har_classification/har_classification.py`,
`gait_regression/gait_regression.py`). Load one with `evaluate.load(metric_path(name))` or [`load_metric`].

The scripts are the single source of the formulas. [`classification_metrics`] and [`regression_metrics`] import
the script file once with importlib and call the same module-level function that the `evaluate` module's `_compute`
calls. This skips the Arrow round trip of `evaluate.Metric.compute`, which writes cache files, so the plain functions
also work where the Hugging Face cache folder is read-only.
"""

import importlib.util
import logging
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np


logger = logging.getLogger(__name__)

METRICS_DIR = Path(__file__).resolve().parent
METRIC_NAMES = ("har_classification", "gait_regression")


def metric_path(name: str) -> str:
    """
    Return the folder of a metric module, as `evaluate.load` expects it.

    Args:
        name (`str`): One of `METRIC_NAMES`: "har_classification" or "gait_regression".

    Returns:
        `str`: Absolute path of the folder that contains `<name>.py`.

    Raises:
        `ValueError`: `name` is not a metric of this package.
    """
    if name not in METRIC_NAMES:
        raise ValueError(f"Unknown metric {name!r}. Expected one of {', '.join(METRIC_NAMES)}.")
    return str(METRICS_DIR / name)


def load_metric(name: str, **kwargs: Any):
    """
    Load a metric module of this package with `evaluate.load`, without network access.

    Args:
        name (`str`): One of `METRIC_NAMES`.
        kwargs: Passed to `evaluate.load`, e.g. `experiment_id` or `keep_in_memory`.

    Returns:
        `evaluate.Metric`.
    """
    import evaluate

    return evaluate.load(metric_path(name), **kwargs)


def classification_metrics(
    y_true: Sequence | np.ndarray,
    y_pred: Sequence | np.ndarray,
    labels: Sequence | np.ndarray | None = None,
    zero_division: float = 0.0,
) -> dict:
    """
    Score single-label classification: accuracy, macro-F1, Cohen's kappa, recall per class and the confusion matrix.

    The result equals `load_metric("har_classification").compute(predictions=y_pred, references=y_true, ...)`; see
    docs/metrics.md for the definitions.

    Args:
        y_true (sequence of `int` or `str` of length `num_samples`): Reference classes.
        y_pred (sequence of `int` or `str` of length `num_samples`): Predicted classes.
        labels (sequence, *optional*): Classes in the order of the confusion matrix and `per_class_recall`. Classes
            absent from both inputs still get a row and count in macro-F1. Defaults to the sorted classes found.
        zero_division (`float`): Value of an undefined recall or F1: 0.0, 1.0 or nan.

    Returns:
        `dict` with `accuracy`, `macro_f1`, `cohen_kappa` (floats), `per_class_recall` (list of floats),
        `confusion_matrix` (list of lists of ints, rows are reference classes) and `labels`.

    Raises:
        `ValueError`: Empty input, different lengths, or a class missing from `labels`.
    """
    script = _load_script("har_classification")
    return script.classification_scores(y_true, y_pred, labels=labels, zero_division=zero_division)


def regression_metrics(y_true: Sequence | np.ndarray, y_pred: Sequence | np.ndarray) -> dict:
    """
    Score regression: MAE, RMSE, Pearson r, Spearman r and Bland-Altman bias and 95% limits of agreement.

    The result equals `load_metric("gait_regression").compute(predictions=y_pred, references=y_true)`; see
    docs/metrics.md for the definitions. Differences are `y_pred - y_true`.

    Args:
        y_true (`np.ndarray` of shape `(num_samples,)` or `(num_samples, num_targets)`): Reference values.
        y_pred (`np.ndarray` of the same shape): Predicted values in the same unit.

    Returns:
        `dict` with `mae`, `rmse`, `pearson_r`, `spearman_r`, `bland_altman_bias`, `bland_altman_lower` and
        `bland_altman_upper`: a float each for 1-D inputs, a list with one float per column for 2-D inputs.

    Raises:
        `ValueError`: Empty input, different shapes, or nan or infinity in an input.
    """
    script = _load_script("gait_regression")
    return script.regression_scores(y_true, y_pred)


@cache
def _load_script(name: str) -> ModuleType:
    """Import the metric script `<name>/<name>.py` as a module, once per process."""
    path = Path(metric_path(name)) / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{__name__}._{name}_script", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"Failed to import the metric script {path}. Reinstall relcon-hf.")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    logger.debug("Imported metric script %s", path)
    return module
