# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Run stage-2 pre-training and record what each rank did, one JSON file per rank. Run by tests/test_distributed.py:

    torchrun --nproc_per_node 2 tests/record_distributed_run.py SHARDS DISTANCE_MODEL OUTPUT_DIR

The task is the package's `EncoderTask` with a record of every batch: the anchors of each training step and of each
validation batch, and at the first validation batch a SHA-256 digest of every tensor of this rank's model. The record
goes to `OUTPUT_DIR/rank_<n>.json`.
"""

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState

from relcon_hf.training.loop import TrainingSettings, run_training
from relcon_hf.training.stages import EncoderTask


def tensor_digests(model: torch.nn.Module) -> dict[str, str]:
    return {
        name: hashlib.sha256(value.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
        for name, value in model.state_dict().items()
    }


class RecordingEncoderTask(EncoderTask):
    """`EncoderTask` that records the anchors of every batch and the model state at the first validation batch."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.record: dict[str, Any] = {"train_steps": [], "eval_anchors": [], "state_at_eval": None}

    def compute_loss(self, model: torch.nn.Module, batch: Any, generator: torch.Generator) -> torch.Tensor:
        anchors = [
            f"{group}/{index}" for group, index in zip(batch["group_id"], batch["anchor_index"].tolist(), strict=True)
        ]
        if model.training:
            self.record["train_steps"].append(anchors)
        else:
            if self.record["state_at_eval"] is None:
                self.record["state_at_eval"] = tensor_digests(model)
            self.record["eval_anchors"].extend(anchors)
        return super().compute_loss(model, batch, generator)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shards", help="shard folder")
    parser.add_argument("distance_model", help="stage-1 checkpoint folder")
    parser.add_argument("output_dir", help="folder of the run and of rank_<n>.json")
    args = parser.parse_args()

    task = RecordingEncoderTask(
        args.shards,
        args.distance_model,
        num_candidates=2,
        model_overrides={
            "stem_channels": 8,
            "stage_channels": [8, 16],
            "stage_num_blocks": [1, 1],
            "stage_kernel_sizes": [3, 4],
        },
    )
    settings = TrainingSettings(
        output_dir=str(Path(args.output_dir) / "encoder"),
        shards=args.shards,
        max_steps=3,
        batch_size=4,
        eval_steps=0,
        eval_batches=100_000,
        checkpoint_steps=3,
        logging_steps=1,
    )
    result = run_training(task, settings)

    state = PartialState()
    record = dict(task.record, rank=state.process_index, num_processes=state.num_processes)
    record["completed_steps"] = result.completed_steps
    output = Path(args.output_dir) / f"rank_{state.process_index}.json"
    output.write_text(json.dumps(record))
    state.wait_for_everyone()


if __name__ == "__main__":
    main()
