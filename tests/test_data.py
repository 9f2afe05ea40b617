# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Tests of the data layer: recording readers, the watch corpus, shard preparation and the streaming readers.

Inputs are real recordings: the seglearn smartwatch corpus (a test dependency), files written from it in the formats
users export, and, where the developer data folder exists, recordings from GGIR and mGait.
"""

import importlib.metadata
import logging
import math
import sys
from collections import Counter
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest
import torch
from datasets import load_dataset
from scipy.signal import resample_poly

from relcon_hf.data import (
    AnchorCandidateStream,
    WindowStream,
    find_watch_file,
    load_labelled_windows,
    prepare_recordings,
    prepare_watch,
    read_manifest,
    read_recording,
    shard_features,
    shard_files,
    split_subjects,
)
from relcon_hf.data.watch import WATCH_DATASET_ENV
from relcon_hf.modeling.feature_extraction_relcon import STANDARD_GRAVITY


WINDOW, HOP = 256, 128  # prepare_watch defaults, in samples at 100 Hz


def _watch_windows(num_samples_50hz: int, window: int = WINDOW, hop: int = HOP) -> int:
    """Windows that one 50 Hz watch recording gives after upsampling to 100 Hz."""
    length = 2 * num_samples_50hz
    return (length - window) // hop + 1 if length >= window else 0


def _reference_100hz(recording: np.ndarray) -> np.ndarray:
    """Resample 50 -> 100 Hz with SciPy, independently of the package's resampler."""
    return resample_poly(recording, 2, 1, axis=0, padtype="edge")


def _keys(windows) -> Counter:
    return Counter(np.asarray(window, dtype=np.float32).tobytes() for window in windows)


def _recording_frame(values: np.ndarray, rate: float, names=("x", "y", "z"), start: float | None = None):
    frame = pd.DataFrame(values, columns=list(names))
    if start is not None:
        frame.insert(0, "time", np.round((start + np.arange(len(values)) / rate) * 1000).astype(np.int64))
    return frame


# ---------------------------------------------------------------------------------------------------------------------
# The watch corpus


def test_watch_corpus_fields(watch_corpus, watch_file):
    raw = np.load(watch_file, allow_pickle=True).item()
    assert len(watch_corpus) == 140
    assert watch_corpus.sampling_rate == 50.0
    assert {recording.shape[1] for recording in watch_corpus.recordings} == {3}
    assert {recording.dtype for recording in watch_corpus.recordings} == {np.dtype(np.float64)}
    np.testing.assert_array_equal(watch_corpus.recordings[5], raw["X"][5][:, :3])
    assert watch_corpus.labels.dtype == np.int64
    assert sorted(Counter(watch_corpus.labels.tolist()).values()) == [20] * 7
    assert watch_corpus.label_names == list(raw["y_labels"])
    assert sorted(Counter(watch_corpus.subject_ids).items()) == [(f"watch-{i:02d}", 14) for i in range(1, 11)]
    assert "seglearn" not in sys.modules


def test_find_watch_file_sources(monkeypatch, tmp_path, watch_file):
    monkeypatch.setenv(WATCH_DATASET_ENV, str(watch_file))
    assert find_watch_file() == watch_file
    assert find_watch_file(watch_file) == watch_file

    monkeypatch.setenv(WATCH_DATASET_ENV, str(tmp_path / "missing.npy"))
    with pytest.raises(FileNotFoundError, match=WATCH_DATASET_ENV):
        find_watch_file()

    def no_distribution(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.delenv(WATCH_DATASET_ENV)
    monkeypatch.setattr("relcon_hf.data.watch.importlib.metadata.distribution", no_distribution)
    with pytest.raises(FileNotFoundError, match=r"pip install seglearn==1\.2\.5"):
        find_watch_file()


# ---------------------------------------------------------------------------------------------------------------------
# prepare_watch


def test_prepare_watch_counts(watch_shards, watch_corpus):
    manifest = read_manifest(watch_shards)
    splits = manifest["splits"]
    for split in ("train", "validation"):
        subjects = set(splits[split]["subjects"])
        expected = sum(
            _watch_windows(len(recording))
            for recording, subject in zip(watch_corpus.recordings, watch_corpus.subject_ids, strict=True)
            if subject in subjects
        )
        assert splits[split]["num_windows"] == expected
        assert splits[split]["num_groups"] == len(subjects)

    assert len(splits["train"]["subjects"]) == 8
    assert len(splits["validation"]["subjects"]) == 2
    assert not set(splits["train"]["subjects"]) & set(splits["validation"]["subjects"])
    assert set(splits["train"]["subjects"]) | set(splits["validation"]["subjects"]) == set(watch_corpus.subject_ids)
    assert manifest["source"] == "seglearn-watch"
    assert manifest["sampling_rate"] == 100.0
    assert manifest["label_names"] == watch_corpus.label_names
    first = manifest["inputs"]["watch-07/recording-000"]
    num_samples = len(watch_corpus.recordings[0])
    assert first["windows_written"] == _watch_windows(num_samples)
    assert first["windows_dropped"]["short_tail"] == math.ceil(2 * num_samples / HOP) - _watch_windows(num_samples)
    assert first["duration_seconds"] == num_samples / 50.0


def test_prepare_watch_rolls_over_shard_files(watch_shards):
    files = read_manifest(watch_shards)["splits"]["train"]["files"]
    assert len(files) > 1
    assert files == [f"train/shard-{index:05d}.parquet" for index in range(len(files))]
    assert all((watch_shards / file).is_file() for file in files)


def test_prepare_watch_split_depends_on_seed(watch_shards, watch_corpus, tmp_path):
    manifest = read_manifest(watch_shards)
    train, validation = split_subjects(watch_corpus.subject_ids, 0.2, seed=0)
    assert manifest["splits"]["validation"]["subjects"] == validation
    assert manifest["splits"]["train"]["subjects"] == train
    assert split_subjects(watch_corpus.subject_ids, 0.2, seed=0) == (train, validation)

    other = prepare_watch(tmp_path / "seed1", seed=1)
    assert len(other["splits"]["validation"]["subjects"]) == 2
    assert other["splits"]["validation"]["subjects"] != validation


def test_prepare_watch_reuses_manifest(watch_shards):
    manifest = read_manifest(watch_shards)
    files = [watch_shards / file for split in manifest["splits"].values() for file in split["files"]]
    modified = [file.stat().st_mtime_ns for file in files]

    again = prepare_watch(watch_shards, target_shard_bytes=manifest["settings"]["target_shard_bytes"])
    assert again == manifest
    assert [file.stat().st_mtime_ns for file in files] == modified

    with pytest.raises(ValueError, match="other settings.*overwrite"):
        prepare_watch(watch_shards, hop_length=256, target_shard_bytes=manifest["settings"]["target_shard_bytes"])


def test_prepare_watch_overwrite_incomplete_folder(tmp_path):
    output_dir = tmp_path / "shards"
    (output_dir / "train").mkdir(parents=True)
    with pytest.raises(ValueError, match="no manifest.json"):
        prepare_watch(output_dir)

    first = prepare_watch(output_dir, overwrite=True)
    second = prepare_watch(output_dir, hop_length=256, overwrite=True)
    assert second["hop_length"] == 256
    assert second["splits"]["train"]["num_windows"] < first["splits"]["train"]["num_windows"]
    assert read_manifest(output_dir) == second


def test_read_manifest_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a complete shard folder"):
        read_manifest(tmp_path)


# ---------------------------------------------------------------------------------------------------------------------
# Reading shards back


def test_shards_stream_through_datasets(watch_shards, watch_corpus):
    files = shard_files(watch_shards, "validation")
    dataset = load_dataset("parquet", data_files=files, split="train", streaming=True).with_format("numpy")
    assert dataset.features == shard_features(WINDOW)

    references = {}
    rows = list(dataset)
    assert len(rows) == 2
    for row in rows:
        windows = row["windows"]
        assert windows.dtype == np.float32
        assert windows.shape == (len(row["labels"]), WINDOW, 3)
        assert row["sampling_rate"] == 100.0
        assert np.isnat(row["start_time"])
        assert str(row["group_id"]) == f"{row['subject_id']}/session"
        for window, start, label, recording_id in zip(
            windows, row["window_start"], row["labels"], row["recording_id"], strict=True
        ):
            index = int(str(recording_id).rsplit("-", 1)[1])
            if index not in references:
                references[index] = _reference_100hz(watch_corpus.recordings[index])
            first_sample = round(float(start) * 100)
            expected = references[index][first_sample : first_sample + WINDOW]
            # The package normalises each polyphase branch to unit DC gain, a change of at most about 5e-4 g here.
            np.testing.assert_allclose(window, expected, atol=2e-3)
            assert label == watch_corpus.labels[index]


def test_load_labelled_windows(watch_shards, watch_corpus):
    manifest = read_manifest(watch_shards)
    loaded = load_labelled_windows(watch_shards)
    total = manifest["splits"]["train"]["num_windows"] + manifest["splits"]["validation"]["num_windows"]
    assert loaded["windows"].shape == (total, WINDOW, 3)
    assert loaded["windows"].dtype == np.float32
    assert loaded["labels"].shape == (total,)
    assert set(loaded["split"][loaded["labels"] >= 0]) == {"train", "validation"}

    expected_labels = Counter()
    for recording, label in zip(watch_corpus.recordings, watch_corpus.labels, strict=True):
        expected_labels[int(label)] += _watch_windows(len(recording))
    assert Counter(loaded["labels"].tolist()) == expected_labels
    validation = loaded["split"] == "validation"
    assert set(loaded["subject_ids"][validation]) == set(manifest["splits"]["validation"]["subjects"])


# ---------------------------------------------------------------------------------------------------------------------
# WindowStream


def test_window_stream_every_window_once(watch_shards):
    expected = _keys(load_labelled_windows(watch_shards, splits=("train",))["windows"])
    stream = WindowStream(watch_shards, shuffle_buffer_size=256)
    windows = list(stream)
    assert all(window.dtype == torch.float32 and window.shape == (WINDOW, 3) for window in windows)
    assert _keys(windows) == expected

    stream.set_epoch(1)
    assert _keys(stream) == expected


def test_window_stream_order_by_seed_and_epoch(watch_shards):
    first = WindowStream(watch_shards, split="validation", shuffle_buffer_size=256, seed=3)
    second = WindowStream(watch_shards, split="validation", shuffle_buffer_size=256, seed=3)
    epoch0 = [window.numpy().tobytes() for window in first]
    assert epoch0 == [window.numpy().tobytes() for window in second]

    first.set_epoch(1)
    second.set_epoch(1)
    epoch1 = [window.numpy().tobytes() for window in first]
    assert epoch1 != epoch0
    assert epoch1 == [window.numpy().tobytes() for window in second]


def test_window_stream_unshuffled_file_order(watch_shards):
    expected = load_labelled_windows(watch_shards, splits=("train",))["windows"]
    stream = WindowStream(watch_shards, shuffle_buffer_size=0)
    stream.set_epoch(4)
    windows = np.stack([window.numpy() for window in stream])
    np.testing.assert_array_equal(windows, expected)


@pytest.mark.parametrize("split", ["train", "validation"])  # several files (an odd window count), and a single file
def test_window_stream_ranks_disjoint(watch_shards, split):
    expected = _keys(load_labelled_windows(watch_shards, splits=(split,))["windows"])
    streams = [WindowStream(watch_shards, split, rank=rank, world_size=2, seed=5) for rank in (0, 1)]
    ranks = [_keys(stream) for stream in streams]
    assert sum(ranks[0].values()) == sum(ranks[1].values()) == streams[0].num_items > 0
    assert not set(ranks[0]) & set(ranks[1])
    assert not (ranks[0] + ranks[1]) - expected
    assert (expected - (ranks[0] + ranks[1])).total() == streams[0].num_left_out == expected.total() % 2


def test_stream_rejects_invalid_rank(watch_shards):
    with pytest.raises(ValueError, match="rank"):
        WindowStream(watch_shards, rank=2, world_size=2)


# ---------------------------------------------------------------------------------------------------------------------
# AnchorCandidateStream


def test_anchor_stream_candidates_from_own_group(watch_shards):
    loaded = load_labelled_windows(watch_shards, splits=("train",))
    groups = {group: loaded["windows"][loaded["group_ids"] == group] for group in set(loaded["group_ids"])}
    num_candidates = 20
    stream = AnchorCandidateStream(watch_shards, num_candidates=num_candidates, shuffle_buffer_size=512, seed=1)

    anchors = Counter()
    for item in stream:
        group = groups[item["group_id"]]
        anchor_index = item["anchor_index"]
        indices = item["candidate_indices"].numpy()
        assert indices.dtype == np.int64
        assert anchor_index not in indices
        assert len(set(indices.tolist())) == num_candidates
        assert indices.min() >= 0
        assert indices.max() < len(group)
        np.testing.assert_array_equal(item["anchor"].numpy(), group[anchor_index])
        np.testing.assert_array_equal(item["candidates"].numpy(), group[indices])
        anchors[(item["group_id"], anchor_index)] += 1

    assert len(anchors) == len(loaded["windows"])
    assert set(anchors.values()) == {1}
    assert stream.skipped_groups == 0


def test_anchor_stream_default_collate(watch_shards):
    stream = AnchorCandidateStream(watch_shards, split="validation", num_candidates=5)
    batch = next(iter(torch.utils.data.DataLoader(stream, batch_size=8)))
    assert batch["anchor"].shape == (8, WINDOW, 3)
    assert batch["candidates"].shape == (8, 5, WINDOW, 3)
    assert batch["candidate_indices"].shape == (8, 5)
    assert batch["anchor_index"].shape == (8,)
    assert isinstance(batch["group_id"], list) and all(isinstance(group, str) for group in batch["group_id"])


def test_anchor_stream_skips_small_groups(tmp_path, watch_corpus, caplog):
    # Three recordings of 1, 4 and 10 windows (256 samples at 100 Hz, no overlap), one group each.
    lengths = {"short": 200, "exact": 600, "long": len(watch_corpus.recordings[0])}
    inputs = []
    for name, length in lengths.items():
        np.save(tmp_path / f"{name}.npy", watch_corpus.recordings[0][:length])
        inputs.append(tmp_path / f"{name}.npy")
    manifest = prepare_recordings(inputs, tmp_path / "shards", sampling_rate=50, unit="g", validation_fraction=0)
    sizes = {report["recording_id"]: report["windows_written"] for report in manifest["inputs"].values()}
    assert sizes == {"short": 1, "exact": 4, "long": 10}

    stream = AnchorCandidateStream(tmp_path / "shards", num_candidates=3, shuffle_buffer_size=4)
    with caplog.at_level(logging.INFO, logger="relcon_hf.data.streaming"):
        items = list(stream)
    assert stream.skipped_groups == 1
    assert len(items) == 4 + 10
    assert {item["group_id"] for item in items} == {"exact/exact/0", "long/long/0"}
    assert "skipped 1 of 3 groups" in caplog.text

    stream = AnchorCandidateStream(tmp_path / "shards", num_candidates=4, shuffle_buffer_size=0)
    assert len(list(stream)) == 10
    assert stream.skipped_groups == 2


# ---------------------------------------------------------------------------------------------------------------------
# read_recording


def test_read_csv_with_unix_milliseconds(tmp_path, watch_corpus):
    values = watch_corpus.recordings[3]
    path = tmp_path / "watch.csv.gz"
    _recording_frame(values, 50.0, start=1_700_000_000.0).to_csv(path, index=False)

    recording = read_recording(path)
    assert recording.sampling_rate == pytest.approx(50.0, rel=1e-6)
    assert recording.rate_inferred
    assert recording.start_time == datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)
    assert recording.unit == "g"
    assert recording.time_column == "time"
    np.testing.assert_allclose(recording.values, values)


def test_read_csv_without_time_column(tmp_path, watch_corpus):
    path = tmp_path / "watch.csv"
    _recording_frame(watch_corpus.recordings[3], 50.0, names=("ACC_X", "ACC_Y", "ACC_Z")).to_csv(path, index=False)
    with pytest.raises(ValueError, match="--sampling-rate"):
        read_recording(path)

    recording = read_recording(path, sampling_rate=50)
    assert recording.sampling_rate == 50.0
    assert not recording.rate_inferred
    assert recording.start_time is None
    assert recording.columns == ["ACC_X", "ACC_Y", "ACC_Z"]


def test_read_csv_chosen_columns(tmp_path, watch_corpus):
    values = watch_corpus.recordings[3]
    frame = pd.DataFrame({"sample": np.arange(len(values)), "gyro": values[:, 0] * 50})
    for index in range(3):
        frame[f"a{index}"] = values[:, index]
    path = tmp_path / "device.csv"
    frame.to_csv(path, index=False)

    recording = read_recording(path, sampling_rate=50, columns=["a0", "a1", "a2"])
    np.testing.assert_allclose(recording.values, values)
    with pytest.raises(ValueError, match=r"\['a3'\] not found"):
        read_recording(path, sampling_rate=50, columns=["a0", "a1", "a3"])


def test_read_csv_skips_time_named_columns(tmp_path, watch_corpus):
    values = watch_corpus.recordings[3]
    frame = _recording_frame(values, 50.0, names=("a", "b", "c"))
    frame.insert(0, "Timestamp (ms)", np.arange(len(values)) * 20)
    path = tmp_path / "export.csv"
    frame.to_csv(path, index=False)

    recording = read_recording(path, sampling_rate=50)
    assert recording.columns == ["a", "b", "c"]
    assert recording.time_column is None


def test_read_detects_and_converts_m_s2(tmp_path, watch_corpus, caplog):
    values = watch_corpus.recordings[3]
    path = tmp_path / "phone.csv"
    _recording_frame(values * STANDARD_GRAVITY, 50.0).to_csv(path, index=False)

    with caplog.at_level(logging.INFO, logger="relcon_hf.data.readers"):
        recording = read_recording(path, sampling_rate=50)
    assert recording.unit == "m/s^2"
    assert recording.unit_detected
    assert "detected unit m/s^2" in caplog.text
    np.testing.assert_allclose(recording.values, values, atol=1e-12)

    with_unit = read_recording(path, sampling_rate=50, unit="m/s^2")
    assert not with_unit.unit_detected
    np.testing.assert_allclose(with_unit.values, values, atol=1e-12)


def test_read_rate_mismatch_raises(tmp_path, watch_corpus):
    path = tmp_path / "watch.csv"
    _recording_frame(watch_corpus.recordings[3], 50.0, start=1_700_000_000.0).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"100 Hz.*50 Hz"):
        read_recording(path, sampling_rate=100)
    assert read_recording(path, sampling_rate=50.5).sampling_rate == 50.5


def test_read_counts_raises(tmp_path, watch_corpus):
    counts = np.round(watch_corpus.recordings[3] * 256).astype(np.int64)  # a device at 256 counts per g
    path = tmp_path / "counts.csv"
    _recording_frame(counts, 50.0).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"median vector magnitude is 2\d\d.*counts per g"):
        read_recording(path, sampling_rate=50)


def test_read_drops_non_finite_rows(tmp_path, watch_corpus):
    values = watch_corpus.recordings[3].copy()
    values[[10, 11, 500]] = np.nan
    path = tmp_path / "gaps.csv"
    _recording_frame(values, 50.0).to_csv(path, index=False)

    recording = read_recording(path, sampling_rate=50)
    assert recording.num_non_finite == 3
    assert recording.non_finite_rows.tolist() == [10, 11, 500]
    assert recording.values.shape == (len(values) - 3, 3)
    assert np.isfinite(recording.values).all()


def test_read_parquet(tmp_path, watch_corpus):
    values = watch_corpus.recordings[3]
    start = pd.Timestamp("2024-05-01T08:30:00", tz="UTC")
    frame = pd.DataFrame(values, columns=["accel_x", "accel_y", "accel_z"])
    frame.insert(0, "timestamp", start + pd.to_timedelta(np.arange(len(values)) * 20, unit="ms"))
    path = tmp_path / "watch.parquet"
    frame.to_parquet(path)

    recording = read_recording(path)
    assert recording.sampling_rate == pytest.approx(50.0)
    assert recording.start_time == start.to_pydatetime()
    assert recording.columns == ["accel_x", "accel_y", "accel_z"]
    np.testing.assert_allclose(recording.values, values)


def test_read_numpy_files(tmp_path, watch_corpus):
    values = watch_corpus.recordings[3]
    np.save(tmp_path / "watch.npy", values)
    with pytest.raises(ValueError, match="--sampling-rate"):
        read_recording(tmp_path / "watch.npy")
    np.testing.assert_allclose(read_recording(tmp_path / "watch.npy", sampling_rate=50).values, values)

    timestamps = 1_700_000_000.0 + np.arange(len(values)) / 50.0
    np.savez(tmp_path / "watch.npz", acceleration=values, timestamps=timestamps, sampling_rate=50.0)
    recording = read_recording(tmp_path / "watch.npz")
    assert recording.sampling_rate == 50.0
    assert recording.start_time == datetime.fromtimestamp(1_700_000_000.0, tz=timezone.utc)

    np.save(tmp_path / "channels_first.npy", values.T)
    with pytest.raises(ValueError, match="channels-first"):
        read_recording(tmp_path / "channels_first.npy", sampling_rate=50)


def test_read_unsupported_suffix(tmp_path):
    path = tmp_path / "recording.edf"
    path.write_bytes(b"\x00" * 16)
    with pytest.raises(ValueError, match="Unsupported recording file"):
        read_recording(path)


def test_read_real_csv_exports(test_data_dir):
    wrist = read_recording(test_data_dir / "mgait" / "data__data_wrist.csv", sampling_rate=100)
    raw = pd.read_csv(test_data_dir / "mgait" / "data__data_wrist.csv").to_numpy()
    assert wrist.unit == "m/s^2"
    np.testing.assert_allclose(wrist.values, raw / STANDARD_GRAVITY)

    ax3 = read_recording(test_data_dir / "ggir" / "ax3_testfile_unix_timestamps.csv")
    assert ax3.time_column == "column_0"
    assert ax3.sampling_rate == pytest.approx(100.0, rel=1e-3)
    assert ax3.start_time == datetime(2019, 2, 26, 10, 55, 6, tzinfo=timezone.utc)
    assert ax3.unit == "g"

    iso = read_recording(test_data_dir / "mgait" / "example_data__data_wrist.csv")
    assert iso.sampling_rate == pytest.approx(100.0, rel=1e-3)
    assert iso.start_time == datetime(2025, 3, 14, 14, 39, 53, 859000, tzinfo=timezone.utc)


# ---------------------------------------------------------------------------------------------------------------------
# prepare_recordings


def test_prepare_recordings_reports_broken_input(tmp_path, test_data_dir):
    wrist = test_data_dir / "mgait" / "data__data_wrist.csv"  # 2646 samples at 100 Hz, no time column
    timed = test_data_dir / "mgait" / "example_data__data_wrist.csv"  # 13565 samples with ISO times
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"this is not a parquet file")

    manifest = prepare_recordings([wrist, broken, timed], tmp_path / "shards", sampling_rate=100)
    assert [entry["input"] for entry in manifest["failed_inputs"]] == [str(broken)]
    assert "ArrowInvalid" in manifest["failed_inputs"][0]["error"]
    assert set(manifest["inputs"]) == {str(wrist), str(timed)}
    assert manifest["inputs"][str(wrist)]["windows_written"] == (2646 - WINDOW) // WINDOW + 1
    assert manifest["inputs"][str(timed)]["windows_written"] == (13565 - WINDOW) // WINDOW + 1
    assert manifest["inputs"][str(timed)]["unit_in"] == "m/s^2"

    loaded = load_labelled_windows(tmp_path / "shards")
    assert len(loaded["windows"]) == 10 + 52
    assert set(loaded["labels"]) == {-1}
    assert set(loaded["group_ids"]) == {
        "data__data_wrist/data__data_wrist/0",
        "example_data__data_wrist/2025-03-14T14",
    }

    split = manifest["inputs"][str(timed)]["split"]
    files = shard_files(tmp_path / "shards", split)
    row = next(iter(load_dataset("parquet", data_files=files, split="train", streaming=True)))
    assert row["start_time"] == datetime(2025, 3, 14, 14, tzinfo=timezone.utc)
    assert row["window_start"][0] == pytest.approx(39 * 60 + 53.859, abs=1e-3)


def test_prepare_recordings_non_finite_windows(tmp_path, watch_corpus):
    # Rows 580-589 at 50 Hz are samples 1160-1179 at 100 Hz. The resampling filter reaches 10 input rows each way,
    # so the window of samples 896-1151 depends on the interpolated rows although it does not contain them.
    values = watch_corpus.recordings[0].copy()
    values[580:590] = np.nan
    path = tmp_path / "subject-a.csv"
    _recording_frame(values, 50.0).to_csv(path, index=False)

    manifest = prepare_recordings([path], tmp_path / "shards", sampling_rate=50, hop_length=128)
    report = manifest["inputs"][str(path)]
    dropped = report["windows_dropped"]
    assert report["non_finite_samples"] == 10
    assert dropped["non_finite"] == 3  # windows at samples 896, 1024 and 1152
    assert report["windows_written"] + dropped["non_finite"] + dropped["short_tail"] == math.ceil(
        2 * len(values) / 128
    )

    loaded = load_labelled_windows(tmp_path / "shards")
    files = shard_files(tmp_path / "shards", "train")
    row = next(iter(load_dataset("parquet", data_files=files, split="train", streaming=True)))
    starts = np.round(np.asarray(row["window_start"]) * 100).astype(int)
    assert 896 not in starts
    assert 768 in starts

    # Every written window matches the recording without the gap, resampled independently.
    clean = _reference_100hz(watch_corpus.recordings[0])
    for window, start in zip(loaded["windows"], starts, strict=True):
        # SciPy's filter differs from the package's (unit DC gain per polyphase branch) by about 5e-4 g here.
        np.testing.assert_allclose(window, clean[start : start + WINDOW], atol=2e-3)


def test_prepare_recordings_rejects_repeated_input(tmp_path, watch_corpus):
    path = tmp_path / "subject-a.npy"
    np.save(path, watch_corpus.recordings[0])
    with pytest.raises(ValueError, match="more than once"):
        prepare_recordings([path, path], tmp_path / "shards", sampling_rate=50)


def test_prepare_recordings_no_readable_input(tmp_path):
    broken = tmp_path / "broken.csv"
    broken.write_text("not,a,recording\n")
    with pytest.raises(ValueError, match="None of the 1 inputs"):
        prepare_recordings([broken], tmp_path / "shards", sampling_rate=50)
    assert not (tmp_path / "shards" / "manifest.json").exists()


# ---------------------------------------------------------------------------------------------------------------------
# split_subjects


def test_split_subjects_edge_cases():
    assert split_subjects(["a", "a"], 0.2) == (["a"], [])
    assert split_subjects(["a", "b"], 0.01) in ((["a"], ["b"]), (["b"], ["a"]))
    assert split_subjects(["a", "b", "c"], 0.0) == (["a", "b", "c"], [])
    with pytest.raises(ValueError, match="validation_fraction"):
        split_subjects(["a", "b"], 1.0)
