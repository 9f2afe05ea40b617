# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Model cards filled from a run's training and evaluation results, through huggingface_hub `ModelCard`.

Templates live in `model_cards/` (installed as `relcon_hf.model_cards`). Every number in a card comes from the
summary files the training loop and the probe write; none is typed by hand.
"""

import logging
import platform
from importlib import resources

import torch
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..modeling import RelConConfig, RelConDistanceConfig, RelConDistanceModel, RelConModel


logger = logging.getLogger(__name__)

CARD_TAGS = ["accelerometry", "wearables", "human-activity-recognition", "gait", "self-supervised", "time-series"]
WATCH_DATASET_DESCRIPTION = (
    "the seglearn smartwatch exercise recordings (10 subjects, 7 shoulder exercises, 81 minutes of wrist "
    "acceleration at 50 Hz, BSD-3-Clause)"
)


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
        f"{blocks} blocks x {channels} channels (kernel {kernel})"
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
        num_parameters=f"{num_parameters / 1e6:.2f} M",
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


def distance_card(
    config: RelConDistanceConfig,
    *,
    summary: dict,
    repo_id: str = "<your-namespace>/relcon-watch-distance",
    dataset_description: str = WATCH_DATASET_DESCRIPTION,
) -> ModelCard:
    """Fill the distance-model template from the stage-1 `training_summary.json`."""
    num_parameters = sum(parameter.numel() for parameter in RelConDistanceModel(config).parameters())
    card_data = ModelCardData(
        library_name="transformers",
        license="apache-2.0",
        pipeline_tag="feature-extraction",
        tags=CARD_TAGS,
        model_name=repo_id.split("/")[-1],
    )
    return ModelCard.from_template(
        card_data,
        template_str=template_text("distance"),
        model_name=repo_id.split("/")[-1],
        repo_id=repo_id,
        num_parameters=f"{num_parameters / 1e3:.1f} k",
        attention=config.attention,
        sampling_rate=config.sampling_rate,
        window_length=config.window_length,
        dataset_description=dataset_description,
        distance_description="Reconstructs each window from a copy altered by 2 of 8 augmentations; "
        + _settings_sentence(summary),
        hardware=describe_hardware(),
    )
