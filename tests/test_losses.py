"""Tests of the vectorised relative contrastive loss against the formula written out as a loop."""

import math

import pytest
import torch

from relcon_hf.losses import relative_contrastive_loss


def loop_loss(anchors: torch.Tensor, candidates: torch.Tensor, distances: torch.Tensor, tau: float) -> torch.Tensor:
    """The per-anchor sum of l_i, averaged over anchors, written directly from its definition."""
    per_anchor = []
    for b in range(anchors.shape[0]):
        similarities = [
            torch.nn.functional.cosine_similarity(anchors[b], candidates[b, j], dim=0).item()
            for j in range(candidates.shape[1])
        ]
        total = 0.0
        for i in range(candidates.shape[1]):
            farther = [j for j in range(candidates.shape[1]) if distances[b, j] > distances[b, i]]
            numerator = math.exp(similarities[i] / tau)
            denominator = numerator + sum(math.exp(similarities[j] / tau) for j in farther)
            total += -math.log(numerator / denominator)
        per_anchor.append(total)
    return torch.tensor(sum(per_anchor) / len(per_anchor))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_matches_loop_without_ties(seed):
    generator = torch.Generator().manual_seed(seed)
    anchors = torch.randn(6, 16, generator=generator)
    candidates = torch.randn(6, 9, 16, generator=generator)
    distances = torch.rand(6, 9, generator=generator) * 100

    expected = loop_loss(anchors, candidates, distances, tau=0.1)
    actual = relative_contrastive_loss(anchors, candidates, distances, temperature=0.1)

    assert torch.allclose(actual, expected.float(), rtol=1e-5, atol=1e-5)


def test_loss_matches_loop_with_ties():
    generator = torch.Generator().manual_seed(3)
    anchors = torch.randn(5, 8, generator=generator)
    candidates = torch.randn(5, 10, 8, generator=generator)
    # Distances drawn from three values force ties, including ties with the farthest candidate.
    distances = torch.randint(0, 3, (5, 10), generator=generator).float()

    expected = loop_loss(anchors, candidates, distances, tau=0.1)
    actual = relative_contrastive_loss(anchors, candidates, distances, temperature=0.1)

    assert torch.allclose(actual, expected.float(), rtol=1e-5, atol=1e-5)


def test_loss_all_tied_is_zero():
    anchors = torch.randn(3, 4)
    candidates = torch.randn(3, 5, 4)
    distances = torch.ones(3, 5)

    loss = relative_contrastive_loss(anchors, candidates, distances)

    assert loss.item() == 0.0


def test_loss_lower_when_similarity_follows_distance():
    anchors = torch.tensor([[1.0, 0.0]])
    angles = torch.linspace(0, math.pi, 6)
    candidates = torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1)[None]
    ordered = torch.arange(6.0)[None]
    reversed_order = ordered.flip(-1)

    agreeing = relative_contrastive_loss(anchors, candidates, ordered)
    disagreeing = relative_contrastive_loss(anchors, candidates, reversed_order)

    assert agreeing < disagreeing


def test_loss_gradient_reaches_both_embeddings():
    anchors = torch.randn(4, 8, requires_grad=True)
    candidates = torch.randn(4, 6, 8, requires_grad=True)
    distances = torch.rand(4, 6)

    relative_contrastive_loss(anchors, candidates, distances).backward()

    assert anchors.grad is not None and anchors.grad.abs().sum() > 0
    assert candidates.grad is not None and candidates.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("anchor_shape", "candidate_shape", "distance_shape", "message"),
    [
        ((4,), (4, 3, 8), (4, 3), "anchor_embeddings"),
        ((4, 8), (4, 8), (4, 3), "candidate_embeddings"),
        ((4, 8), (3, 3, 8), (3, 3), "candidate_embeddings"),
        ((4, 8), (4, 3, 7), (4, 3), "candidate_embeddings"),
        ((4, 8), (4, 3, 8), (4, 2), "candidate_distances"),
        ((4, 8), (4, 1, 8), (4, 1), "at least 2 candidates"),
    ],
)
def test_loss_rejects_bad_shapes(anchor_shape, candidate_shape, distance_shape, message):
    with pytest.raises(ValueError, match=message):
        relative_contrastive_loss(torch.randn(anchor_shape), torch.randn(candidate_shape), torch.rand(distance_shape))


def test_loss_rejects_non_positive_temperature():
    with pytest.raises(ValueError, match="temperature"):
        relative_contrastive_loss(torch.randn(2, 4), torch.randn(2, 3, 4), torch.rand(2, 3), temperature=0.0)
