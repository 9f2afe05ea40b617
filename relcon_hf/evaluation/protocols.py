# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Downstream protocols of the RelCon paper with whole subjects held out: linear probe, MLP probe, fine-tuning and
training from scratch, for activity classes and for gait targets.

Every protocol runs the same subject-wise folds. In each fold the test subjects are held out, and a seeded share of
the remaining subjects becomes the validation subjects. They choose the L2 strength of the linear probe and the
stopping epoch of the MLP probe and of fine-tuning. The rest are the training subjects.
"""

import logging
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression, Ridge
from threadpoolctl import threadpool_limits
from torch import nn

from ..modeling import RelConConfig, RelConModel
from .datasets import EvaluationDataset, check_split
from .linear_probe import embed_windows
from .metrics import classification_metrics, regression_metrics


logger = logging.getLogger(__name__)

PROTOCOLS = ("linear-probe", "mlp-probe", "finetune", "scratch")
PROBE_PROTOCOLS = ("linear-probe", "mlp-probe")

# Scalar metrics summarised over folds, in the order of results tables.
CLASSIFICATION_SUMMARY = ("macro_f1", "cohen_kappa", "accuracy")
REGRESSION_SUMMARY = ("mae", "rmse", "pearson_r", "spearman_r", "bland_altman_bias")


@dataclass
class EvaluationSettings:
    """
    Settings of one evaluation run.

    Args:
        protocol (`str`): One of `PROTOCOLS`.
        seed (`int`): Seed of the fold assignment, the validation subjects, head initialisation and batch order.
        split (`str`, *optional*): "loso" or "kfold-<k>"; defaults to the dataset's published split.
        validation_fraction (`float`): Share of each fold's non-test subjects held out for validation (at least one).
        max_folds (`int`, *optional*): Run only the first this many folds, to fit a compute budget.
        random_init (`bool`): Probe a randomly initialised encoder of the same architecture instead of the
            checkpoint's weights. This is the probes' baseline; the fine-tuning baseline is the `scratch` protocol.
        l2_grid (`tuple[float, ...]`): Inverse L2 strengths `C` of the logistic regression (for regression, ridge
            `alpha = 1 / C`).
        mlp_hidden_size (`int`): Hidden width of the MLP probe and of the fine-tuned head.
        mlp_learning_rate (`float`): Adam learning rate of the MLP probe.
        mlp_batch_size (`int`): Embeddings per MLP-probe batch.
        mlp_max_epochs (`int`): Most MLP-probe epochs.
        mlp_patience (`int`): MLP-probe epochs without a better validation score (macro-F1 for classification,
            loss for regression) before stopping.
        epochs (`int`): Fine-tuning epochs.
        batch_size (`int`): Fine-tuning windows per batch.
        learning_rate (`float`): Fine-tuning Adam learning rate.
        dropout (`float`): Dropout before each linear layer of the fine-tuned head.
        embed_batch_size (`int`): Windows per forward pass when embedding for the probes.
    """

    protocol: str
    seed: int = 0
    split: str | None = None
    validation_fraction: float = 0.2
    max_folds: int | None = None
    random_init: bool = False
    l2_grid: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
    mlp_hidden_size: int = 512
    mlp_learning_rate: float = 1e-3
    mlp_batch_size: int = 64
    mlp_max_epochs: int = 200
    mlp_patience: int = 10
    epochs: int = 10
    batch_size: int = 16
    learning_rate: float = 1e-3
    dropout: float = 0.1
    embed_batch_size: int = 256

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"`protocol` must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}.")
        if self.split is not None:
            check_split(self.split)
        if not 0 < self.validation_fraction < 1:
            raise ValueError(
                f"`validation_fraction` must lie strictly between 0 and 1, got {self.validation_fraction}."
            )
        for name in ("mlp_hidden_size", "mlp_batch_size", "mlp_max_epochs", "mlp_patience", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        if self.max_folds is not None and self.max_folds < 1:
            raise ValueError(f"`max_folds` must be a positive integer or None, got {self.max_folds!r}.")
        if self.random_init and self.protocol not in PROBE_PROTOCOLS:
            raise ValueError(
                f"`random_init` applies to the probes ({', '.join(PROBE_PROTOCOLS)}); for fine-tuning from random "
                f"weights use the `scratch` protocol instead of {self.protocol!r}."
            )
        if not self.l2_grid or any(not value > 0 for value in self.l2_grid):
            raise ValueError(f"`l2_grid` must hold positive values, got {self.l2_grid!r}.")


@dataclass
class SubjectFold:
    """Window indices of one fold: training, validation and test subjects are disjoint."""

    index: int
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    test_subjects: list[str]
    validation_subjects: list[str]


def make_subject_folds(
    subjects: np.ndarray, split: str, *, seed: int = 0, validation_fraction: float = 0.2
) -> list[SubjectFold]:
    """
    Split windows into subject-wise folds.

    "loso" makes one fold per subject. "kfold-<k>" shuffles the subjects with `seed` and deals them into `k` test
    groups of nearly equal size. In every fold, `validation_fraction` of the other subjects (at least one, drawn with
    a seed derived from `seed` and the fold) are validation subjects and the rest are training subjects.

    Args:
        subjects (`np.ndarray` of shape `(num_windows,)`): Subject of each window.
        split (`str`): "loso" or "kfold-<k>".

    Returns:
        `list[SubjectFold]`, one per test group, in order.
    """
    subjects = np.asarray(subjects).astype(str)
    unique = np.unique(subjects)
    num_folds = check_split(split)
    if num_folds is None:
        test_groups = [np.array([subject]) for subject in unique]
    else:
        if num_folds > len(unique):
            raise ValueError(
                f"Split {split!r} needs at least {num_folds} subjects, but the data has {len(unique)}. Use a "
                f"smaller k or --split loso."
            )
        test_groups = np.array_split(np.random.default_rng(seed).permutation(unique), num_folds)
    if len(unique) < 3:
        raise ValueError(
            f"Subject-wise evaluation needs at least 3 subjects (training, validation and test), got {len(unique)}."
        )

    folds = []
    for index, test_subjects in enumerate(test_groups):
        rest = np.setdiff1d(unique, test_subjects)
        if len(rest) < 2:
            raise ValueError(
                f"Split {split!r} leaves {len(rest)} subject outside test fold {index} of {len(unique)} subjects, but "
                "each fold needs at least one training and one validation subject. Use more folds (for example "
                "--split loso)."
            )
        num_validation = min(max(1, round(validation_fraction * len(rest))), len(rest) - 1)
        validation_subjects = np.random.default_rng([seed, index]).choice(rest, num_validation, replace=False)
        train_subjects = np.setdiff1d(rest, validation_subjects)
        folds.append(
            SubjectFold(
                index=index,
                train=np.flatnonzero(np.isin(subjects, train_subjects)),
                validation=np.flatnonzero(np.isin(subjects, validation_subjects)),
                test=np.flatnonzero(np.isin(subjects, test_subjects)),
                test_subjects=sorted(test_subjects.tolist()),
                validation_subjects=sorted(validation_subjects.tolist()),
            )
        )
    return folds


@dataclass
class FoldPredictions:
    """Test-set outputs of one fold, kept for pooled plots."""

    test: np.ndarray
    predictions: np.ndarray
    embeddings: np.ndarray | None = None


@dataclass
class EvaluationOutcome:
    """Results of a run (the JSON written to `evaluation_results.json`) and the pooled test predictions."""

    results: dict
    predictions: list[FoldPredictions] = field(default_factory=list)


def run_evaluation(
    model_dir: str | Path,
    dataset: EvaluationDataset,
    settings: EvaluationSettings,
    *,
    work_dir: str | Path,
    command: str | None = None,
) -> EvaluationOutcome:
    """
    Run `settings.protocol` on `dataset` with the encoder in `model_dir`, fold by fold.

    Args:
        model_dir (`str` or `Path`): A RelCon encoder checkpoint (or a task head, whose encoder is used).
        dataset ([`EvaluationDataset`]): Windows with labels or targets.
        settings ([`EvaluationSettings`]): The protocol and its settings.
        work_dir (`str` or `Path`): Folder for the fine-tuning runs of each fold.
        command (`str`, *optional*): The command line, stored with the results.

    Returns:
        [`EvaluationOutcome`] with the results (format version 1 of `load_evaluation_results`, plus `folds`,
        `command` and run details) and the test predictions of each fold.
    """
    started = time.perf_counter()
    split = settings.split or dataset.split
    folds = make_subject_folds(
        dataset.subjects, split, seed=settings.seed, validation_fraction=settings.validation_fraction
    )
    num_folds_total = len(folds)
    if settings.max_folds is not None:
        folds = folds[: settings.max_folds]
    encoder = _load_encoder(model_dir, settings)
    check_window_length(encoder.config, dataset)

    fold_results, predictions = [], []
    shared_embeddings = None
    for fold in folds:
        logger.info(
            f"{settings.protocol} fold {fold.index + 1}/{len(folds)}: {len(fold.train)} training, "
            f"{len(fold.validation)} validation and {len(fold.test)} test windows; test subjects "
            f"{', '.join(fold.test_subjects)}"
        )
        input_mean, input_std = _input_statistics(dataset, fold)
        if settings.protocol in PROBE_PROTOCOLS:
            if input_mean is None and shared_embeddings is None:
                shared_embeddings = embed_windows(encoder, dataset.windows, batch_size=settings.embed_batch_size)
            embeddings = (
                shared_embeddings
                if input_mean is None
                else embed_windows(
                    encoder, (dataset.windows - input_mean) / input_std, batch_size=settings.embed_batch_size
                )
            )
            assert embeddings is not None
            fold_output, details = _run_probe(embeddings, dataset, fold, settings)
            fold_embeddings = embeddings[fold.test]
        else:
            fold_output, fold_embeddings, details = _run_finetune(
                model_dir, dataset, fold, settings, Path(work_dir) / f"fold_{fold.index}", input_mean, input_std
            )
        scores = score_predictions(dataset, dataset_targets(dataset)[fold.test], fold_output)
        fold_results.append(
            {
                "fold": fold.index,
                "test_subjects": fold.test_subjects,
                "validation_subjects": fold.validation_subjects,
                "num_train": int(len(fold.train)),
                "num_validation": int(len(fold.validation)),
                "num_test": int(len(fold.test)),
                **details,
                **scores,
            }
        )
        predictions.append(FoldPredictions(test=fold.test, predictions=fold_output, embeddings=fold_embeddings))

    results = _results_document(dataset, settings, encoder, split, num_folds_total, fold_results, model_dir, command)
    results["runtime_seconds"] = round(time.perf_counter() - started, 1)
    return EvaluationOutcome(results=results, predictions=predictions)


def check_window_length(config: RelConConfig, dataset: EvaluationDataset) -> None:
    """Raise `ValueError` when the dataset's windows are shorter than the encoder accepts or at another rate."""
    if dataset.window_length < config.min_sequence_length:
        raise ValueError(
            f"{dataset.name} windows have {dataset.window_length} samples, fewer than the "
            f"{config.min_sequence_length} the encoder needs. Load the dataset with longer windows."
        )
    if abs(dataset.sampling_rate - config.sampling_rate) > 1e-6:
        raise ValueError(
            f"{dataset.name} windows are sampled at {dataset.sampling_rate} Hz, but the encoder expects "
            f"{config.sampling_rate} Hz. Resample the dataset to the encoder's rate."
        )


def dataset_targets(dataset: EvaluationDataset) -> np.ndarray:
    """Return the labels (classification) or the targets (regression) of every window."""
    values = dataset.labels if dataset.task == "classification" else dataset.targets
    assert values is not None  # checked by EvaluationDataset
    return values


def score_predictions(dataset: EvaluationDataset, truth: np.ndarray, predictions: np.ndarray) -> dict:
    """Metrics of one fold: classification metrics, or regression metrics per target keyed by target name."""
    if dataset.task == "classification":
        # Accuracy, macro-F1 and kappa count the classes that occur in this fold's references or predictions, as
        # scikit-learn does by default: a class that none of the test subjects performed would otherwise add an F1
        # of zero. The confusion matrix and the recall per class cover every class, with nan for absent ones.
        present = np.union1d(truth, predictions)
        scores = classification_metrics(truth, predictions, labels=present)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            every_class = classification_metrics(
                truth, predictions, labels=list(range(len(dataset.label_names))), zero_division=math.nan
            )
        scores["per_class_recall"] = every_class["per_class_recall"]
        scores["confusion_matrix"] = every_class["confusion_matrix"]
        scores["labels"] = every_class.get("labels", list(range(len(dataset.label_names))))
        return scores
    return {
        name: regression_metrics(truth[:, index], predictions[:, index])
        for index, name in enumerate(dataset.label_names)
    }


# ---------------------------------------------------------------------------------------------------------------------
# Probes


def load_encoder_config(model_dir: str | Path) -> RelConConfig:
    """
    Read the configuration of the encoder checkpoint `model_dir`.

    Raises:
        `ValueError`: when no RelCon checkpoint can be read there; the message names the folder.
    """
    try:
        return RelConConfig.from_pretrained(model_dir)
    except OSError as error:
        raise ValueError(
            f"No RelCon checkpoint could be read from {str(model_dir)!r}: {error} Pass a folder written by "
            "save_pretrained (config.json and model.safetensors), or the Hub id of a model in the local cache."
        ) from None


def _load_encoder(model_dir: str | Path, settings: EvaluationSettings) -> RelConModel:
    load_encoder_config(model_dir)
    try:
        encoder = RelConModel.from_pretrained(model_dir)
    except OSError as error:
        raise ValueError(f"The weights of the checkpoint {str(model_dir)!r} could not be read: {error}") from None
    if settings.random_init:
        torch.manual_seed(settings.seed)
        encoder = RelConModel(encoder.config)
    return encoder.eval()


def _input_statistics(dataset: EvaluationDataset, fold: SubjectFold) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per-channel mean and standard deviation of the training and validation windows, when the protocol z-scores."""
    if not dataset.standardize_inputs:
        return None, None
    seen = np.concatenate([fold.train, fold.validation])
    values = dataset.windows[seen].reshape(-1, dataset.windows.shape[-1]).astype(np.float64)
    mean, std = values.mean(axis=0), values.std(axis=0)
    return mean.astype(np.float32), np.maximum(std, 1e-6).astype(np.float32)


def _run_probe(
    embeddings: np.ndarray, dataset: EvaluationDataset, fold: SubjectFold, settings: EvaluationSettings
) -> tuple[np.ndarray, dict]:
    """Fit a probe on the fold's training subjects, select it on the validation subjects, predict the test subjects."""
    targets = dataset_targets(dataset)
    if settings.protocol == "linear-probe":
        return _linear_probe(embeddings, targets, fold, dataset.task, settings.l2_grid)
    return _mlp_probe(embeddings, targets, fold, dataset, settings)


def _linear_probe(
    embeddings: np.ndarray, targets: np.ndarray, fold: SubjectFold, task: str, l2_grid: Sequence[float]
) -> tuple[np.ndarray, dict]:
    """
    Standardised embeddings and L2-regularised logistic (or ridge) regression.

    `C` is chosen by macro-F1 (classification) or mean squared error of standardised targets (regression) on the
    validation subjects, then the model is refit on training plus validation subjects.
    """
    scaler_rows = fold.train
    mean = embeddings[scaler_rows].mean(axis=0)
    std = embeddings[scaler_rows].std(axis=0) + 1e-8
    features = (embeddings - mean) / std

    def fit(c: float, rows: np.ndarray):
        if task == "classification":
            return LogisticRegression(C=c, max_iter=2000).fit(features[rows], targets[rows])
        return Ridge(alpha=1.0 / c).fit(features[rows], targets[rows])

    # One BLAS thread: beside torch's thread pool, lbfgs solves ran about 10 times slower with more on 2 cores.
    with threadpool_limits(limits=1):
        scores = []
        for c in l2_grid:
            predicted = fit(c, fold.train).predict(features[fold.validation])
            if task == "regression":
                # scikit-learn's Ridge returns 1-D predictions for a single target column.
                predicted = predicted.reshape(len(fold.validation), -1)
            if task == "classification":
                scores.append(_macro_f1(targets[fold.validation], predicted))
            else:
                scale = targets[fold.train].std(axis=0) + 1e-8
                scores.append(-float(np.mean(((predicted - targets[fold.validation]) / scale) ** 2)))
        best_c = float(l2_grid[int(np.argmax(scores))])
        # Refit on everything but the test subjects, with the scaler of those windows.
        seen = np.concatenate([fold.train, fold.validation])
        mean, std = embeddings[seen].mean(axis=0), embeddings[seen].std(axis=0) + 1e-8
        features = (embeddings - mean) / std
        predictions = fit(best_c, seen).predict(features[fold.test])
    if task == "regression":
        predictions = predictions.reshape(len(fold.test), -1)
    return predictions, {"C": best_c}


class _MLPProbe(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, output_size: int, dropout: float):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(input_size, hidden_size), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden_size, output_size)
        )

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.layers(inputs)


def _mlp_probe(
    embeddings: np.ndarray,
    targets: np.ndarray,
    fold: SubjectFold,
    dataset: EvaluationDataset,
    settings: EvaluationSettings,
) -> tuple[np.ndarray, dict]:
    """
    Train an MLP (embedding -> `mlp_hidden_size` -> outputs) on standardised embeddings and predict the test subjects
    with the weights of the epoch that scored best on the validation subjects (macro-F1, or loss for regression).
    """
    classification = dataset.task == "classification"
    mean = embeddings[fold.train].mean(axis=0)
    std = embeddings[fold.train].std(axis=0) + 1e-8
    features = torch.as_tensor((embeddings - mean) / std, dtype=torch.float32)
    if classification:
        labels = torch.as_tensor(targets, dtype=torch.long)
        output_size = len(dataset.label_names)
        loss_fn: nn.Module = nn.CrossEntropyLoss()
        target_mean, target_std = 0.0, 1.0
    else:
        target_mean = targets[fold.train].mean(axis=0)
        target_std = targets[fold.train].std(axis=0) + 1e-8
        labels = torch.as_tensor((targets - target_mean) / target_std, dtype=torch.float32)
        output_size = targets.shape[1]
        loss_fn = nn.MSELoss()

    generator = torch.Generator().manual_seed(settings.seed * 1000 + fold.index)
    torch.manual_seed(settings.seed * 1000 + fold.index)
    probe = _MLPProbe(features.shape[1], settings.mlp_hidden_size, output_size, settings.dropout)
    optimizer = torch.optim.Adam(probe.parameters(), lr=settings.mlp_learning_rate)
    train_rows = torch.as_tensor(fold.train)
    validation_rows = torch.as_tensor(fold.validation)

    # Classification stops on the validation macro-F1, the score the protocol reports: the cross-entropy of the
    # validation subjects rose after one or two epochs on the watch exercises while their macro-F1 still improved.
    best_score, best_loss, best_epoch, best_state, epochs_run = -math.inf, math.inf, 0, None, 0
    validation_truth = targets[fold.validation]
    for epoch in range(settings.mlp_max_epochs):
        probe.train()
        order = train_rows[torch.randperm(len(train_rows), generator=generator)]
        for start in range(0, len(order), settings.mlp_batch_size):
            rows = order[start : start + settings.mlp_batch_size]
            loss = loss_fn(probe(features[rows]), labels[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        epochs_run = epoch + 1
        probe.eval()
        with torch.no_grad():
            validation_outputs = probe(features[validation_rows])
            validation_loss = float(loss_fn(validation_outputs, labels[validation_rows]))
        if classification:
            validation_score = _macro_f1(validation_truth, validation_outputs.argmax(dim=1).numpy())
        else:
            validation_score = -validation_loss
        if validation_score > best_score:
            best_score, best_loss, best_epoch = validation_score, validation_loss, epoch + 1
            best_state = {name: value.clone() for name, value in probe.state_dict().items()}
        elif epoch + 1 - best_epoch >= settings.mlp_patience:
            break

    assert best_state is not None
    probe.load_state_dict(best_state)
    probe.eval()
    with torch.no_grad():
        outputs = probe(features[torch.as_tensor(fold.test)]).numpy()
    predictions = outputs.argmax(axis=1) if classification else outputs * target_std + target_mean
    details = {"best_epoch": best_epoch, "epochs_run": epochs_run, "best_validation_loss": best_loss}
    if classification:
        details["best_validation_macro_f1"] = best_score
    return predictions, details


def _macro_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Macro-F1 over the classes present in `truth` or `predicted`, without warnings for absent classes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(classification_metrics(truth, predicted)["macro_f1"])


# ---------------------------------------------------------------------------------------------------------------------
# Fine-tuning


def head_config(
    encoder_config: RelConConfig,
    dataset: EvaluationDataset,
    settings: EvaluationSettings,
    *,
    target_rows: np.ndarray,
    input_mean: np.ndarray | None,
    input_std: np.ndarray | None,
) -> RelConConfig:
    """
    Build the configuration of a `RelConForSequenceClassification` for `dataset`.

    It keeps the encoder's architecture and adds an MLP head, `id2label` naming the classes or targets, and the
    standardisation of targets (computed on `target_rows`) and inputs. The model's outputs then come out in physical
    units from raw windows.
    """
    config_dict = encoder_config.to_dict()
    for key in (
        "architectures",
        "auto_map",
        "id2label",
        "label2id",
        "problem_type",
        "num_labels",
        "transformers_version",
        "_name_or_path",
    ):
        config_dict.pop(key, None)
    id2label = dict(enumerate(dataset.label_names))
    extra: dict = {
        "window_length": dataset.window_length,
        "classifier_head": "mlp",
        "classifier_hidden_size": settings.mlp_hidden_size,
        "classifier_dropout": settings.dropout,
        "freeze_encoder": False,
        "id2label": id2label,
        "label2id": {name: index for index, name in id2label.items()},
        "problem_type": "single_label_classification" if dataset.task == "classification" else "regression",
        "input_mean": None if input_mean is None else [float(value) for value in input_mean],
        "input_std": None if input_std is None else [float(value) for value in input_std],
        "target_mean": None,
        "target_std": None,
    }
    if dataset.task == "regression":
        targets = dataset_targets(dataset)[target_rows].astype(np.float64)
        extra["target_mean"] = [float(value) for value in targets.mean(axis=0)]
        extra["target_std"] = [float(max(value, 1e-6)) for value in targets.std(axis=0)]
    config_dict.update(extra)
    return RelConConfig(**config_dict)


def _run_finetune(
    model_dir: str | Path,
    dataset: EvaluationDataset,
    fold: SubjectFold,
    settings: EvaluationSettings,
    run_dir: Path,
    input_mean: np.ndarray | None,
    input_std: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    from .finetune import predict, train_head

    model = train_head(
        model_dir,
        dataset,
        settings,
        train_rows=fold.train,
        validation_rows=fold.validation,
        output_dir=run_dir,
        input_mean=input_mean,
        input_std=input_std,
    )
    outputs, embeddings = predict(model, dataset.windows[fold.test], batch_size=settings.embed_batch_size)
    predictions = outputs.argmax(axis=1) if dataset.task == "classification" else outputs
    summary = _read_training_summary(run_dir)
    return predictions, embeddings, summary


def _read_training_summary(run_dir: Path) -> dict:
    import json

    path = run_dir / "training_summary.json"
    if not path.exists():
        return {}
    summary = json.loads(path.read_text())
    return {"best_step": summary.get("best_step"), "best_validation_loss": summary.get("best_eval_loss")}


# ---------------------------------------------------------------------------------------------------------------------
# Results


def _split_description(split: str, num_folds: int, num_subjects: int) -> str:
    if split == "loso":
        return f"leave-one-subject-out ({num_subjects} folds)"
    return f"{num_folds}-fold cross-validation by subject"


def _protocol_sentence(settings: EvaluationSettings, split_text: str, regression: bool) -> str:
    encoder = "a randomly initialised" if settings.random_init else "the pre-trained"
    if settings.protocol == "linear-probe":
        core = (
            f"linear probe: frozen embeddings of {encoder} encoder, standardised, L2 logistic (classification) or "
            "ridge (regression) regression with the strength chosen on validation subjects and refit on training "
            "plus validation subjects"
        )
    elif settings.protocol == "mlp-probe":
        core = (
            f"MLP probe: frozen embeddings of {encoder} encoder, standardised, MLP "
            f"(embedding -> {settings.mlp_hidden_size} -> outputs) stopped early on the validation subjects' "
            f"{'loss' if regression else 'macro-F1'}"
        )
    else:
        start = "from random weights" if settings.protocol == "scratch" else "from the pre-trained encoder"
        core = (
            f"{'training' if settings.protocol == 'scratch' else 'fine-tuning'} {start} with an MLP head "
            f"(embedding -> {settings.mlp_hidden_size} -> outputs), encoder trained, Adam lr "
            f"{settings.learning_rate}, batch {settings.batch_size}, {settings.epochs} epochs, weights of the "
            "lowest validation loss kept"
        )
    return f"{core}; {split_text}, seed {settings.seed}"


def _summary_metrics(dataset: EvaluationDataset, fold_results: list[dict]) -> list[dict]:
    def summarise(values: list[float]) -> dict:
        array = np.asarray(values, dtype=np.float64)
        finite = array[np.isfinite(array)]
        mean = float(finite.mean()) if len(finite) else math.nan
        std = float(finite.std(ddof=1)) if len(finite) > 1 else math.nan
        return {"value": mean, "std": std} if math.isfinite(std) else {"value": mean}

    # A metric that is undefined in every fold (a correlation of constant predictions) is left out of the summary;
    # the folds keep their nan values.
    metrics: list[dict] = []
    if dataset.task == "classification":
        for name in CLASSIFICATION_SUMMARY:
            metrics.append({"name": name, **summarise([fold[name] for fold in fold_results])})
    else:
        for target in dataset.label_names:
            for name in REGRESSION_SUMMARY:
                values = [fold[target][name] for fold in fold_results]
                metrics.append({"name": name, "target": target, **summarise(values)})
    return [metric for metric in metrics if math.isfinite(metric["value"])]


def _results_document(
    dataset: EvaluationDataset,
    settings: EvaluationSettings,
    encoder: RelConModel,
    split: str,
    num_folds_total: int,
    fold_results: list[dict],
    model_dir: str | Path,
    command: str | None,
) -> dict:
    split_text = _split_description(split, num_folds_total, dataset.num_subjects)
    if len(fold_results) < num_folds_total:
        split_text += f", first {len(fold_results)} of {num_folds_total} folds run"
    settings_dict = asdict(settings)
    settings_dict["l2_grid"] = list(settings.l2_grid)
    task = "activity recognition" if dataset.task == "classification" else "gait regression"
    return {
        "format_version": 1,
        "task": task,
        "problem_type": "single_label_classification" if dataset.task == "classification" else "regression",
        "dataset": {
            "id": dataset.name,
            "name": dataset.description,
            "split": split_text,
            "description": (
                f"{len(dataset)} windows of {dataset.window_length / dataset.sampling_rate:g} s from "
                f"{dataset.num_subjects} subjects, {dataset.body_location}"
            ),
        },
        "protocol": _protocol_sentence(settings, split_text, dataset.task == "regression"),
        "metrics": _summary_metrics(dataset, fold_results),
        "training": {
            key: settings_dict[key]
            for key in (
                ("epochs", "batch_size", "learning_rate")
                if settings.protocol not in PROBE_PROTOCOLS
                else (("l2_grid",) if settings.protocol == "linear-probe" else ("mlp_learning_rate", "mlp_patience"))
            )
        },
        "model": str(model_dir),
        "encoder_weights": "random" if settings.random_init or settings.protocol == "scratch" else "pre-trained",
        "encoder_parameters": int(sum(parameter.numel() for parameter in encoder.parameters())),
        "label_names": list(dataset.label_names),
        "target_units": list(dataset.target_units),
        "settings": settings_dict,
        "num_windows": int(len(dataset)),
        "num_subjects": int(dataset.num_subjects),
        "source": dataset.source,
        "body_location": dataset.body_location,
        "command": command,
        "folds": fold_results,
    }
