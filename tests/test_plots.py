# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Result figures: each function writes a decodable PNG of real content and rejects inputs of the wrong shape."""

import sys

import numpy as np
import pytest


pytest.importorskip("matplotlib")
from matplotlib.image import imread  # noqa: E402

from relcon_hf.evaluation import plots  # noqa: E402
from relcon_hf.evaluation.plots import (  # noqa: E402
    is_matplotlib_available,
    plot_confusion_matrix,
    plot_embedding_map,
    plot_regression,
)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A 6 x 4 inch figure with one empty set of axes is about 13 kB at 150 dpi (matplotlib 3.11), and the figures
# drawn here are above 40 kB.
MIN_PNG_BYTES = 25_000


def assert_valid_png(path, expected):
    assert path == expected
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > MIN_PNG_BYTES
    pixels = imread(path)
    assert pixels.ndim == 3
    assert min(pixels.shape[:2]) > 300
    # More than a blank canvas: many distinct colours.
    assert len(np.unique(pixels.reshape(-1, pixels.shape[2]), axis=0)) > 20


@pytest.mark.parametrize("normalize", [True, False])
def test_confusion_matrix_png(tmp_path, normalize):
    # The last class has no reference samples, so its normalised row divides by zero and must stay 0.
    matrix = np.array([[30, 2, 1, 0], [4, 25, 0, 0], [0, 3, 40, 0], [0, 0, 0, 0]])
    path = tmp_path / "figures" / "confusion.png"

    written = plot_confusion_matrix(matrix, ["walk", "jog", "stairs", "sit"], path, normalize=normalize)

    assert_valid_png(written, path)


@pytest.mark.parametrize(
    ("matrix", "names", "message"),
    [
        (np.ones((3, 2)), ["a", "b", "c"], r"shape \(num_classes, num_classes\)"),
        (np.ones(3), ["a", "b", "c"], r"shape \(num_classes, num_classes\)"),
        (np.ones((3, 3)), ["a", "b"], "must name each of the 3 classes"),
        (-np.ones((2, 2)), ["a", "b"], "non-negative"),
        (np.full((2, 2), np.nan), ["a", "b"], "finite"),
    ],
)
def test_confusion_matrix_wrong_shape_raises(tmp_path, matrix, names, message):
    with pytest.raises(ValueError, match=message):
        plot_confusion_matrix(matrix, names, tmp_path / "confusion.png")


def test_regression_png(tmp_path):
    rng = np.random.default_rng(0)
    speed = rng.uniform(0.6, 1.6, size=120)
    predicted = speed + rng.normal(0.03, 0.08, size=120)
    path = tmp_path / "speed.png"

    written = plot_regression(speed, predicted, "walking speed", "m/s", path)

    assert_valid_png(written, path)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "message"),
    [
        (np.ones((5, 2)), np.ones((5, 2)), "must be 1-D"),
        (np.ones(5), np.ones(4), "same shape"),
        (np.ones(1), np.ones(1), "at least 2 samples"),
        (np.array([1.0, np.nan]), np.ones(2), "nan or infinity"),
    ],
)
def test_regression_wrong_shape_raises(tmp_path, y_true, y_pred, message):
    with pytest.raises(ValueError, match=message):
        plot_regression(y_true, y_pred, "cadence", "steps/min", tmp_path / "cadence.png")


def test_path_must_be_png(tmp_path):
    with pytest.raises(ValueError, match=r"must end in \.png"):
        plot_regression([1.0, 2.0, 3.0], [1.0, 2.5, 2.0], "cadence", "steps/min", tmp_path / "cadence.pdf")


def test_embedding_map_classes_watch(tmp_path, watch_corpus):
    """Per-recording statistics of the real watch corpus, coloured by its 7 exercises."""
    features = np.stack(
        [
            np.concatenate([recording.mean(axis=0), recording.std(axis=0), np.abs(np.diff(recording, axis=0)).mean(0)])
            for recording in watch_corpus.recordings
        ]
    )
    path = tmp_path / "map.png"

    written = plot_embedding_map(features, watch_corpus.labels, watch_corpus.label_names, path)

    assert_valid_png(written, path)


def test_embedding_map_values_tsne(tmp_path):
    rng = np.random.default_rng(1)
    speed = rng.uniform(0.5, 1.8, size=60)
    embeddings = np.outer(speed, rng.normal(size=16)) + rng.normal(scale=0.1, size=(60, 16))
    path = tmp_path / "tsne.png"

    written = plot_embedding_map(embeddings, speed, "walking speed (m/s)", path, method="tsne")

    assert_valid_png(written, path)


def test_embedding_map_label_numbers(tmp_path):
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(12), 10)
    embeddings = rng.normal(size=(120, 8)) + labels[:, None]
    path = tmp_path / "numbers.png"

    written = plot_embedding_map(embeddings, labels, None, path)

    assert_valid_png(written, path)


@pytest.mark.parametrize(
    ("embeddings", "values", "names", "kwargs", "message"),
    [
        (np.ones(10), np.zeros(10, dtype=int), None, {}, r"shape \(num_windows, hidden_size\)"),
        (np.ones((10, 4)), np.zeros(9, dtype=int), None, {}, r"must have shape \(10,\)"),
        (np.ones((10, 4)), np.zeros((10, 1), dtype=int), None, {}, r"must have shape \(10,\)"),
        (np.full((10, 4), np.nan), np.zeros(10, dtype=int), None, {}, "nan or infinity"),
        (np.ones((10, 4)), np.arange(10), ["a", "b"], {}, "has 2 class names"),
        (np.ones((10, 4)), np.arange(10), "speed", {}, "sequence of class names"),
        (np.ones((10, 4)), np.linspace(0, 1, 10), ["a"], {}, "colour bar label"),
        (np.ones((10, 4)), np.array(["a"] * 10), None, {}, "integer class labels or float values"),
        (np.ones((10, 4)), np.zeros(10, dtype=int), None, {"method": "umap"}, "must be one of pca, tsne"),
        (np.ones((3, 4)), np.zeros(3, dtype=int), None, {"method": "tsne"}, "at least 4 embeddings"),
    ],
)
def test_embedding_map_wrong_input_raises(tmp_path, embeddings, values, names, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plot_embedding_map(embeddings, values, names, tmp_path / "map.png", **kwargs)


def test_missing_matplotlib_message(tmp_path, monkeypatch):
    for module in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, module, None)

    assert not is_matplotlib_available()
    with pytest.raises(ImportError, match=r"relcon-hf\[plots\]"):
        plot_confusion_matrix(np.eye(2), ["a", "b"], tmp_path / "confusion.png")
    assert plots.MATPLOTLIB_INSTALL_HINT.startswith("Plots need matplotlib")
    assert not (tmp_path / "confusion.png").exists()
