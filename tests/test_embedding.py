"""Tests of `relcon-hf embed` on real recordings: chunked reading, timestamps, head predictions and the CLI."""

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from relcon_hf import RelConConfig, RelConFeatureExtractor, RelConForSequenceClassification, RelConModel
from relcon_hf.cli import main
from relcon_hf.data import read_recording
from relcon_hf.embedding import RecordingEmbedder, embed_recordings


SMALL_ENCODER = {
    "stem_channels": 16,
    "stage_channels": [16, 32],
    "stage_num_blocks": [1, 1],
    "stage_kernel_sizes": [5, 3],
}
LABELS = {0: "walk", 1: "sit", 2: "run"}


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("encoder")
    RelConModel(RelConConfig(**SMALL_ENCODER)).save_pretrained(folder)
    RelConFeatureExtractor().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def head_dir(tmp_path_factory):
    torch.manual_seed(1)
    folder = tmp_path_factory.mktemp("head")
    config = RelConConfig(**SMALL_ENCODER, num_labels=3, id2label=LABELS)
    RelConForSequenceClassification(config).save_pretrained(folder)
    return folder


def direct_embeddings(model_dir, windows: np.ndarray) -> np.ndarray:
    model = RelConModel.from_pretrained(model_dir).eval()
    with torch.no_grad():
        return model(torch.from_numpy(windows)).pooler_output.numpy()


def read_rows(path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()


def test_embed_matches_direct_forward(encoder_dir, watch_corpus, tmp_path):
    recording = watch_corpus.recordings[0]
    np.save(tmp_path / "watch.npy", recording)
    features = RelConFeatureExtractor()(recording, sampling_rate=50, return_window_positions=True, return_tensors="np")

    summary = embed_recordings(
        [tmp_path / "watch.npy"], encoder_dir, tmp_path / "out.parquet", sampling_rate=50, progress=False
    )
    rows = read_rows(tmp_path / "out.parquet")

    assert summary.num_windows == len(features["input_values"]) == len(rows)
    assert np.allclose(rows["window_start"], features["window_start"])
    assert rows["timestamp"].isna().all()
    embeddings = np.stack(rows["embedding"].to_numpy())
    assert embeddings.shape == (len(rows), 32)
    assert np.allclose(embeddings, direct_embeddings(encoder_dir, features["input_values"]), atol=1e-5)


def test_embed_chunks_keep_timestamps(encoder_dir, watch_corpus, tmp_path):
    # Six watch recordings back to back as one 50 Hz Parquet file with Unix times in milliseconds.
    values = np.concatenate(watch_corpus.recordings[:6])
    start = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)
    milliseconds = int(start.timestamp() * 1000) + 20 * np.arange(len(values))
    frame = pd.DataFrame({"time": milliseconds, "x": values[:, 0], "y": values[:, 1], "z": values[:, 2]})
    frame.to_parquet(tmp_path / "day.parquet")
    chunk_rows = 1500

    embed_recordings([tmp_path / "day.parquet"], encoder_dir, tmp_path / "whole.parquet", progress=False)
    embed_recordings(
        [tmp_path / "day.parquet"], encoder_dir, tmp_path / "chunked.parquet", chunk_rows=chunk_rows, progress=False
    )
    whole, chunked = read_rows(tmp_path / "whole.parquet"), read_rows(tmp_path / "chunked.parquet")

    expected_times = pd.to_datetime(start) + pd.to_timedelta(chunked["window_start"], unit="s")
    assert (chunked["timestamp"] == expected_times).all()
    assert np.all(np.diff(chunked["window_start"]) > 0)
    num_chunks = -(-len(values) // chunk_rows)
    # Each chunk starts a new window grid, so at most one window per chunk boundary is lost.
    assert len(whole) - (num_chunks - 1) <= len(chunked) <= len(whole)
    first = np.stack(chunked["embedding"].to_numpy()[:3])
    assert np.allclose(first, np.stack(whole["embedding"].to_numpy()[:3]), atol=1e-5)


def test_embed_head_predictions(head_dir, test_data_dir, tmp_path):
    path = test_data_dir / "mgait" / "data__data_wrist.csv"

    summary = embed_recordings([path], head_dir, tmp_path / "out.parquet", sampling_rate=100, progress=False)
    rows = read_rows(tmp_path / "out.parquet")

    assert summary.prediction_columns == ["predicted_label", "predicted_probability"]
    recording = read_recording(path, sampling_rate=100)
    windows = RelConFeatureExtractor()(recording.values, sampling_rate=100, return_tensors="pt")["input_values"]
    model = RelConForSequenceClassification.from_pretrained(head_dir).eval()
    with torch.no_grad():
        output = model(windows)
    probabilities = torch.softmax(output.logits, dim=-1)
    assert len(rows) == len(windows)
    assert list(rows["predicted_label"]) == [LABELS[int(i)] for i in probabilities.argmax(dim=-1)]
    assert np.allclose(rows["predicted_probability"], probabilities.max(dim=-1).values.numpy(), atol=1e-5)
    assert np.allclose(np.stack(rows["embedding"].to_numpy()), output.embeddings.numpy(), atol=1e-5)


def test_embed_regression_columns(tmp_path, test_data_dir):
    config = RelConConfig(
        **SMALL_ENCODER, num_labels=2, problem_type="regression", id2label={0: "speed", 1: "cadence"}
    )
    RelConForSequenceClassification(config).save_pretrained(tmp_path / "gait")
    path = test_data_dir / "mgait" / "data__data_wrist.csv"

    embed_recordings([path], tmp_path / "gait", tmp_path / "out.parquet", sampling_rate=100, progress=False)
    rows = read_rows(tmp_path / "out.parquet")

    assert {"predicted_speed", "predicted_cadence"} <= set(rows.columns)
    assert rows["predicted_speed"].notna().all()


def test_embed_cli_device_file_timestamps(head_dir, test_data_dir, tmp_path, capsys):
    pytest.importorskip("pygt3x")
    path = test_data_dir / "ggir" / "actigraph_testfile.gt3x"
    output = tmp_path / "gt3x.parquet"

    status = main(["embed", str(path), "--model", str(head_dir), "--output", str(output)])

    assert status == 0
    assert capsys.readouterr().out.strip().endswith(str(output))
    rows = read_rows(output)
    recording = read_recording(path)
    assert rows["timestamp"].notna().all()
    assert rows["timestamp"].iloc[0] >= pd.Timestamp(recording.start_time)
    assert rows["timestamp"].iloc[-1] <= pd.Timestamp(recording.start_time) + pd.Timedelta(
        seconds=recording.duration_seconds
    )
    assert set(rows["predicted_label"]) <= set(LABELS.values())


def test_embed_progress_bar_shows_rows(encoder_dir, test_data_dir, tmp_path, capsys):
    path = test_data_dir / "mgait" / "data__data_wrist.csv"

    embed_recordings([path], encoder_dir, tmp_path / "out.parquet", sampling_rate=100, progress=True)

    error = capsys.readouterr().err
    assert "embed" in error
    assert "row/s" in error
    assert "100%" in error


def test_embed_rejects_bad_arguments(encoder_dir, tmp_path, watch_corpus):
    np.save(tmp_path / "watch.npy", watch_corpus.recordings[0])
    path = tmp_path / "watch.npy"

    with pytest.raises(ValueError, match="drop_flagged"):
        embed_recordings([path], encoder_dir, tmp_path / "out.parquet", drop_flagged=["noisy"], sampling_rate=50)
    with pytest.raises(ValueError, match="batch_size"):
        RecordingEmbedder(encoder_dir, batch_size=0)
    with pytest.raises(FileNotFoundError, match="config.json"):
        RecordingEmbedder(tmp_path)
    with pytest.raises(FileNotFoundError):
        embed_recordings([tmp_path / "missing.csv"], encoder_dir, tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.slow
def test_embed_workers_match_one_process(encoder_dir, watch_corpus, tmp_path):
    paths = []
    for index in range(3):
        paths.append(tmp_path / f"watch{index}.npy")
        np.save(paths[-1], watch_corpus.recordings[index])

    embed_recordings(paths, encoder_dir, tmp_path / "one.parquet", sampling_rate=50, progress=False)
    embed_recordings(paths, encoder_dir, tmp_path / "two.parquet", sampling_rate=50, num_workers=2, progress=False)
    one, two = read_rows(tmp_path / "one.parquet"), read_rows(tmp_path / "two.parquet")

    assert list(one["recording"]) == list(two["recording"])
    assert np.allclose(np.stack(one["embedding"].to_numpy()), np.stack(two["embedding"].to_numpy()), atol=1e-5)
