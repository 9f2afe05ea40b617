# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Command line of relcon-hf: prepare shards and pre-train RelCon.

```
relcon-hf prepare --dataset watch --output-dir SHARDS
relcon-hf prepare --input a.csv b.parquet --sampling-rate 50 --output-dir SHARDS
relcon-hf pretrain-distance --shards SHARDS --output-dir DISTANCE
relcon-hf pretrain --shards SHARDS --distance-model DISTANCE --output-dir RUN
relcon-hf pretrain --preset cpu --output-dir RUN            # everything, on the default real corpus
relcon-hf evaluate --model RUN/encoder --dataset watch --protocol linear-probe --output-dir RESULTS
relcon-hf push RUN/encoder --repo-id NAMESPACE/NAME --dry-run
relcon-hf convert checkpoint_best.pkl --output-dir CONVERTED
relcon-hf embed day1.csv day2.parquet --model RUN/encoder --output embeddings.parquet
relcon-hf export --model RUN/encoder --format onnx --output encoder.onnx
accelerate launch --multi_gpu --num_processes 2 -m relcon_hf.cli pretrain ...
```
"""

import argparse
import logging
import sys
from collections.abc import Sequence

from . import __version__
from .allocator import retain_freed_memory
from .hub.push import HubPushError


logger = logging.getLogger(__name__)

# Flags shared by both training commands, mapped to `TrainingSettings` fields. Defaults are None so that a flag
# overrides the preset only when given.
_TRAINING_FLAGS = {
    "max_steps": (int, "Optimizer steps to train for."),
    "batch_size": (int, "Windows (stage 1) or anchors (stage 2) per process and micro-batch."),
    "learning_rate": (float, "Peak learning rate of Adam."),
    "weight_decay": (float, "L2 penalty of Adam."),
    "lr_scheduler": (str, "transformers schedule name: constant, cosine, linear, ..."),
    "warmup_steps": (int, "Linear warm-up steps."),
    "gradient_accumulation_steps": (int, "Micro-batches per optimizer step."),
    "max_grad_norm": (float, "Clip the gradient norm to this value."),
    "mixed_precision": (str, "Autocast precision: no, bf16 or fp16."),
    "checkpoint_steps": (int, "Save a resumable training state every N steps (0: never)."),
    "checkpoints_to_keep": (int, "Newest training states kept on disk."),
    "eval_steps": (int, "Evaluate on the validation subjects every N steps (0: only at the end)."),
    "eval_batches": (int, "Maximum validation batches per evaluation."),
    "logging_steps": (int, "Log the training loss every N steps."),
    "num_workers": (int, "DataLoader worker processes per training process."),
    "shuffle_buffer_size": (int, "Windows or anchors in the streaming shuffle buffer."),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relcon-hf",
        description=(
            "RelCon motion foundation model for wrist accelerometry: data preparation, pre-training and publishing."
        ),
    )
    parser.add_argument("--version", action="version", version=f"relcon-hf {__version__}")
    parser.add_argument("--log-level", default="INFO", help="Logging level: DEBUG, INFO, WARNING or ERROR.")
    commands = parser.add_subparsers(dest="command", required=True)

    _add_prepare_parser(commands)
    _add_distance_parser(commands)
    _add_pretrain_parser(commands)
    _add_evaluate_parser(commands)
    _add_push_parser(commands)
    _add_convert_parser(commands)
    _add_embed_parser(commands)
    _add_export_parser(commands)
    return parser


def _add_prepare_parser(commands: argparse._SubParsersAction) -> None:
    from .data.readers import FORMATS
    from .data.windowing import FLAG_REASONS

    prepare = commands.add_parser(
        "prepare",
        help="Turn recordings into Parquet shards of candidate groups.",
        description="Turn the default watch corpus or your recordings into Parquet shards for pre-training.",
    )
    source = prepare.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", choices=["watch"], help="A built-in real corpus: 'watch' (seglearn).")
    source.add_argument(
        "--input",
        nargs="+",
        metavar="FILE",
        help="Recordings: CSV (plain, GENEActiv, ActiLife), Parquet, NumPy, .cwa, .bin, .gt3x or WISDM .txt.",
    )
    prepare.add_argument("--output-dir", required=True, help="Folder for the shards and manifest.json.")
    prepare.add_argument("--sampling-rate", type=float, help="Rate of the input recordings in Hz.")
    prepare.add_argument("--unit", choices=["g", "m/s^2"], help="Unit of the input (detected when omitted).")
    prepare.add_argument("--columns", nargs=3, metavar=("X", "Y", "Z"), help="Names of the three axis columns.")
    prepare.add_argument("--time-column", help="Name of the timestamp column.")
    prepare.add_argument("--format", choices=FORMATS, help="Format of every input (detected per file when omitted).")
    prepare.add_argument(
        "--timezone", help="Zone of wall-clock timestamps without an offset, such as Europe/London or +02:00."
    )
    prepare.add_argument(
        "--max-gap-seconds", type=float, default=1.0, help="Longer time steps split a recording (default 1 s)."
    )
    prepare.add_argument("--range-g", type=float, help="Device range in g, where the file does not state it.")
    prepare.add_argument("--num-workers", type=int, default=1, help="Processes that read inputs in parallel.")
    prepare.add_argument(
        "--keep-flagged",
        nargs="+",
        default=[],
        choices=FLAG_REASONS,
        help="Write windows flagged for these reasons instead of dropping them (they are still counted).",
    )
    prepare.add_argument("--subject-ids", nargs="+", help="One subject id per input file (default: file stem).")
    prepare.add_argument("--group-seconds", type=float, default=3600.0, help="Length of a candidate group in s.")
    prepare.add_argument("--window-length", type=int, default=256, help="Window length in samples at 100 Hz.")
    prepare.add_argument("--hop-length", type=int, help="Step between windows in samples (watch default: 128).")
    prepare.add_argument("--validation-fraction", type=float, default=0.2, help="Share of subjects held out.")
    prepare.add_argument(
        "--test-fraction", type=float, default=0.0, help="Share of subjects in a test split (recordings only)."
    )
    prepare.add_argument("--seed", type=int, default=0, help="Seed of the subject split.")
    prepare.add_argument("--watch-path", help="Path of watch_dataset.npy when seglearn is not installed.")
    prepare.add_argument("--overwrite", action="store_true", help="Replace shards prepared with other settings.")


def _add_training_flags(parser: argparse.ArgumentParser) -> None:
    for name, (kind, help_text) in _TRAINING_FLAGS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None, help=help_text)
    parser.add_argument("--resume-from", help="A checkpoints/step_<n> folder, or 'latest'.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of initialisation, data order and augmentations.")
    parser.add_argument("--report-to", nargs="+", default=None, help="Accelerate trackers (default: jsonl).")
    parser.add_argument("--preset", choices=["cpu", "paper"], default="cpu", help="Named settings to start from.")
    parser.add_argument("--config", help="JSON file shaped like a preset; its values override the preset.")


def _add_distance_parser(commands: argparse._SubParsersAction) -> None:
    distance = commands.add_parser(
        "pretrain-distance",
        help="Stage 1: train the learned motif distance.",
        description="Stage 1: train the learned motif distance on windows and their augmented copies.",
    )
    distance.add_argument("--shards", required=True, help="Shard folder from `relcon-hf prepare`.")
    distance.add_argument("--output-dir", required=True, help="Folder of the distance checkpoint.")
    distance.add_argument("--attention", choices=["sparsemax", "softmax"], help="Attention weight function.")
    _add_training_flags(distance)


def _add_pretrain_parser(commands: argparse._SubParsersAction) -> None:
    pretrain = commands.add_parser(
        "pretrain",
        help="Stage 2 (and whatever it needs): train the RelCon encoder.",
        description=(
            "Train the RelCon encoder. Without --shards the seglearn watch corpus is prepared; without "
            "--distance-model stage 1 is trained first. Prints the path of the final checkpoint "
            "(OUTPUT_DIR/encoder)."
        ),
    )
    pretrain.add_argument("--output-dir", required=True, help="Run folder.")
    pretrain.add_argument("--shards", help="Shard folder from `relcon-hf prepare` (default: the watch corpus).")
    pretrain.add_argument("--distance-model", help="Stage-1 checkpoint (default: train one into OUTPUT_DIR).")
    pretrain.add_argument("--num-candidates", type=int, help="K: within-group candidates per anchor.")
    pretrain.add_argument("--temperature", type=float, help="Temperature of the relative contrastive loss.")
    pretrain.add_argument("--distance-max-steps", type=int, help="Stage-1 optimizer steps, when stage 1 runs.")
    pretrain.add_argument("--distance-batch-size", type=int, help="Stage-1 batch size, when stage 1 runs.")
    pretrain.add_argument("--no-probe", action="store_true", help="Skip the final linear probe.")
    _add_training_flags(pretrain)


def _add_evaluate_parser(commands: argparse._SubParsersAction) -> None:
    from .evaluation.protocols import PROTOCOLS

    evaluate = commands.add_parser(
        "evaluate",
        help="Score an encoder on a labelled dataset with subject-wise cross-validation.",
        description=(
            "Run a downstream protocol (linear probe, MLP probe, fine-tuning, training from scratch) on a labelled "
            "dataset with whole subjects held out, and write evaluation_results.json, results.md, predictions.csv "
            "and plots to the output folder."
        ),
    )
    evaluate.add_argument("--model", required=True, help="Encoder checkpoint folder (or Hub id in the local cache).")
    evaluate.add_argument(
        "--dataset", required=True, help="Dataset name, e.g. watch, wisdm, mobgap-gait, pamap2-hand."
    )
    evaluate.add_argument("--data-path", help="Where the dataset's files are (default: the loader's default).")
    evaluate.add_argument("--protocol", required=True, choices=PROTOCOLS, help="Downstream protocol.")
    evaluate.add_argument("--output-dir", required=True, help="Folder for the results, predictions and plots.")
    evaluate.add_argument("--split", help="loso or kfold-<k> (default: the dataset's published protocol).")
    evaluate.add_argument("--seed", type=int, default=0, help="Seed of folds, initialisation and batch order.")
    evaluate.add_argument("--max-folds", type=int, help="Run only the first N folds (to fit a compute budget).")
    evaluate.add_argument(
        "--random-init", action="store_true", help="Probe a randomly initialised encoder of the same architecture."
    )
    evaluate.add_argument("--epochs", type=int, default=10, help="Fine-tuning epochs (finetune, scratch).")
    evaluate.add_argument("--batch-size", type=int, default=16, help="Fine-tuning windows per batch.")
    evaluate.add_argument("--learning-rate", type=float, default=1e-3, help="Fine-tuning Adam learning rate.")
    evaluate.add_argument(
        "--save-model",
        metavar="DIR",
        help="After cross-validation, fine-tune on all subjects and save the model here (finetune, scratch).",
    )


def _add_push_parser(commands: argparse._SubParsersAction) -> None:
    push = commands.add_parser(
        "push",
        help="Publish a checkpoint folder to the Hugging Face Hub.",
        description=(
            "Check that a checkpoint folder is complete, create the Hub repository if needed and upload the folder's "
            "top-level files in one commit. The token comes from HF_TOKEN or `hf auth login`."
        ),
    )
    push.add_argument("folder", metavar="DIR", help="Checkpoint folder (save_pretrained output with a README.md).")
    push.add_argument("--repo-id", required=True, help="Target model repository, NAMESPACE/NAME.")
    push.add_argument("--private", action="store_true", help="Create the repository as private (new ones only).")
    push.add_argument("--revision", help="Branch to commit to, created from main when missing (default: main).")
    push.add_argument("--create-pr", action="store_true", help="Open a pull request instead of committing.")
    push.add_argument("--commit-message", help="Commit summary.")
    push.add_argument("--overwrite-card", action="store_true", help="Replace a README.md already on the Hub.")
    push.add_argument(
        "--dry-run", action="store_true", help="Print the files and card that would be sent; send nothing."
    )


def _add_convert_parser(commands: argparse._SubParsersAction) -> None:
    convert = commands.add_parser(
        "convert",
        help="Convert a checkpoint of the RelCon reference code into a relcon-hf checkpoint.",
        description=(
            "Convert a state dict of the authors' reference implementation (encoder or distance network; a "
            "checkpoint_*.pkl or .safetensors file) into a save_pretrained folder. Pickles are read with "
            "weights_only=True. Prints every key that did not carry over."
        ),
    )
    convert.add_argument("source", metavar="FILE", help="Reference state dict: .pkl/.pt/.pth pickle or .safetensors.")
    convert.add_argument("--output-dir", required=True, help="Folder of the converted checkpoint.")
    convert.add_argument("--kind", choices=["encoder", "distance"], help="Network type (detected from key names).")
    convert.add_argument(
        "--attention", choices=["sparsemax", "softmax"], help="Distance attention function (default: sparsemax)."
    )
    convert.add_argument(
        "--allow-unmapped", action="store_true", help="Convert even when source keys have no counterpart."
    )


def _add_embed_parser(commands: argparse._SubParsersAction) -> None:
    from .data.readers import FORMATS
    from .data.windowing import FLAG_REASONS

    embed = commands.add_parser(
        "embed",
        help="Write timestamped embeddings (and head predictions) of recordings to Parquet.",
        description=(
            "Read recordings in chunks, cut them into windows and write one row per window: the recording, the "
            "window start in seconds, its UTC timestamp when the file has absolute times, the embedding and, for a "
            "checkpoint with a head, its predictions. Memory does not grow with the length of the recordings."
        ),
    )
    embed.add_argument("recordings", nargs="+", metavar="RECORDING", help="Recording files, in any prepare format.")
    embed.add_argument("--model", required=True, help="Checkpoint folder of an encoder or a model with a head.")
    embed.add_argument("--output", required=True, help="Parquet file to write (replaced if it exists).")
    embed.add_argument("--batch-size", type=int, default=256, help="Windows per forward pass (default 256).")
    embed.add_argument("--hop-length", type=int, help="Step between windows in samples at the model rate.")
    embed.add_argument("--device", default="cpu", help="Torch device: cpu, cuda or cuda:N (default cpu).")
    embed.add_argument("--bf16", action="store_true", help="Run the forward under bfloat16 autocast (GPUs).")
    embed.add_argument(
        "--num-workers", type=int, default=1, help="Processes that embed recordings in parallel (default 1)."
    )
    embed.add_argument(
        "--chunk-rows", type=int, default=None, help="Rows read at a time (default 360000, 1 hour at 100 Hz)."
    )
    embed.add_argument(
        "--drop-flagged",
        nargs="+",
        default=["non_finite"],
        choices=FLAG_REASONS,
        help="Leave out windows flagged for these reasons (default: non_finite only).",
    )
    embed.add_argument(
        "--max-gap-seconds", type=float, default=1.0, help="Longer time steps split a recording (default 1 s)."
    )
    embed.add_argument("--sampling-rate", type=float, help="Rate of the recordings in Hz.")
    embed.add_argument("--unit", choices=["g", "m/s^2"], help="Unit of the recordings (detected when omitted).")
    embed.add_argument("--columns", nargs=3, metavar=("X", "Y", "Z"), help="Names of the three axis columns.")
    embed.add_argument("--time-column", help="Name of the timestamp column.")
    embed.add_argument("--format", choices=FORMATS, help="Format of every input (detected per file when omitted).")
    embed.add_argument("--timezone", help="Zone of wall-clock timestamps without an offset, such as Europe/London.")
    embed.add_argument("--no-progress", action="store_true", help="Do not show the progress bar.")


def _add_export_parser(commands: argparse._SubParsersAction) -> None:
    from .export import EXPORT_FORMATS

    export = commands.add_parser(
        "export",
        help="Export a checkpoint to ONNX or TorchScript and check its outputs.",
        description=(
            "Export an encoder (or a model with a head) for inference without relcon-hf, with a dynamic batch size. "
            "The exported model is run on check windows and compared with PyTorch; a difference above the tolerance "
            "is an error. Writes FILE.json with the differences."
        ),
    )
    export.add_argument("--model", required=True, help="Checkpoint folder.")
    export.add_argument("--output", required=True, help="File to write, such as encoder.onnx or encoder.pt.")
    export.add_argument("--format", choices=EXPORT_FORMATS, default="onnx", help="onnx (default) or torchscript.")
    export.add_argument(
        "--check-recording",
        help="Recording whose windows the check runs on (default: 8 windows of noise around gravity).",
    )
    export.add_argument("--sampling-rate", type=float, help="Rate of --check-recording in Hz, when it has no times.")
    export.add_argument("--tolerance", type=float, default=1e-4, help="Largest accepted difference (default 1e-4).")
    export.add_argument("--opset", type=int, default=18, help="ONNX opset version (default 18).")


def _settings_from_args(args: argparse.Namespace) -> dict:
    from .pipeline import load_config_file, load_preset, merge_settings

    settings = load_preset(args.preset)
    if args.config:
        settings = merge_settings(settings, load_config_file(args.config))
    stage = "distance" if args.command == "pretrain-distance" else "encoder"
    flags = {name: getattr(args, name) for name in _TRAINING_FLAGS if getattr(args, name) is not None}
    if args.report_to is not None:
        flags["report_to"] = args.report_to
    if args.resume_from:
        flags["resume_from"] = args.resume_from
    settings[stage] = merge_settings(settings[stage], flags)

    if args.command == "pretrain-distance" and args.attention:
        settings["distance"].setdefault("model", {})["attention"] = args.attention
    if args.command == "pretrain":
        for flag, key in (("num_candidates", "num_candidates"), ("temperature", "temperature")):
            if getattr(args, flag) is not None:
                settings["encoder"][key] = getattr(args, flag)
        if args.distance_max_steps is not None:
            settings["distance"]["max_steps"] = args.distance_max_steps
        if args.distance_batch_size is not None:
            settings["distance"]["batch_size"] = args.distance_batch_size
    return settings


def _run_prepare(args: argparse.Namespace) -> None:
    from .data.shards import prepare_recordings, prepare_watch

    if args.dataset == "watch":
        manifest = prepare_watch(
            args.output_dir,
            window_length=args.window_length,
            hop_length=args.hop_length if args.hop_length is not None else 128,
            validation_fraction=args.validation_fraction,
            seed=args.seed,
            watch_path=args.watch_path,
            overwrite=args.overwrite,
        )
    else:
        manifest = prepare_recordings(
            args.input,
            args.output_dir,
            sampling_rate=args.sampling_rate,
            unit=args.unit,
            columns=args.columns,
            time_column=args.time_column,
            format=args.format,
            timezone=args.timezone,
            max_gap_seconds=args.max_gap_seconds,
            range_g=args.range_g,
            keep_flagged=args.keep_flagged,
            num_workers=args.num_workers,
            test_fraction=args.test_fraction,
            subject_ids=args.subject_ids,
            window_length=args.window_length,
            hop_length=args.hop_length,
            group_seconds=args.group_seconds,
            validation_fraction=args.validation_fraction,
            seed=args.seed,
            overwrite=args.overwrite,
        )
    splits = manifest["splits"]
    for split, details in splits.items():
        print(
            f"{split}: {details['num_windows']} windows in {details['num_groups']} groups, "
            f"{len(details['subjects'])} subjects"
        )
    print(args.output_dir)


def _run_distance(args: argparse.Namespace) -> None:
    from .pipeline import stage_settings
    from .training.loop import run_training
    from .training.stages import DistanceTask

    section = _settings_from_args(args)["distance"]
    settings, options = stage_settings(section, args.output_dir, args.shards, args.seed)
    task = DistanceTask(args.shards, model_overrides=options.get("model", {}), seed=args.seed)
    result = run_training(task, settings)
    print(result.output_dir)


def _run_pretrain(args: argparse.Namespace) -> None:
    from .pipeline import probe_table, run_pipeline
    from .training.loop import process_state

    settings = _settings_from_args(args)
    result = run_pipeline(
        args.output_dir,
        settings,
        shards=args.shards,
        distance_model=args.distance_model,
        seed=args.seed,
        run_probe=not args.no_probe,
    )
    if process_state().is_main_process:
        if result.probe is not None:
            print(probe_table(result.probe))
        print(result.encoder_dir)


def _run_push(args: argparse.Namespace) -> None:
    from .hub.push import format_push_result, push_checkpoint

    result = push_checkpoint(
        args.folder,
        args.repo_id,
        private=True if args.private else None,
        revision=args.revision,
        create_pr=args.create_pr,
        commit_message=args.commit_message,
        overwrite_card=args.overwrite_card,
        dry_run=args.dry_run,
    )
    print(format_push_result(result, private=True if args.private else None, create_pr=args.create_pr))


def _run_convert(args: argparse.Namespace) -> None:
    from .hub.convert import convert_checkpoint

    overrides = {"attention": args.attention} if args.attention else {}
    if overrides and args.kind == "encoder":
        raise ValueError("--attention applies to the distance network only; drop it or pass --kind distance.")
    report = convert_checkpoint(
        args.source, args.output_dir, kind=args.kind, allow_unmapped=args.allow_unmapped, **overrides
    )
    print(report.as_text())
    print(args.output_dir)


def _run_evaluate(args: argparse.Namespace) -> None:
    import shlex
    from pathlib import Path

    from .evaluation.datasets import load_evaluation_dataset
    from .evaluation.protocols import PROBE_PROTOCOLS, EvaluationSettings, load_encoder_config, run_evaluation
    from .evaluation.report import RESULTS_FILE, results_markdown, save_final_model, write_results
    from .training.loop import process_state

    if args.save_model and args.protocol in PROBE_PROTOCOLS:
        raise ValueError(
            f"--save-model saves a fine-tuned model; use it with --protocol finetune or scratch, not {args.protocol}."
        )
    settings = EvaluationSettings(
        protocol=args.protocol,
        seed=args.seed,
        split=args.split,
        max_folds=args.max_folds,
        random_init=args.random_init,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
    )
    load_encoder_config(args.model)  # a wrong --model fails before the dataset is read
    if args.save_model and Path(args.save_model).is_dir() and any(Path(args.save_model).iterdir()):
        raise ValueError(
            f"The --save-model folder {args.save_model} already contains files. Choose a new folder or delete it "
            "first, so the saved model is not mixed with an earlier one."
        )
    dataset = load_evaluation_dataset(args.dataset, args.data_path)
    command = shlex.join(["relcon-hf", *args.argv])
    outcome = run_evaluation(args.model, dataset, settings, work_dir=f"{args.output_dir}/runs", command=command)
    state = process_state()
    if state.is_main_process:
        write_results(outcome, dataset, args.output_dir)
        print(results_markdown(outcome.results), end="")
    state.wait_for_everyone()
    if args.save_model:
        # Every process takes part in the training; the main one writes the results file and the card.
        save_final_model(args.model, dataset, settings, args.save_model, f"{args.output_dir}/{RESULTS_FILE}")
        if state.is_main_process:
            print(args.save_model)


def _run_embed(args: argparse.Namespace) -> None:
    from .embedding import EMBED_CHUNK_ROWS, embed_recordings

    read_options = {
        name: getattr(args, name)
        for name in ("sampling_rate", "unit", "columns", "time_column", "format", "timezone")
        if getattr(args, name) is not None
    }
    summary = embed_recordings(
        args.recordings,
        args.model,
        args.output,
        batch_size=args.batch_size,
        hop_length=args.hop_length,
        device=args.device,
        bf16=args.bf16,
        num_workers=args.num_workers,
        chunk_rows=args.chunk_rows if args.chunk_rows is not None else EMBED_CHUNK_ROWS,
        drop_flagged=args.drop_flagged,
        max_gap_seconds=args.max_gap_seconds,
        progress=not args.no_progress,
        **read_options,
    )
    for path, count in summary.windows_per_recording.items():
        print(f"{path}: {count} windows")
    dropped = {reason: count for reason, count in summary.dropped.items() if count}
    if dropped:
        print(f"window positions left out: {dropped}")
    print(summary.output)


def _run_export(args: argparse.Namespace) -> None:
    from .export import export_model

    check_windows = None
    if args.check_recording:
        from .data.readers import read_recording
        from .modeling import RelConFeatureExtractor

        recording = read_recording(args.check_recording, sampling_rate=args.sampling_rate)
        extractor = RelConFeatureExtractor.from_pretrained(args.model)
        check_windows = extractor(recording.values, sampling_rate=recording.sampling_rate, return_tensors="np")[
            "input_values"
        ][:64]
    report = export_model(
        args.model,
        args.output,
        format=args.format,
        check_windows=check_windows,
        tolerance=args.tolerance,
        opset_version=args.opset,
    )
    differences = ", ".join(f"{name} {value:.2g}" for name, value in report.max_abs_difference.items())
    print(f"checked on {report.num_check_windows} windows, largest difference: {differences}")
    print(report.path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(argv) if argv is not None else sys.argv[1:]
    args = parser.parse_args(argv)
    args.argv = argv  # the command line as given, stored with evaluation results
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("datasets", "transformers", "accelerate.utils", "httpx", "fsspec"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    handlers = {
        "prepare": _run_prepare,
        "pretrain-distance": _run_distance,
        "pretrain": _run_pretrain,
        "evaluate": _run_evaluate,
        "push": _run_push,
        "convert": _run_convert,
        "embed": _run_embed,
        "export": _run_export,
    }
    if args.command in ("pretrain-distance", "pretrain", "evaluate", "embed"):
        retain_freed_memory()
    try:
        handlers[args.command](args)
    except (ValueError, FileNotFoundError, ImportError, HubPushError) as error:
        logger.error(str(error))
        print(f"relcon-hf {args.command}: error: {error}", file=sys.stderr)
        return 2
    finally:
        _destroy_process_group()
    return 0


def _destroy_process_group() -> None:
    import torch.distributed

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
