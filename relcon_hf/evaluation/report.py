# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Output files of `relcon-hf evaluate`: results JSON and Markdown, per-window predictions, plots, and on request a
fine-tuned checkpoint trained on all subjects."""

import csv
import json
import logging
import math
import shutil
import warnings
from pathlib import Path

import numpy as np

from .datasets import EvaluationDataset
from .protocols import EvaluationOutcome, EvaluationSettings, dataset_targets, make_subject_folds


logger = logging.getLogger(__name__)

RESULTS_FILE = "evaluation_results.json"
RESULTS_MARKDOWN = "results.md"
PREDICTIONS_FILE = "predictions.csv"

_METRIC_LABELS = {
    "macro_f1": "macro-F1",
    "cohen_kappa": "Cohen's kappa",
    "accuracy": "accuracy",
    "mae": "MAE",
    "rmse": "RMSE",
    "pearson_r": "Pearson r",
    "spearman_r": "Spearman r",
    "bland_altman_bias": "Bland-Altman bias",
}


def _format_value(value: float | None, percent: bool) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{100 * value:.1f}" if percent else f"{value:.3g}"


def results_markdown(results: dict) -> str:
    """
    Format a results document as Markdown: the summary metrics (mean +- standard deviation over folds), then one
    row per fold, then the command that produced it.
    """
    classification = results["problem_type"] == "single_label_classification"
    lines = [
        f"# {results['task'].capitalize()}: {results['dataset']['name']}",
        "",
        f"- Protocol: {results['protocol']}.",
        f"- Data: {results['dataset']['description']}.",
        f"- Encoder: `{results['model']}` ({results['encoder_weights']} weights).",
        "",
    ]
    unit = " (%)" if classification else ""
    lines += [f"| metric | target | mean{unit} | std{unit} |", "| --- | --- | --- | --- |"]
    for metric in results["metrics"]:
        label = _METRIC_LABELS.get(metric["name"], metric["name"])
        target = metric.get("target", "")
        units = dict(zip(results["label_names"], results.get("target_units") or [], strict=False))
        target_text = f"{target} ({units[target]})" if target in units else target
        lines.append(
            f"| {label} | {target_text or '-'} | {_format_value(metric['value'], classification)} | "
            f"{_format_value(metric.get('std'), classification)} |"
        )
    lines += ["", "Per fold:", ""]
    if classification:
        lines += [
            "| fold | test subjects | macro-F1 (%) | kappa (%) | accuracy (%) |",
            "| --- | --- | --- | --- | --- |",
        ]
        for fold in results["folds"]:
            lines.append(
                f"| {fold['fold']} | {', '.join(fold['test_subjects'])} | {_format_value(fold['macro_f1'], True)} | "
                f"{_format_value(fold['cohen_kappa'], True)} | {_format_value(fold['accuracy'], True)} |"
            )
    else:
        lines += [
            "| fold | test subjects | target | MAE | RMSE | Pearson r |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for fold in results["folds"]:
            for target in results["label_names"]:
                scores = fold[target]
                lines.append(
                    f"| {fold['fold']} | {', '.join(fold['test_subjects'])} | {target} | "
                    f"{_format_value(scores['mae'], False)} | {_format_value(scores['rmse'], False)} | "
                    f"{_format_value(scores['pearson_r'], False)} |"
                )
    if results.get("command"):
        lines += ["", "Command:", "", "```bash", results["command"], "```"]
    return "\n".join(lines) + "\n"


def write_results(outcome: EvaluationOutcome, dataset: EvaluationDataset, output_dir: str | Path) -> list[Path]:
    """
    Write the results JSON, the Markdown table, the test predictions of every fold and the plots to `output_dir`.

    Returns:
        `list[Path]` of the files written.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    path = output_dir / RESULTS_FILE
    path.write_text(json.dumps(_finite_or_null(outcome.results), indent=2, default=_json_default) + "\n")
    written.append(path)
    path = output_dir / RESULTS_MARKDOWN
    path.write_text(results_markdown(outcome.results))
    written.append(path)
    written.append(_write_predictions(outcome, dataset, output_dir / PREDICTIONS_FILE))
    written += _write_plots(outcome, dataset, output_dir)
    return written


def _finite_or_null(value: object) -> object:
    """Replace nan and infinite floats with `None`, which JSON has, unlike nan."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_null(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_null(item) for item in value]
    return value


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"Cannot write {type(value).__name__} to JSON.")


def _write_predictions(outcome: EvaluationOutcome, dataset: EvaluationDataset, path: Path) -> Path:
    truth = dataset_targets(dataset)
    classification = dataset.task == "classification"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        if classification:
            writer.writerow(["fold", "window", "subject", "recording", "window_start_s", "label", "predicted"])
        else:
            header = ["fold", "window", "subject", "recording", "window_start_s"]
            header += [f"{name}_{kind}" for name in dataset.label_names for kind in ("reference", "predicted")]
            writer.writerow(header)
        for fold_index, fold in enumerate(outcome.predictions):
            for row, prediction in zip(fold.test, fold.predictions, strict=True):
                base = [
                    fold_index,
                    int(row),
                    dataset.subjects[row],
                    "" if dataset.recordings is None else dataset.recordings[row],
                    "" if dataset.window_times is None else f"{float(dataset.window_times[row]):.2f}",
                ]
                if classification:
                    writer.writerow(base + [dataset.label_names[truth[row]], dataset.label_names[int(prediction)]])
                else:
                    values = [f"{float(v):.6g}" for pair in zip(truth[row], prediction, strict=True) for v in pair]
                    writer.writerow(base + values)
    return path


def _write_plots(outcome: EvaluationOutcome, dataset: EvaluationDataset, output_dir: Path) -> list[Path]:
    """Confusion matrix or regression plots of the pooled test predictions, and a 2-D map of the test embeddings."""
    from .plots import is_matplotlib_available, plot_confusion_matrix, plot_embedding_map, plot_regression

    if not is_matplotlib_available():
        logger.warning(
            "No plots written: matplotlib is not installed. Install it with pip install 'relcon-hf[plots]'."
        )
        return []
    if not outcome.predictions:
        return []
    rows = np.concatenate([fold.test for fold in outcome.predictions])
    predicted = np.concatenate([fold.predictions for fold in outcome.predictions])
    truth = dataset_targets(dataset)[rows]
    written = []
    colour_names: list[str] | str
    if dataset.task == "classification":
        from .metrics import classification_metrics

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # classes that no test subject performed
            matrix = classification_metrics(truth, predicted, labels=list(range(len(dataset.label_names))))
        written.append(
            plot_confusion_matrix(
                np.asarray(matrix["confusion_matrix"]), dataset.label_names, output_dir / "confusion_matrix.png"
            )
        )
        colours, colour_names = truth, list(dataset.label_names)
    else:
        for index, (name, unit) in enumerate(zip(dataset.label_names, dataset.target_units, strict=True)):
            written.append(
                plot_regression(
                    truth[:, index], predicted[:, index], name, unit, output_dir / f"regression_{name}.png"
                )
            )
        colours, colour_names = truth[:, 0], f"{dataset.label_names[0]} ({dataset.target_units[0]})"
    embeddings = [fold.embeddings for fold in outcome.predictions if fold.embeddings is not None]
    if len(embeddings) == len(outcome.predictions):
        written.append(
            plot_embedding_map(np.concatenate(embeddings), colours, colour_names, output_dir / "embedding_map.png")
        )
    return written


def save_final_model(
    model_dir: str | Path,
    dataset: EvaluationDataset,
    settings: EvaluationSettings,
    save_dir: str | Path,
    results_file: str | Path | None = None,
) -> Path:
    """
    Fine-tune on every subject of `dataset` (a seeded share held out for validation, as in each fold), save the
    model to `save_dir`, and return `save_dir`. With `results_file` (the cross-validation results of
    `relcon-hf evaluate`), the results are copied next to the model and a model card is written from them.

    The checkpoint loads with `AutoModelForSequenceClassification.from_pretrained(save_dir)`; its `id2label` names
    the classes or targets, and regression outputs come out in the targets' units.
    """
    from ..hub.model_card import write_model_card
    from .finetune import train_head

    save_dir = Path(save_dir)
    # A three-way split into training, validation and an empty test set: take the validation subjects of a
    # leave-one-out fold whose test subject is then put back into training.
    folds = make_subject_folds(
        dataset.subjects, "loso", seed=settings.seed, validation_fraction=settings.validation_fraction
    )
    validation = folds[0].validation
    train = np.setdiff1d(np.arange(len(dataset)), validation)
    input_mean = input_std = None
    if dataset.standardize_inputs:
        values = dataset.windows.reshape(-1, dataset.windows.shape[-1]).astype(np.float64)
        input_mean, input_std = values.mean(axis=0), np.maximum(values.std(axis=0), 1e-6)
    logger.info(
        f"Training the model to save on {len(train)} windows; {len(validation)} windows of subjects "
        f"{', '.join(folds[0].validation_subjects)} choose the epoch"
    )
    train_head(
        model_dir,
        dataset,
        settings,
        train_rows=train,
        validation_rows=validation,
        output_dir=save_dir,
        input_mean=input_mean,
        input_std=input_std,
    )
    from ..training.loop import process_state

    if not process_state().is_main_process:
        return save_dir
    # The loop keeps the best weights in `best/` while training; the saved folder already contains them.
    shutil.rmtree(save_dir / "best", ignore_errors=True)
    if results_file is None:
        return save_dir
    target = save_dir / RESULTS_FILE
    target.write_text(Path(results_file).read_text())
    write_model_card(save_dir, repo_id=f"your-name/{save_dir.name}", evaluation_results=target)
    return save_dir
