# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""The relative contrastive loss of RelCon (Xu et al., ICLR 2025, arXiv:2411.18822).

For an anchor with candidates ranked by the learned distance, every candidate except the farthest is taken in turn
as the positive, and every candidate strictly farther than it as a negative:

    l_i = -log( exp(s_i / tau) / (exp(s_i / tau) + sum_{j : d_j > d_i} exp(s_j / tau)) )

with s the cosine similarity of the embeddings. The anchor's loss is the sum of l_i; the batch loss is the mean over
anchors. Candidates tied in distance are not negatives of each other, and a candidate tied with the farthest has no
negatives, so its term is zero.
"""

import torch


def relative_contrastive_loss(
    anchor_embeddings: torch.Tensor,
    candidate_embeddings: torch.Tensor,
    candidate_distances: torch.Tensor,
    temperature: float = 0.1,
) -> torch.Tensor:
    """
    Compute the relative contrastive loss for a batch of anchors at once.

    Sorting the candidates by distance turns the denominators into suffix sums, so the loss for all anchors is one
    sort, one reversed log-cumsum-exp and one gather, instead of a Python loop over anchors and positions.

    Args:
        anchor_embeddings (`torch.Tensor` of shape `(batch_size, hidden_size)`):
            Encoder embeddings of the anchors.
        candidate_embeddings (`torch.Tensor` of shape `(batch_size, num_candidates, hidden_size)`):
            Encoder embeddings of each anchor's candidates.
        candidate_distances (`torch.Tensor` of shape `(batch_size, num_candidates)`):
            Learned distance from each anchor to each of its candidates; smaller is nearer. No gradient flows into
            it.
        temperature (`float`, *optional*, defaults to 0.1):
            Softmax temperature tau applied to the cosine similarities.

    Returns:
        `torch.Tensor` of shape `()`: the mean over anchors of the per-anchor sum of l_i, in float32.
    """
    _validate_loss_inputs(anchor_embeddings, candidate_embeddings, candidate_distances, temperature)

    # Cosine similarities scaled by the temperature, in float32 for a stable log-sum-exp under autocast.
    anchors = torch.nn.functional.normalize(anchor_embeddings.float(), dim=-1)
    candidates = torch.nn.functional.normalize(candidate_embeddings.float(), dim=-1)
    logits = torch.einsum("bd,bcd->bc", anchors, candidates) / temperature

    # Order candidates nearest first; the negatives of position i are then a suffix of the sorted row.
    distances = candidate_distances.detach().float()
    sorted_distances, order = torch.sort(distances, dim=-1, stable=True)
    sorted_logits = torch.gather(logits, -1, order)

    # suffix[b, k] = logsumexp of sorted_logits[b, k:], with suffix[b, num_candidates] = -inf (no negatives left).
    suffix = torch.logcumsumexp(sorted_logits.flip(-1), dim=-1).flip(-1)
    suffix = torch.cat([suffix, torch.full_like(suffix[:, :1], float("-inf"))], dim=-1)

    # The first strictly farther candidate follows the block of candidates tied with position i.
    first_farther = torch.searchsorted(sorted_distances, sorted_distances, right=True)
    negatives = torch.gather(suffix, -1, first_farther)
    per_position = torch.logaddexp(sorted_logits, negatives) - sorted_logits

    return per_position.sum(dim=-1).mean()


def _validate_loss_inputs(
    anchor_embeddings: torch.Tensor,
    candidate_embeddings: torch.Tensor,
    candidate_distances: torch.Tensor,
    temperature: float,
) -> None:
    if anchor_embeddings.ndim != 2:
        raise ValueError(
            f"`anchor_embeddings` must have shape (batch_size, hidden_size), got {tuple(anchor_embeddings.shape)}."
        )
    batch_size, hidden_size = anchor_embeddings.shape
    if candidate_embeddings.ndim != 3 or candidate_embeddings.shape[0] != batch_size:
        raise ValueError(
            f"`candidate_embeddings` must have shape ({batch_size}, num_candidates, {hidden_size}), got "
            f"{tuple(candidate_embeddings.shape)}."
        )
    if candidate_embeddings.shape[2] != hidden_size:
        raise ValueError(
            f"`candidate_embeddings` must have shape ({batch_size}, num_candidates, {hidden_size}), got "
            f"{tuple(candidate_embeddings.shape)}."
        )
    expected = tuple(candidate_embeddings.shape[:2])
    if tuple(candidate_distances.shape) != expected:
        raise ValueError(
            f"`candidate_distances` must have shape {expected} (batch_size, num_candidates), got "
            f"{tuple(candidate_distances.shape)}."
        )
    if expected[1] < 2:
        raise ValueError(f"Each anchor needs at least 2 candidates to rank, got {expected[1]}.")
    if not temperature > 0:
        raise ValueError(f"`temperature` must be positive, got {temperature}.")
