# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Figures of downstream results, written as PNG files: confusion matrices, regression agreement and embedding maps.

matplotlib is optional (`pip install "relcon-hf[plots]"`). Every function raises `ImportError` with that hint when it
is missing, and [`is_matplotlib_available`] lets a caller skip the figures beforehand. Figures are drawn with the Agg
canvas on `matplotlib.figure.Figure` objects, without pyplot, so the caller's pyplot backend and open figures are left
as they are.
"""

import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from .metrics import regression_metrics


logger = logging.getLogger(__name__)

MATPLOTLIB_INSTALL_HINT = (
    'Plots need matplotlib, which is not installed. Install it with `pip install "relcon-hf[plots]"`.'
)
EMBEDDING_MAP_METHODS = ("pca", "tsne")
# Cells are annotated with their values up to this many classes, because more would make the text overlap.
MAX_ANNOTATED_CLASSES = 20
DPI = 150


def is_matplotlib_available() -> bool:
    """Return whether matplotlib can be imported, so a caller can skip the figures with a message."""
    return importlib.util.find_spec("matplotlib") is not None


def plot_confusion_matrix(
    matrix: np.ndarray | Sequence[Sequence[int]],
    label_names: Sequence[str],
    path: str | Path,
    normalize: bool = True,
) -> Path:
    """
    Draw a confusion matrix as a heat map and write it as a PNG file.

    Args:
        matrix (`np.ndarray` of shape `(num_classes, num_classes)`): Counts, rows are reference classes and columns
            predicted classes, as `confusion_matrix` of [`classification_metrics`] returns them.
        label_names (sequence of `str` of length `num_classes`): Class names in the order of the rows.
        path (`str` or `os.PathLike`): Output file; must end in `.png`. Missing parent folders are created.
        normalize (`bool`): Divide each row by its sum, so that the diagonal shows the recall of each class. Rows of
            classes without reference samples stay 0.

    Returns:
        `pathlib.Path`: The file written.

    Raises:
        `ValueError`: `matrix` is not square, does not match `label_names`, or has negative or non-finite counts.
        `ImportError`: matplotlib is not installed.
    """
    counts = np.asarray(matrix, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] == 0:
        raise ValueError(f"`matrix` must have shape (num_classes, num_classes), got {counts.shape}.")
    if len(label_names) != counts.shape[0]:
        raise ValueError(
            f"`label_names` must name each of the {counts.shape[0]} classes of `matrix`, got {len(label_names)} names."
        )
    if not np.isfinite(counts).all() or (counts < 0).any():
        raise ValueError("`matrix` must contain finite, non-negative counts.")
    path = _check_png_path(path)
    figure_class, canvas_class = _import_matplotlib()

    if normalize:
        row_sums = counts.sum(axis=1, keepdims=True)
        values = np.divide(counts, row_sums, out=np.zeros_like(counts), where=row_sums > 0)
    else:
        values = counts

    num_classes = counts.shape[0]
    size = max(4.0, 0.5 * num_classes + 2.5)
    figure = figure_class(figsize=(size + 1.0, size))
    canvas_class(figure)
    axes = figure.add_subplot()
    image = axes.imshow(values, cmap="Blues", vmin=0.0, vmax=1.0 if normalize else max(values.max(), 1.0))
    figure.colorbar(image, ax=axes, label="fraction of reference class" if normalize else "count")
    axes.set_xticks(range(num_classes), labels=list(label_names), rotation=45, ha="right")
    axes.set_yticks(range(num_classes), labels=list(label_names))
    axes.set_xlabel("predicted class")
    axes.set_ylabel("reference class")
    axes.set_title("Confusion matrix, rows normalised" if normalize else "Confusion matrix, counts")

    if num_classes <= MAX_ANNOTATED_CLASSES:
        threshold = 0.5 * (1.0 if normalize else values.max())
        for row in range(num_classes):
            for column in range(num_classes):
                value = values[row, column]
                text = f"{value:.2f}" if normalize else f"{int(value)}"
                color = "white" if value > threshold else "black"
                axes.text(column, row, text, ha="center", va="center", color=color, fontsize=8)

    return _save(figure, path)


def plot_regression(
    y_true: np.ndarray | Sequence[float],
    y_pred: np.ndarray | Sequence[float],
    target_name: str,
    unit: str,
    path: str | Path,
) -> Path:
    """
    Draw predictions against references (with the identity line) beside a Bland-Altman plot, and write a PNG file.

    The Bland-Altman panel plots the difference `y_pred - y_true` against the mean of each pair, with lines at the
    bias and at the 95% limits of agreement of [`regression_metrics`].

    Args:
        y_true (`np.ndarray` of shape `(num_samples,)`): Reference values of one target.
        y_pred (`np.ndarray` of shape `(num_samples,)`): Predicted values in the same unit.
        target_name (`str`): Name of the target for titles and axis labels, e.g. "walking speed".
        unit (`str`): Unit for the axis labels, e.g. "m/s"; an empty string leaves it out.
        path (`str` or `os.PathLike`): Output file; must end in `.png`. Missing parent folders are created.

    Returns:
        `pathlib.Path`: The file written.

    Raises:
        `ValueError`: The inputs are not 1-D, differ in length, have fewer than 2 samples or contain nan or infinity.
        `ImportError`: matplotlib is not installed.
    """
    references = np.asarray(y_true, dtype=np.float64)
    predictions = np.asarray(y_pred, dtype=np.float64)
    if references.ndim != 1 or predictions.ndim != 1:
        raise ValueError(
            f"`y_true` and `y_pred` must be 1-D (one target), got shapes {references.shape} and {predictions.shape}. "
            "Plot each target column separately."
        )
    if len(references) < 2:
        raise ValueError(f"A regression plot needs at least 2 samples, got {len(references)}.")
    scores = regression_metrics(references, predictions)
    path = _check_png_path(path)
    figure_class, canvas_class = _import_matplotlib()

    unit_suffix = f" ({unit})" if unit else ""
    figure = figure_class(figsize=(11.0, 5.0), layout="constrained")
    canvas_class(figure)
    scatter_axes, agreement_axes = figure.subplots(1, 2)

    low = min(references.min(), predictions.min())
    high = max(references.max(), predictions.max())
    scatter_axes.scatter(references, predictions, s=12, alpha=0.6)
    scatter_axes.plot([low, high], [low, high], color="black", linewidth=1, label="identity")
    scatter_axes.set_xlabel(f"reference {target_name}{unit_suffix}")
    scatter_axes.set_ylabel(f"predicted {target_name}{unit_suffix}")
    scatter_axes.set_title(
        f"{target_name}: MAE {scores['mae']:.3g}, Pearson r {scores['pearson_r']:.3f}, "
        f"Spearman r {scores['spearman_r']:.3f}",
        fontsize=10,
    )
    scatter_axes.legend(loc="upper left")

    means = (references + predictions) / 2
    differences = predictions - references
    agreement_axes.scatter(means, differences, s=12, alpha=0.6)
    lines = (
        ("bland_altman_upper", "upper limit", "--"),
        ("bland_altman_bias", "bias", "-"),
        ("bland_altman_lower", "lower limit", "--"),
    )
    for key, name, style in lines:
        agreement_axes.axhline(scores[key], color="black", linestyle=style, linewidth=1)
        agreement_axes.annotate(
            f"{name} {scores[key]:.3g}",
            xy=(1.0, scores[key]),
            xycoords=("axes fraction", "data"),
            xytext=(-4, 2),
            textcoords="offset points",
            ha="right",
            fontsize=8,
        )
    agreement_axes.set_xlabel(f"mean of reference and prediction{unit_suffix}")
    agreement_axes.set_ylabel(f"prediction - reference{unit_suffix}")
    agreement_axes.set_title("Bland-Altman, 95% limits of agreement", fontsize=10)

    return _save(figure, path)


def plot_embedding_map(
    embeddings: np.ndarray,
    labels_or_values: np.ndarray | Sequence,
    names: Sequence[str] | str | None,
    path: str | Path,
    method: str = "pca",
) -> Path:
    """
    Project embeddings to 2-D and write a scatter plot coloured by class or by a continuous value as a PNG file.

    Args:
        embeddings (`np.ndarray` of shape `(num_windows, hidden_size)`): Embeddings, e.g. `pooler_output`.
        labels_or_values (`np.ndarray` of shape `(num_windows,)`): Integer class labels (coloured by class, with a
            legend) or float values such as walking speed (coloured on a scale, with a colour bar).
        names (sequence of `str`, `str` or `None`): For class labels, the class names indexed by label (`None` shows
            the label numbers). For float values, the colour bar label, e.g. "walking speed (m/s)".
        path (`str` or `os.PathLike`): Output file; must end in `.png`. Missing parent folders are created.
        method (`str`): "pca" (default, `sklearn.decomposition.PCA`) or "tsne" (`sklearn.manifold.TSNE` with PCA
            initialisation and a fixed seed). t-SNE needs at least 4 windows and is much slower on thousands.

    Returns:
        `pathlib.Path`: The file written.

    Raises:
        `ValueError`: Shapes do not match, an input contains nan or infinity, `names` does not fit the labels, or
            `method` is unknown.
        `ImportError`: matplotlib is not installed.
    """
    embeddings = np.asarray(embeddings, dtype=np.float64)
    colours = np.asarray(labels_or_values)
    if embeddings.ndim != 2 or embeddings.shape[0] < 2 or embeddings.shape[1] < 2:
        raise ValueError(
            f"`embeddings` must have shape (num_windows, hidden_size) with at least 2 of each, got {embeddings.shape}."
        )
    if colours.shape != (embeddings.shape[0],):
        raise ValueError(
            f"`labels_or_values` must have shape ({embeddings.shape[0]},), one entry per embedding, "
            f"got {colours.shape}."
        )
    if not np.isfinite(embeddings).all():
        raise ValueError("`embeddings` contains nan or infinity.")
    if method not in EMBEDDING_MAP_METHODS:
        raise ValueError(f"`method` must be one of {', '.join(EMBEDDING_MAP_METHODS)}, got {method!r}.")
    if method == "tsne" and embeddings.shape[0] < 4:
        raise ValueError(f"`method='tsne'` needs at least 4 embeddings, got {embeddings.shape[0]}. Use 'pca'.")
    categorical = np.issubdtype(colours.dtype, np.integer) or colours.dtype == np.bool_
    if categorical:
        _check_class_names(colours, names)
    elif np.issubdtype(colours.dtype, np.floating):
        if not isinstance(names, str):
            raise ValueError(f"For float values, `names` must be the colour bar label as a string, got {names!r}.")
        if not np.isfinite(colours).all():
            raise ValueError("`labels_or_values` contains nan or infinity.")
    else:
        raise ValueError(
            f"`labels_or_values` must be integer class labels or float values, got dtype {colours.dtype}. "
            "Map string classes to integers and pass their names as `names`."
        )
    path = _check_png_path(path)
    figure_class, canvas_class = _import_matplotlib()

    points, axis_names = _project(embeddings, method)

    figure = figure_class(figsize=(8.0, 6.0), layout="constrained")
    canvas_class(figure)
    axes = figure.add_subplot()
    marker_size = 20 if len(points) <= 2000 else 4
    if categorical:
        classes = np.unique(colours)
        palette = _class_colours(len(classes))
        for colour, label in zip(palette, classes, strict=True):
            selected = colours == label
            legend_name = str(names[int(label)]) if names is not None else str(label)
            axes.scatter(points[selected, 0], points[selected, 1], s=marker_size, color=colour, label=legend_name)
        axes.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, markerscale=1.5)
    else:
        scatter = axes.scatter(points[:, 0], points[:, 1], s=marker_size, c=colours, cmap="viridis")
        figure.colorbar(scatter, ax=axes, label=names)
    axes.set_xlabel(axis_names[0])
    axes.set_ylabel(axis_names[1])
    axes.set_title(f"Embeddings of {len(points)} windows, {method.upper()} map")

    return _save(figure, path)


def _check_class_names(labels: np.ndarray, names: Sequence[str] | str | None) -> None:
    if names is None:
        return
    if isinstance(names, str):
        raise ValueError(
            f"For class labels, `names` must be a sequence of class names indexed by label, got the string {names!r}."
        )
    if labels.min() < 0 or labels.max() >= len(names):
        raise ValueError(
            f"`names` has {len(names)} class names but the labels range from {labels.min()} to {labels.max()}. "
            "Pass one name per label index."
        )


def _project(embeddings: np.ndarray, method: str) -> tuple[np.ndarray, tuple[str, str]]:
    """Return the 2-D coordinates of the embeddings and the names of the two axes."""
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=0)
        points = pca.fit_transform(embeddings)
        explained = 100 * pca.explained_variance_ratio_
        return points, (f"PC 1 ({explained[0]:.1f}% of variance)", f"PC 2 ({explained[1]:.1f}% of variance)")

    from sklearn.manifold import TSNE

    # Perplexity must be below the number of samples; 30 is scikit-learn's default for larger sets.
    perplexity = min(30.0, (len(embeddings) - 1) / 3)
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=0)
    # One OpenMP thread: on a busy 2-core CPU, 60 points took 38 s with the default thread pool and 0.17 s with one
    # (scikit-learn 1.9, load average 8).
    with threadpool_limits(limits=1):
        points = tsne.fit_transform(embeddings)
    return points, ("t-SNE 1", "t-SNE 2")


def _class_colours(num_classes: int) -> list[Any]:
    from matplotlib import colormaps

    colormap = colormaps["tab10" if num_classes <= 10 else "tab20"]
    if num_classes <= colormap.N:
        return [colormap(index) for index in range(num_classes)]
    # More classes than the qualitative map has colours: spread them over a continuous map.
    return [colormaps["turbo"](index / (num_classes - 1)) for index in range(num_classes)]


def _check_png_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"`path` must end in .png because the figures are written as PNG, got {str(path)!r}.")
    return path


def _import_matplotlib():
    """Return matplotlib's `Figure` and Agg canvas classes, or raise `ImportError` with the install hint."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(MATPLOTLIB_INSTALL_HINT) from error
    return Figure, FigureCanvasAgg


def _save(figure: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=DPI, bbox_inches="tight")
    logger.info("Wrote %s", path)
    return path
