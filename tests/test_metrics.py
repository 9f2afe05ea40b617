# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Metric modules against scikit-learn, scipy and numpy, through `evaluate.load` offline and the Python functions."""

import json
import math
import os
import shutil
import subprocess
import sys
import warnings

import evaluate
import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix, f1_score, recall_score

from relcon_hf.evaluation.metrics import (
    METRIC_NAMES,
    classification_metrics,
    load_metric,
    metric_path,
    regression_metrics,
)
from relcon_hf.hub.model_card import EVALUATION_METRICS, load_evaluation_results


OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1"}
SCALAR_CLASSIFICATION_KEYS = ("accuracy", "macro_f1", "cohen_kappa")
REGRESSION_KEYS = (
    "mae",
    "rmse",
    "pearson_r",
    "spearman_r",
    "bland_altman_bias",
    "bland_altman_lower",
    "bland_altman_upper",
)


@pytest.fixture(scope="module")
def offline_modules():
    """Both metric modules loaded with `evaluate.load(metric_path(...))` with the Hub offline variables set."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in OFFLINE_ENV.items():
            patch.setenv(name, value)
        yield {name: evaluate.load(metric_path(name), keep_in_memory=True) for name in METRIC_NAMES}


def classify(path, offline_modules, y_true, y_pred, **kwargs):
    if path == "function":
        return classification_metrics(y_true, y_pred, **kwargs)
    return offline_modules["har_classification"].compute(predictions=y_pred, references=y_true, **kwargs)


def regress(path, offline_modules, y_true, y_pred):
    if path == "function":
        return regression_metrics(y_true, y_pred)
    return offline_modules["gait_regression"].compute(predictions=y_pred, references=y_true)


def sklearn_scores(y_true, y_pred, labels, zero_division):
    return {
        "accuracy": accuracy_score(y_true, y_pred),
        "macro_f1": f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=zero_division),
        "cohen_kappa": cohen_kappa_score(y_true, y_pred, labels=labels),
        "per_class_recall": recall_score(y_true, y_pred, labels=labels, average=None, zero_division=zero_division),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels),
    }


def assert_matches_sklearn(result, y_true, y_pred, labels, zero_division=0.0):
    expected = sklearn_scores(y_true, y_pred, labels, zero_division)
    for key in SCALAR_CLASSIFICATION_KEYS:
        np.testing.assert_allclose(result[key], expected[key], rtol=1e-12, err_msg=key)
    np.testing.assert_allclose(result["per_class_recall"], expected["per_class_recall"], rtol=1e-12)
    np.testing.assert_array_equal(result["confusion_matrix"], expected["confusion_matrix"])
    assert list(result["labels"]) == list(labels)


def numpy_scores(y_true, y_pred):
    """Regression scores written out independently of the metric script."""
    differences = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)
    bias = differences.mean()
    spread = np.std(differences, ddof=1)
    return {
        "mae": np.mean(np.abs(differences)),
        "rmse": np.sqrt(np.mean(differences**2)),
        "pearson_r": stats.pearsonr(y_true, y_pred).statistic,
        "spearman_r": stats.spearmanr(y_true, y_pred).statistic,
        "bland_altman_bias": bias,
        "bland_altman_lower": bias - 1.96 * spread,
        "bland_altman_upper": bias + 1.96 * spread,
    }


PATHS = ("function", "evaluate")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_random_matches_sklearn(path, seed, offline_modules):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 5, size=300)
    # Mostly correct predictions so that kappa and F1 are away from 0.
    y_pred = np.where(rng.random(300) < 0.6, y_true, rng.integers(0, 5, size=300))
    labels = [0, 1, 2, 3, 4]

    result = classify(path, offline_modules, y_true.tolist(), y_pred.tolist(), labels=labels)

    assert_matches_sklearn(result, y_true, y_pred, labels)


@pytest.mark.parametrize("path", PATHS)
def test_classification_hand_example(path, offline_modules):
    # Confusion matrix [[1, 1], [0, 2]]: accuracy 3/4, F1 2/3 and 4/5, p_e = (2 * 1 + 2 * 3) / 16 = 1/2.
    result = classify(path, offline_modules, [0, 0, 1, 1], [0, 1, 1, 1])

    assert result["accuracy"] == pytest.approx(0.75)
    assert result["macro_f1"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert result["cohen_kappa"] == pytest.approx((0.75 - 0.5) / (1 - 0.5))
    assert result["per_class_recall"] == pytest.approx([0.5, 1.0])
    assert result["confusion_matrix"] == [[1, 1], [0, 2]]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("zero_division", [0.0, 1.0, math.nan])
def test_classification_absent_classes_keep_rows(path, zero_division, offline_modules):
    rng = np.random.default_rng(3)
    y_true = rng.choice([0, 1, 3], size=120)
    y_pred = np.where(rng.random(120) < 0.7, y_true, rng.choice([0, 1, 2, 3], size=120))
    # Class 2 occurs only in the predictions, and classes 4 and 5 in neither input.
    labels = [0, 1, 2, 3, 4, 5]

    with pytest.warns(RuntimeWarning, match=r"without reference samples \[2, 4, 5\]"):
        result = classify(path, offline_modules, y_true, y_pred, labels=labels, zero_division=zero_division)

    assert_matches_sklearn(result, y_true, y_pred, labels, zero_division)
    assert len(result["confusion_matrix"]) == 6
    assert result["confusion_matrix"][5] == [0] * 6


@pytest.mark.parametrize("path", PATHS)
def test_classification_string_labels(path, offline_modules):
    y_true = ["walk", "run", "sit", "walk", "sit", "run", "walk"]
    y_pred = ["walk", "walk", "sit", "walk", "run", "run", "sit"]
    labels = ["sit", "walk", "run"]

    result = classify(path, offline_modules, y_true, y_pred, labels=labels)

    assert_matches_sklearn(result, y_true, y_pred, labels)


@pytest.mark.parametrize("path", PATHS)
def test_classification_default_labels_sorted_union(path, offline_modules):
    with pytest.warns(RuntimeWarning, match=r"without reference samples \[7\]"):
        result = classify(path, offline_modules, [3, 1, 1], [1, 7, 1])

    assert result["labels"] == [1, 3, 7]
    assert_matches_sklearn(result, [3, 1, 1], [1, 7, 1], [1, 3, 7])


@pytest.mark.parametrize("path", PATHS)
def test_classification_single_class_kappa_nan(path, offline_modules):
    with pytest.warns(RuntimeWarning, match="Cohen's kappa is undefined"):
        result = classify(path, offline_modules, [2, 2, 2], [2, 2, 2])

    assert result["accuracy"] == 1.0
    assert result["macro_f1"] == 1.0
    assert math.isnan(result["cohen_kappa"])
    assert result["confusion_matrix"] == [[3]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert math.isnan(cohen_kappa_score([2, 2, 2], [2, 2, 2]))


@pytest.mark.parametrize("path", PATHS)
def test_classification_single_reference_class(path, offline_modules):
    y_true = [1, 1, 1, 1]
    y_pred = [1, 0, 1, 1]

    with pytest.warns(RuntimeWarning, match="without reference samples"):
        result = classify(path, offline_modules, y_true, y_pred)

    assert_matches_sklearn(result, y_true, y_pred, [0, 1])
    assert result["cohen_kappa"] == 0.0


@pytest.mark.parametrize(
    ("y_true", "y_pred", "kwargs", "message"),
    [
        ([], [], {}, "is empty"),
        ([0, 1, 1], [0, 1], {}, "same length"),
        ([[0, 1]], [[0, 1]], {}, "1-D sequence"),
        ([0, 1, 2], [0, 1, 1], {"labels": [0, 1]}, r"missing from `labels` \[0, 1\]: \[2\]"),
        ([0, 1], [0, 3], {"labels": [0, 1]}, r"`predictions` contains classes missing"),
        ([0, 1], [0, 1], {"labels": [0, 1, 1]}, "each class once"),
        ([0, 1], [0, 1], {"labels": []}, "`labels` is empty"),
        ([0, 1], [0, 1], {"zero_division": 0.5}, "zero_division"),
    ],
)
def test_classification_invalid_inputs_raise(y_true, y_pred, kwargs, message):
    with pytest.raises(ValueError, match=message):
        classification_metrics(y_true, y_pred, **kwargs)


def test_classification_module_invalid_inputs_raise(offline_modules):
    module = offline_modules["har_classification"]

    with pytest.raises(ValueError, match="is empty"):
        module.compute(predictions=[], references=[])
    with pytest.raises(ValueError, match="number of predictions"):
        module.compute(predictions=[0, 1], references=[0])
    with pytest.raises(ValueError, match="missing from `labels`"):
        module.compute(predictions=[0, 1], references=[0, 1], labels=[0])


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("seed", [0, 1])
def test_regression_random_matches_scipy(path, seed, offline_modules):
    rng = np.random.default_rng(seed)
    speed = rng.uniform(0.5, 1.8, size=80)
    predicted = speed + rng.normal(0.05, 0.1, size=80)
    # Rounding creates ties, which Spearman r must rank with their mean rank.
    y_true = np.round(speed, 1)
    y_pred = np.round(predicted, 1)

    result = regress(path, offline_modules, y_true.tolist(), y_pred.tolist())

    expected = numpy_scores(y_true, y_pred)
    for key in REGRESSION_KEYS:
        assert result[key] == pytest.approx(expected[key], rel=1e-10, abs=1e-12), key


@pytest.mark.parametrize("path", PATHS)
def test_regression_hand_example(path, offline_modules):
    # Differences [1, 0, 1, 0]: bias 0.5, sample standard deviation sqrt(1/3).
    result = regress(path, offline_modules, [1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 4.0, 4.0])

    assert result["mae"] == pytest.approx(0.5)
    assert result["rmse"] == pytest.approx(math.sqrt(0.5))
    assert result["bland_altman_bias"] == pytest.approx(0.5)
    assert result["bland_altman_lower"] == pytest.approx(0.5 - 1.96 * math.sqrt(1 / 3))
    assert result["bland_altman_upper"] == pytest.approx(0.5 + 1.96 * math.sqrt(1 / 3))
    # Ranks of the predictions with ties: [1.5, 1.5, 3.5, 3.5] against [1, 2, 3, 4].
    assert result["spearman_r"] == pytest.approx(4 / math.sqrt(5 * 4))


@pytest.mark.parametrize("path", PATHS)
def test_regression_two_targets_per_column(path, offline_modules):
    rng = np.random.default_rng(4)
    y_true = np.column_stack([rng.uniform(0.6, 1.6, 40), rng.uniform(80, 120, 40), rng.uniform(0.8, 1.5, 40)])
    y_pred = y_true + rng.normal(0, [0.1, 5.0, 0.1], size=(40, 3))

    result = regress(path, offline_modules, y_true.tolist(), y_pred.tolist())

    for column in range(3):
        expected = numpy_scores(y_true[:, column], y_pred[:, column])
        for key in REGRESSION_KEYS:
            assert len(result[key]) == 3
            assert result[key][column] == pytest.approx(expected[key], rel=1e-10, abs=1e-12), (key, column)


@pytest.mark.parametrize("path", PATHS)
def test_regression_constant_predictions_nan(path, offline_modules):
    y_true = [1.0, 1.2, 1.4, 1.1]
    y_pred = [1.3, 1.3, 1.3, 1.3]

    with pytest.warns(RuntimeWarning, match="(Pearson|Spearman) r is undefined"):
        result = regress(path, offline_modules, y_true, y_pred)

    assert math.isnan(result["pearson_r"])
    assert math.isnan(result["spearman_r"])
    assert result["mae"] == pytest.approx(np.mean(np.abs(np.subtract(y_pred, y_true))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert math.isnan(stats.pearsonr(y_true, y_pred).statistic)


def test_regression_constant_decimal_no_false_correlation():
    # 0.1 is not exact in binary, so the mean of constant values may differ from them by rounding.
    with pytest.warns(RuntimeWarning, match="(Pearson|Spearman) r is undefined"):
        result = regression_metrics([0.3, 0.5, 0.9], [0.1, 0.1, 0.1])

    assert math.isnan(result["pearson_r"])


def test_regression_single_sample_limits_nan():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = regression_metrics([1.2], [1.0])

    assert any("at least 2 samples" in str(warning.message) for warning in caught)

    assert result["mae"] == pytest.approx(0.2)
    assert result["bland_altman_bias"] == pytest.approx(-0.2)
    assert math.isnan(result["bland_altman_lower"])
    assert math.isnan(result["bland_altman_upper"])
    assert math.isnan(result["pearson_r"])


@pytest.mark.parametrize(
    ("y_true", "y_pred", "message"),
    [
        ([], [], "n >= 1"),
        ([1.0, 2.0], [1.0], "same shape"),
        ([[1.0, 2.0]], [[1.0], [2.0]], "same shape"),
        ([1.0, math.nan], [1.0, 2.0], "nan or infinity"),
        ([1.0, 2.0], [1.0, math.inf], "nan or infinity"),
        (np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), r"shape \(n,\) or \(n, num_targets\)"),
        ([[1.0, 2.0], [1.0]], [[1.0, 2.0], [1.0]], "equal-length rows"),
    ],
)
def test_regression_invalid_inputs_raise(y_true, y_pred, message):
    with pytest.raises(ValueError, match=message):
        regression_metrics(y_true, y_pred)


def test_regression_module_invalid_inputs_raise(offline_modules):
    module = offline_modules["gait_regression"]

    with pytest.raises(ValueError, match="is empty"):
        module.compute(predictions=[], references=[])
    with pytest.raises(ValueError, match="number of predictions"):
        module.compute(predictions=[1.0, 2.0], references=[1.0])


def test_metric_path_unknown_name():
    with pytest.raises(ValueError, match="Unknown metric 'f1'"):
        metric_path("f1")


def test_load_metric_computes(monkeypatch):
    for name, value in OFFLINE_ENV.items():
        monkeypatch.setenv(name, value)

    metric = load_metric("gait_regression", keep_in_memory=True)

    assert isinstance(metric, evaluate.Metric)
    assert metric.compute(predictions=[1.0, 2.0], references=[1.0, 3.0])["mae"] == pytest.approx(0.5)


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_import_scanner_finds_installed_libraries(name):
    """evaluate lists a script's library imports before loading it, and each must be one importable top-level name."""
    script = os.path.join(metric_path(name), f"{name}.py")

    imports = evaluate.loading.get_imports(script)

    library_names = {import_name for kind, import_name, _, _ in imports if kind == "library"}
    assert library_names == {"math", "warnings", "datasets", "evaluate", "numpy"}
    assert all(kind == "library" for kind, _, _, _ in imports)


OFFLINE_SCRIPT = """
import json
import socket
import sys

import evaluate


def refuse_connection(*args, **kwargs):
    raise OSError(f"network access attempted: {args}")


socket.socket.connect = refuse_connection
socket.create_connection = refuse_connection
# The copied scripts must work without the package.
sys.modules["relcon_hf"] = None

folder = sys.argv[1]
classification = evaluate.load(folder + "/har_classification").compute(
    predictions=[0, 1, 1, 2], references=[0, 1, 2, 2], labels=[0, 1, 2]
)
regression = evaluate.load(folder + "/gait_regression").compute(
    predictions=[1.0, 1.4, 1.1], references=[1.1, 1.2, 1.3]
)
print(json.dumps({"classification": classification, "regression": regression}))
"""


def test_copied_modules_load_offline_without_package(tmp_path):
    folder = tmp_path / "metrics"
    for name in METRIC_NAMES:
        shutil.copytree(metric_path(name), folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, **OFFLINE_ENV, "HF_HOME": str(tmp_path / "hf_home")}
    env.pop("HF_MODULES_CACHE", None)

    completed = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT, str(folder)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )

    assert completed.returncode == 0, completed.stderr
    results = json.loads(completed.stdout.strip().splitlines()[-1])
    assert results["classification"] == classification_metrics([0, 1, 2, 2], [0, 1, 1, 2], labels=[0, 1, 2])
    assert results["regression"] == pytest.approx(regression_metrics([1.1, 1.2, 1.3], [1.0, 1.4, 1.1]))
    assert (tmp_path / "hf_home" / "modules").is_dir()


def test_scalar_keys_accepted_by_model_card(tmp_path):
    classification = classification_metrics([0, 1, 1], [0, 1, 0])
    regression = regression_metrics([1.0, 2.0, 3.0], [1.1, 2.2, 2.9])
    scalar_keys = [key for key, value in {**classification, **regression}.items() if isinstance(value, float)]
    assert set(scalar_keys) == set(SCALAR_CLASSIFICATION_KEYS) | set(REGRESSION_KEYS)
    results_file = tmp_path / "results.json"
    results_file.write_text(
        json.dumps(
            {
                "format_version": 1,
                "task": "gait regression",
                "problem_type": "regression",
                "dataset": {"id": "mobgap", "name": "Mobilise-D lab", "split": "leave-one-subject-out"},
                "protocol": "linear probe",
                "metrics": [
                    {"name": key, "value": regression[key], "target": "gait speed"} for key in REGRESSION_KEYS
                ],
            }
        )
    )

    for key in scalar_keys:
        assert key in EVALUATION_METRICS
    assert len(load_evaluation_results(results_file)["metrics"]) == len(REGRESSION_KEYS)
