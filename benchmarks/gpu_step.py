"""Stage-2 step time and encoder windows/s on a GPU at the RelCon paper's setting, in bfloat16.

    python benchmarks/gpu_step.py [--repeats 10] [--compile-ranking | --no-compile-ranking] [--json gpu_step.json]

Needs a CUDA device. Random windows of 256 samples, the `paper` preset (full encoder, batch 64, K = 20), ranking
under bfloat16 autocast with chunks of 1024 pairs (compiled as the preset's `compile_ranking` sets unless a flag
overrides it), the encoder step under bfloat16 autocast, Adam. Measures, as
medians of `--repeats` after 2 warm-up steps (synchronising the device around each timed part):

- the stage-2 step with faithful sampling: ranking, encoder forward, loss, backward, optimizer step;
- the same step with candidate sharing on 3 groups of K + 1 windows (63 anchors), and anchors/s of both;
- the encoder forward alone in windows/s at batch 1024 (embedding throughput).

Prints a Markdown table and writes the JSON with the date, the device name and the torch version.
"""

import argparse
import datetime
import json
import statistics
import time

import torch

from relcon_hf import RelConConfig, RelConDistanceConfig, RelConDistanceModel, RelConModel
from relcon_hf.losses import relative_contrastive_loss
from relcon_hf.pipeline import load_preset
from relcon_hf.training.stages import (
    candidate_pair_indices,
    rank_candidates,
    rank_shared_candidates,
    shared_candidate_indices,
)


def synchronized_seconds(function) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    function()
    torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--ranking-chunk-size", type=int, default=1024)
    parser.add_argument("--embed-batch-size", type=int, default=1024)
    parser.add_argument(
        "--compile-ranking",
        action=argparse.BooleanOptionalAction,
        help="Compile the ranking passes (default: the paper preset's `compile_ranking`).",
    )
    parser.add_argument("--json", default="gpu_step.json")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_step.py needs a CUDA device; none is visible to torch.")
    device = torch.device("cuda")
    torch.manual_seed(0)

    preset = load_preset("paper")
    section = preset["encoder"]
    batch_size, num_candidates = section["batch_size"], section["num_candidates"]
    compile_ranking = section.get("compile_ranking", False) if args.compile_ranking is None else args.compile_ranking
    encoder = RelConModel(RelConConfig(**section["model"])).to(device).train()
    distance = RelConDistanceModel(RelConDistanceConfig(**preset["distance"]["model"])).to(device).eval()
    distance.requires_grad_(False)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=section["learning_rate"])
    anchors = torch.randn(batch_size, 256, 3, device=device)
    candidates = torch.randn(batch_size, num_candidates, 256, 3, device=device)
    num_groups = batch_size // (num_candidates + 1)
    groups = torch.randn(num_groups, num_candidates + 1, 256, 3, device=device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16)

    def faithful_step() -> None:
        with autocast:
            distances = rank_candidates(distance, anchors, candidates, args.ranking_chunk_size, compile_ranking)
            windows = torch.cat([anchors, candidates.reshape(-1, 256, 3)])
            embeddings = encoder(input_values=windows).pooler_output
            within, between = candidate_pair_indices(batch_size, num_candidates, device)
            candidate_embeddings = embeddings[torch.cat([within, between], dim=1)]
            loss = relative_contrastive_loss(embeddings[:batch_size], candidate_embeddings, distances)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def shared_step() -> None:
        with autocast:
            distances = rank_shared_candidates(distance, groups, args.ranking_chunk_size, compile_ranking)
            embeddings = encoder(input_values=groups.reshape(-1, 256, 3)).pooler_output
            within, between = shared_candidate_indices(num_groups, num_candidates + 1, device)
            candidate_embeddings = embeddings[torch.cat([within, between], dim=1)]
            loss = relative_contrastive_loss(embeddings, candidate_embeddings, distances)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def ranking_only() -> None:
        with autocast:
            rank_candidates(distance, anchors, candidates, args.ranking_chunk_size, compile_ranking)

    embed_windows = torch.randn(args.embed_batch_size, 256, 3, device=device)
    inference_encoder = RelConModel(RelConConfig(**section["model"])).to(device).eval()

    def embed() -> None:
        with torch.inference_mode(), autocast:
            inference_encoder(input_values=embed_windows)

    functions = {"faithful step": faithful_step, "shared step": shared_step, "ranking": ranking_only, "embed": embed}
    for function in functions.values():
        function()
        function()
    timings: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(args.repeats):
        for name, function in functions.items():
            timings[name].append(synchronized_seconds(function))
    medians = {name: statistics.median(values) for name, values in timings.items()}

    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(device),
        "torch": torch.__version__,
        "batch_size": batch_size,
        "num_candidates": num_candidates,
        "compile_ranking": compile_ranking,
        "seconds": medians,
        "faithful_anchors_per_s": batch_size / medians["faithful step"],
        "shared_anchors_per_s": num_groups * (num_candidates + 1) / medians["shared step"],
        "faithful_windows_per_s": batch_size * (num_candidates + 1) / medians["faithful step"],
        "embed_windows_per_s": args.embed_batch_size / medians["embed"],
        "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30,
    }
    print(
        f"{result['device']}, torch {result['torch']}, {result['date']}, bf16 autocast, compiled ranking "
        f"{compile_ranking}, medians of {args.repeats}"
    )
    print()
    print("| measurement | value |")
    print("|---|---|")
    for name, value in medians.items():
        print(f"| {name} s | {value:.4f} |")
    for name in ("faithful_anchors_per_s", "shared_anchors_per_s", "faithful_windows_per_s", "embed_windows_per_s"):
        print(f"| {name.replace('_', ' ')} | {result[name]:.0f} |")
    print(f"| peak memory GiB | {result['peak_memory_gib']:.2f} |")
    with open(args.json, "w") as handle:
        json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
