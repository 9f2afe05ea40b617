"""Throughput of `relcon-hf embed` against the bare encoder forward, and its peak memory by recording length.

    python benchmarks/embed_throughput.py --hours 24 [--preset paper] [--repeats 1]
    python benchmarks/embed_throughput.py --memory-days 1 7 [--preset cpu]

The recordings are built as in `benchmarks/prepare.py`: the real 100 Hz mgait wrist recording repeated with a small
noise per copy, written as Parquet with a millisecond Unix-time column. The encoder has the preset's architecture and
random weights (the weights do not change the time).

With `--hours`, the script times `embed_recordings` on the file: reading, cleaning, windowing, the forward and
writing the Parquet output. It also times the bare forward, which runs the same windows (cut beforehand and held in
memory) through the encoder in batches of the same size under `torch.inference_mode`.
The two alternate `--repeats` times.

With `--memory-days`, each length is embedded in a fresh process, and its peak resident memory (`VmHWM`) is printed.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


sys.path.insert(0, str(Path(__file__).resolve().parent))
from prepare import peak_resident_mib, write_recording  # noqa: E402

from relcon_hf import RelConConfig, RelConFeatureExtractor, RelConModel  # noqa: E402
from relcon_hf.allocator import retain_freed_memory  # noqa: E402
from relcon_hf.data import read_recording  # noqa: E402
from relcon_hf.embedding import embed_recordings  # noqa: E402
from relcon_hf.pipeline import load_preset  # noqa: E402


DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


def save_encoder(preset: str, folder: Path) -> Path:
    torch.manual_seed(0)
    RelConModel(RelConConfig(**load_preset(preset)["encoder"]["model"])).save_pretrained(folder)
    RelConFeatureExtractor().save_pretrained(folder)
    return folder


def bare_forward_seconds(model_dir: Path, windows: np.ndarray, batch_size: int) -> float:
    model = RelConModel.from_pretrained(model_dir).eval()
    start = time.perf_counter()
    with torch.inference_mode():
        for first in range(0, len(windows), batch_size):
            model(torch.from_numpy(windows[first : first + batch_size]))
    return time.perf_counter() - start


def measure_throughput(args: argparse.Namespace, work_dir: Path) -> dict:
    recording_path = work_dir / f"{args.hours}h.parquet"
    rows = write_recording(args.data_dir / "mgait" / "data__data_wrist.csv", args.hours / 24, recording_path)
    model_dir = save_encoder(args.preset, work_dir / "encoder")
    recording = read_recording(recording_path)
    windows = RelConFeatureExtractor()(recording.values, sampling_rate=recording.sampling_rate, return_tensors="np")[
        "input_values"
    ]
    del recording

    embed_times, bare_times = [], []
    for repeat in range(args.repeats):
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        summary = embed_recordings([recording_path], model_dir, work_dir / "embeddings.parquet", progress=False)
        embed_times.append(time.perf_counter() - start)
        bare_times.append(bare_forward_seconds(model_dir, windows, 256))
        print(
            f"repeat {repeat}: embed {embed_times[-1]:.1f} s ({summary.num_windows} windows), bare forward "
            f"{bare_times[-1]:.1f} s ({len(windows)} windows), load average {load_before:.2f} -> "
            f"{os.getloadavg()[0]:.2f}",
            flush=True,
        )
    ratios = [embed / bare for embed, bare in zip(embed_times, bare_times, strict=True)]
    return {
        "preset": args.preset,
        "hours": args.hours,
        "rows": rows,
        "windows_embedded": summary.num_windows,
        "windows_bare": len(windows),
        "embed_s": statistics.median(embed_times),
        "bare_forward_s": statistics.median(bare_times),
        "embed_over_bare": statistics.median(ratios),
        "ratios": ratios,
        "load_average": os.getloadavg(),
    }


def measure_memory(args: argparse.Namespace, work_dir: Path) -> list[dict]:
    model_dir = save_encoder(args.preset, work_dir / "encoder")
    results = []
    for days in args.memory_days:
        path = work_dir / f"{days}d.parquet"
        rows = write_recording(args.data_dir / "mgait" / "data__data_wrist.csv", days, path)
        command = [sys.executable, __file__, "--embed-once", str(path), "--model", str(model_dir)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        result = json.loads(output.strip().splitlines()[-1])
        result.update(days=days, rows=rows, load_average=os.getloadavg())
        print(
            f"{days} days: {result['windows']} windows in {result['seconds']:.1f} s, peak RSS "
            f"{result['peak_rss_mib']:.0f} MiB",
            flush=True,
        )
        results.append(result)
        path.unlink()
    return results


def embed_once(path: str, model_dir: str) -> None:
    start = time.perf_counter()
    summary = embed_recordings([path], model_dir, Path(path).with_suffix(".embeddings.parquet"), progress=False)
    seconds = time.perf_counter() - start
    print(json.dumps({"windows": summary.num_windows, "seconds": seconds, "peak_rss_mib": peak_resident_mib()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, help="Length of the recording for the throughput comparison.")
    parser.add_argument("--memory-days", type=float, nargs="+", help="Lengths in days for the memory comparison.")
    parser.add_argument("--preset", default="paper", choices=["paper", "cpu"], help="Encoder architecture.")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--work-dir", type=Path, help="Folder for the generated files (default: a temporary one).")
    parser.add_argument("--json", help="Also write the results to this JSON file.")
    parser.add_argument("--embed-once", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    # As the training loop and `relcon-hf embed` do; RELCON_HF_RETAIN_FREED_MEMORY=0 measures glibc's defaults.
    print(f"freed memory retained: {retain_freed_memory()}")
    if args.embed_once:
        embed_once(args.embed_once, args.model)
        return

    with tempfile.TemporaryDirectory(dir=args.work_dir) as folder:
        results = {}
        if args.hours:
            results["throughput"] = measure_throughput(args, Path(folder))
            row = results["throughput"]
            print(f"embed / bare forward: {row['embed_over_bare']:.3f}")
        if args.memory_days:
            results["memory"] = measure_memory(args, Path(folder))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
