# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""The default RelCon pre-training job: shards, stage 1, stage 2, a linear probe, model cards.

`relcon-hf pretrain --output-dir RUN` runs every step that its arguments do not supply:

```
RUN/shards/     the seglearn watch corpus as Parquet shards (unless --shards is given)
RUN/distance/   the stage-1 learned distance (unless --distance-model is given; reused if complete)
RUN/encoder/    the stage-2 encoder: the final checkpoint, loadable with AutoModel.from_pretrained
RUN/probe_results.json, RUN/probe_results.md   pre-trained versus randomly initialised encoder
```
"""

import copy
import dataclasses
import inspect
import json
import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from .data.shards import prepare_watch, read_manifest
from .data.streaming import load_labelled_windows
from .evaluation.linear_probe import embed_windows, linear_probe
from .hub.model_card import data_details_from_manifest, encoder_card
from .modeling import RelConConfig, RelConDistanceConfig, RelConDistanceModel, RelConModel
from .training.loop import TrainingResult, TrainingSettings, list_checkpoints, process_state, run_training
from .training.stages import DistanceTask, EncoderTask


logger = logging.getLogger(__name__)

PRESETS = ("cpu", "paper")
_STAGE_KEYS = ("prepare", "distance", "encoder", "probe")


def load_preset(name: str) -> dict:
    """Load the settings of a named preset (`relcon_hf/presets/<name>.json`)."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}; choose one of {', '.join(PRESETS)}.")
    return json.loads(resources.files("relcon_hf.presets").joinpath(f"{name}.json").read_text())


def merge_settings(base: dict, override: dict) -> dict:
    """Deep-merge `override` into a copy of `base`; nested dicts merge, other values replace."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_settings(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


# Options of the `encoder` section that go to `EncoderTask` rather than to the training loop.
_ENCODER_TASK_KEYS = (
    "num_candidates",
    "temperature",
    "ranking_chunk_size",
    "ranking_precision",
    "candidate_sharing",
    "compile_ranking",
)


def _allowed_keys() -> dict[str, set[str]]:
    """Return the keys each section of a settings file may contain, read from the code that consumes them."""
    loop_keys = {item.name for item in dataclasses.fields(TrainingSettings)} - {"output_dir", "shards", "seed"}
    prepare_keys = set(inspect.signature(prepare_watch).parameters) - {"output_dir", "seed"}
    probe_keys = set(inspect.signature(compare_with_random_init).parameters) - {"encoder_dir", "shard_dir", "seed"}
    return {
        "prepare": prepare_keys,
        "distance": loop_keys | {"model"},
        "encoder": loop_keys | {"model", *_ENCODER_TASK_KEYS},
        "probe": probe_keys,
        "distance.model": {item.name for item in dataclasses.fields(RelConDistanceConfig)},
        "encoder.model": {item.name for item in dataclasses.fields(RelConConfig)},
    }


def check_settings(settings: object, source: str) -> dict:
    """
    Check the shape of preset-shaped settings before any stage runs.

    Without this check a misspelt model field would be ignored and a misspelt loop setting would fail inside a stage.
    Raises `ValueError` naming the file, the section, the key and the keys that section accepts.
    """
    if not isinstance(settings, dict):
        raise ValueError(
            f"{source}: expected a JSON object with sections {', '.join(_STAGE_KEYS)}, got {type(settings).__name__}."
        )
    unknown = sorted(str(key) for key in set(settings) - set(_STAGE_KEYS) - {"description"})
    if unknown:
        raise ValueError(f"{source}: unknown sections {unknown}. Expected some of {', '.join(_STAGE_KEYS)}.")
    allowed = _allowed_keys()
    for name, section in settings.items():
        if name == "description":
            continue
        sections = [(name, section)]
        if isinstance(section, dict) and name in ("distance", "encoder") and "model" in section:
            sections.append((f"{name}.model", section["model"]))
        for label, values in sections:
            if not isinstance(values, dict):
                raise ValueError(
                    f"{source}: section {label!r} must be a JSON object, got {values!r}. Put its keys inside {{}}."
                )
            unknown = sorted(set(values) - allowed[label])
            if unknown:
                accepted = ", ".join(sorted(allowed[label]))
                raise ValueError(f"{source}: unknown keys {unknown} in section {label!r}. Valid keys: {accepted}.")
    return settings


def load_config_file(path: str) -> dict:
    """Read a JSON settings file shaped like a preset, and reject keys the job does not know."""
    try:
        with open(path) as handle:
            settings = json.load(handle)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path} is not valid JSON: {error}. Fix the file. relcon_hf/presets/cpu.json shows the layout."
        ) from None
    return check_settings(settings, path)


@dataclass
class PipelineResult:
    """Paths and scores of a default pre-training run."""

    encoder_dir: Path
    distance_dir: Path
    shard_dir: Path
    probe: dict | None = None
    stage_results: dict = field(default_factory=dict)


def stage_settings(section: dict, output_dir: Path, shards: Path, seed: int) -> tuple[TrainingSettings, dict]:
    """Split a preset section into loop settings and stage-specific options."""
    section = dict(section)
    stage_keys = ("model", *_ENCODER_TASK_KEYS)
    stage_options = {key: section.pop(key) for key in stage_keys if key in section}
    settings = TrainingSettings(output_dir=str(output_dir), shards=str(shards), seed=seed, **section)
    return settings, stage_options


def run_pipeline(
    output_dir: str | Path,
    settings: dict,
    *,
    shards: str | None = None,
    distance_model: str | None = None,
    seed: int = 0,
    run_probe: bool = True,
) -> PipelineResult:
    """
    Run the two-stage pre-training, then the linear probe, and write model cards.

    Args:
        output_dir (`str` or `Path`): Run folder.
        settings (`dict`): Preset-shaped settings (`prepare`, `distance`, `encoder`, `probe` sections).
        shards (`str`, *optional*): Existing shard folder; the watch corpus is prepared when missing.
        distance_model (`str`, *optional*): Existing stage-1 checkpoint; stage 1 is trained when missing.
        seed (`int`): Seed of every stage.
        run_probe (`bool`): Whether to finish with the linear probe (needs labelled windows in the shards).

    Returns:
        [`PipelineResult`].
    """
    run_dir = Path(output_dir)
    state = process_state()

    # 1. Shards: the seglearn watch corpus unless the user brings their own.
    shard_dir = Path(shards) if shards else run_dir / "shards"
    if not shards:
        if state.is_main_process:
            prepare_watch(shard_dir, seed=seed, **settings.get("prepare", {}))
        state.wait_for_everyone()
    manifest = read_manifest(shard_dir)

    # 2. Stage 1: the learned distance, reused when a previous run completed it.
    stage_results: dict[str, TrainingResult | dict] = {}
    distance_dir = Path(distance_model) if distance_model else run_dir / "distance"
    # The stage-2 task checks its options now, so a bad value stops the job before stage 1 trains.
    _, options = stage_settings(settings["encoder"], run_dir / "encoder", shard_dir, seed)
    encoder_task = EncoderTask(
        str(shard_dir),
        str(distance_dir),
        num_candidates=options.get("num_candidates", 20),
        temperature=options.get("temperature", 0.1),
        model_overrides=options.get("model", {}),
        ranking_chunk_size=options.get("ranking_chunk_size", 64),
        ranking_precision=options.get("ranking_precision", "auto"),
        candidate_sharing=options.get("candidate_sharing", False),
        compile_ranking=options.get("compile_ranking", False),
        seed=seed,
    )
    if distance_model:
        logger.info(f"Using the distance model in {distance_dir}")
    elif (distance_dir / "training_summary.json").exists():
        logger.info(f"Reusing the completed stage-1 distance model in {distance_dir}")
    else:
        distance_section = dict(settings["distance"])
        # `--resume-from latest` continues whichever stage was interrupted: stage 1 when it has checkpoints.
        if settings["encoder"].get("resume_from") == "latest" and list_checkpoints(distance_dir):
            distance_section["resume_from"] = "latest"
        distance_settings, options = stage_settings(distance_section, distance_dir, shard_dir, seed)
        task = DistanceTask(str(shard_dir), model_overrides=options.get("model", {}), seed=seed)
        stage_results["distance"] = run_training(task, distance_settings)

    # 3. Stage 2: the encoder.
    encoder_dir = run_dir / "encoder"
    encoder_section = dict(settings["encoder"])
    if encoder_section.get("resume_from") == "latest" and not list_checkpoints(encoder_dir):
        logger.info(f"No stage-2 checkpoint in {encoder_dir} yet; stage 2 starts from the beginning.")
        encoder_section.pop("resume_from")
    encoder_settings, _ = stage_settings(encoder_section, encoder_dir, shard_dir, seed)
    stage_results["encoder"] = run_training(encoder_task, encoder_settings)

    # 4. Linear probe and model cards, once, on the main process.
    probe = None
    if state.is_main_process:
        if run_probe and manifest.get("label_names"):
            probe = compare_with_random_init(encoder_dir, shard_dir, seed=seed, **settings.get("probe", {}))
            write_probe_results(probe, run_dir)
        elif run_probe:
            logger.info("Skipping the linear probe: the shards carry no labels.")
        write_model_cards(
            encoder_dir, distance_dir, manifest, probe, encoder_task.num_candidates, encoder_task.candidate_sharing
        )
    state.wait_for_everyone()

    return PipelineResult(
        encoder_dir=encoder_dir,
        distance_dir=distance_dir,
        shard_dir=shard_dir,
        probe=probe,
        stage_results=stage_results,
    )


def compare_with_random_init(encoder_dir: Path, shard_dir: Path, *, seed: int = 0, num_folds: int = 5) -> dict:
    """
    Linear probe of the pre-trained encoder and of the same architecture randomly initialised.

    Every labelled window of the shards (training and validation subjects) is embedded by both encoders, and each
    embedding set is scored with subject-wise cross-validation (`linear_probe`).

    Returns:
        `dict` with the task, protocol, per-encoder results and the number of windows and subjects.
    """
    data = load_labelled_windows(shard_dir, splits=("train", "validation"))
    labelled = data["labels"] >= 0
    windows, labels, subjects = data["windows"][labelled], data["labels"][labelled], data["subject_ids"][labelled]
    manifest = read_manifest(shard_dir)

    pretrained = RelConModel.from_pretrained(encoder_dir)
    torch.manual_seed(seed)
    random_init = RelConModel(pretrained.config)

    results = {}
    for name, model in (("pretrained", pretrained), ("random init", random_init)):
        embeddings = embed_windows(model, windows)
        results[name] = linear_probe(embeddings, labels, subjects, num_folds=num_folds, seed=seed).as_dict()
        logger.info(f"Linear probe, {name} encoder: macro-F1 {results[name]['macro_f1_mean']:.3f}")

    num_subjects = len(np.unique(subjects))
    return {
        "task": f"{len(manifest['label_names'])}-class {manifest.get('source', 'shard')} labels",
        "protocol": (
            f"standardised embeddings and L2 logistic regression, {min(num_folds, num_subjects)}-fold "
            f"cross-validation with whole subjects held out ({num_subjects} subjects, {len(labels)} windows of "
            f"{manifest['window_length']} samples). Pre-training saw unlabelled windows of the training subjects, so "
            "test subjects of some folds were seen without labels"
        ),
        "label_names": manifest["label_names"],
        "num_windows": int(len(labels)),
        "num_subjects": int(num_subjects),
        "results": results,
    }


def probe_table(probe: dict) -> str:
    """Plain-text table of a probe comparison, for the terminal."""
    lines = [f"{'encoder':<12} {'macro-F1':>16} {'accuracy':>16}"]
    for name, result in probe["results"].items():
        f1 = f"{100 * result['macro_f1_mean']:.1f} +- {100 * result['macro_f1_std']:.1f}"
        accuracy = f"{100 * result['accuracy_mean']:.1f} +- {100 * result['accuracy_std']:.1f}"
        lines.append(f"{name:<12} {f1:>16} {accuracy:>16}")
    return "\n".join(lines)


def write_probe_results(probe: dict, run_dir: Path) -> None:
    """Write `probe_results.json` and `probe_results.md` to the run folder."""
    from .hub.model_card import probe_markdown

    with open(run_dir / "probe_results.json", "w") as handle:
        json.dump(probe, handle, indent=2)
    (run_dir / "probe_results.md").write_text(probe_markdown(probe) + "\n")


def write_model_cards(
    encoder_dir: Path,
    distance_dir: Path,
    manifest: dict,
    probe: dict | None,
    num_candidates: int,
    candidate_sharing: bool = False,
) -> None:
    """Rewrite the encoder's README.md model card with the data details and the probe results of the run."""
    encoder_summary = _read_json(encoder_dir / "training_summary.json")
    if encoder_summary is None:
        raise FileNotFoundError(f"{encoder_dir} has no training_summary.json; the encoder stage did not finish.")
    distance_summary = _read_json(distance_dir / "training_summary.json")
    distance_config = RelConDistanceModel.config_class.from_pretrained(distance_dir)
    config = RelConModel.config_class.from_pretrained(encoder_dir)
    data_details = data_details_from_manifest(manifest)
    card = encoder_card(
        config,
        encoder_summary=encoder_summary,
        distance_summary=distance_summary,
        distance_config=distance_config,
        probe=probe,
        data_details=data_details,
        num_candidates=num_candidates,
        candidate_sharing=candidate_sharing,
    )
    card.save(encoder_dir / "README.md")


def _read_json(path: Path) -> dict | None:
    if not path.exists():
        return None
    with open(path) as handle:
        return json.load(handle)
