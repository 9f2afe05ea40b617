"""Anchors per second of stage 2 with faithful sampling and with candidate sharing, on the same real shards.

    python benchmarks/candidate_sharing.py [--preset cpu] [--repeats 3] [--compile-ranking | --no-compile-ranking]
        [--json OUT]

Both modes run `EncoderTask.compute_loss`, the backward and an Adam step, on batches of the seglearn watch corpus
prepared into a temporary folder, with a randomly initialised distance model and encoder of the preset's
architecture. Faithful sampling trains B anchors per step (the encoder reads B x (K + 1) windows). Candidate sharing
reads G = B // (K + 1) stream items of K + 1 windows and trains all G x (K + 1) of them as anchors, so both modes
encode about the same anchors per step. Both modes compile their ranking as the preset's `compile_ranking` sets
unless a flag overrides it. Steps of the two modes alternate; figures are medians of `--repeats` after one warm-up
step each, which includes the compiling.
"""

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch
from torch.utils.data import DataLoader

from relcon_hf import RelConDistanceConfig, RelConDistanceModel
from relcon_hf.allocator import retain_freed_memory
from relcon_hf.data import prepare_watch
from relcon_hf.pipeline import load_preset
from relcon_hf.training.stages import EncoderTask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu", choices=["cpu", "paper"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ranking-chunk-size", type=int, default=64)
    parser.add_argument(
        "--sharing-groups", type=int, help="Items (groups of K + 1 windows) per sharing batch (default: B // (K + 1))."
    )
    parser.add_argument(
        "--compile-ranking",
        action=argparse.BooleanOptionalAction,
        help="Compile the ranking passes (default: the preset's `compile_ranking`).",
    )
    parser.add_argument("--json", help="Also write the results to this JSON file.")
    args = parser.parse_args()
    # As the training loop and `relcon-hf embed` do; RELCON_HF_RETAIN_FREED_MEMORY=0 measures glibc's defaults.
    print(f"freed memory retained: {retain_freed_memory()}")
    torch.manual_seed(0)
    preset = load_preset(args.preset)
    section = preset["encoder"]
    batch_size, num_candidates = section["batch_size"], section["num_candidates"]
    num_groups = args.sharing_groups or max(2, batch_size // (num_candidates + 1))
    compile_ranking = section.get("compile_ranking", False) if args.compile_ranking is None else args.compile_ranking

    with tempfile.TemporaryDirectory() as folder:
        shards, distance_dir = Path(folder) / "shards", Path(folder) / "distance"
        prepare_watch(shards)
        RelConDistanceModel(RelConDistanceConfig(**preset["distance"]["model"])).save_pretrained(distance_dir)

        modes = {}
        for name, sharing, items in (("faithful", False, batch_size), ("sharing", True, num_groups)):
            task = EncoderTask(
                str(shards),
                str(distance_dir),
                num_candidates=num_candidates,
                model_overrides=section["model"],
                ranking_chunk_size=args.ranking_chunk_size,
                candidate_sharing=sharing,
                compile_ranking=compile_ranking,
            )
            task.prepare(SimpleNamespace(device=torch.device("cpu")))
            model = task.build_model().train()
            optimizer = torch.optim.Adam(model.parameters(), lr=section["learning_rate"])
            batches = iter(DataLoader(task.train_dataset(0, 1), batch_size=items, drop_last=True))
            anchors = items if not sharing else items * (num_candidates + 1)
            modes[name] = SimpleNamespace(
                task=task, model=model, optimizer=optimizer, batches=batches, anchors=anchors
            )

        generator = torch.Generator().manual_seed(0)
        timings: dict[str, list[float]] = {name: [] for name in modes}
        for repeat in range(args.repeats + 1):
            for name, mode in modes.items():
                batch = next(mode.batches)
                start = time.perf_counter()
                loss = mode.task.compute_loss(mode.model, batch, generator)
                loss.backward()
                mode.optimizer.step()
                mode.optimizer.zero_grad(set_to_none=True)
                if repeat > 0:
                    timings[name].append(time.perf_counter() - start)
            print(f"step {repeat} done, load average {os.getloadavg()[0]:.2f}", flush=True)

    result = {
        "preset": args.preset,
        "sharing_groups": num_groups,
        "compile_ranking": compile_ranking,
        "load_average": os.getloadavg(),
        "modes": {},
    }
    print()
    setting = f"{args.preset}, K {num_candidates}, compiled ranking {compile_ranking}"
    print(f"| mode ({setting}) | anchors per step | windows encoded | step s | anchors/s |")
    print("|---|---|---|---|---|")
    for name, mode in modes.items():
        step = statistics.median(timings[name])
        windows = mode.anchors * (num_candidates + 1) if name == "faithful" else mode.anchors
        result["modes"][name] = {
            "anchors": mode.anchors,
            "windows": windows,
            "step_s": step,
            "anchors_per_s": mode.anchors / step,
        }
        print(f"| {name} | {mode.anchors} | {windows} | {step:.2f} | {mode.anchors / step:.1f} |")
    speedup = result["modes"]["sharing"]["anchors_per_s"] / result["modes"]["faithful"]["anchors_per_s"]
    result["sharing_over_faithful_anchors_per_s"] = speedup
    print(f"\nsharing / faithful anchors per second: {speedup:.2f}; load average {os.getloadavg()}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
