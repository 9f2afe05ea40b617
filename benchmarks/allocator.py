"""Encoder training pass with and without `retain_freed_memory`: time, page faults and peak memory.

    python benchmarks/allocator.py [--preset paper] [--windows 1344] [--steps 3]
    RELCON_HF_RETAIN_FREED_MEMORY=0 python benchmarks/allocator.py

Runs forward and backward of the preset's encoder in training mode on random windows, as the stage-2 encoder pass
does (1,344 windows is B x (K + 1) for the `paper` preset). For each step it prints the seconds of the forward and
of the backward and the minor page faults. Run it once with and once without the environment variable: the
setting is fixed for the life of a process.
"""

import argparse
import json
import resource
import time

import torch

from relcon_hf import RelConConfig, RelConModel
from relcon_hf.allocator import retain_freed_memory
from relcon_hf.pipeline import load_preset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper", choices=["paper", "cpu"])
    parser.add_argument("--windows", type=int, default=1344)
    parser.add_argument("--steps", type=int, default=3, help="Steps to time; the first includes the warm-up.")
    parser.add_argument("--json", help="Also write the results to this JSON file.")
    args = parser.parse_args()
    retained = retain_freed_memory()
    print(f"freed memory retained: {retained}")
    torch.manual_seed(0)

    model = RelConModel(RelConConfig(**load_preset(args.preset)["encoder"]["model"])).train()
    windows = torch.randn(args.windows, 256, 3)
    steps = []
    for step in range(args.steps):
        faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        embeddings = model(input_values=windows).pooler_output
        forward_done = time.perf_counter()
        embeddings.square().mean().backward()
        backward_done = time.perf_counter()
        model.zero_grad(set_to_none=True)
        steps.append(
            {
                "forward_s": forward_done - start,
                "backward_s": backward_done - forward_done,
                "minor_page_faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before,
            }
        )
        print(f"step {step}: " + ", ".join(f"{key} {value:.2f}" for key, value in steps[-1].items()), flush=True)

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory: {peak_mib:.0f} MiB, {torch.get_num_threads()} torch threads")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"retained": retained, "steps": steps, "peak_rss_mib": peak_mib}, handle, indent=2)


if __name__ == "__main__":
    main()
