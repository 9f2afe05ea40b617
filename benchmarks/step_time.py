"""Time the parts of a stage-2 training step and a stage-1 step on random windows.

    python benchmarks/step_time.py [--repeats 5] [--threads N]

Prints three Markdown tables. The first gives, per preset, the seconds for ranking the candidates with the
distance model, for the encoder forward and backward with the loss, and for a stage-1 step. The second gives the
ranking time by chunk size, and the third compares sparsemax with sort and softmax. Numbers are medians over
--repeats runs after one warm-up run, in one process.
"""

import argparse
import platform
import statistics
import time

import torch

from relcon_hf import RelConConfig, RelConDistanceConfig, RelConDistanceModel, RelConModel
from relcon_hf.allocator import retain_freed_memory
from relcon_hf.augmentations import augment
from relcon_hf.losses import relative_contrastive_loss
from relcon_hf.modeling.modeling_relcon_distance import sparsemax
from relcon_hf.pipeline import load_preset
from relcon_hf.training.stages import candidate_pair_indices, rank_candidates


def median_seconds(function, repeats: int) -> float:
    function()
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def stage2_times(preset: dict, repeats: int) -> dict:
    section = preset["encoder"]
    batch_size, num_candidates = section["batch_size"], section["num_candidates"]
    encoder = RelConModel(RelConConfig(**section["model"])).train()
    distance = RelConDistanceModel(RelConDistanceConfig(**preset["distance"]["model"])).eval()
    optimizer = torch.optim.Adam(encoder.parameters(), lr=1e-3)
    anchors = torch.randn(batch_size, 256, 3)
    candidates = torch.randn(batch_size, num_candidates, 256, 3)
    distances = rank_candidates(distance, anchors, candidates)

    def encoder_step() -> None:
        windows = torch.cat([anchors, candidates.reshape(-1, 256, 3)])
        embeddings = encoder(windows).pooler_output
        within, between = candidate_pair_indices(batch_size, num_candidates, embeddings.device)
        candidate_embeddings = embeddings[torch.cat([within, between], dim=1)]
        relative_contrastive_loss(embeddings[:batch_size], candidate_embeddings, distances).backward()
        optimizer.step()
        optimizer.zero_grad()

    return {
        "pairs": batch_size * (num_candidates + batch_size - 1),
        "rank": median_seconds(lambda: rank_candidates(distance, anchors, candidates), repeats),
        "encoder": median_seconds(encoder_step, repeats),
        "parameters": sum(parameter.numel() for parameter in encoder.parameters()),
    }


def stage1_time(preset: dict, repeats: int) -> float:
    section = preset["distance"]
    model = RelConDistanceModel(RelConDistanceConfig(**section["model"])).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    windows = torch.randn(section["batch_size"], 256, 3)
    generator = torch.Generator().manual_seed(0)

    def step() -> None:
        model(windows, augment(windows, generator)).loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    return median_seconds(step, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    # As the training loop and `relcon-hf embed` do; RELCON_HF_RETAIN_FREED_MEMORY=0 measures glibc's defaults.
    print(f"freed memory retained: {retain_freed_memory()}")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}"
    )
    print()
    print(
        "| preset | encoder parameters | B x K | pairs ranked | ranking s | encoder fwd+bwd+loss s | stage-2 step s "
        "| stage-1 step s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in ("cpu", "paper"):
        preset = load_preset(name)
        times = stage2_times(preset, args.repeats)
        stage1 = stage1_time(preset, args.repeats)
        section = preset["encoder"]
        print(
            f"| {name} | {times['parameters'] / 1e6:.2f} M | {section['batch_size']} x {section['num_candidates']} "
            f"| {times['pairs']} | {times['rank']:.2f} | {times['encoder']:.2f} "
            f"| {times['rank'] + times['encoder']:.2f} | {stage1:.2f} |"
        )

    cpu = load_preset("cpu")
    distance = RelConDistanceModel(RelConDistanceConfig(**cpu["distance"]["model"])).eval()
    anchors = torch.randn(cpu["encoder"]["batch_size"], 256, 3)
    candidates = torch.randn(cpu["encoder"]["batch_size"], cpu["encoder"]["num_candidates"], 256, 3)
    print()
    print("| ranking pairs per chunk (cpu preset batch) | s |")
    print("|---|---|")
    for chunk_size in (16, 32, 64, 128, 256, 512):
        seconds = median_seconds(
            lambda size=chunk_size: rank_candidates(distance, anchors, candidates, size), args.repeats
        )
        print(f"| {chunk_size} | {seconds:.2f} |")

    scores = torch.randn(512, 256, 256) * 3
    sorted_time = median_seconds(lambda: torch.sort(scores, dim=-1), args.repeats)
    sparsemax_time = median_seconds(lambda: sparsemax(scores), args.repeats)
    softmax_time = median_seconds(lambda: torch.softmax(scores, dim=-1), args.repeats)
    print()
    print("| (512, 256, 256) attention scores | s |")
    print("|---|---|")
    print(f"| sparsemax (top-32 search) | {sparsemax_time:.3f} |")
    print(f"| torch.sort alone (the cost a full-sort sparsemax starts from) | {sorted_time:.3f} |")
    print(f"| softmax | {softmax_time:.3f} |")


if __name__ == "__main__":
    main()
