"""End-to-end tests: both pre-training stages on real windows through the CLI, resume, and the default job."""

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml
from huggingface_hub import ModelCard
from safetensors.torch import load_file
from transformers import AutoFeatureExtractor, AutoModel
from two_processes import CLI, run_two_processes

import relcon_hf  # noqa: F401  (registers the Auto classes)
from relcon_hf.cli import main
from relcon_hf.data import prepare_watch, read_manifest
from relcon_hf.pipeline import PRESETS, check_settings, load_preset
from relcon_hf.training.loop import TrainingSettings, list_checkpoints, run_training
from relcon_hf.training.stages import DistanceTask


TINY_RUN = {
    "distance": {
        "max_steps": 6,
        "batch_size": 16,
        "eval_steps": 3,
        "eval_batches": 2,
        "checkpoint_steps": 3,
        "logging_steps": 2,
        "model": {"hidden_size": 16, "bottleneck_size": 4},
    },
    "encoder": {
        "max_steps": 4,
        "batch_size": 8,
        "num_candidates": 4,
        "eval_steps": 2,
        "eval_batches": 2,
        "checkpoint_steps": 2,
        "logging_steps": 2,
        "model": {"stem_channels": 8, "stage_channels": [8, 16, 32], "stage_num_blocks": [1, 1, 1]},
    },
    "probe": {"num_folds": 2},
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, watch_shards):
    """A complete two-stage run with tiny settings on the real watch shards, through the CLI entry point."""
    folder = tmp_path_factory.mktemp("pipeline")
    config = folder / "tiny.json"
    config.write_text(json.dumps(TINY_RUN))
    run_dir = folder / "run"
    arguments = ["pretrain", "--shards", str(watch_shards), "--config", str(config), "--output-dir", str(run_dir)]
    return run_dir, main(arguments)


def test_pipeline_exits_cleanly_and_prints_the_checkpoint(tiny_run, capsys):
    run_dir, exit_code = tiny_run

    assert exit_code == 0
    assert (run_dir / "encoder" / "model.safetensors").exists()
    assert (run_dir / "distance" / "model.safetensors").exists()


def test_pipeline_checkpoint_has_everything_to_load(tiny_run):
    encoder_dir = tiny_run[0] / "encoder"

    config = json.loads((encoder_dir / "config.json").read_text())

    assert config["model_type"] == "relcon"
    assert config["stage_channels"] == [8, 16, 32]
    assert "AutoModel" in config["auto_map"]
    for name in ("preprocessor_config.json", "modeling_relcon.py", "configuration_relcon.py", "README.md"):
        assert (encoder_dir / name).exists(), name
    assert not list(encoder_dir.glob("*.bin"))


def test_pipeline_checkpoint_embeds_a_real_recording(tiny_run, watch_corpus):
    encoder_dir = tiny_run[0] / "encoder"
    model = AutoModel.from_pretrained(encoder_dir).eval()
    extractor = AutoFeatureExtractor.from_pretrained(encoder_dir)

    inputs = extractor(watch_corpus.recordings[5], sampling_rate=watch_corpus.sampling_rate, return_tensors="pt")
    with torch.no_grad():
        embeddings = model(**inputs).pooler_output

    assert embeddings.shape == (inputs["input_values"].shape[0], 32)
    assert torch.isfinite(embeddings).all()


def test_pipeline_logs_training_and_validation_losses(tiny_run):
    for stage in ("distance", "encoder"):
        records = [json.loads(line) for line in (tiny_run[0] / stage / "training_log.jsonl").read_text().splitlines()]
        train_losses = [record["train_loss"] for record in records if "train_loss" in record]
        eval_losses = [record["eval_loss"] for record in records if "eval_loss" in record]
        assert train_losses and all(loss == loss for loss in train_losses), stage
        assert len(eval_losses) >= 2, stage


def test_pipeline_keeps_resumable_checkpoints(tiny_run):
    checkpoints = list_checkpoints(tiny_run[0] / "encoder")

    assert [path.name for path in checkpoints] == ["step_2", "step_4"]
    assert (checkpoints[-1] / "training_state.json").exists()


def test_pipeline_probe_compares_pretrained_and_random(tiny_run):
    probe = json.loads((tiny_run[0] / "probe_results.json").read_text())

    assert set(probe["results"]) == {"pretrained", "random init"}
    assert probe["num_subjects"] == 10
    for result in probe["results"].values():
        assert 0.0 <= result["macro_f1_mean"] <= 1.0
        assert len(result["folds"]) == 2
    assert "macro-F1" in (tiny_run[0] / "probe_results.md").read_text()


def test_pipeline_model_card_carries_run_results(tiny_run):
    card = ModelCard.load(tiny_run[0] / "encoder" / "README.md")
    probe = json.loads((tiny_run[0] / "probe_results.json").read_text())

    assert card.data.library_name == "transformers"
    assert "accelerometry" in card.data.tags
    f1_results = [result for result in card.data.eval_results if result.metric_type == "f1"]
    assert f1_results[0].metric_value == pytest.approx(probe["results"]["pretrained"]["macro_f1_mean"])
    assert "4 optimizer steps" in card.text
    front_matter = yaml.safe_load(card.content.split("---")[1])
    assert front_matter["model-index"][0]["results"]


def test_resumed_run_ends_with_the_same_weights(tmp_path, watch_shards):
    def settings(output_dir, max_steps, resume_from=None):
        return TrainingSettings(
            output_dir=str(output_dir),
            shards=str(watch_shards),
            max_steps=max_steps,
            batch_size=8,
            eval_steps=0,
            eval_batches=1,
            checkpoint_steps=2,
            logging_steps=1,
            resume_from=resume_from,
        )

    def task():
        return DistanceTask(str(watch_shards), model_overrides={"hidden_size": 16, "bottleneck_size": 4})

    run_training(task(), settings(tmp_path / "straight", 4))
    run_training(task(), settings(tmp_path / "interrupted", 2))
    resumed = run_training(task(), settings(tmp_path / "interrupted", 4, resume_from="latest"))

    straight_weights = load_file(str(tmp_path / "straight" / "model.safetensors"))
    resumed_weights = load_file(str(tmp_path / "interrupted" / "model.safetensors"))
    assert resumed.completed_steps == 4
    for name, value in straight_weights.items():
        assert torch.equal(value, resumed_weights[name]), name


def test_resume_without_checkpoint_is_an_error(tmp_path, watch_shards, capsys):
    exit_code = main(
        ["pretrain-distance", "--shards", str(watch_shards), "--output-dir", str(tmp_path), "--resume-from", "latest"]
    )

    assert exit_code == 2
    assert "no complete checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_pass_the_settings_check(preset):
    assert check_settings(load_preset(preset), preset) == load_preset(preset)


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"distance": {"max_steps": 2,}}', "is not valid JSON"),
        ("[1, 2]", "expected a JSON object with sections"),
        ('{"distanc": {"max_steps": 2}}', "unknown sections ['distanc']"),
        ('{"distance": {"max_step": 2}}', "unknown keys ['max_step'] in section 'distance'"),
        ('{"encoder": {"num_candidate": 4}}', "unknown keys ['num_candidate'] in section 'encoder'"),
        ('{"distance": {"model": {"atention": "softmax"}}}', "unknown keys ['atention'] in section 'distance.model'"),
        (
            '{"encoder": {"model": {"stage_channel": [8]}}}',
            "unknown keys ['stage_channel'] in section 'encoder.model'",
        ),
        ('{"probe": {"folds": 3}}', "unknown keys ['folds'] in section 'probe'"),
        ('{"prepare": 5}', "section 'prepare' must be a JSON object, got 5"),
    ],
)
def test_bad_settings_file_stops_before_training(tmp_path, watch_shards, capsys, text, message):
    """A misspelt key in `--config` is named with its file and section; nothing is trained."""
    config = tmp_path / "settings.json"
    config.write_text(text)

    exit_code = main(
        ["pretrain", "--shards", str(watch_shards), "--config", str(config), "--output-dir", str(tmp_path / "run")]
    )

    assert exit_code == 2
    error = capsys.readouterr().err
    assert str(config) in error
    assert message in error
    assert not (tmp_path / "run" / "distance").exists()


@pytest.mark.slow
def test_default_job_with_cpu_preset(tmp_path):
    """The README's main job: prepare the watch corpus, both stages, the probe; prints the checkpoint path."""
    run_dir = tmp_path / "watch"
    completed = subprocess.run(
        [sys.executable, "-m", "relcon_hf.cli", "pretrain", "--preset", "cpu", "--output-dir", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=40 * 60,
        env=dict(os.environ, HF_HUB_OFFLINE="1"),
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.strip().splitlines()[-1] == str(run_dir / "encoder")
    probe = json.loads((run_dir / "probe_results.json").read_text())
    assert probe["results"]["pretrained"]["macro_f1_mean"] > 1 / 7


def test_two_processes_on_cpu_train_together(tmp_path, watch_shards):
    """`torchrun` with two processes on a CPU-only machine joins them in one process group (not two runs)."""
    output_dir = tmp_path / "distance"
    completed = run_two_processes(
        [
            *CLI,
            "pretrain-distance",
            "--shards",
            str(watch_shards),
            "--output-dir",
            str(output_dir),
            "--max-steps",
            "3",
            "--batch-size",
            "8",
            "--eval-steps",
            "0",
            "--eval-batches",
            "1",
            "--checkpoint-steps",
            "3",
        ],
        tmp_path,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    summary = json.loads((output_dir / "training_summary.json").read_text())
    assert summary["num_processes"] == 2
    assert summary["completed_steps"] == 3
    assert sorted(path.name for path in (output_dir / "checkpoints" / "step_3").glob("random_states_*")) == [
        "random_states_0.pkl",
        "random_states_1.pkl",
    ]


def test_two_processes_evaluate_uneven_validation_batches(tmp_path, watch_file):
    """One validation subject, split between the ranks, and more --eval-batches than either has: neither waits."""
    shards = tmp_path / "shards"
    prepare_watch(shards, watch_path=watch_file, validation_fraction=0.1)
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_RUN))
    run_dir = tmp_path / "run"

    completed = run_two_processes(
        [
            *CLI,
            "pretrain",
            "--shards",
            str(shards),
            "--config",
            str(config),
            "--output-dir",
            str(run_dir),
            "--max-steps",
            "2",
            "--batch-size",
            "32",
            "--eval-steps",
            "0",
            "--eval-batches",
            "100",
            "--no-probe",
        ],
        tmp_path,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    assert len(read_manifest(shards)["splits"]["validation"]["subjects"]) == 1
    summary = json.loads((run_dir / "encoder" / "training_summary.json").read_text())
    assert summary["num_processes"] == 2
    assert summary["final_eval_loss"] is not None


def test_pipeline_resume_latest_continues_stage_one(tmp_path, watch_shards):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_RUN))
    run_dir = tmp_path / "run"
    # Stage 1 stopped after its step-3 checkpoint: no summary, so the job must continue it, not reuse it.
    first = main(
        [
            "pretrain-distance",
            "--shards",
            str(watch_shards),
            "--config",
            str(config),
            "--output-dir",
            str(run_dir / "distance"),
            "--max-steps",
            "3",
        ]
    )
    (run_dir / "distance" / "training_summary.json").unlink()

    second = main(
        [
            "pretrain",
            "--shards",
            str(watch_shards),
            "--config",
            str(config),
            "--output-dir",
            str(run_dir),
            "--resume-from",
            "latest",
            "--no-probe",
        ]
    )

    assert first == 0
    assert second == 0
    distance_log = [
        json.loads(line) for line in (run_dir / "distance" / "training_log.jsonl").read_text().splitlines()
    ]
    steps_after_resume = [record["step"] for record in distance_log if "train_loss" in record][-2:]
    assert steps_after_resume == [4, 6]
    assert json.loads((run_dir / "distance" / "training_summary.json").read_text())["completed_steps"] == 6
    assert json.loads((run_dir / "encoder" / "training_summary.json").read_text())["completed_steps"] == 4


@pytest.mark.parametrize(
    "encoder_section, message",
    [
        ({"candidate_sharing": "yes"}, "`candidate_sharing` must be true or false, got 'yes'"),
        ({"compile_ranking": 1}, "`compile_ranking` must be true or false, got 1"),
        ({"ranking_precision": "fp16"}, "`ranking_precision` must be one of auto, float32, bfloat16, got 'fp16'"),
        ({"temperature": 0}, "`temperature` must be a positive number (0.1 in RelCon), got 0"),
        ({"ranking_chunk_size": 0}, "`ranking_chunk_size` must be a positive integer, got 0"),
        ({"num_candidates": "4"}, "`num_candidates` must be a positive integer, got '4'"),
        ({"model": {"stage_channels": [8, -1, 8]}}, "`stage_channels[1]` must be a positive integer, got -1"),
    ],
)
def test_bad_stage_two_option_stops_before_stage_one(tmp_path, watch_shards, capsys, encoder_section, message):
    config = tmp_path / "settings.json"
    config.write_text(json.dumps({"encoder": encoder_section}))

    exit_code = main(
        ["pretrain", "--shards", str(watch_shards), "--config", str(config), "--output-dir", str(tmp_path / "run")]
    )

    assert exit_code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run" / "distance").exists()


def test_candidate_sharing_from_a_settings_file(tiny_run, tmp_path, watch_shards):
    """
    `candidate_sharing`, `ranking_precision` and `compile_ranking` in `--config` reach stage 2 and are recorded in
    the run; the compiled ranking shows in dynamo's graph count.
    """
    settings = json.loads(json.dumps(TINY_RUN))
    settings["encoder"].update(candidate_sharing=True, ranking_precision="float32", compile_ranking=True, batch_size=3)
    graphs_before = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    config = tmp_path / "sharing.json"
    config.write_text(json.dumps(settings))
    run_dir = tmp_path / "run"
    distance_dir = tiny_run[0] / "distance"

    exit_code = main(
        ["pretrain", "--shards", str(watch_shards), "--distance-model", str(distance_dir), "--config", str(config)]
        + ["--output-dir", str(run_dir)]
    )

    assert exit_code == 0
    summary = json.loads((run_dir / "encoder" / "training_summary.json").read_text())
    assert summary["sampling"] == {
        "num_candidates": 4,
        "temperature": 0.1,
        "candidate_sharing": True,
        "ranking_precision": "float32",
        "compile_ranking": True,
    }
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > graphs_before
    assert "every window is an anchor" in (run_dir / "encoder" / "README.md").read_text()
