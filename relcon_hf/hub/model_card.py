# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Model cards filled from a run's training and evaluation results, through huggingface_hub `ModelCard`.

Templates live in `model_cards/` (installed as `relcon_hf.model_cards`). Every number in a card comes from the
summary files the training loop and the probe write; none is typed by hand.
"""

import json
import logging
import math
import platform
from importlib import resources
from pathlib import Path

import torch
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..modeling import RelConConfig, RelConDistanceConfig, RelConDistanceModel, RelConModel


logger = logging.getLogger(__name__)

CARD_TAGS = ["accelerometry", "wearables", "human-activity-recognition", "gait", "self-supervised", "time-series"]
WATCH_DATASET_DESCRIPTION = (
    "the seglearn smartwatch exercise recordings (10 subjects, 7 shoulder exercises, 81 minutes of wrist "
    "acceleration at 50 Hz, BSD-3-Clause)"
)


def _format_parameters(count: int) -> str:
    """Return a parameter count as millions for large models and as a plain number below 10,000."""
    return f"{count / 1e6:.2f} M" if count >= 10_000 else f"{count:,}"


def template_text(name: str) -> str:
    """Text of the model card template `model_cards/<name>.md`."""
    return resources.files("relcon_hf.model_cards").joinpath(f"{name}.md").read_text()


def describe_hardware() -> str:
    """Describe the machine of the run: the GPUs, or the CPU model and thread count."""
    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def _settings_sentence(summary: dict, extra: str = "") -> str:
    settings = summary.get("settings", {})
    parts = [
        f"{summary.get('completed_steps')} optimizer steps",
        f"batch size {settings.get('batch_size')}",
        f"Adam with learning rate {settings.get('learning_rate')} ({settings.get('lr_scheduler')} schedule)",
        f"seed {settings.get('seed')}",
    ]
    best = summary.get("best_eval_loss")
    result = f"best validation loss {best:.4g} at step {summary.get('best_step')}" if best is not None else ""
    if extra:
        parts.append(extra)
    sentence = ", ".join(parts)
    return f"{sentence}; {result}." if result else f"{sentence}."


def probe_markdown(probe: dict) -> str:
    """Markdown table of a linear-probe comparison written by `relcon_hf.pipeline`."""
    lines = [
        f"Linear probe on {probe['task']}: {probe['protocol']}.",
        "",
        "| encoder | macro-F1 | accuracy |",
        "|---|---|---|",
    ]
    for name, result in probe["results"].items():
        lines.append(
            f"| {name} | {100 * result['macro_f1_mean']:.1f} +- {100 * result['macro_f1_std']:.1f} "
            f"| {100 * result['accuracy_mean']:.1f} +- {100 * result['accuracy_std']:.1f} |"
        )
    lines += ["", "Mean +- standard deviation over folds, in percent."]
    return "\n".join(lines)


def _probe_eval_results(probe: dict, model_name: str) -> list[EvalResult]:
    pretrained = probe["results"].get("pretrained")
    if pretrained is None:
        return []
    common = {
        "task_type": "feature-extraction",
        "task_name": f"Linear probe, {probe['task']}",
        "dataset_type": probe.get("dataset_type", "seglearn-watch"),
        "dataset_name": probe.get("dataset_name", "seglearn smartwatch exercises"),
        "dataset_split": "subject-wise cross-validation",
    }
    return [
        EvalResult(metric_type="f1", metric_name="macro-F1", metric_value=pretrained["macro_f1_mean"], **common),
        EvalResult(metric_type="accuracy", metric_name="accuracy", metric_value=pretrained["accuracy_mean"], **common),
    ]


def encoder_card(
    config: RelConConfig,
    *,
    encoder_summary: dict,
    distance_summary: dict | None = None,
    distance_config: RelConDistanceConfig | None = None,
    probe: dict | None = None,
    repo_id: str = "<your-namespace>/relcon-watch",
    dataset_description: str = WATCH_DATASET_DESCRIPTION,
    data_details: str = "",
    num_candidates: int | None = None,
    candidate_sharing: bool = False,
) -> ModelCard:
    """
    Fill the encoder template from a run's summaries.

    Args:
        config ([`RelConConfig`]): Configuration of the trained encoder.
        encoder_summary (`dict`): `training_summary.json` of stage 2.
        distance_summary (`dict`, *optional*): `training_summary.json` of stage 1.
        distance_config ([`RelConDistanceConfig`], *optional*): Configuration of the stage-1 distance.
        probe (`dict`, *optional*): Linear-probe comparison written by the default pipeline.
        repo_id (`str`): Hub repository named in the usage snippets.
        dataset_description (`str`): One phrase naming the pre-training data.
        data_details (`str`): Sentences on windows, grouping and the subject split.
        num_candidates (`int`, *optional*): K, within-group candidates per anchor.
        candidate_sharing (`bool`, *optional*, defaults to `False`): Whether every window of a batch was an anchor
            (`EncoderTask(candidate_sharing=True)`); the card then describes that sampling.

    Returns:
        `huggingface_hub.ModelCard`.
    """
    num_parameters = sum(parameter.numel() for parameter in RelConModel(config).parameters())
    model_name = repo_id.split("/")[-1]
    card_data = ModelCardData(
        library_name="transformers",
        license="apache-2.0",
        pipeline_tag="feature-extraction",
        tags=CARD_TAGS,
        datasets=["seglearn-watch"] if dataset_description == WATCH_DATASET_DESCRIPTION else None,
        model_name=model_name,
        eval_results=_probe_eval_results(probe, model_name) if probe else None,
    )
    stages = ", ".join(
        f"{blocks} block{'s' if blocks != 1 else ''} x {channels} channels (kernel {kernel})"
        for blocks, channels, kernel in zip(
            config.stage_num_blocks, config.stage_channels, config.stage_kernel_sizes, strict=True
        )
    )
    if distance_summary is not None:
        attention = distance_config.attention if distance_config is not None else "sparsemax"
        distance_description = (
            f"reconstruct each window from a copy altered by 2 of 8 augmentations ({attention} attention); "
            + _settings_sentence(distance_summary)
        )
    else:
        distance_description = "a distance model trained separately (see its own card)."
    if candidate_sharing and num_candidates:
        candidates = (
            f"groups of K + 1 = {num_candidates + 1} windows in which every window is an anchor with the other K as "
            "within-group candidates and the first window of each other group as between-group candidates, "
        )
    else:
        candidates = f"K = {num_candidates} within-group candidates per anchor plus the other anchors of the batch, "
    encoder_description = (
        "relative contrastive loss with temperature 0.1 over "
        + (candidates if num_candidates else "")
        + "ranked by the frozen distance; "
        + _settings_sentence(encoder_summary)
    )

    return ModelCard.from_template(
        card_data,
        template_str=template_text("encoder"),
        model_name=model_name,
        repo_id=repo_id,
        hidden_size=config.hidden_size,
        stages_description=stages,
        num_parameters=_format_parameters(num_parameters),
        sampling_rate=config.sampling_rate,
        window_length=config.window_length,
        window_seconds=f"{config.window_length / config.sampling_rate:g}",
        min_sequence_length=config.min_sequence_length,
        receptive_field=config.receptive_field,
        dataset_description=dataset_description,
        data_details=data_details,
        distance_description=distance_description,
        encoder_description=encoder_description,
        hardware=describe_hardware(),
        evaluation=probe_markdown(probe) if probe else "No evaluation was run for this checkpoint.",
    )


def _distance_eval_results(summary: dict, dataset_description: str) -> list[EvalResult]:
    best = summary.get("best_eval_loss")
    if best is None:
        return []
    is_watch = dataset_description == WATCH_DATASET_DESCRIPTION
    return [
        EvalResult(
            task_type="feature-extraction",
            task_name="Reconstruction of augmented windows",
            dataset_type="seglearn-watch" if is_watch else "custom",
            dataset_name="seglearn smartwatch exercises" if is_watch else "pre-training data",
            dataset_split="validation subjects",
            metric_type="loss",
            metric_name="validation reconstruction error (g^2 per window)",
            metric_value=float(best),
        )
    ]


def distance_card(
    config: RelConDistanceConfig,
    *,
    summary: dict,
    repo_id: str = "<your-namespace>/relcon-watch-distance",
    dataset_description: str = WATCH_DATASET_DESCRIPTION,
) -> ModelCard:
    """Fill the distance-model template from the stage-1 `training_summary.json`."""
    num_parameters = sum(parameter.numel() for parameter in RelConDistanceModel(config).parameters())
    model_name = repo_id.split("/")[-1]
    eval_results = _distance_eval_results(summary, dataset_description)
    card_data = ModelCardData(
        library_name="transformers",
        license="apache-2.0",
        pipeline_tag="feature-extraction",
        tags=CARD_TAGS,
        datasets=["seglearn-watch"] if dataset_description == WATCH_DATASET_DESCRIPTION else None,
        model_name=model_name,
        eval_results=eval_results or None,
    )
    if eval_results:
        evaluation = (
            f"Validation reconstruction error, summed squared error per window in g^2 on the held-out subjects' "
            f"windows and their augmented copies: {summary['best_eval_loss']:.4g} (best, at step "
            f"{summary.get('best_step')}); {summary.get('final_eval_loss')} at the end of training."
        )
    else:
        evaluation = "No validation was run for this checkpoint."
    return ModelCard.from_template(
        card_data,
        template_str=template_text("distance"),
        model_name=model_name,
        repo_id=repo_id,
        num_parameters=f"{num_parameters / 1e3:.1f} k",
        attention=config.attention,
        sampling_rate=config.sampling_rate,
        window_length=config.window_length,
        dataset_description=dataset_description,
        distance_description="Reconstructs each window from a copy altered by 2 of 8 augmentations; "
        + _settings_sentence(summary),
        hardware=describe_hardware(),
        evaluation=evaluation,
    )


# Metrics that an evaluation results file may report: name -> (Hub metric id, display name). The names are the keys
# that relcon_hf.evaluation.metrics returns. Mean values are in the metric's own unit: fractions for macro-F1, kappa
# and accuracy, and the target's unit for MAE, RMSE and the Bland-Altman bias and limits of agreement.
EVALUATION_METRICS = {
    "macro_f1": ("f1", "macro-F1"),
    "cohen_kappa": ("cohen_kappa", "Cohen's kappa"),
    "accuracy": ("accuracy", "accuracy"),
    "mae": ("mae", "MAE"),
    "rmse": ("rmse", "RMSE"),
    "pearson_r": ("pearsonr", "Pearson r"),
    "spearman_r": ("spearmanr", "Spearman r"),
    "bland_altman_bias": ("bland_altman_bias", "Bland-Altman bias"),
    "bland_altman_lower": ("bland_altman_lower", "Bland-Altman lower 95% limit of agreement"),
    "bland_altman_upper": ("bland_altman_upper", "Bland-Altman upper 95% limit of agreement"),
}
EVALUATION_PROBLEM_TYPES = ("single_label_classification", "regression")
EVALUATION_FORMAT_VERSION = 1
# NOTE: the Hub has no task for classifying or regressing sensor time series; `other` is its catch-all task.
TASK_HEAD_PIPELINE_TAG = "other"


def load_evaluation_results(path: str | Path) -> dict:
    """
    Read and check an evaluation results file of a fine-tuned task head (format version 1).

    The file is a JSON object:

    ```json
    {
      "format_version": 1,
      "task": "activity recognition",
      "problem_type": "single_label_classification",
      "dataset": {"id": "pamap2", "name": "PAMAP2, hand IMU", "split": "leave-one-subject-out",
                  "description": "8 activities of 8 subjects, 10 s windows"},
      "protocol": "fine-tuning with the encoder trained, leave-one-subject-out cross-validation",
      "metrics": [
        {"name": "macro_f1", "value": 0.91, "std": 0.04},
        {"name": "cohen_kappa", "value": 0.89}
      ],
      "training": {"epochs": 10, "batch_size": 16, "learning_rate": 0.001, "hardware": "1 x NVIDIA A100"},
      "base_model": "org/relcon-watch"
    }
    ```

    `problem_type` is `"single_label_classification"` or `"regression"`. Each metric has a `name` from
    `EVALUATION_METRICS`, a numeric `value` (the mean over folds when there are folds) and optionally `std` and,
    for regression with several targets, the `target` it scores. `training`, `base_model` and the dataset's
    `description` are optional; `training` may hold any settings worth reporting, and they are listed in the card.

    Raises:
        `ValueError`: The file is not JSON, or a field is missing or has the wrong type; the message names the file
            and the field.
    """
    path = Path(path)
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}.") from None

    def fail(message: str) -> ValueError:
        return ValueError(f"{path}: {message}. See relcon_hf.hub.model_card.load_evaluation_results for the format.")

    if not isinstance(results, dict):
        raise fail(f"expected a JSON object, got {type(results).__name__}")
    if results.get("format_version") != EVALUATION_FORMAT_VERSION:
        raise fail(f"`format_version` must be {EVALUATION_FORMAT_VERSION}, got {results.get('format_version')!r}")
    for key in ("task", "protocol"):
        if not isinstance(results.get(key), str) or not results[key]:
            raise fail(f"`{key}` must be a non-empty string, got {results.get(key)!r}")
    if results.get("problem_type") not in EVALUATION_PROBLEM_TYPES:
        allowed = ", ".join(EVALUATION_PROBLEM_TYPES)
        raise fail(f"`problem_type` must be one of {allowed}, got {results.get('problem_type')!r}")
    dataset = results.get("dataset")
    if not isinstance(dataset, dict):
        raise fail(f"`dataset` must be an object with id, name and split, got {dataset!r}")
    for key in ("id", "name", "split"):
        if not isinstance(dataset.get(key), str) or not dataset[key]:
            raise fail(f"`dataset.{key}` must be a non-empty string, got {dataset.get(key)!r}")
    metrics = results.get("metrics")
    if not isinstance(metrics, list) or not metrics:
        raise fail(f"`metrics` must be a non-empty list, got {metrics!r}")
    for index, metric in enumerate(metrics):
        if not isinstance(metric, dict) or metric.get("name") not in EVALUATION_METRICS:
            allowed = ", ".join(EVALUATION_METRICS)
            raise fail(f"`metrics[{index}].name` must be one of {allowed}, got {metric!r}")
        for key in ("value", "std"):
            value = metric.get(key)
            if (key == "value" or value is not None) and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            ):
                raise fail(f"`metrics[{index}].{key}` must be a finite number, got {value!r}")
    # Two values for one metric and target would give the card's model-index two conflicting results.
    seen: dict[tuple, int] = {}
    for index, metric in enumerate(metrics):
        identity = (metric["name"], metric.get("target"))
        if identity in seen:
            target = f" for target {identity[1]!r}" if identity[1] is not None else ""
            raise fail(
                f"`metrics[{index}]` repeats {identity[0]}{target} from `metrics[{seen[identity]}]`; keep one entry "
                "per metric and target"
            )
        seen[identity] = index
    if "training" in results and not isinstance(results["training"], dict):
        raise fail(f"`training` must be an object, got {results['training']!r}")
    return results


def _metric_label(metric: dict) -> str:
    label = EVALUATION_METRICS[metric["name"]][1]
    return f"{label} ({metric['target']})" if metric.get("target") else label


def _evaluation_markdown(results: dict) -> str:
    dataset = results["dataset"]
    lines = [
        f"{results['task'].capitalize()} on {dataset['name']} ({dataset['split']}): {results['protocol']}.",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for metric in results["metrics"]:
        value = f"{metric['value']:.4g}"
        if metric.get("std") is not None:
            value += f" +- {metric['std']:.2g}"
        lines.append(f"| {_metric_label(metric)} | {value} |")
    if any(metric.get("std") is not None for metric in results["metrics"]):
        lines += ["", "Mean +- standard deviation over folds."]
    return "\n".join(lines)


def _training_markdown(results: dict) -> str:
    training = results.get("training")
    if not training:
        return "The results file records no training settings."
    settings = ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in training.items())
    return f"Settings: {settings}."


def task_head_card(
    config: RelConConfig,
    results: dict,
    *,
    repo_id: str = "<your-namespace>/relcon-task-head",
    base_model: str | None = None,
) -> ModelCard:
    """
    Fill the task-head template from the head's configuration and an evaluation results dict.

    Args:
        config ([`RelConConfig`]): Configuration of the [`RelConForSequenceClassification`] checkpoint.
        results (`dict`): Evaluation results, as returned by [`load_evaluation_results`].
        repo_id (`str`): Hub repository named in the usage snippets.
        base_model (`str`, *optional*): Hub id of the pre-trained encoder the head was trained from; defaults to the
            results' `base_model`.

    Returns:
        `huggingface_hub.ModelCard`.
    """
    from ..modeling import RelConForSequenceClassification

    model_name = repo_id.split("/")[-1]
    base_model = base_model or results.get("base_model")
    dataset = results["dataset"]
    task_name = results["task"]
    eval_results = [
        EvalResult(
            task_type=TASK_HEAD_PIPELINE_TAG,
            task_name=task_name,
            dataset_type=dataset["id"],
            dataset_name=dataset["name"],
            dataset_split=dataset["split"],
            metric_type=EVALUATION_METRICS[metric["name"]][0],
            metric_name=_metric_label(metric),
            metric_value=metric["value"],
        )
        for metric in results["metrics"]
    ]
    card_data = ModelCardData(
        library_name="transformers",
        license="apache-2.0",
        pipeline_tag=TASK_HEAD_PIPELINE_TAG,
        tags=CARD_TAGS,
        datasets=[dataset["id"]],
        base_model=base_model,
        model_name=model_name,
        eval_results=eval_results,
    )

    labels = [config.id2label[index] for index in sorted(config.id2label)] if config.id2label else []
    if config.classifier_head == "linear":
        head_description = "linear head"
    else:
        head_description = f"MLP head ({config.hidden_size} -> {config.classifier_hidden_size} -> {len(labels)})"
    if results["problem_type"] == "regression":
        problem_description = f"regression of {', '.join(labels)}"
        outputs_description = f"{len(labels)} regression outputs: {', '.join(labels)}"
        prediction_line = "predictions = dict(zip(model.config.id2label.values(), outputs.T))  # one series per target"
    else:
        problem_description = f"{len(labels)} classes: {', '.join(labels)}"
        outputs_description = f"logits over {len(labels)} classes"
        prediction_line = "labels = [model.config.id2label[int(index)] for index in outputs.argmax(-1)]"
    num_parameters = sum(parameter.numel() for parameter in RelConForSequenceClassification(config).parameters())

    return ModelCard.from_template(
        card_data,
        template_str=template_text("task_head"),
        model_name=model_name,
        repo_id=repo_id,
        task=task_name,
        head_description=head_description,
        problem_description=problem_description,
        outputs_description=outputs_description,
        prediction_line=prediction_line,
        num_labels=len(labels),
        base_model_sentence=f" to the pre-trained encoder [{base_model}](https://huggingface.co/{base_model})"
        if base_model
        else "",
        hidden_size=config.hidden_size,
        num_parameters=_format_parameters(num_parameters),
        encoder_training="frozen (only the head was trained)" if config.freeze_encoder else "fine-tuned with the head",
        sampling_rate=config.sampling_rate,
        window_length=config.window_length,
        window_seconds=f"{config.window_length / config.sampling_rate:g}",
        min_sequence_length=config.min_sequence_length,
        dataset_description=dataset.get("description") or dataset["name"],
        protocol=results["protocol"],
        training_description=_training_markdown(results),
        evaluation=_evaluation_markdown(results),
        body_location=results.get("body_location") or "wrist",
        normalisation_line=(
            "The model z-scores each channel with the training data's mean and standard deviation stored in its "
            "config (`input_mean`, `input_std`); pass raw acceleration in g."
            if getattr(config, "input_mean", None) is not None
            else "No per-window normalisation: gravity stays in the signal."
        ),
    )


def write_model_card(
    checkpoint_dir: str | Path,
    *,
    repo_id: str,
    evaluation_results: str | Path | None = None,
    base_model: str | None = None,
) -> ModelCard:
    """
    Write `README.md` into a checkpoint folder from the results files of its run, and return the card.

    The kind of checkpoint is read from its `config.json`:

    - a task head (`RelConForSequenceClassification`) needs `evaluation_results`, a file in the format of
      [`load_evaluation_results`]; `base_model` names the encoder it was trained from;
    - a distance model reads `training_summary.json` in the folder;
    - an encoder reads `training_summary.json` in the folder and, when the folder sits in a `relcon-hf pretrain`
      run folder, the distance model's summary (`../distance/training_summary.json`), the linear-probe results
      (`../probe_results.json`) and the shard manifest named in the training settings.

    Args:
        checkpoint_dir (`str` or `Path`): Folder written by `save_pretrained`.
        repo_id (`str`): Hub repository the card's usage snippets name.
        evaluation_results (`str` or `Path`, *optional*): Evaluation results file of a task head.
        base_model (`str`, *optional*): Hub id of the pre-trained encoder of a task head.
    """
    checkpoint_dir = Path(checkpoint_dir)
    config_dict = _read_json_file(checkpoint_dir / "config.json")
    if config_dict is None:
        raise FileNotFoundError(f"{checkpoint_dir} has no config.json; save the model with save_pretrained first.")
    architectures = config_dict.get("architectures") or []
    model_type = config_dict.get("model_type")

    card: ModelCard
    if model_type == RelConDistanceConfig.model_type:
        summary = _read_json_file(checkpoint_dir / "training_summary.json") or {}
        card = distance_card(RelConDistanceConfig.from_pretrained(checkpoint_dir), summary=summary, repo_id=repo_id)
    elif model_type != RelConConfig.model_type:
        raise ValueError(
            f"{checkpoint_dir}/config.json has model_type {model_type!r}; expected "
            f"{RelConConfig.model_type!r} or {RelConDistanceConfig.model_type!r}."
        )
    elif "RelConForSequenceClassification" in architectures:
        if evaluation_results is None:
            raise ValueError(
                f"{checkpoint_dir} contains a task head, so `evaluation_results` is required. Pass the path of its "
                "evaluation results file, so that the card reports measured numbers."
            )
        results = load_evaluation_results(evaluation_results)
        card = task_head_card(
            RelConConfig.from_pretrained(checkpoint_dir), results, repo_id=repo_id, base_model=base_model
        )
    else:
        card = _encoder_card_from_run(checkpoint_dir, repo_id)

    card.save(checkpoint_dir / "README.md")
    logger.info(f"Wrote the model card {checkpoint_dir / 'README.md'}")
    return card


def data_details_from_manifest(manifest: dict) -> str:
    """Sentence on the windows, their count and the subject split of a shard manifest."""
    splits = manifest.get("splits", {})
    return (
        f"Windows of {manifest['window_length']} samples every {manifest['hop_length']} samples at "
        f"{manifest['sampling_rate']} Hz; {splits.get('train', {}).get('num_windows')} training windows from "
        f"{len(splits.get('train', {}).get('subjects', []))} subjects, validation on "
        f"{len(splits.get('validation', {}).get('subjects', []))} held-out subjects."
    )


def _encoder_card_from_run(encoder_dir: Path, repo_id: str) -> ModelCard:
    summary = _read_json_file(encoder_dir / "training_summary.json")
    if summary is None:
        raise FileNotFoundError(f"{encoder_dir} has no training_summary.json; the encoder stage did not finish.")
    run_dir = encoder_dir.parent
    distance_dir = run_dir / "distance"
    distance_config = (
        RelConDistanceConfig.from_pretrained(distance_dir) if (distance_dir / "config.json").exists() else None
    )
    shards = summary.get("settings", {}).get("shards")
    manifest = _read_json_file(Path(shards) / "manifest.json") if shards else None
    return encoder_card(
        RelConConfig.from_pretrained(encoder_dir),
        encoder_summary=summary,
        distance_summary=_read_json_file(distance_dir / "training_summary.json"),
        distance_config=distance_config,
        probe=_read_json_file(run_dir / "probe_results.json"),
        repo_id=repo_id,
        data_details=data_details_from_manifest(manifest) if manifest else "",
    )


def _read_json_file(path: Path) -> dict | None:
    if not path.exists():
        return None
    with open(path) as handle:
        return json.load(handle)
