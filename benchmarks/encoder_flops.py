"""Achieved FLOP/s of the encoder forward against the machine's measured matrix-multiply FLOP/s.

    python benchmarks/encoder_flops.py [--preset paper] [--batch-size 256] [--repeats 5] [--json OUT]

The encoder's floating-point operations are counted with `torch.utils.flop_counter.FlopCounterMode` (a multiply-add
counts as 2, and only convolutions and matrix products are counted). The peak is the fastest square `torch.mm` among
sizes 1024, 2048 and 4096. Forward passes and matrix multiplies alternate, so background load affects both alike;
each figure is the median of `--repeats`. float32 and bfloat16 (autocast for the encoder) are measured separately.
"""

import argparse
import json
import os
import platform
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from relcon_hf import RelConConfig, RelConModel
from relcon_hf.allocator import retain_freed_memory
from relcon_hf.pipeline import load_preset


MATMUL_SIZES = (1024, 2048, 4096)


def seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper", choices=["paper", "cpu"])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", help="Also write the results to this JSON file.")
    args = parser.parse_args()
    # As the training loop and `relcon-hf embed` do; RELCON_HF_RETAIN_FREED_MEMORY=0 measures glibc's defaults.
    print(f"freed memory retained: {retain_freed_memory()}")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = RelConModel(RelConConfig(**load_preset(args.preset)["encoder"]["model"])).eval()
    windows = torch.randn(args.batch_size, 256, 3)
    # Counted on the Conv1d path (autograd on): the work the model needs. The channels-last inference path pads
    # even kernels symmetrically and computes one extra time step per convolution, which is not counted.
    with torch.enable_grad(), FlopCounterMode(display=False) as counter:
        model(windows)
    forward_flops = counter.get_total_flops()

    results = {}
    for dtype in (torch.float32, torch.bfloat16):
        name = str(dtype).removeprefix("torch.")
        matrices = {
            size: (torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)) for size in MATMUL_SIZES
        }
        autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16)

        def forward(autocast=autocast) -> None:
            with torch.inference_mode(), autocast:
                model(windows)

        forward()
        for a, b in matrices.values():
            torch.mm(a, b)
        forward_times: list[float] = []
        matmul_times: dict[int, list[float]] = {size: [] for size in MATMUL_SIZES}
        for _ in range(args.repeats):
            forward_times.append(seconds(forward))
            for size, (a, b) in matrices.items():
                matmul_times[size].append(seconds(lambda a=a, b=b: torch.mm(a, b)))

        matmul_flops = {size: 2 * size**3 / statistics.median(times) for size, times in matmul_times.items()}
        peak = max(matmul_flops.values())
        achieved = forward_flops / statistics.median(forward_times)
        results[name] = {
            "forward_seconds": statistics.median(forward_times),
            "forward_gflops_per_s": achieved / 1e9,
            "matmul_gflops_per_s": {size: value / 1e9 for size, value in matmul_flops.items()},
            "peak_gflops_per_s": peak / 1e9,
            "fraction_of_peak": achieved / peak,
            "windows_per_s": args.batch_size / statistics.median(forward_times),
        }

    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, load average {os.getloadavg()}"
    )
    print(f"encoder ({args.preset}) forward of {args.batch_size} windows: {forward_flops / 1e9:.2f} GFLOP")
    print()
    print("| dtype | forward s | windows/s | forward GFLOP/s | mm peak GFLOP/s (size) | share of peak |")
    print("|---|---|---|---|---|---|")
    for name, row in results.items():
        best = max(row["matmul_gflops_per_s"], key=row["matmul_gflops_per_s"].get)
        print(
            f"| {name} | {row['forward_seconds']:.3f} | {row['windows_per_s']:.0f} "
            f"| {row['forward_gflops_per_s']:.1f} | {row['peak_gflops_per_s']:.1f} ({best}) "
            f"| {row['fraction_of_peak']:.0%} |"
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(
                {"preset": args.preset, "batch_size": args.batch_size, "forward_flops": forward_flops, **results},
                handle,
                indent=2,
            )


if __name__ == "__main__":
    main()
