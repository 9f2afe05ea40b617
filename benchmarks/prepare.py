# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Throughput and peak memory of `prepare_recordings` on a long 100 Hz wrist recording.

The recording is built from the real 100 Hz wrist recording of the mgait test data (`data__data_wrist.csv`, in
m/s^2), repeated to the requested number of days with a different small noise on each copy (so no copy is flagged
as a repeated block), and written as Parquet with a millisecond Unix-time column. Each measurement runs in a fresh
process, so the peak resident memory (`VmHWM`) belongs to one prepare run.

Usage:
    python benchmarks/prepare.py --days 1 3 [--data-dir ../shared/data] [--work-dir /tmp/relcon-prepare-bench]
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def write_recording(source: Path, days: float, path: Path) -> int:
    """Write `days` of 100 Hz acceleration built from the real wrist recording; return the number of rows."""
    wrist = pd.read_csv(source)
    values = wrist[[name for name in wrist.columns if name.lower().startswith("acc")][:3]].to_numpy(np.float64)
    rows = int(days * 86400 * 100)
    rng = np.random.default_rng(0)
    copies = -(-rows // len(values))
    tiled = np.concatenate([values + rng.normal(0, 0.01, values.shape) for _ in range(copies)])[:rows]
    start_ms = 1_700_000_000_000
    frame = pd.DataFrame(tiled.astype(np.float32), columns=["x", "y", "z"])
    frame.insert(0, "timestamp", start_ms + np.arange(rows, dtype=np.int64) * 10)
    frame.to_parquet(path, index=False)
    return rows


def peak_resident_mib() -> float:
    """
    Peak resident memory of this process image in MiB.

    `VmHWM` is reset when a process starts a new program. `ru_maxrss` is not: after fork and exec it still contains the
    parent's peak, which here is the parent's copy of the generated recording.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(path: Path, output_dir: Path) -> dict:
    """Run prepare on one file in this process and return seconds and peak memory."""
    from relcon_hf.data import prepare_recordings

    started = time.perf_counter()
    manifest = prepare_recordings([path], output_dir, validation_fraction=0, overwrite=True)
    seconds = time.perf_counter() - started
    report = next(iter(manifest["inputs"].values()))
    return {
        "seconds": seconds,
        "peak_rss_mib": peak_resident_mib(),
        "windows": report["windows_written"],
        "hours": report["duration_seconds"] / 3600,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, nargs="+", default=[1.0, 3.0])
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/relcon-prepare-bench"))
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.measure is not None:
        print(json.dumps(measure(args.measure, args.work_dir / f"shards-{args.measure.stem}")))
        return

    args.work_dir.mkdir(parents=True, exist_ok=True)
    source = args.data_dir / "mgait" / "data__data_wrist.csv"
    print("| days | rows | prepare time (s) | hours of recording per minute | peak RSS (MiB) | windows |")
    print("| --- | --- | --- | --- | --- | --- |")
    for days in args.days:
        path = args.work_dir / f"wrist-{days:g}d.parquet"
        rows = write_recording(source, days, path)
        command = [sys.executable, __file__, "--measure", str(path), "--work-dir", str(args.work_dir)]
        completed = subprocess.run(command, check=True, capture_output=True, text=True)
        result = json.loads(completed.stdout.splitlines()[-1])
        per_minute = result["hours"] / (result["seconds"] / 60)
        print(
            f"| {days:g} | {rows} | {result['seconds']:.1f} | {per_minute:.1f} | {result['peak_rss_mib']:.0f} | "
            f"{result['windows']} |"
        )


if __name__ == "__main__":
    main()
