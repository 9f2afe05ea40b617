# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Activity recognition scores as a local `evaluate` module: accuracy, macro-F1, Cohen's kappa, recall per class and
the confusion matrix.

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
Scores single-label classification (activity recognition) from the confusion matrix C, whose rows are reference
classes and columns predicted classes (the scikit-learn convention). With n samples, row sums r_k and column sums
c_k, accuracy = trace(C) / n, recall_k = C_kk / r_k and F1_k = 2 C_kk / (r_k + c_k). Macro-F1 is the unweighted
mean of F1_k over all classes in `labels`. Cohen's kappa = (p_o - p_e) / (1 - p_e) with p_o = accuracy and
p_e = sum_k r_k c_k / n^2.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (`list` of `int` or `str`): Predicted class of each sample.
    references (`list` of `int` or `str`): Reference class of each sample, same length as `predictions`.
    labels (`list`, *optional*): Classes in the order of the confusion matrix rows and columns and of
        `per_class_recall`. Classes that occur in neither input still get a row, a column and a term in macro-F1.
        Every input value must be in `labels`. Defaults to the sorted classes found in either input.
    zero_division (`float`): Value of an undefined ratio, 0.0 (default), 1.0 or nan. It applies to the recall of a
        class with no reference samples and to the F1 of a class that occurs in neither input. A class with no
        predictions but some reference samples has F1 0 (no zero division). These rules match scikit-learn's
        `recall_score` and `f1_score` given the same `zero_division`.

Returns:
    accuracy (`float`): Fraction of samples predicted correctly.
    macro_f1 (`float`): Mean F1 over `labels`. With `zero_division=nan` the undefined values are left out.
    cohen_kappa (`float`): Agreement beyond chance. It is nan, with a RuntimeWarning, when p_e is 1 (one class
        only in both inputs), as in scikit-learn's `cohen_kappa_score`.
    per_class_recall (`list` of `float`): Recall of each class, in the order of `labels`.
    confusion_matrix (`list` of `list` of `int`): Counts, rows are reference classes and columns predicted classes,
        both in the order of `labels`.
    labels (`list`): The classes in the order used above.

Examples:
    >>> metric = evaluate.load("relcon_hf/evaluation/metrics/har_classification")
    >>> metric.compute(predictions=[0, 1, 1], references=[0, 1, 0], labels=[0, 1, 2])["accuracy"]
    0.6666666666666666
"""

_CITATION = """\
@article{cohen1960kappa,
  title={A coefficient of agreement for nominal scales},
  author={Cohen, Jacob},
  journal={Educational and Psychological Measurement},
  volume={20},
  number={1},
  pages={37--46},
  year={1960}
}
"""

ZERO_DIVISION_VALUES = (0.0, 1.0)


def classification_scores(references, predictions, labels=None, zero_division=0.0) -> dict:
    """
    Compute the activity recognition scores that the module returns; see `_KWARGS_DESCRIPTION` for the arguments.

    Raises:
        `ValueError`: An input is empty or not 1-D, the lengths differ, `labels` is empty or repeats a class, an input
            value is missing from `labels`, or `zero_division` is not 0, 1 or nan.
    """
    references = _as_label_array(references, "references")
    predictions = _as_label_array(predictions, "predictions")
    if len(references) != len(predictions):
        raise ValueError(
            f"`references` and `predictions` must have the same length, got {len(references)} and "
            f"{len(predictions)}. Pass one prediction per reference sample."
        )
    zero_division = float(zero_division)
    if not (zero_division in ZERO_DIVISION_VALUES or math.isnan(zero_division)):
        raise ValueError(f"`zero_division` must be 0.0, 1.0 or nan, got {zero_division!r}.")

    if labels is None:
        labels = np.unique(np.concatenate([references, predictions]))
    else:
        labels = _as_label_array(labels, "labels")
        if len(np.unique(labels)) != len(labels):
            raise ValueError(f"`labels` must list each class once, got {labels.tolist()!r}.")
    matrix = _confusion_matrix(references, predictions, labels)

    num_samples = matrix.sum()
    true_positives = np.diag(matrix).astype(np.float64)
    reference_counts = matrix.sum(axis=1).astype(np.float64)
    predicted_counts = matrix.sum(axis=0).astype(np.float64)

    no_references = reference_counts == 0
    if no_references.any():
        warnings.warn(
            f"Recall is undefined for classes without reference samples {labels[no_references].tolist()!r}, "
            f"so it is set to zero_division={zero_division}.",
            RuntimeWarning,
            stacklevel=2,
        )
    recall = _divide(true_positives, reference_counts, zero_division)
    f1 = _divide(2 * true_positives, reference_counts + predicted_counts, zero_division)

    # With zero_division=nan the undefined F1 values are left out of the mean, as scikit-learn does. At least one
    # class has samples because the inputs are not empty, so the mean is defined.
    macro_f1 = float(np.nanmean(f1)) if math.isnan(zero_division) else float(f1.mean())

    observed_agreement = true_positives.sum() / num_samples
    chance_agreement = float((reference_counts * predicted_counts).sum()) / float(num_samples) ** 2
    if chance_agreement == 1.0:
        warnings.warn(
            "Cohen's kappa is undefined because both inputs contain the same single class (chance agreement is 1), "
            "so it is set to nan.",
            RuntimeWarning,
            stacklevel=2,
        )
        kappa = math.nan
    else:
        kappa = (observed_agreement - chance_agreement) / (1.0 - chance_agreement)

    return {
        "accuracy": float(observed_agreement),
        "macro_f1": macro_f1,
        "cohen_kappa": float(kappa),
        "per_class_recall": recall.tolist(),
        "confusion_matrix": matrix.tolist(),
        "labels": labels.tolist(),
    }


def _as_label_array(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"`{name}` must be a 1-D sequence of class labels, got an array of shape {array.shape}.")
    if len(array) == 0:
        raise ValueError(f"`{name}` is empty. Pass at least one class label.")
    return array


def _confusion_matrix(references: np.ndarray, predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Count (reference, prediction) pairs into a `(len(labels), len(labels))` int64 matrix."""
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    indices = []
    for name, values in (("references", references), ("predictions", predictions)):
        positions = np.searchsorted(sorted_labels, values).clip(max=len(labels) - 1)
        unknown = sorted_labels[positions] != values
        if unknown.any():
            raise ValueError(
                f"`{name}` contains classes missing from `labels` {labels.tolist()!r}: "
                f"{np.unique(values[unknown]).tolist()!r}. Add them to `labels` or drop those samples."
            )
        indices.append(order[positions])

    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(matrix, (indices[0], indices[1]), 1)
    return matrix


def _divide(numerator: np.ndarray, denominator: np.ndarray, zero_division: float) -> np.ndarray:
    result = np.full(numerator.shape, zero_division, dtype=np.float64)
    defined = denominator > 0
    result[defined] = numerator[defined] / denominator[defined]
    return result


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class HarClassification(evaluate.Metric):
    """Activity recognition scores: accuracy, macro-F1, Cohen's kappa, recall per class and the confusion matrix."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
                datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
            ],
            reference_urls=["https://scikit-learn.org/stable/modules/model_evaluation.html#classification-metrics"],
        )

    def compute(self, *, predictions=None, references=None, **kwargs):
        """Compute the scores, and raise `ValueError` on an empty input."""
        # evaluate 0.4.6 infers the feature type from the first sample, so an empty input would fail with IndexError.
        # The docstring must stay because evaluate appends the inputs description to it when it loads the module.
        for name, values in (("predictions", predictions), ("references", references)):
            if values is not None and len(values) == 0:
                raise ValueError(f"`{name}` is empty. Pass at least one class label.")
        return super().compute(predictions=predictions, references=references, **kwargs)

    def _compute(self, predictions, references, labels=None, zero_division=0.0):
        return classification_scores(references, predictions, labels=labels, zero_division=zero_division)
