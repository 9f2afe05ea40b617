"""Batched ranking and the vectorised loss of stage 2 against a naive form, on real watch windows.

The naive form is the reference implementation's order of work: one distance call per (anchor, candidate) pair with
every feature recomputed, and the loss written as a Python loop over anchors and positions in float64.
"""

import json
import math
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from relcon_hf import RelConConfig, RelConDistanceConfig, RelConDistanceModel, RelConFeatureExtractor, RelConModel
from relcon_hf.losses import relative_contrastive_loss
from relcon_hf.modeling import modeling_relcon_distance as distance_modeling
from relcon_hf.modeling.modeling_relcon_distance import sparsemax, sparsemax_threshold_by_iteration
from relcon_hf.training.stages import (
    EncoderTask,
    rank_candidates,
    rank_shared_candidates,
    ranking_autocast,
    ranking_dtype,
    shared_candidate_indices,
)


TOLERANCE = 1e-5
SMALL_ENCODER = {
    "stem_channels": 16,
    "stage_channels": [16, 32],
    "stage_num_blocks": [1, 1],
    "stage_kernel_sizes": [5, 3],
}


@pytest.fixture(scope="module")
def recording_windows(watch_corpus) -> list[torch.Tensor]:
    """Windows of 256 samples at 100 Hz cut from the first 12 watch recordings, one tensor per recording."""
    extractor = RelConFeatureExtractor(hop_length=128)
    windows = []
    for recording in watch_corpus.recordings[:12]:
        features = extractor(recording, sampling_rate=watch_corpus.sampling_rate, return_tensors="pt")
        windows.append(features["input_values"])
    return windows


@pytest.fixture(scope="module", params=["sparsemax", "softmax"])
def distance_model(request) -> RelConDistanceModel:
    torch.manual_seed(0)
    config = RelConDistanceConfig(attention=request.param, hidden_size=32, bottleneck_size=16, num_dilated_blocks=3)
    return RelConDistanceModel(config).eval()


def naive_distances(model: RelConDistanceModel, anchors: torch.Tensor, candidate_lists: list[torch.Tensor]):
    """Distance of every (anchor, candidate) pair, one model call per pair."""
    rows = []
    with torch.no_grad():
        for anchor, candidates in zip(anchors, candidate_lists, strict=True):
            rows.append(torch.stack([model(anchor[None], candidate[None]).distance[0] for candidate in candidates]))
    return torch.stack(rows)


def naive_loss(anchor_embeddings, candidate_embeddings, distances, temperature: float) -> float:
    """Mean over anchors of sum_i -log(exp(s_i/t) / (exp(s_i/t) + sum_{d_j > d_i} exp(s_j/t))), in float64."""
    anchors = anchor_embeddings.double()
    candidates = candidate_embeddings.double()
    total = 0.0
    for b in range(anchors.shape[0]):
        similarity = [
            torch.nn.functional.cosine_similarity(anchors[b], candidates[b, j], dim=0).item()
            for j in range(candidates.shape[1])
        ]
        for i in range(candidates.shape[1]):
            numerator = math.exp(similarity[i] / temperature)
            negatives = sum(
                math.exp(similarity[j] / temperature)
                for j in range(candidates.shape[1])
                if distances[b, j] > distances[b, i]
            )
            total += -math.log(numerator / (numerator + negatives))
    return total / anchors.shape[0]


def assert_same_order(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Both rows rank the candidates in the same order (no ties among these real windows)."""
    assert torch.equal(torch.argsort(actual, dim=-1), torch.argsort(expected, dim=-1))


def test_batched_ranking_matches_naive(recording_windows, distance_model):
    # Anchor i is a window of recording i, and its candidates are other windows of that recording (its group).
    num_anchors, num_candidates = 5, 3
    anchors = torch.stack([recording_windows[i][0] for i in range(num_anchors)])
    candidates = torch.stack([recording_windows[i][1 : 1 + num_candidates] for i in range(num_anchors)])
    candidate_lists = [
        torch.cat([candidates[i], anchors[[j for j in range(num_anchors) if j != i]]]) for i in range(num_anchors)
    ]

    batched = rank_candidates(distance_model, anchors, candidates, chunk_size=7)
    expected = naive_distances(distance_model, anchors, candidate_lists)

    assert batched.shape == (num_anchors, num_candidates + num_anchors - 1)
    assert torch.allclose(batched, expected, rtol=TOLERANCE, atol=TOLERANCE)
    assert_same_order(batched, expected)


def test_shared_ranking_matches_naive(recording_windows, distance_model):
    num_groups, group_size = 3, 3
    groups = torch.stack([recording_windows[g][:group_size] for g in range(num_groups)])
    pool = groups.reshape(-1, 256, 3)
    # Window (g, m): its 2 group mates in order, then the first window of each other group.
    candidate_lists = []
    for g in range(num_groups):
        for m in range(group_size):
            mates = [groups[g, other] for other in range(group_size) if other != m]
            leads = [groups[other, 0] for other in range(num_groups) if other != g]
            candidate_lists.append(torch.stack(mates + leads))

    batched = rank_shared_candidates(distance_model, groups, chunk_size=5)
    expected = naive_distances(distance_model, pool, candidate_lists)

    assert batched.shape == (num_groups * group_size, group_size - 1 + num_groups - 1)
    assert torch.allclose(batched, expected, rtol=TOLERANCE, atol=TOLERANCE)
    assert_same_order(batched, expected)


def test_shared_candidate_indices_layout():
    within, between = shared_candidate_indices(3, 4, torch.device("cpu"))

    assert within[5].tolist() == [4, 6, 7]
    assert between[5].tolist() == [0, 8]
    assert between[0].tolist() == [4, 8]
    assert within[11].tolist() == [8, 9, 10]


def test_vectorised_loss_matches_naive(recording_windows, distance_model):
    torch.manual_seed(1)
    encoder = RelConModel(RelConConfig(**SMALL_ENCODER)).eval()
    num_anchors, num_candidates = 6, 5
    anchors = torch.stack([recording_windows[i][2] for i in range(num_anchors)])
    candidates = torch.stack([recording_windows[i][3 : 3 + num_candidates] for i in range(num_anchors)])
    distances = rank_candidates(distance_model, anchors, candidates)
    with torch.no_grad():
        anchor_embeddings = encoder(anchors).pooler_output
        own = encoder(candidates.reshape(-1, 256, 3)).pooler_output.view(num_anchors, num_candidates, -1)
    others = torch.stack([anchor_embeddings[[j for j in range(num_anchors) if j != i]] for i in range(num_anchors)])
    candidate_embeddings = torch.cat([own, others], dim=1)

    loss = relative_contrastive_loss(anchor_embeddings, candidate_embeddings, distances, temperature=0.1)
    expected = naive_loss(anchor_embeddings, candidate_embeddings, distances, temperature=0.1)

    assert loss.item() == pytest.approx(expected, rel=TOLERANCE, abs=TOLERANCE)


@pytest.mark.parametrize("candidate_sharing", [False, True])
def test_encoder_task_loss_matches_naive(watch_shards, tmp_path, candidate_sharing):
    torch.manual_seed(2)
    distance = RelConDistanceModel(RelConDistanceConfig(hidden_size=32, bottleneck_size=16, num_dilated_blocks=3))
    distance.save_pretrained(tmp_path / "distance")
    num_candidates = 2
    task = EncoderTask(
        str(watch_shards),
        str(tmp_path / "distance"),
        num_candidates=num_candidates,
        model_overrides=SMALL_ENCODER,
        ranking_chunk_size=16,
        candidate_sharing=candidate_sharing,
    )
    task.prepare(SimpleNamespace(device=torch.device("cpu")))
    encoder = task.build_model().eval()
    batch = next(iter(DataLoader(task.train_dataset(0, 1), batch_size=3)))

    with torch.no_grad():
        loss = task.compute_loss(encoder, batch, torch.Generator().manual_seed(0)).item()

    anchors, candidates = batch["anchor"], batch["candidates"]
    if candidate_sharing:
        groups = torch.cat([anchors[:, None], candidates], dim=1)
        pool = groups.reshape(-1, 256, 3)
        size = num_candidates + 1
        candidate_rows = [
            [g * size + m2 for m2 in range(size) if m2 != m] + [h * size for h in range(len(groups)) if h != g]
            for g in range(len(groups))
            for m in range(size)
        ]
        anchor_pool = pool
    else:
        pool = torch.cat([anchors, candidates.reshape(-1, 256, 3)])
        batch_size = len(anchors)
        candidate_rows = [
            [batch_size + i * num_candidates + j for j in range(num_candidates)]
            + [j for j in range(batch_size) if j != i]
            for i in range(batch_size)
        ]
        anchor_pool = anchors
    candidate_lists = [pool[rows] for rows in candidate_rows]
    distances = naive_distances(task.ranker, anchor_pool, candidate_lists)
    with torch.no_grad():
        anchor_embeddings = torch.cat([encoder(window[None]).pooler_output for window in anchor_pool])
        candidate_embeddings = torch.stack(
            [torch.cat([encoder(window[None]).pooler_output for window in windows]) for windows in candidate_lists]
        )
    expected = naive_loss(anchor_embeddings, candidate_embeddings, distances, temperature=task.temperature)

    assert np.isfinite(loss)
    assert loss == pytest.approx(expected, rel=TOLERANCE, abs=TOLERANCE)


def test_ranking_dtype_settings():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")

    assert ranking_dtype(cpu, "auto") == torch.float32
    assert ranking_dtype(cuda, "auto") == torch.bfloat16
    assert ranking_dtype(cpu, "bfloat16") == torch.bfloat16
    assert ranking_dtype(cuda, "float32") == torch.float32
    with pytest.raises(ValueError, match="ranking_precision"):
        ranking_dtype(cpu, "float16")


def test_bfloat16_ranking_close_to_float32(recording_windows, distance_model):
    anchors = torch.stack([recording_windows[i][0] for i in range(4)])
    candidates = torch.stack([recording_windows[i][1:4] for i in range(4)])

    exact = rank_candidates(distance_model, anchors, candidates)
    with ranking_autocast(torch.device("cpu"), "bfloat16"):
        approximate = rank_candidates(distance_model, anchors, candidates)

    assert approximate.dtype == torch.float32
    assert not torch.equal(approximate, exact)
    assert torch.allclose(approximate, exact, rtol=0.05)


def test_encoder_task_rejects_bad_options(watch_shards, tmp_path):
    RelConDistanceModel(RelConDistanceConfig(hidden_size=32, bottleneck_size=16)).save_pretrained(tmp_path / "d")
    with pytest.raises(ValueError, match="ranking_precision"):
        EncoderTask(str(watch_shards), str(tmp_path / "d"), ranking_precision="half")

    task = EncoderTask(str(watch_shards), str(tmp_path / "d"), num_candidates=2, candidate_sharing=True)
    task.prepare(SimpleNamespace(device=torch.device("cpu")))
    batch = next(iter(DataLoader(task.train_dataset(0, 1), batch_size=1)))
    with pytest.raises(ValueError, match="at least 2 groups"):
        task.compute_loss(RelConModel(RelConConfig(**SMALL_ENCODER)), batch, torch.Generator())


def test_threshold_by_iteration_matches_sparsemax(recording_windows, distance_model):
    """The sort-free threshold gives the sparsemax weights wherever it reports convergence, on real scores."""
    anchors = torch.cat([windows[:4] for windows in recording_windows[:4]])
    candidates = torch.cat([windows[4:8] for windows in recording_windows[:4]])
    with torch.no_grad():
        mean, std, keys, _ = distance_model._encode_candidates(candidates)
        normalized = distance_model.revin.normalize(anchors, mean, std)
        queries = distance_model.query_encoder(normalized.transpose(1, 2)).transpose(1, 2)
        scores = distance_model._attention_scores(queries, keys)

    threshold, converged = sparsemax_threshold_by_iteration(scores, 30)
    assert converged.float().mean() > 0.99

    weights = torch.clamp(scores - threshold, min=0)
    expected = sparsemax(scores)
    assert torch.allclose(weights[converged], expected[converged], atol=1e-6)
    assert torch.allclose(weights[converged].sum(dim=-1), torch.ones(int(converged.sum())), atol=1e-5)

    # One step is not enough on these scores, and the rows that did not settle are reported as unconverged.
    one_step, one_step_converged = sparsemax_threshold_by_iteration(scores, 1)
    assert not one_step_converged.all()
    unsettled = ~one_step_converged
    assert not torch.allclose(torch.clamp(scores[unsettled] - one_step[unsettled], min=0), expected[unsettled])


@pytest.mark.slow
@pytest.mark.parametrize("candidate_sharing", [False, True])
@pytest.mark.parametrize("iterations", [None, 1])
def test_compiled_ranking_matches_eager(recording_windows, distance_model, candidate_sharing, iterations, monkeypatch):
    """
    `compile=True` ranks as the eager form, which matches the naive form above; with 1 fixed-point step most pairs
    do not converge and are redone eagerly. Compiling takes tens of seconds, hence the slow mark.
    """
    if iterations is not None:
        monkeypatch.setattr(distance_modeling, "_SPARSEMAX_ITERATIONS", iterations)
    redone = []
    original_reconstruct = RelConDistanceModel._reconstruct

    def counting_reconstruct(self, anchor_values, *features):
        redone.append(anchor_values.shape[0])
        return original_reconstruct(self, anchor_values, *features)

    if candidate_sharing:
        groups = torch.stack([recording_windows[g][:3] for g in range(3)])
        eager = rank_shared_candidates(distance_model, groups, chunk_size=5)
        with monkeypatch.context() as patch:
            patch.setattr(RelConDistanceModel, "_reconstruct", counting_reconstruct)
            compiled = rank_shared_candidates(distance_model, groups, chunk_size=5, compile=True)
    else:
        anchors = torch.stack([recording_windows[i][0] for i in range(5)])
        candidates = torch.stack([recording_windows[i][1:4] for i in range(5)])
        eager = rank_candidates(distance_model, anchors, candidates, chunk_size=7)
        with monkeypatch.context() as patch:
            patch.setattr(RelConDistanceModel, "_reconstruct", counting_reconstruct)
            compiled = rank_candidates(distance_model, anchors, candidates, chunk_size=7, compile=True)

    # The eager form matches the naive form to 1e-5 above; the compiled kernels sum in another order.
    assert torch.allclose(compiled, eager, rtol=1e-4, atol=1e-4)
    assert_same_order(compiled, eager)
    # The compiled functions ran (dynamo counted graphs), and only the pairs of unsettled thresholds were redone.
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0
    assert not distance_modeling._compiled_ranking_disabled
    if distance_model.config.attention == "softmax":
        assert not redone
    elif iterations is None:
        assert sum(redone) < compiled.numel() // 4
    else:
        assert 0 < sum(redone) <= compiled.numel()


# Runs in a fresh process because, after a failed compile in the test process, a later test captured no dynamo
# graphs even after `torch._dynamo.reset()`.
_COMPILE_FAILURE_SCRIPT = """
import json, logging
import torch
from relcon_hf import RelConDistanceConfig, RelConDistanceModel, RelConFeatureExtractor
from relcon_hf.data import load_watch_corpus
from relcon_hf.training.stages import rank_candidates

messages = []
handler = logging.Handler()
handler.emit = lambda record: messages.append(record.getMessage())
logging.getLogger("relcon_hf.modeling.modeling_relcon_distance").addHandler(handler)

corpus = load_watch_corpus()
extractor = RelConFeatureExtractor(hop_length=128)
windows = [
    extractor(recording, sampling_rate=corpus.sampling_rate, return_tensors="pt")["input_values"]
    for recording in corpus.recordings[:3]
]
torch.manual_seed(3)
model = RelConDistanceModel(RelConDistanceConfig(hidden_size=8, bottleneck_size=4, num_dilated_blocks=1)).eval()
anchors = torch.stack([w[0] for w in windows])
candidates = torch.stack([w[1:3] for w in windows])
ranked = rank_candidates(model, anchors, candidates, compile=True)
again = rank_candidates(model, anchors, candidates, compile=True)
expected = rank_candidates(model, anchors, candidates)
print(json.dumps({
    "first_equal": torch.equal(ranked, expected),
    "second_equal": torch.equal(again, expected),
    "warnings": [m for m in messages if "Compiling the distance passes failed" in m],
}))
"""


def test_compile_failure_falls_back_eagerly(tmp_path):
    """With no working C++ compiler (`CXX` points nowhere), ranking warns once and gives the eager distances."""
    environment = {**os.environ, "CXX": "/nonexistent/c++", "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")}
    completed = subprocess.run(
        [sys.executable, "-c", _COMPILE_FAILURE_SCRIPT],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["first_equal"]
    assert result["second_equal"]
    assert len(result["warnings"]) == 1
    assert "No working C++ compiler" in result["warnings"][0]
    assert "compile_ranking" in result["warnings"][0]
