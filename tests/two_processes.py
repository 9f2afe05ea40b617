# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Start two CPU processes with torchrun, as the multi-process tests do."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest


# Arguments that make torchrun run the relcon-hf command line in every process.
CLI = ["-m", "relcon_hf.cli"]


def run_two_processes(arguments: list[str], log_dir: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """
    Run `torchrun --nproc_per_node 2 ARGUMENTS` on CPU and return its exit status and output.

    `ARGUMENTS` is a script path or `CLI` followed by that program's arguments. torchrun starts its workers in sessions
    of their own, so on timeout the test sends SIGTERM to torchrun, which stops its workers, and only then kills what
    is left of its process group. Output goes to files, not pipes, so that a worker that outlives torchrun cannot
    block the test on an open pipe.
    """
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", *arguments]
    stdout_path, stderr_path = Path(log_dir) / "stdout.txt", Path(log_dir) / "stderr.txt"
    with open(stdout_path, "w") as stdout, open(stderr_path, "w") as stderr:
        process = subprocess.Popen(
            command,
            stdout=stdout,
            stderr=stderr,
            text=True,
            start_new_session=True,
            env=dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1"),
        )
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            pytest.fail(f"Two-process run did not finish in {timeout} s (a rank waiting for another?)")
    return subprocess.CompletedProcess(command, process.returncode, stdout_path.read_text(), stderr_path.read_text())
