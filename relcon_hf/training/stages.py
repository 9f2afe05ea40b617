# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""The two RelCon pre-training stages as tasks for the shared training loop.

Stage 1 (`DistanceTask`) trains the learned motif distance to reconstruct a window from an augmented copy of itself.
Stage 2 (`EncoderTask`) freezes that distance, ranks each anchor's candidates with it (K windows of the anchor's own
group, plus the other anchors of the batch) and trains the encoder with the relative contrastive loss.
"""

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from torch.utils.data import IterableDataset
from transformers import PreTrainedModel

from ..augmentations import augment
from ..data.shards import read_manifest
from ..data.streaming import AnchorCandidateStream, WindowStream
from ..hub.model_card import distance_card, encoder_card
from ..losses import relative_contrastive_loss
from ..modeling import (
    RelConConfig,
    RelConDistanceConfig,
    RelConDistanceModel,
    RelConFeatureExtractor,
    RelConModel,
)


logger = logging.getLogger(__name__)

RANKING_PRECISIONS = ("auto", "float32", "bfloat16")


def candidate_pair_indices(
    batch_size: int, num_candidates: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Index each anchor's candidates in the window pool `[anchors; within-group candidates]`.

    Returns:
        `(within, between)`: `within` of shape `(batch_size, num_candidates)` points at the anchor's own group
        candidates (pool rows `batch_size + i * num_candidates + j`); `between` of shape
        `(batch_size, batch_size - 1)` points at the other anchors of the batch (pool rows `0 .. batch_size - 1`,
        skipping the anchor itself).
    """
    within = batch_size + torch.arange(batch_size * num_candidates, device=device).view(batch_size, num_candidates)
    others = ~torch.eye(batch_size, dtype=torch.bool, device=device)
    between = torch.arange(batch_size, device=device).expand(batch_size, batch_size)[others]

    return within, between.view(batch_size, batch_size - 1)


def ranking_dtype(device: torch.device, precision: str) -> torch.dtype:
    """
    Compute dtype of the ranking passes for a `ranking_precision` setting.

    `"auto"` is bfloat16 on CUDA and float32 elsewhere; `"float32"` and `"bfloat16"` force one. On CPU, bfloat16
    changed the candidate order of most anchors and was not reliably faster in `benchmarks/ranking_precision.py`
    (2-core Xeon with AMX, under load), so float32 stays the CPU default.
    """
    if precision not in RANKING_PRECISIONS:
        raise ValueError(
            f"`ranking_precision` must be one of {', '.join(RANKING_PRECISIONS)}, got {precision!r}. Use 'auto' for "
            "bfloat16 on GPUs and float32 elsewhere."
        )
    if precision == "bfloat16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return torch.float32


def ranking_autocast(device: torch.device, precision: str) -> torch.autocast:
    """Autocast context of the ranking passes. For float32 it turns autocast off, even inside a bf16 step."""
    dtype = ranking_dtype(device, precision)
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == torch.bfloat16)


@torch.no_grad()
def rank_candidates(
    distance_model: RelConDistanceModel,
    anchors: torch.Tensor,
    candidates: torch.Tensor,
    chunk_size: int = 64,
    compile: bool = False,
) -> torch.Tensor:
    """
    Learned distance from every anchor to its K group candidates and to the other B - 1 anchors.

    Args:
        distance_model ([`RelConDistanceModel`]): The frozen stage-1 distance.
        anchors (`torch.Tensor` of shape `(batch_size, window_length, 3)`): Anchor windows in g.
        candidates (`torch.Tensor` of shape `(batch_size, num_candidates, window_length, 3)`): Each anchor's
            candidates from its own group.
        chunk_size (`int`): Windows or pairs per distance pass.
        compile (`bool`): Run the distance passes through `torch.compile`; see
            [`RelConDistanceModel.distances_for_pairs`].

    Returns:
        `torch.Tensor` of shape `(batch_size, num_candidates + batch_size - 1)`: the group candidates first, then
        the other anchors in batch order.
    """
    batch_size, num_candidates = candidates.shape[:2]
    pool = torch.cat([anchors, candidates.reshape(-1, *candidates.shape[2:])])
    within, between = candidate_pair_indices(batch_size, num_candidates, anchors.device)
    candidate_index = torch.cat([within, between], dim=1)
    anchor_index = torch.arange(batch_size, device=anchors.device)[:, None].expand_as(candidate_index)
    distances = distance_model.distances_for_pairs(
        anchors, pool, anchor_index.reshape(-1), candidate_index.reshape(-1), chunk_size=chunk_size, compile=compile
    )

    return distances.view(batch_size, -1)


def shared_candidate_indices(
    num_groups: int, group_size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Index the candidates of every window when the windows of a group are each other's candidates.

    The pool contains `num_groups` groups of `group_size` windows, group after group (pool row `g * group_size + m`),
    and every window is an anchor.

    Returns:
        `(within, between)`: `within` of shape `(num_groups * group_size, group_size - 1)` points at the other
        windows of the anchor's group; `between` of shape `(num_groups * group_size, num_groups - 1)` points at the
        first window of every other group, so each anchor has as many between-group candidates as groups in the
        batch, as in the faithful sampling it has as many as anchors.
    """
    num_windows = num_groups * group_size
    rows = torch.arange(num_windows, device=device)
    group = rows // group_size
    mates = group[:, None] * group_size + torch.arange(group_size, device=device)
    within = mates[mates != rows[:, None]].view(num_windows, group_size - 1)

    leads = torch.arange(num_groups, device=device) * group_size
    others = leads[None, :].expand(num_windows, num_groups)[group[:, None] != torch.arange(num_groups, device=device)]

    return within, others.view(num_windows, num_groups - 1)


@torch.no_grad()
def rank_shared_candidates(
    distance_model: RelConDistanceModel, windows: torch.Tensor, chunk_size: int = 64, compile: bool = False
) -> torch.Tensor:
    """
    Learned distance from every window of a batch of groups to its candidates, as laid out by
    [`shared_candidate_indices`].

    Args:
        distance_model ([`RelConDistanceModel`]): The frozen stage-1 distance.
        windows (`torch.Tensor` of shape `(num_groups, group_size, window_length, 3)`): Windows in g, group by group.
        chunk_size (`int`): Windows or pairs per distance pass.
        compile (`bool`): Run the distance passes through `torch.compile`; see
            [`RelConDistanceModel.distances_for_pairs`].

    Returns:
        `torch.Tensor` of shape `(num_groups * group_size, group_size - 1 + num_groups - 1)`: the group mates first,
        then the first windows of the other groups in batch order.
    """
    num_groups, group_size = windows.shape[:2]
    pool = windows.reshape(-1, *windows.shape[2:])
    within, between = shared_candidate_indices(num_groups, group_size, windows.device)
    candidate_index = torch.cat([within, between], dim=1)
    anchor_index = torch.arange(pool.shape[0], device=windows.device)[:, None].expand_as(candidate_index)
    distances = distance_model.distances_for_pairs(
        pool, pool, anchor_index.reshape(-1), candidate_index.reshape(-1), chunk_size=chunk_size, compile=compile
    )

    return distances.view(pool.shape[0], -1)


@dataclass
class DistanceTask:
    """
    Stage 1: train [`RelConDistanceModel`] to reconstruct each window from a copy altered by 2 of 8 augmentations.

    Args:
        shards (`str`): Shard folder from `relcon-hf prepare`.
        model_overrides (`dict`): [`RelConDistanceConfig`] fields to change, such as `{"attention": "softmax"}`.
        shuffle_buffer_size (`int`): Windows in the streaming shuffle buffer.
        seed (`int`): Seed of the data order.
    """

    shards: str
    model_overrides: dict = field(default_factory=dict)
    shuffle_buffer_size: int = 2048
    seed: int = 0
    name: str = "distance"

    def __post_init__(self) -> None:
        self.manifest = read_manifest(self.shards)

    def build_model(self) -> PreTrainedModel:
        config = RelConDistanceConfig(
            window_length=self.manifest["window_length"],
            sampling_rate=int(self.manifest["sampling_rate"]),
            num_channels=self.manifest["num_channels"],
            **self.model_overrides,
        )
        return RelConDistanceModel(config)

    def train_dataset(self, rank: int, world_size: int) -> IterableDataset:
        return WindowStream(
            self.shards,
            "train",
            shuffle_buffer_size=self.shuffle_buffer_size,
            seed=self.seed,
            rank=rank,
            world_size=world_size,
        )

    def eval_dataset(self, rank: int, world_size: int) -> IterableDataset | None:
        # Every validation window once across ranks: the loop evaluates without collectives until the final sum.
        return WindowStream(
            self.shards,
            "validation",
            shuffle_buffer_size=0,
            seed=self.seed,
            rank=rank,
            world_size=world_size,
            equal_ranks=False,
        )

    def prepare(self, accelerator: Accelerator) -> None:
        self.device = accelerator.device

    def compute_loss(self, model: torch.nn.Module, batch: Any, generator: torch.Generator) -> torch.Tensor:
        windows = batch.to(self.device, non_blocking=True)
        augmented = augment(windows, generator)
        # The anchor is the original window and the candidate its augmented copy, as in the RelCon paper.
        return model(anchor_values=windows, candidate_values=augmented).loss

    def save_artifacts(self, model: PreTrainedModel, output_dir: Path, summary: dict) -> None:
        _feature_extractor(self.manifest).save_pretrained(output_dir)
        distance_card(model.config, summary=summary).save(output_dir / "README.md")


@dataclass
class EncoderTask:
    """
    Stage 2: train [`RelConModel`] with the relative contrastive loss, ranking candidates with a frozen distance.

    Args:
        shards (`str`): Shard folder from `relcon-hf prepare`.
        distance_model (`str`): Folder of a stage-1 checkpoint.
        num_candidates (`int`): K, the within-group candidates per anchor (the reference uses 20).
        temperature (`float`): Softmax temperature of the loss (0.1 in Xu et al., ICLR 2025).
        model_overrides (`dict`): [`RelConConfig`] fields to change, such as smaller `stage_channels` for CPU runs.
        ranking_chunk_size (`int`): Pairs per distance pass when ranking; bounds memory. On a 2-core CPU, 16 to 512
            pairs ran within 10 % of each other once freed memory is retained (`relcon_hf.allocator`); a GPU is
            faster with 1024 or more.
        shuffle_buffer_size (`int`): Anchors in the streaming shuffle buffer.
        seed (`int`): Seed of the data order and candidate draws.
        ranking_precision (`str`): `"auto"` (bfloat16 autocast on CUDA, float32 elsewhere), `"float32"` or
            `"bfloat16"`; see [`ranking_dtype`].
        candidate_sharing (`bool`): Make every window of the batch an anchor. Each stream item (a window and its K
            group mates) becomes K + 1 anchors whose within-group candidates are the other K, and whose
            between-group candidates are the first windows of the other items. The encoder then runs once per
            anchor instead of K + 1 times, and a batch of B items trains B x (K + 1) anchors. Off by default, which
            samples as the RelCon paper does.
        compile_ranking (`bool`): Run the ranking's distance passes through `torch.compile` (see
            [`RelConDistanceModel.distances_for_pairs`]). It gives the same ranking up to float32 rounding. At the
            paper's setting on a 2-core CPU it took the ranking from 4.1 to 2.2 s per step, after 10 to 30 s of
            compiling at the first step. Falls back to eager passes, with a warning, where compiling fails.
    """

    shards: str
    distance_model: str
    num_candidates: int = 20
    temperature: float = 0.1
    model_overrides: dict = field(default_factory=dict)
    ranking_chunk_size: int = 64
    shuffle_buffer_size: int = 2048
    seed: int = 0
    candidate_sharing: bool = False
    ranking_precision: str = "auto"
    compile_ranking: bool = False
    name: str = "encoder"

    def __post_init__(self) -> None:
        for key in ("num_candidates", "ranking_chunk_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{key}` must be a positive integer, got {value!r}.")
        if (
            isinstance(self.temperature, bool)
            or not isinstance(self.temperature, (int, float))
            or not math.isfinite(self.temperature)
            or self.temperature <= 0
        ):
            raise ValueError(f"`temperature` must be a positive number (0.1 in RelCon), got {self.temperature!r}.")
        for key in ("candidate_sharing", "compile_ranking"):
            value = getattr(self, key)
            if not isinstance(value, bool):
                raise ValueError(
                    f"`{key}` must be true or false, got {value!r}. Write it as a JSON boolean, without quotes."
                )
        ranking_dtype(torch.device("cpu"), self.ranking_precision)
        self.manifest = read_manifest(self.shards)
        # Builds the config once so that bad `model` overrides fail here, before any training.
        self._encoder_config()

    def _encoder_config(self) -> RelConConfig:
        return RelConConfig(
            window_length=self.manifest["window_length"],
            sampling_rate=int(self.manifest["sampling_rate"]),
            num_channels=self.manifest["num_channels"],
            **self.model_overrides,
        )

    def build_model(self) -> PreTrainedModel:
        model = RelConModel(self._encoder_config())
        logger.info(f"Encoder: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters")
        return model

    def train_dataset(self, rank: int, world_size: int) -> IterableDataset:
        return AnchorCandidateStream(
            self.shards,
            "train",
            num_candidates=self.num_candidates,
            shuffle_buffer_size=self.shuffle_buffer_size,
            seed=self.seed,
            rank=rank,
            world_size=world_size,
        )

    def eval_dataset(self, rank: int, world_size: int) -> IterableDataset | None:
        return AnchorCandidateStream(
            self.shards,
            "validation",
            num_candidates=self.num_candidates,
            shuffle_buffer_size=self.shuffle_buffer_size,
            seed=self.seed,
            rank=rank,
            world_size=world_size,
            equal_ranks=False,
        )

    def prepare(self, accelerator: Accelerator) -> None:
        self.device = accelerator.device
        distance = RelConDistanceModel.from_pretrained(self.distance_model)
        if distance.config.window_length != self.manifest["window_length"]:
            logger.warning(
                f"The distance model was trained on {distance.config.window_length}-sample windows and the shards "
                f"hold {self.manifest['window_length']}-sample windows; rankings may be less reliable."
            )
        self.ranker = distance.to(self.device).eval().requires_grad_(False)

    def compute_loss(self, model: torch.nn.Module, batch: Any, generator: torch.Generator) -> torch.Tensor:
        anchors = batch["anchor"].to(self.device, non_blocking=True)
        candidates = batch["candidates"].to(self.device, non_blocking=True)
        if self.candidate_sharing:
            return self._shared_candidate_loss(model, torch.cat([anchors[:, None], candidates], dim=1))
        batch_size, num_candidates = candidates.shape[:2]

        with ranking_autocast(self.device, self.ranking_precision):
            distances = rank_candidates(
                self.ranker, anchors, candidates, self.ranking_chunk_size, compile=self.compile_ranking
            )

        # One encoder pass over anchors and group candidates; the other anchors double as between-group candidates.
        windows = torch.cat([anchors, candidates.reshape(-1, *candidates.shape[2:])])
        embeddings = model(input_values=windows).pooler_output
        within, between = candidate_pair_indices(batch_size, num_candidates, embeddings.device)
        candidate_embeddings = embeddings[torch.cat([within, between], dim=1)]

        return relative_contrastive_loss(
            embeddings[:batch_size], candidate_embeddings, distances, temperature=self.temperature
        )

    def _shared_candidate_loss(self, model: torch.nn.Module, groups: torch.Tensor) -> torch.Tensor:
        """Loss of `groups` of shape `(num_groups, group_size, window_length, 3)` with every window an anchor."""
        num_groups, group_size = groups.shape[:2]
        if num_groups < 2:
            raise ValueError(
                f"Candidate sharing needs at least 2 groups per batch for between-group candidates, got {num_groups}. "
                "Raise the batch size."
            )
        with ranking_autocast(self.device, self.ranking_precision):
            distances = rank_shared_candidates(
                self.ranker, groups, self.ranking_chunk_size, compile=self.compile_ranking
            )

        embeddings = model(input_values=groups.reshape(-1, *groups.shape[2:])).pooler_output
        within, between = shared_candidate_indices(num_groups, group_size, embeddings.device)
        candidate_embeddings = embeddings[torch.cat([within, between], dim=1)]

        return relative_contrastive_loss(embeddings, candidate_embeddings, distances, temperature=self.temperature)

    def save_artifacts(self, model: PreTrainedModel, output_dir: Path, summary: dict) -> None:
        _feature_extractor(self.manifest).save_pretrained(output_dir)
        # Recorded in training_summary.json (written after this call), so a run records how its anchors were sampled.
        summary["sampling"] = {
            "num_candidates": self.num_candidates,
            "temperature": self.temperature,
            "candidate_sharing": self.candidate_sharing,
            "ranking_precision": self.ranking_precision,
            "compile_ranking": self.compile_ranking,
        }
        distance_summary_path = Path(self.distance_model) / "training_summary.json"
        distance_summary = json.loads(distance_summary_path.read_text()) if distance_summary_path.exists() else None
        card = encoder_card(
            model.config,
            encoder_summary=summary,
            distance_summary=distance_summary,
            distance_config=self.ranker.config,
            num_candidates=self.num_candidates,
            candidate_sharing=self.candidate_sharing,
        )
        card.save(output_dir / "README.md")


def _feature_extractor(manifest: dict) -> RelConFeatureExtractor:
    return RelConFeatureExtractor(
        feature_size=manifest["num_channels"],
        sampling_rate=int(manifest["sampling_rate"]),
        window_length=manifest["window_length"],
    )
