"""Crash safety of pre-training: runs killed with SIGKILL, damaged checkpoints, best weights after a crash, and seeds.

The killed runs are real `relcon-hf pretrain-distance` processes on the seglearn watch shards. Every comparison of
weights is exact (`torch.equal`, tolerance 0): on one CPU process the loop is deterministic, so any difference means
that some state (model, optimizer, scheduler, random state, data position or best weights) was not restored.
"""

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from relcon_hf.modeling import RelConModel
from relcon_hf.training.checkpoints import CHECKPOINT_FILES
from relcon_hf.training.loop import TrainingSettings, list_checkpoints, run_training
from relcon_hf.training.stages import DistanceTask, EncoderTask


TINY_DISTANCE_MODEL = {"hidden_size": 16, "bottleneck_size": 4}
TINY_ENCODER_MODEL = {"stem_channels": 8, "stage_channels": [8, 16, 32], "stage_num_blocks": [1, 1, 1]}
# Stage-1 settings of the killed runs: a checkpoint every 2 steps, validation every 3 steps (so best/ changes).
CLI_SETTINGS = {
    "batch_size": 8,
    "checkpoint_steps": 2,
    "checkpoints_to_keep": 2,
    "eval_steps": 3,
    "eval_batches": 2,
    "logging_steps": 1,
}


def cli_command(shards: Path, output_dir: Path, max_steps: int, resume: bool) -> list[str]:
    config = {"distance": {**CLI_SETTINGS, "max_steps": max_steps, "model": TINY_DISTANCE_MODEL}}
    config_path = output_dir.parent / f"{output_dir.name}.json"
    config_path.write_text(json.dumps(config))
    command = [sys.executable, "-m", "relcon_hf.cli", "pretrain-distance", "--shards", str(shards)]
    command += ["--config", str(config_path), "--output-dir", str(output_dir)]
    return command + (["--resume-from", "latest"] if resume else [])


def logged_steps(output_dir: Path) -> list[int]:
    """Steps whose training loss the run has logged so far (a line being written is skipped)."""
    log = output_dir / "training_log.jsonl"
    if not log.exists():
        return []
    steps = []
    for line in log.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "train_loss" in record:
            steps.append(record["step"])
    return steps


def run_until_killed(command: list[str], output_dir: Path, kill_after_step: int, timeout: float = 120) -> int:
    """Start `command`, SIGKILL it as soon as its log shows `kill_after_step`, and return the last logged step."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    log_path = output_dir.parent / f"{output_dir.name}.stderr.txt"
    with open(log_path, "w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=env)
    deadline = time.monotonic() + timeout
    try:
        while max(logged_steps(output_dir), default=0) < kill_after_step:
            if process.poll() is not None:
                pytest.fail(f"The run ended (exit {process.returncode}) before step {kill_after_step}: {log_path}")
            if time.monotonic() > deadline:
                pytest.fail(f"The run did not reach step {kill_after_step} in {timeout} s: {log_path}")
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    return max(logged_steps(output_dir))


def run_to_end(command: list[str], timeout: float = 180) -> None:
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    assert completed.returncode == 0, completed.stderr[-3000:]


def assert_same_weights(expected_path: Path, actual_path: Path) -> None:
    expected, actual = load_file(str(expected_path)), load_file(str(actual_path))
    assert expected.keys() == actual.keys()
    for name, value in expected.items():
        assert torch.equal(value, actual[name]), name


def distance_settings(output_dir: Path, shards: Path, max_steps: int, **overrides) -> TrainingSettings:
    values = {**CLI_SETTINGS, "eval_steps": 0, "eval_batches": 1, **overrides}
    return TrainingSettings(output_dir=str(output_dir), shards=str(shards), max_steps=max_steps, **values)


def distance_task(shards: Path, seed: int = 0) -> DistanceTask:
    return DistanceTask(str(shards), model_overrides=TINY_DISTANCE_MODEL, seed=seed)


# ---------------------------------------------------------------------------------------------------------------------
# Killed processes


@pytest.mark.slow
def test_killed_twice_resumes_to_same_weights(tmp_path, watch_shards):
    """SIGKILL after steps 4 and 9 of 12, two resumes: the final weights equal those of an uninterrupted run."""
    straight, crashed = tmp_path / "straight", tmp_path / "crashed"
    run_to_end(cli_command(watch_shards, straight, 12, resume=False))

    first_kill = run_until_killed(cli_command(watch_shards, crashed, 12, resume=False), crashed, 4)
    second_kill = run_until_killed(cli_command(watch_shards, crashed, 12, resume=True), crashed, 9)
    run_to_end(cli_command(watch_shards, crashed, 12, resume=True))

    assert 4 <= first_kill < 9 <= second_kill < 12
    summary = json.loads((crashed / "training_summary.json").read_text())
    assert summary["completed_steps"] == 12
    assert summary["best_step"] == json.loads((straight / "training_summary.json").read_text())["best_step"]
    assert_same_weights(straight / "model.safetensors", crashed / "model.safetensors")
    assert_same_weights(straight / "best" / "model.safetensors", crashed / "best" / "model.safetensors")
    assert [path.name for path in list_checkpoints(crashed)] == ["step_10", "step_12"]


def test_kill_during_save_leaves_no_valid_checkpoint(tmp_path, watch_shards):
    """A process killed inside the step-4 save leaves step_4.incomplete, which is ignored; resume uses step_2."""
    output_dir = tmp_path / "run"
    # The child dies by SIGKILL after `accelerator.save_state` wrote the step-4 files, before the folder is complete.
    child = f"""
import os, signal, sys
from relcon_hf.training import loop
from relcon_hf.training.loop import TrainingSettings, run_training
from relcon_hf.training.stages import DistanceTask

write_file_list = loop.write_file_list
def write_file_list_then_die(folder):
    if folder.name.startswith("step_4"):
        os.kill(os.getpid(), signal.SIGKILL)
    return write_file_list(folder)
loop.write_file_list = write_file_list_then_die

settings = TrainingSettings(output_dir={str(output_dir)!r}, shards={str(watch_shards)!r}, max_steps=6,
                            **{CLI_SETTINGS!r} | {{"eval_steps": 0, "eval_batches": 1}})
run_training(DistanceTask({str(watch_shards)!r}, model_overrides={TINY_DISTANCE_MODEL!r}), settings)
"""
    completed = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )

    assert completed.returncode == -signal.SIGKILL, completed.stderr[-3000:]
    checkpoints = output_dir / "checkpoints"
    assert (checkpoints / "step_4.incomplete" / "model.safetensors").exists()
    assert not (checkpoints / "step_4").exists()
    assert [path.name for path in list_checkpoints(output_dir)] == ["step_2"]

    resumed = run_training(
        distance_task(watch_shards), distance_settings(output_dir, watch_shards, 6, resume_from="latest")
    )
    run_training(distance_task(watch_shards), distance_settings(tmp_path / "straight", watch_shards, 6))

    assert resumed.completed_steps == 6
    assert not (checkpoints / "step_4.incomplete").exists()
    assert_same_weights(tmp_path / "straight" / "model.safetensors", output_dir / "model.safetensors")


# ---------------------------------------------------------------------------------------------------------------------
# Damaged checkpoints


@pytest.fixture()
def two_checkpoints(tmp_path, watch_shards) -> Path:
    """A 4-step stage-1 run with checkpoints step_2 and step_4."""
    output_dir = tmp_path / "run"
    run_training(distance_task(watch_shards), distance_settings(output_dir, watch_shards, 4))
    return output_dir


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage, file_name, message",
    [
        (truncate, "model.safetensors", "bytes, but"),
        (flip_last_byte, "optimizer.bin", "SHA-256 digest"),
        (Path.unlink, "random_states_0.pkl", "is missing"),
    ],
)
def test_damaged_checkpoint_names_file_and_falls_back(
    two_checkpoints, tmp_path, watch_shards, caplog, damage, file_name, message
):
    damaged = two_checkpoints / "checkpoints" / "step_4"
    damage(damaged / file_name)

    with pytest.raises(ValueError, match=message) as error:
        run_training(
            distance_task(watch_shards), distance_settings(two_checkpoints, watch_shards, 6, resume_from=str(damaged))
        )
    assert str(damaged / file_name) in str(error.value)

    with caplog.at_level(logging.WARNING, logger="relcon_hf.training.loop"):
        resumed = run_training(
            distance_task(watch_shards), distance_settings(two_checkpoints, watch_shards, 6, resume_from="latest")
        )
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any(str(damaged / file_name) in text and "step_2" in text for text in warnings), warnings

    run_training(distance_task(watch_shards), distance_settings(tmp_path / "straight", watch_shards, 6))
    assert resumed.completed_steps == 6
    assert_same_weights(tmp_path / "straight" / "model.safetensors", two_checkpoints / "model.safetensors")


def test_every_checkpoint_damaged_is_an_error(two_checkpoints, watch_shards):
    for checkpoint in list_checkpoints(two_checkpoints):
        truncate(checkpoint / "model.safetensors")

    with pytest.raises(ValueError, match="No usable checkpoint") as error:
        run_training(
            distance_task(watch_shards), distance_settings(two_checkpoints, watch_shards, 6, resume_from="latest")
        )
    assert "step_2" in str(error.value)


def test_checkpoint_lists_every_file_with_digest(two_checkpoints):
    checkpoint = list_checkpoints(two_checkpoints)[-1]
    files = json.loads((checkpoint / CHECKPOINT_FILES).read_text())["files"]

    on_disk = {
        path.relative_to(checkpoint).as_posix()
        for path in checkpoint.rglob("*")
        if path.is_file() and path.name not in (CHECKPOINT_FILES, "training_state.json")
    }
    assert set(files) == on_disk
    assert {"model.safetensors", "optimizer.bin", "scheduler.bin", "random_states_0.pkl"} <= on_disk
    for name, entry in files.items():
        assert entry["bytes"] == (checkpoint / name).stat().st_size, name
        assert len(entry["sha256"]) == 64, name


# ---------------------------------------------------------------------------------------------------------------------
# best/ after a crash


def test_resume_replaces_best_weights_newer_than_checkpoint(tmp_path, watch_shards):
    """best/ written after the checkpoint (by a run that then died) is replaced by the checkpoint's own copy."""
    output_dir = tmp_path / "run"
    settings = distance_settings(output_dir, watch_shards, 3, checkpoint_steps=3, eval_steps=2, eval_batches=1)
    run_training(distance_task(watch_shards), settings)
    checkpoint = list_checkpoints(output_dir)[-1]
    saved_best = checkpoint / "best" / "model.safetensors"
    assert saved_best.exists()

    # Stand-in for best weights of a later step that the crashed run reached and the resumed run never repeats.
    later_best = {name: value + 1.0 for name, value in load_file(str(saved_best)).items()}
    save_file(later_best, str(output_dir / "best" / "model.safetensors"), metadata={"format": "pt"})
    (output_dir / "training_summary.json").unlink()

    resumed = run_training(distance_task(watch_shards), dataclasses.replace(settings, resume_from="latest"))

    assert resumed.best_step == json.loads((checkpoint / "training_state.json").read_text())["best_step"]
    assert_same_weights(saved_best, output_dir / "best" / "model.safetensors")
    assert_same_weights(saved_best, output_dir / "model.safetensors")


def test_resume_without_validation_removes_later_best(tmp_path, watch_shards):
    """Checkpoint step_2 has no validation result; best/ comes from the evaluation at step 3, after it."""
    output_dir = tmp_path / "run"
    run_training(distance_task(watch_shards), distance_settings(output_dir, watch_shards, 3))
    checkpoint = list_checkpoints(output_dir)[-1]
    assert checkpoint.name == "step_2"
    assert (output_dir / "best" / "model.safetensors").exists()
    (output_dir / "training_summary.json").unlink()

    resumed = run_training(
        distance_task(watch_shards), distance_settings(output_dir, watch_shards, 2, resume_from="latest")
    )

    assert resumed.best_step is None
    assert not (output_dir / "best").exists()
    assert_same_weights(checkpoint / "model.safetensors", output_dir / "model.safetensors")


# ---------------------------------------------------------------------------------------------------------------------
# Determinism


def losses_and_weights(output_dir: Path) -> tuple[list[float], dict]:
    records = [json.loads(line) for line in (output_dir / "training_log.jsonl").read_text().splitlines()]
    losses = [record["train_loss"] for record in records if "train_loss" in record]
    return losses, load_file(str(output_dir / "model.safetensors"))


def train_both_stages(run_dir: Path, shards: Path, seed: int, batch_size: int, num_candidates: int) -> Path:
    """Train 20 steps of stage 1 and 20 of stage 2 on one CPU process, logging the loss of every step."""
    common = dict(batch_size=batch_size, eval_steps=0, eval_batches=1, checkpoint_steps=0, logging_steps=1, seed=seed)
    stage_one = TrainingSettings(output_dir=str(run_dir / "distance"), shards=str(shards), max_steps=20, **common)
    run_training(distance_task(shards, seed), stage_one)
    stage_two = TrainingSettings(output_dir=str(run_dir / "encoder"), shards=str(shards), max_steps=20, **common)
    encoder_task = EncoderTask(
        str(shards),
        str(run_dir / "distance"),
        num_candidates=num_candidates,
        model_overrides=TINY_ENCODER_MODEL,
        seed=seed,
    )
    run_training(encoder_task, stage_two)
    return run_dir


def embed(run_dir: Path, windows: torch.Tensor) -> torch.Tensor:
    model = RelConModel.from_pretrained(run_dir / "encoder").eval()
    with torch.no_grad():
        return model(windows).pooler_output


def first_windows(watch_corpus) -> torch.Tensor:
    """The first three 256-sample windows of the first watch recording, (3, 256, 3), as recorded (50 Hz, g)."""
    values = torch.as_tensor(watch_corpus.recordings[0][:768, :3], dtype=torch.float32)
    return values.view(3, 256, 3)


@pytest.mark.slow
def test_same_seed_same_losses_and_embeddings(tmp_path, watch_shards, watch_corpus):
    """Seed 0 twice, batches of 4, K = 2: identical losses for 20 steps of each stage and identical embeddings."""
    runs = [train_both_stages(tmp_path / name, watch_shards, 0, 4, 2) for name in ("first", "second")]

    for stage in ("distance", "encoder"):
        first_losses, first_weights = losses_and_weights(runs[0] / stage)
        second_losses, second_weights = losses_and_weights(runs[1] / stage)
        assert len(first_losses) == 20, stage
        assert first_losses == second_losses, stage
        for name, value in first_weights.items():
            assert torch.equal(value, second_weights[name]), (stage, name)
    assert torch.equal(embed(runs[0], first_windows(watch_corpus)), embed(runs[1], first_windows(watch_corpus)))


def test_same_seed_same_stage_one_losses(tmp_path, watch_shards):
    """The fast check: 20 stage-1 steps of 4 windows, twice with seed 0, log identical losses."""
    losses = []
    for name in ("first", "second"):
        settings = distance_settings(tmp_path / name, watch_shards, 20, batch_size=4, checkpoint_steps=0)
        run_training(distance_task(watch_shards), settings)
        losses.append(losses_and_weights(tmp_path / name)[0])

    assert len(losses[0]) == 20
    assert losses[0] == losses[1]


@pytest.mark.slow
def test_seeds_decide_losses_and_embeddings(tmp_path, watch_shards, watch_corpus):
    """Batches of 8 and K = 4: seed 0 twice gives identical results, seed 1 different ones."""
    runs = [
        train_both_stages(tmp_path / name, watch_shards, seed, 8, 4)
        for name, seed in (("first", 0), ("second", 0), ("other_seed", 1))
    ]
    embeddings = [embed(run_dir, first_windows(watch_corpus)) for run_dir in runs]

    for stage in ("distance", "encoder"):
        first_losses, _ = losses_and_weights(runs[0] / stage)
        second_losses, _ = losses_and_weights(runs[1] / stage)
        other_losses, _ = losses_and_weights(runs[2] / stage)
        assert first_losses == second_losses, stage
        assert first_losses != other_losses, stage
    assert torch.equal(embeddings[0], embeddings[1])
    assert not torch.equal(embeddings[0], embeddings[2])
