# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""An Accelerate tracker that appends metrics to a JSON Lines file in the run folder.

It needs no service or extra package, so every run keeps a machine-readable log next to its checkpoint. Other
Accelerate trackers (tensorboard, wandb, ...) can be added with `--report-to`.
"""

import json
import os
import time
from pathlib import Path

from accelerate.tracking import GeneralTracker


class JSONLinesTracker(GeneralTracker):
    """Writes the run configuration to `<logging_dir>/training_config.json` and each `log` call as one JSON line."""

    name = "jsonl"
    requires_logging_directory = True
    main_process_only = True

    def __init__(self, run_name: str, logging_dir: str | os.PathLike):
        super().__init__()
        self.run_name = run_name
        self.logging_dir = Path(logging_dir)
        self.log_path = self.logging_dir / "training_log.jsonl"

    def start(self) -> None:
        self.logging_dir.mkdir(parents=True, exist_ok=True)

    @property
    def tracker(self) -> Path:
        return self.log_path

    def store_init_configuration(self, values: dict) -> None:
        self.logging_dir.mkdir(parents=True, exist_ok=True)
        with open(self.logging_dir / "training_config.json", "w") as handle:
            json.dump({"run_name": self.run_name, **values}, handle, indent=2, sort_keys=True, default=str)

    def log(self, values: dict, step: int | None = None, **kwargs) -> None:
        self.logging_dir.mkdir(parents=True, exist_ok=True)
        record = {"step": step, "time": round(time.time(), 3), **values}
        with open(self.log_path, "a") as handle:
            handle.write(json.dumps(record, default=float) + "\n")
