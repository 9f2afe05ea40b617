"""Stage-2 step time of relcon-hf against a naive form, in one process on the same real batches.

    python benchmarks/stage2_naive.py [--preset paper] [--repeats 3] [--ranking-chunk-size 64]
        [--compile-ranking | --no-compile-ranking] [--json OUT]

The batches come from the seglearn watch corpus, prepared into shards in a temporary folder and read with
`AnchorCandidateStream` (B anchors, K within-group candidates each), as in training. The encoder and the distance
model have the preset's architecture and random weights. Our ranking is compiled as the preset's
`compile_ranking` sets, unless a flag overrides it; the warm-up step includes the compiling.

The naive form follows the order of work of the reference implementation. It makes one distance call per candidate
position (the B anchors against their j-th candidate, recomputing the candidate's keys and values in every call),
and it computes the loss in a Python loop over anchors and positions. Both forms run the same encoder pass and
optimizer step. Steps of the two forms alternate, so background load affects both alike. The script prints the
median seconds of each part, the ratio of the step times, and the share of our step spent outside the encoder's
forward and backward (data, ranking, loss and optimizer step). Record `uptime` next to the figures, because on a
shared machine they are noisy.
"""

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable

import torch
from torch.utils.data import DataLoader

from relcon_hf import RelConConfig, RelConDistanceConfig, RelConDistanceModel, RelConModel
from relcon_hf.allocator import retain_freed_memory
from relcon_hf.data import prepare_watch
from relcon_hf.data.streaming import AnchorCandidateStream
from relcon_hf.losses import relative_contrastive_loss
from relcon_hf.pipeline import load_preset
from relcon_hf.training.stages import candidate_pair_indices, rank_candidates


def timed(parts: dict[str, float], name: str, function: Callable):
    start = time.perf_counter()
    result = function()
    parts[name] = time.perf_counter() - start
    return result


def naive_ranking(distance: RelConDistanceModel, anchors: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Rank with one distance call per candidate position. Column j is d(anchor b, its j-th candidate) for every b."""
    batch_size, num_candidates = candidates.shape[:2]
    _, between = candidate_pair_indices(batch_size, num_candidates, anchors.device)
    columns = []
    with torch.no_grad():
        for position in range(num_candidates):
            columns.append(distance(anchors, candidates[:, position]).distance)
        for position in range(batch_size - 1):
            columns.append(distance(anchors, anchors[between[:, position]]).distance)
    return torch.stack(columns, dim=1)


def naive_loss(anchors: torch.Tensor, candidates: torch.Tensor, distances: torch.Tensor, tau: float) -> torch.Tensor:
    """Compute the relative contrastive loss in a Python loop over anchors and over candidate positions."""
    per_anchor = []
    for b in range(anchors.shape[0]):
        similarity = torch.nn.functional.cosine_similarity(anchors[b][None], candidates[b], dim=-1) / tau
        terms = []
        for i in range(candidates.shape[1]):
            farther = distances[b] > distances[b, i]
            denominator = torch.logsumexp(torch.cat([similarity[i : i + 1], similarity[farther]]), dim=0)
            terms.append(denominator - similarity[i])
        per_anchor.append(torch.stack(terms).sum())
    return torch.stack(per_anchor).mean()


def run_step(
    form: str, batch: dict, encoder, distance, optimizer, chunk_size: int, tau: float, compile_ranking: bool
) -> dict[str, float]:
    parts: dict[str, float] = {}
    anchors, candidates = batch["anchor"], batch["candidates"]
    batch_size, num_candidates = candidates.shape[:2]
    if form == "ours":
        distances = timed(
            parts, "ranking", lambda: rank_candidates(distance, anchors, candidates, chunk_size, compile_ranking)
        )
    else:
        distances = timed(parts, "ranking", lambda: naive_ranking(distance, anchors, candidates))

    windows = torch.cat([anchors, candidates.reshape(-1, *candidates.shape[2:])])
    embeddings = timed(parts, "encoder forward", lambda: encoder(input_values=windows).pooler_output)

    def loss() -> torch.Tensor:
        within, between = candidate_pair_indices(batch_size, num_candidates, embeddings.device)
        candidate_embeddings = embeddings[torch.cat([within, between], dim=1)]
        if form == "ours":
            return relative_contrastive_loss(embeddings[:batch_size], candidate_embeddings, distances, tau)
        return naive_loss(embeddings[:batch_size], candidate_embeddings, distances, tau)

    value = timed(parts, "loss", loss)
    # The backward covers the loss's backward too; for the vectorised loss that is a few small kernels.
    timed(parts, "backward", value.backward)

    def optimizer_step() -> None:
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    timed(parts, "optimizer step", optimizer_step)
    parts["loss value"] = float(value.detach())
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper", choices=["paper", "cpu"])
    parser.add_argument("--repeats", type=int, default=3, help="Timed steps of each form, after one warm-up each.")
    parser.add_argument("--ranking-chunk-size", type=int, default=64, help="Pairs per ranking pass (CPU: 64).")
    parser.add_argument(
        "--compile-ranking",
        action=argparse.BooleanOptionalAction,
        help="Compile our ranking passes (default: the preset's `compile_ranking`).",
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", help="Also write the results to this JSON file.")
    args = parser.parse_args()
    # As the training loop and `relcon-hf embed` do; RELCON_HF_RETAIN_FREED_MEMORY=0 measures glibc's defaults.
    print(f"freed memory retained: {retain_freed_memory()}")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    preset = load_preset(args.preset)
    section = preset["encoder"]
    batch_size, num_candidates, tau = section["batch_size"], section["num_candidates"], section["temperature"]
    compile_ranking = section.get("compile_ranking", False) if args.compile_ranking is None else args.compile_ranking
    encoder = RelConModel(RelConConfig(**section["model"])).train()
    distance = RelConDistanceModel(RelConDistanceConfig(**preset["distance"]["model"])).eval().requires_grad_(False)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=section["learning_rate"])

    with tempfile.TemporaryDirectory() as folder:
        prepare_watch(os.path.join(folder, "shards"))
        stream = AnchorCandidateStream(os.path.join(folder, "shards"), "train", num_candidates=num_candidates)
        batches = iter(DataLoader(stream, batch_size=batch_size, drop_last=True))

        records: dict[str, list[dict[str, float]]] = {"ours": [], "naive": []}
        for repeat in range(args.repeats + 1):
            data: dict[str, float] = {}
            batch = timed(data, "data", lambda: next(batches))
            # Alternate which form goes first, so neither always runs right after the other.
            order = ("ours", "naive") if repeat % 2 == 0 else ("naive", "ours")
            steps = []
            for form in order:
                parts = run_step(
                    form, batch, encoder, distance, optimizer, args.ranking_chunk_size, tau, compile_ranking
                )
                parts["data"] = data["data"]
                parts["step"] = sum(value for name, value in parts.items() if name != "loss value")
                steps.append(f"{form} {parts['step']:.2f} s")
                if repeat > 0:
                    records[form].append(parts)
            label = "warm-up" if repeat == 0 else f"repeat {repeat}"
            print(f"{label}: {', '.join(steps)}, load average {os.getloadavg()[0]:.2f}", flush=True)

    names = ["data", "ranking", "encoder forward", "loss", "backward", "optimizer step", "step"]
    medians = {
        form: {name: statistics.median(r[name] for r in runs) for name in names} for form, runs in records.items()
    }
    ratios = [naive["step"] / ours["step"] for ours, naive in zip(records["ours"], records["naive"], strict=True)]
    ours = medians["ours"]
    outside = (ours["data"] + ours["ranking"] + ours["loss"] + ours["optimizer step"]) / ours["step"]
    result = {
        "preset": args.preset,
        "batch_size": batch_size,
        "num_candidates": num_candidates,
        "ranking_chunk_size": args.ranking_chunk_size,
        "compile_ranking": compile_ranking,
        "repeats": args.repeats,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "load_average": os.getloadavg(),
        "medians": medians,
        "naive_over_ours_per_repeat": ratios,
        "naive_over_ours_median": statistics.median(ratios),
        "share_outside_encoder_forward_backward": outside,
    }

    print()
    setting = f"{args.preset}, B {batch_size}, K {num_candidates}, compiled ranking {compile_ranking}"
    print(f"| part, median of {args.repeats} ({setting}) | ours s | naive s |")
    print("|---|---|---|")
    for name in names:
        print(f"| {name} | {medians['ours'][name]:.3f} | {medians['naive'][name]:.3f} |")
    print()
    print(
        f"naive / ours step time: median {statistics.median(ratios):.2f} (per repeat {[round(r, 2) for r in ratios]})"
    )
    print(f"share of our step outside the encoder forward and backward: {outside:.1%}")
    print(f"load average at the end: {os.getloadavg()}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
