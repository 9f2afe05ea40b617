# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Gait regression scores as a local `evaluate` module: MAE, RMSE, Pearson r, Spearman r and Bland-Altman agreement.

Load it with `evaluate.load("<path to this folder>")`. The script needs only numpy, datasets and evaluate and does not
import relcon_hf, so the folder also works when copied alone. `evaluate` scans the import lines of this file to list
the packages it needs, and it misreads `import a, b`, so every import has its own line.
"""

import math
import warnings

import datasets
import evaluate
import numpy as np


_DESCRIPTION = """\
Scores the regression of one gait target (walking speed, cadence, stride length, ...) or of several targets at once.
With n samples, references y, predictions p and differences d = p - y, MAE = mean |d| and RMSE = sqrt(mean d^2).
Pearson r is the correlation of p and y. Spearman r is the Pearson r of their ranks, where tied values get the mean of
their ranks. The Bland-Altman bias is mean d, and the 95% limits of agreement are bias -+ 1.96 s, where s is the
sample standard deviation of d (ddof=1).
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (`list` of `float`, or `list` of `list` of `float`): Predicted values, shape `(n,)` for one target
        or `(n, num_targets)` for several.
    references (`list` of `float`, or `list` of `list` of `float`): Reference values in the same unit and shape.

Returns:
    mae, rmse, pearson_r, spearman_r, bland_altman_bias, bland_altman_lower, bland_altman_upper: a `float` each for
    one target, or a `list` of `float` with one value per target column. MAE, RMSE and the Bland-Altman values are
    in the targets' unit. Pearson r and Spearman r are nan, with a RuntimeWarning, when the predictions or the
    references of a target are constant (this includes n = 1). The limits of agreement are nan, with a
    RuntimeWarning, when n = 1.

Examples:
    >>> metric = evaluate.load("relcon_hf/evaluation/metrics/gait_regression")
    >>> metric.compute(predictions=[1.0, 1.2, 1.4], references=[1.1, 1.2, 1.3])["mae"]
    0.06666666666666665
"""

_CITATION = """\
@article{bland1986statistical,
  title={Statistical methods for assessing agreement between two methods of clinical measurement},
  author={Bland, J. Martin and Altman, Douglas G.},
  journal={The Lancet},
  volume={327},
  number={8476},
  pages={307--310},
  year={1986}
}
"""

# Two-sided 95% quantile of the standard normal distribution, as used by Bland and Altman (1986).
LIMITS_OF_AGREEMENT_Z = 1.96
METRIC_NAMES = (
    "mae",
    "rmse",
    "pearson_r",
    "spearman_r",
    "bland_altman_bias",
    "bland_altman_lower",
    "bland_altman_upper",
)


def regression_scores(references, predictions) -> dict:
    """
    Compute the gait regression scores that the module returns; see `_KWARGS_DESCRIPTION` for the arguments.

    Raises:
        `ValueError`: An input is empty, not 1-D or 2-D, contains nan or infinity, or the shapes differ.
    """
    references = _as_value_array(references, "references")
    predictions = _as_value_array(predictions, "predictions")
    if references.shape != predictions.shape:
        raise ValueError(
            f"`references` and `predictions` must have the same shape, got {references.shape} and "
            f"{predictions.shape}. Pass one prediction per reference value."
        )

    if references.ndim == 1:
        return _score_target(references, predictions, target="")
    columns = [
        _score_target(references[:, column], predictions[:, column], target=f" of target column {column}")
        for column in range(references.shape[1])
    ]
    return {name: [scores[name] for scores in columns] for name in METRIC_NAMES}


def _as_value_array(values, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"`{name}` must be numbers of equal-length rows: {error}.") from None
    if array.ndim not in (1, 2) or array.shape[0] == 0 or (array.ndim == 2 and array.shape[1] == 0):
        raise ValueError(
            f"`{name}` must have shape (n,) or (n, num_targets) with n >= 1, got shape {array.shape}. "
            "Pass at least one value per target."
        )
    if not np.isfinite(array).all():
        raise ValueError(f"`{name}` contains nan or infinity. Drop those samples before scoring.")
    return array


def _score_target(references: np.ndarray, predictions: np.ndarray, target: str) -> dict:
    differences = predictions - references
    bias = float(differences.mean())
    if len(differences) > 1:
        spread = float(differences.std(ddof=1))
    else:
        warnings.warn(
            f"Bland-Altman limits of agreement{target} need at least 2 samples, got 1, so they are set to nan.",
            RuntimeWarning,
            stacklevel=3,
        )
        spread = math.nan

    return {
        "mae": float(np.abs(differences).mean()),
        "rmse": float(np.sqrt(np.square(differences).mean())),
        "pearson_r": _correlation(references, predictions, "Pearson r" + target),
        "spearman_r": _correlation(_average_ranks(references), _average_ranks(predictions), "Spearman r" + target),
        "bland_altman_bias": bias,
        "bland_altman_lower": bias - LIMITS_OF_AGREEMENT_Z * spread,
        "bland_altman_upper": bias + LIMITS_OF_AGREEMENT_Z * spread,
    }


def _correlation(x: np.ndarray, y: np.ndarray, description: str) -> float:
    """Return the Pearson correlation of `x` and `y`, or nan with a warning when either is constant."""
    # Test for constant input exactly: after centering, rounding leaves tiny residuals that would give a meaningless r.
    if (x == x[0]).all() or (y == y[0]).all():
        warnings.warn(
            f"{description} is undefined because the references or the predictions are constant, so it is set to nan.",
            RuntimeWarning,
            stacklevel=4,
        )
        return math.nan
    x_centered = x - x.mean()
    y_centered = y - y.mean()
    correlation = (x_centered * y_centered).sum() / math.sqrt((x_centered**2).sum() * (y_centered**2).sum())
    return float(np.clip(correlation, -1.0, 1.0))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Rank `values` from 1, giving tied values the mean of the ranks they span."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    is_group_start = np.concatenate([[True], sorted_values[1:] != sorted_values[:-1]])
    group_starts = np.flatnonzero(is_group_start)
    group_sizes = np.diff(np.append(group_starts, len(values)))
    # A tie group at 0-based positions start .. start + size - 1 spans ranks start + 1 .. start + size.
    group_ranks = group_starts + (group_sizes + 1) / 2
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = group_ranks[np.cumsum(is_group_start) - 1]
    return ranks


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class GaitRegression(evaluate.Metric):
    """Gait regression scores: MAE, RMSE, Pearson r, Spearman r and Bland-Altman bias and limits of agreement."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features({"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}),
                datasets.Features(
                    {
                        "predictions": datasets.List(datasets.Value("float64")),
                        "references": datasets.List(datasets.Value("float64")),
                    }
                ),
            ],
            reference_urls=["https://doi.org/10.1016/S0140-6736(86)90837-8"],
        )

    def compute(self, *, predictions=None, references=None, **kwargs):
        """Compute the scores, and raise `ValueError` on an empty input."""
        # evaluate 0.4.6 infers the feature type from the first sample, so an empty input would fail with IndexError.
        # The docstring must stay because evaluate appends the inputs description to it when it loads the module.
        for name, values in (("predictions", predictions), ("references", references)):
            if values is not None and len(values) == 0:
                raise ValueError(f"`{name}` is empty. Pass at least one value per target.")
        return super().compute(predictions=predictions, references=references, **kwargs)

    def _compute(self, predictions, references):
        return regression_scores(references, predictions)
