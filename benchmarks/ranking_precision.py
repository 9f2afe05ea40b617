"""Ranking time in float32 and under bfloat16 autocast on CPU, and how much the rankings differ.

    python benchmarks/ranking_precision.py [--preset cpu] [--repeats 3]

Anchors and their K candidates are real windows of the seglearn watch corpus (each anchor's candidates come from
its own recording), ranked by a randomly initialised distance model of the preset's architecture with
`rank_candidates`. The two precisions alternate; times are medians of `--repeats` after one warm-up each. The
script also prints the share of anchors whose candidates come out in exactly the same order, and the largest
relative difference of a distance.
"""

import argparse
import os
import statistics
import time

import torch

from relcon_hf import RelConDistanceConfig, RelConDistanceModel, RelConFeatureExtractor
from relcon_hf.allocator import retain_freed_memory
from relcon_hf.data import load_watch_corpus
from relcon_hf.pipeline import load_preset
from relcon_hf.training.stages import rank_candidates, ranking_autocast


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu", choices=["cpu", "paper"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ranking-chunk-size", type=int, default=64)
    args = parser.parse_args()
    # As the training loop and `relcon-hf embed` do; RELCON_HF_RETAIN_FREED_MEMORY=0 measures glibc's defaults.
    print(f"freed memory retained: {retain_freed_memory()}")
    torch.manual_seed(0)
    preset = load_preset(args.preset)
    batch_size, num_candidates = preset["encoder"]["batch_size"], preset["encoder"]["num_candidates"]
    model = RelConDistanceModel(RelConDistanceConfig(**preset["distance"]["model"])).eval()

    corpus = load_watch_corpus()
    extractor = RelConFeatureExtractor(hop_length=128)
    groups = []
    for recording in corpus.recordings:
        windows = extractor(recording, sampling_rate=corpus.sampling_rate, return_tensors="pt")["input_values"]
        if len(windows) > num_candidates:
            groups.append(windows[: num_candidates + 1])
        if len(groups) == batch_size:
            break
    batch = torch.stack(groups)
    anchors, candidates = batch[:, 0], batch[:, 1:]

    results: dict[str, list[float]] = {"float32": [], "bfloat16": []}
    distances = {}
    for repeat in range(args.repeats + 1):
        for precision in results:
            start = time.perf_counter()
            with ranking_autocast(torch.device("cpu"), precision):
                distances[precision] = rank_candidates(model, anchors, candidates, args.ranking_chunk_size)
            if repeat > 0:
                results[precision].append(time.perf_counter() - start)

    exact, approximate = distances["float32"], distances["bfloat16"]
    same_order = (exact.argsort(dim=-1) == approximate.argsort(dim=-1)).all(dim=-1).float().mean().item()
    relative = ((approximate - exact).abs() / exact.abs()).max().item()
    pairs = exact.numel()
    print(f"{args.preset} preset batch: {batch_size} anchors, K {num_candidates}, {pairs} pairs")
    print()
    print("| precision | ranking s | pairs/s |")
    print("|---|---|---|")
    for precision, timings in results.items():
        seconds = statistics.median(timings)
        print(f"| {precision} | {seconds:.2f} | {pairs / seconds:.0f} |")
    speedup = statistics.median(results["float32"]) / statistics.median(results["bfloat16"])
    print()
    print(f"float32 / bfloat16 time: {speedup:.1f}")
    print(f"anchors with the same candidate order: {same_order:.0%}; largest relative difference: {relative:.2%}")
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
