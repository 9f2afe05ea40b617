"""Measure how fast the streams read shards, next to how fast training consumes windows on the same machine.

    python benchmarks/streaming.py [--shards DIR] [--epochs 3] [--repeats 3] [--presets cpu,paper]

Prints two Markdown tables. The first gives the throughput of `WindowStream` and `AnchorCandidateStream` through a
`DataLoader` (`drop_last=True`, workers started for every epoch as in the training loop), in windows per second. It
is given over whole epochs, and from the first batch to the last, which leaves out starting the workers and filling
the shuffle buffer. An anchor batch counts its anchors and their candidates, B x (K + 1) windows, because that is
what the encoder reads in stage 2. The second gives the windows per second that a training step consumes, measured
with the timing functions of benchmarks/step_time.py on random windows. Without --shards, the seglearn watch corpus
is prepared into a temporary folder (the `watch` extra).
"""

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch
from step_time import stage1_time, stage2_times
from torch.utils.data import DataLoader

from relcon_hf.data import AnchorCandidateStream, WindowStream, prepare_watch
from relcon_hf.pipeline import load_preset


# (stream, K, batch size) as the presets use them: stage 1 with batch 64, stage 2 with the `paper` preset's K = 20
# and batch 64, and with the `cpu` preset's K = 8 and batch 32.
STREAM_CASES = [("WindowStream", None, 64), ("AnchorCandidateStream", 20, 64), ("AnchorCandidateStream", 8, 32)]


def cpu_model() -> str:
    """Return the processor model as `lscpu` names it, or the `platform` module's name for it without lscpu."""
    try:
        output = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or platform.machine()
    for line in output.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def time_epoch(stream, batch_size: int, num_workers: int, epoch: int) -> tuple[float, float, int]:
    """Time one epoch through a fresh DataLoader iterator; return its seconds, the seconds to the first batch and the
    number of batches."""
    stream.set_epoch(epoch)
    loader = DataLoader(stream, batch_size=batch_size, num_workers=num_workers, drop_last=True)
    start = time.perf_counter()
    first_batch = None
    batches = 0
    for _ in loader:
        batches += 1
        if first_batch is None:
            first_batch = time.perf_counter() - start
    total = time.perf_counter() - start
    return total, first_batch or total, batches


def measure_stream(shards: str, name: str, num_candidates: int | None, batch_size: int, workers: int, epochs: int):
    if name == "WindowStream":
        stream = WindowStream(shards, seed=0)
        windows_per_item = 1
    else:
        stream = AnchorCandidateStream(shards, num_candidates=num_candidates, seed=0)
        windows_per_item = num_candidates + 1
    workers = min(workers, stream.max_num_workers)
    time_epoch(stream, batch_size, workers, epoch=epochs)  # warm-up: file cache, imports, page faults
    timings = [time_epoch(stream, batch_size, workers, epoch) for epoch in range(epochs)]
    batches = timings[0][2]
    windows = batch_size * windows_per_item  # per batch
    seconds = statistics.median(total for total, _, _ in timings)
    first_batch = statistics.median(first for _, first, _ in timings)
    after_first = statistics.median((batches - 1) * windows / (total - first) for total, first, _ in timings)

    return {
        "workers": workers,
        "batches": batches,
        "seconds": seconds,
        "first_batch": first_batch,
        "windows_per_second": batches * windows / seconds,
        "windows_per_second_after_first": after_first,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", help="shard folder to read (default: the watch corpus, prepared to a temp folder)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per stream case; the median is shown")
    parser.add_argument("--repeats", type=int, default=3, help="timed training steps per preset")
    parser.add_argument(
        "--presets", default="cpu,paper", help="comma-separated presets whose steps are timed; empty for none"
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as temporary:
        shards = args.shards
        if shards is None:
            shards = str(Path(temporary) / "watch")
            prepare_watch(shards)
        print(
            f"{datetime.date.today().isoformat()}, {cpu_model()}, {os.cpu_count()} logical CPUs, "
            f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, Python {platform.python_version()}"
        )
        print()
        print(
            "| stream | K | batch | DataLoader workers | batches per epoch | s per epoch | s to first batch "
            "| windows/s per epoch | windows/s after the first batch |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for name, num_candidates, batch_size in STREAM_CASES:
            for workers in (0, 1):
                result = measure_stream(shards, name, num_candidates, batch_size, workers, args.epochs)
                print(
                    f"| {name} | {num_candidates or '-'} | {batch_size} | {result['workers']} | {result['batches']} "
                    f"| {result['seconds']:.3f} | {result['first_batch']:.3f} | {result['windows_per_second']:,.0f} "
                    f"| {result['windows_per_second_after_first']:,.0f} |"
                )

    print()
    print("| preset | stage | B x K | windows per step | step s | windows/s consumed |")
    print("|---|---|---|---|---|---|")
    for name in filter(None, args.presets.split(",")):
        preset = load_preset(name)
        stage1 = stage1_time(preset, args.repeats)
        batch_size = preset["distance"]["batch_size"]
        print(f"| {name} | 1 | {batch_size} | {batch_size} | {stage1:.3f} | {batch_size / stage1:,.0f} |")
        times = stage2_times(preset, args.repeats)
        section = preset["encoder"]
        windows = section["batch_size"] * (section["num_candidates"] + 1)
        step = times["rank"] + times["encoder"]
        print(
            f"| {name} | 2 | {section['batch_size']} x {section['num_candidates']} | {windows} | {step:.2f} "
            f"| {windows / step:,.0f} |"
        )


if __name__ == "__main__":
    main()
