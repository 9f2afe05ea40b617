"""Tests of the learned motif distance (stage 1): sparsemax, shapes, ranking helpers and training on real windows."""

import pytest
import torch

from relcon_hf import RelConDistanceConfig, RelConDistanceModel, RelConFeatureExtractor
from relcon_hf.augmentations import augment
from relcon_hf.modeling.modeling_relcon_distance import sparsemax
from relcon_hf.training.stages import candidate_pair_indices, rank_candidates


def sorted_sparsemax(scores: torch.Tensor) -> torch.Tensor:
    """Sparsemax along the last dimension from a full sort, the textbook form."""
    values, _ = torch.sort(scores, dim=-1, descending=True)
    cumulative = values.cumsum(-1) - 1
    ranks = torch.arange(1, scores.shape[-1] + 1, dtype=scores.dtype)
    support = (ranks * values > cumulative).sum(-1, keepdim=True)
    threshold = cumulative.gather(-1, support - 1) / support
    return torch.clamp(scores - threshold, min=0)


@pytest.fixture(scope="module")
def subject_windows(watch_corpus):
    """Real 256-sample windows at 100 Hz, one tensor per subject of the watch corpus."""
    extractor = RelConFeatureExtractor(hop_length=128)
    by_subject = {}
    for recording, subject in zip(watch_corpus.recordings, watch_corpus.subject_ids, strict=True):
        by_subject.setdefault(subject, []).append(recording)
    return {
        subject: extractor(recordings, sampling_rate=watch_corpus.sampling_rate, return_tensors="pt")["input_values"]
        for subject, recordings in sorted(by_subject.items())
    }


@pytest.mark.parametrize("scale", [0.01, 1.0, 30.0])
def test_sparsemax_matches_full_sort(scale):
    # Scale 0.01 spreads the support over all 300 scores, past the top-32 fast path.
    scores = torch.randn(5, 7, 300, generator=torch.Generator().manual_seed(0)) * scale

    result = sparsemax(scores)

    assert torch.allclose(result, sorted_sparsemax(scores), atol=1e-6)
    assert torch.allclose(result.sum(-1), torch.ones(5, 7), atol=1e-5)
    assert (result >= 0).all()


def test_sparsemax_is_sparse_for_spread_scores():
    scores = torch.tensor([[3.0, 1.0, 0.5, -2.0]])

    result = sparsemax(scores)

    assert torch.allclose(result, torch.tensor([[1.0, 0.0, 0.0, 0.0]]))


def test_sparsemax_along_other_dimension():
    scores = torch.randn(4, 9, 6)

    result = sparsemax(scores, dim=1)

    assert torch.allclose(result, sorted_sparsemax(scores.transpose(1, 2)).transpose(1, 2), atol=1e-6)


def test_sparsemax_gradient_is_the_projection_jacobian():
    scores = (torch.randn(3, 80, dtype=torch.float64) * 3).requires_grad_()

    assert torch.autograd.gradcheck(sparsemax, (scores,))


def test_distance_output_shapes():
    model = RelConDistanceModel(RelConDistanceConfig()).eval()

    outputs = model(torch.randn(4, 256, 3), torch.randn(4, 200, 3), output_attentions=True)

    assert outputs.distance.shape == (4,)
    assert outputs.reconstruction.shape == (4, 256, 3)
    assert outputs.attention_weights.shape == (4, 256, 200)
    assert torch.allclose(outputs.loss, outputs.distance.mean())
    assert torch.allclose(outputs.attention_weights.sum(-1), torch.ones(4, 256), atol=1e-5)


def test_distance_is_summed_squared_error():
    model = RelConDistanceModel(RelConDistanceConfig(attention="softmax")).eval()
    anchors, candidates = torch.randn(3, 128, 3), torch.randn(3, 128, 3)

    outputs = model(anchors, candidates)

    expected = (outputs.reconstruction - anchors).pow(2).sum(dim=(1, 2))
    assert torch.allclose(outputs.distance, expected, rtol=1e-5)


def test_distance_receptive_field():
    assert RelConDistanceConfig().receptive_field == 57


def test_distance_constant_window_is_finite():
    model = RelConDistanceModel(RelConDistanceConfig()).eval()
    constant = torch.zeros(2, 256, 3)
    constant[:, :, 2] = 1.0  # a device lying still: gravity on one axis, zero variance everywhere

    outputs = model(constant, constant)

    assert torch.isfinite(outputs.distance).all()
    assert torch.isfinite(outputs.reconstruction).all()


def test_distances_for_pairs_match_forward():
    model = RelConDistanceModel(RelConDistanceConfig()).eval()
    anchors, pool = torch.randn(3, 256, 3), torch.randn(5, 256, 3)
    anchor_index = torch.tensor([0, 0, 1, 2, 2, 2])
    candidate_index = torch.tensor([4, 1, 1, 0, 3, 4])

    with torch.no_grad():
        paired = model.distances_for_pairs(anchors, pool, anchor_index, candidate_index, chunk_size=2)
        direct = model(anchors[anchor_index], pool[candidate_index]).distance

    assert torch.allclose(paired, direct, rtol=1e-5, atol=1e-4)


def test_rank_candidates_layout():
    model = RelConDistanceModel(RelConDistanceConfig(attention="softmax")).eval()
    anchors, candidates = torch.randn(4, 128, 3), torch.randn(4, 3, 128, 3)

    distances = rank_candidates(model, anchors, candidates, chunk_size=5)

    assert distances.shape == (4, 3 + 4 - 1)
    with torch.no_grad():
        # Row 2: its three group candidates first, then anchors 0, 1 and 3.
        expected_within = model(anchors[2:3].expand(3, -1, -1), candidates[2]).distance
        expected_between = model(anchors[2:3].expand(3, -1, -1), anchors[[0, 1, 3]]).distance
    assert torch.allclose(distances[2], torch.cat([expected_within, expected_between]), rtol=1e-5, atol=1e-4)


def test_candidate_pair_indices_exclude_the_anchor():
    within, between = candidate_pair_indices(5, 2, torch.device("cpu"))

    assert within.tolist()[1] == [7, 8]
    for anchor, others in enumerate(between.tolist()):
        assert anchor not in others
        assert sorted(others) == [index for index in range(5) if index != anchor]


def test_distance_rejects_mismatched_batches():
    model = RelConDistanceModel(RelConDistanceConfig())

    with pytest.raises(ValueError, match="same number of windows.*got 2 and 3"):
        model(torch.randn(2, 64, 3), torch.randn(3, 64, 3))


def test_distance_rejects_invalid_config():
    with pytest.raises(ValueError, match="`attention` must be one of 'sparsemax', 'softmax', got 'entmax'"):
        RelConDistanceConfig(attention="entmax")
    with pytest.raises(ValueError, match="`kernel_size` must be odd"):
        RelConDistanceConfig(kernel_size=14)


def test_distance_training_separates_augmented_copies_from_other_subjects(subject_windows):
    torch.manual_seed(0)
    subjects = list(subject_windows)
    train = torch.cat([subject_windows[subject] for subject in subjects[:8]])
    model = RelConDistanceModel(RelConDistanceConfig())
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)

    # Held-out subjects: each anchor against its own augmented copy and against a window of another subject.
    anchors, others = subject_windows[subjects[8]][:64], subject_windows[subjects[9]][:64]
    augmented = augment(anchors, torch.Generator().manual_seed(1))

    def mean_distances() -> tuple[float, float]:
        model.eval()
        with torch.no_grad():
            to_augmented = model(anchors, augmented).distance.mean().item()
            to_other_subject = model(anchors, others).distance.mean().item()
        model.train()
        return to_augmented, to_other_subject

    untrained_to_augmented, _ = mean_distances()
    for _ in range(150):
        batch = train[torch.randint(len(train), (32,), generator=generator)]
        loss = model(batch, augment(batch, generator)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    to_augmented, to_other_subject = mean_distances()

    assert to_augmented < untrained_to_augmented
    assert to_augmented < to_other_subject
