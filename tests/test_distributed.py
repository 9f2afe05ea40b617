"""Two CPU processes under torchrun: equal steps, disjoint data, every validation item once, one model state.

`accelerate launch --num_processes 2 --cpu` starts one process on a machine without GPUs (accelerate 1.16), so the
tests use torchrun and check that two processes really ran.
"""

import hashlib
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from two_processes import run_two_processes

from relcon_hf.data import AnchorCandidateStream
from relcon_hf.modeling import RelConDistanceConfig, RelConDistanceModel


TESTS_DIR = Path(__file__).resolve().parent


def digests(tensors: dict[str, torch.Tensor]) -> dict[str, str]:
    return {name: hashlib.sha256(value.contiguous().numpy().tobytes()).hexdigest() for name, value in tensors.items()}


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory, watch_shards) -> tuple[Path, list[dict]]:
    """Three stage-2 steps of 4 anchors per rank, then validation over every validation anchor."""
    folder = tmp_path_factory.mktemp("distributed")
    torch.manual_seed(0)
    RelConDistanceModel(RelConDistanceConfig(hidden_size=16, bottleneck_size=4)).save_pretrained(folder / "distance")
    script = str(TESTS_DIR / "record_distributed_run.py")

    completed = run_two_processes([script, str(watch_shards), str(folder / "distance"), str(folder)], folder)

    assert completed.returncode == 0, completed.stderr[-3000:]
    return folder, [json.loads((folder / f"rank_{rank}.json").read_text()) for rank in (0, 1)]


def test_two_ranks_take_equal_steps_on_disjoint_anchors(two_rank_run):
    _, ranks = two_rank_run

    assert [rank["num_processes"] for rank in ranks] == [2, 2]
    for rank in ranks:
        assert rank["completed_steps"] == 3
        assert len(rank["train_steps"]) == 3
        assert all(len(step) == 4 for step in rank["train_steps"])
    anchors = [{anchor for step in rank["train_steps"] for anchor in step} for rank in ranks]
    assert len(anchors[0]) == len(anchors[1]) == 12
    assert not anchors[0] & anchors[1]


def test_validation_counts_every_anchor_once(two_rank_run, watch_shards):
    _, ranks = two_rank_run
    stream = AnchorCandidateStream(watch_shards, "validation", num_candidates=2, shuffle_buffer_size=0)
    expected = [f"{item['group_id']}/{item['anchor_index']}" for item in stream]

    evaluated = ranks[0]["eval_anchors"] + ranks[1]["eval_anchors"]

    assert len(expected) == len(set(expected))
    assert sorted(evaluated) == sorted(expected)
    assert not set(ranks[0]["eval_anchors"]) & set(ranks[1]["eval_anchors"])
    # An odd total leaves one anchor more on rank 0 instead of leaving it out.
    assert len(ranks[0]["eval_anchors"]) - len(ranks[1]["eval_anchors"]) == len(expected) % 2


def test_every_rank_holds_the_saved_state(two_rank_run):
    """BatchNorm statistics are averaged before evaluation and saving, so the ranks agree with rank 0's files."""
    folder, ranks = two_rank_run
    checkpoint = digests(load_file(str(folder / "encoder" / "checkpoints" / "step_3" / "model.safetensors")))
    final_weights = load_file(str(folder / "encoder" / "model.safetensors"))

    assert ranks[0]["state_at_eval"] == ranks[1]["state_at_eval"]
    assert ranks[0]["state_at_eval"] == checkpoint
    assert digests(final_weights) == checkpoint
    running_vars = [value for name, value in final_weights.items() if name.endswith("running_var")]
    assert running_vars
    assert not all(torch.equal(value, torch.ones_like(value)) for value in running_vars)
