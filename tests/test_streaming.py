# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Tests of the streaming readers: fsspec URLs, epochs, equal items per rank, DataLoader workers and exact resume.

Shards contain real windows of the seglearn watch corpus: the session fixture `watch_shards`, and `uneven_shards`.
The latter regroups the same windows into groups and files of very different sizes. Two of its files have several
groups per Parquet row group, as writers other than `ShardWriter` produce them.
"""

import hashlib
import json
import logging
import shutil
from collections import Counter
from pathlib import Path

import fsspec
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from accelerate import PartialState
from safetensors.torch import load_file
from torch.utils.data import DataLoader
from two_processes import CLI, run_two_processes

from relcon_hf.data import (
    AnchorCandidateStream,
    CandidateGroup,
    ShardWriter,
    WindowStream,
    load_labelled_windows,
    read_manifest,
    shard_features,
)
from relcon_hf.training.loop import TrainingSettings, _data_loader, list_checkpoints, run_training
from relcon_hf.training.stages import DistanceTask


TESTS_DIR = Path(__file__).resolve().parent
WINDOW = 256
# Group sizes of the uneven shards, per file. Files 1 and 2 are written with 3 rows per Parquet row group.
UNEVEN_TRAIN_FILES = [[433], [3, 25, 60, 7, 150, 90, 12], [300, 41, 5, 200]]
UNEVEN_VALIDATION_FILES = [[120, 9]]
TINY_DISTANCE = {"distance": {"model": {"hidden_size": 16, "bottleneck_size": 4}}}


def _window_id(window) -> str:
    return hashlib.sha1(np.asarray(window, dtype=np.float32).tobytes()).hexdigest()


def _anchor_id(item: dict) -> tuple:
    return item["group_id"], item["anchor_index"], tuple(item["candidate_indices"].tolist())


def _item_ids(stream, count: int | None = None) -> list:
    """Ids of the next `count` items of a fresh pass over `stream` (all of them by default)."""
    identify = _window_id if isinstance(stream, WindowStream) else _anchor_id
    ids: list = []
    if count == 0:
        return ids
    for item in stream:
        ids.append(identify(item))
        if len(ids) == count:
            break
    return ids


def _write_uneven_split(output_dir: Path, split: str, files: list[list[int]], windows: dict) -> dict:
    """Write one split of `uneven_shards`: each group contains consecutive windows of the subject with most left."""
    features = shard_features(WINDOW)
    used = dict.fromkeys(windows, 0)
    relative_files, subjects, num_windows = [], set(), 0
    for file_index, sizes in enumerate(files):
        groups = []
        for size in sizes:
            subject = max(windows, key=lambda name: len(windows[name]["windows"]) - used[name])
            start = used[subject]
            used[subject] += size
            values = windows[subject]
            assert len(values["windows"][start : start + size]) == size, "not enough windows for the uneven shards"
            groups.append(
                CandidateGroup(
                    subject_id=subject,
                    group_id=f"{subject}/part-{start}",
                    start_time=None,
                    windows=values["windows"][start : start + size],
                    window_start=np.arange(size) * 1.28,
                    labels=values["labels"][start : start + size],
                    recording_ids=list(values["recording_ids"][start : start + size]),
                )
            )
            subjects.add(subject)
            num_windows += size

        # Write each group as its own row group with ShardWriter, then, for files after the first, rewrite the rows
        # with 3 rows per row group.
        staging = output_dir / "staging" / f"{split}-{file_index}"
        with ShardWriter(staging, split, features, target_shard_bytes=2**40) as writer:
            for group in groups:
                writer.write(group)
        relative = f"{split}/shard-{file_index:05d}.parquet"
        (output_dir / split).mkdir(parents=True, exist_ok=True)
        if file_index == 0:
            shutil.copy(staging / writer.files[0], output_dir / relative)
        else:
            table = pq.read_table(staging / writer.files[0])
            assert table.schema.equals(features.arrow_schema, check_metadata=False)
            pq.write_table(table, output_dir / relative, row_group_size=3)
        relative_files.append(relative)
    shutil.rmtree(output_dir / "staging")

    return {
        "subjects": sorted(subjects),
        "files": relative_files,
        "num_groups": sum(map(len, files)),
        "num_windows": num_windows,
    }


@pytest.fixture(scope="module")
def uneven_shards(tmp_path_factory, watch_shards) -> Path:
    """Real watch windows regrouped into groups of 3 to 433 windows in files of 1 to 7 groups."""
    manifest = read_manifest(watch_shards)
    output_dir = tmp_path_factory.mktemp("uneven") / "shards"
    for split, files in (("train", UNEVEN_TRAIN_FILES), ("validation", UNEVEN_VALIDATION_FILES)):
        loaded = load_labelled_windows(watch_shards, splits=(split,))
        windows = {}
        for subject in manifest["splits"][split]["subjects"]:
            chosen = loaded["subject_ids"] == subject
            windows[subject] = {name: loaded[name][chosen] for name in ("windows", "labels", "recording_ids")}
        manifest["splits"][split] = _write_uneven_split(output_dir, split, files, windows)
    manifest["settings"] = {"source": "uneven test shards"}
    (output_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return output_dir


# ---------------------------------------------------------------------------------------------------------------------
# Locations


@pytest.mark.parametrize("protocol", ["memory", "file"])
def test_streams_read_fsspec_urls(watch_shards, protocol):
    if protocol == "memory":
        url = "memory://relcon-stream-test/shards"
        fsspec.filesystem("memory").put(str(watch_shards), "/relcon-stream-test/shards", recursive=True)
    else:
        url = Path(watch_shards).as_uri()
    assert url.startswith(f"{protocol}://")

    for make in (
        lambda location: WindowStream(location, "validation", seed=2),
        lambda location: AnchorCandidateStream(location, "validation", num_candidates=5, seed=2),
    ):
        local, remote = make(watch_shards), make(url)
        assert remote.num_items == local.num_items == 782
        assert _item_ids(remote) == _item_ids(local)


# ---------------------------------------------------------------------------------------------------------------------
# Epochs


@pytest.mark.parametrize("stream_type", ["windows", "anchors"])
def test_set_epoch_changes_and_repeats_order(watch_shards, stream_type):
    def make():
        if stream_type == "windows":
            return WindowStream(watch_shards, "validation", shuffle_buffer_size=128, seed=3)
        return AnchorCandidateStream(watch_shards, "validation", num_candidates=4, shuffle_buffer_size=128, seed=3)

    first, second = make(), make()
    epoch0 = _item_ids(first)
    first.set_epoch(1)
    epoch1 = _item_ids(first)
    second.set_epoch(1)

    assert epoch1 != epoch0
    assert _item_ids(second) == epoch1
    first.set_epoch(0)
    assert _item_ids(first) == epoch0
    if stream_type == "windows":
        assert sorted(epoch1) == sorted(epoch0)
    else:
        assert sorted(item[:2] for item in epoch1) == sorted(item[:2] for item in epoch0)


# ---------------------------------------------------------------------------------------------------------------------
# Ranks


@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_window_stream_equal_disjoint_ranks(uneven_shards, world_size):
    expected = Counter(_window_id(window) for window in load_labelled_windows(uneven_shards, ("train",))["windows"])
    total = sum(map(sum, UNEVEN_TRAIN_FILES))
    assert expected.total() == total

    for epoch in (0, 1):
        seen: Counter = Counter()
        for rank in range(world_size):
            stream = WindowStream(uneven_shards, rank=rank, world_size=world_size, shuffle_buffer_size=32, seed=7)
            stream.set_epoch(epoch)
            ids = _item_ids(stream)
            assert len(ids) == stream.num_items == total // world_size, (epoch, rank)
            seen.update(ids)
        assert max(seen.values()) == 1, epoch
        assert not seen - expected, epoch
        assert (expected - seen).total() == total % world_size == stream.num_left_out, epoch


def test_anchor_stream_equal_ranks_skip_small_groups(uneven_shards, caplog):
    num_candidates = 8  # groups of 3, 5 and 7 windows have too few
    sizes = [size for sizes in UNEVEN_TRAIN_FILES for size in sizes]
    eligible = sum(size for size in sizes if size > num_candidates)
    anchors: Counter = Counter()
    with caplog.at_level(logging.INFO, logger="relcon_hf.data.streaming"):
        for rank in range(3):
            stream = AnchorCandidateStream(
                uneven_shards, num_candidates=num_candidates, rank=rank, world_size=3, shuffle_buffer_size=16
            )
            items = list(stream)
            assert len(items) == stream.num_items == eligible // 3
            anchors.update((item["group_id"], item["anchor_index"]) for item in items)
            for item in items:
                assert item["anchor_index"] not in item["candidate_indices"].tolist()

    assert max(anchors.values()) == 1
    assert stream.skipped_groups == 3
    assert stream.skipped_windows == 3 + 5 + 7
    assert stream.num_left_out == eligible % 3
    # Only rank 0 logs, once per epoch.
    assert caplog.text.count("skipped 3 of 12 groups with fewer than 9 windows") == 1


def test_ranks_without_shuffling_take_consecutive_windows(uneven_shards):
    in_file_order = [_window_id(window) for window in load_labelled_windows(uneven_shards, ("train",))["windows"]]
    ranks = [_item_ids(WindowStream(uneven_shards, rank=rank, world_size=2, shuffle_buffer_size=0)) for rank in (0, 1)]

    half = len(in_file_order) // 2
    assert ranks[0] == in_file_order[:half]
    assert ranks[1] == in_file_order[half : 2 * half]


# ---------------------------------------------------------------------------------------------------------------------
# DataLoader workers


def test_data_loader_caps_workers_at_row_groups(watch_shards, tmp_path, caplog):
    PartialState()  # the training loop's logger needs an Accelerate state
    stream = WindowStream(watch_shards, rank=0, world_size=4)
    assert stream.max_num_workers == 2  # 8 training groups, one row group each, on 4 ranks

    with caplog.at_level(logging.WARNING, logger="relcon_hf.training.loop"):
        capped = _data_loader(stream, TrainingSettings(str(tmp_path), str(watch_shards), num_workers=5))
        kept = _data_loader(stream, TrainingSettings(str(tmp_path), str(watch_shards), num_workers=2))

    assert capped.num_workers == 2
    assert kept.num_workers == 2
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "num_workers=5" in warnings[0]
    assert "2 shard row groups" in warnings[0]


def test_workers_split_items_without_idle_workers(watch_shards):
    stream = WindowStream(watch_shards, "validation", shuffle_buffer_size=64)
    expected = sorted(_item_ids(stream))

    ids = [_window_id(window) for window in DataLoader(stream, batch_size=None, num_workers=stream.max_num_workers)]
    per_worker = Counter(DataLoader(_WorkerIds(stream), batch_size=None, num_workers=stream.max_num_workers))

    assert stream.max_num_workers == 2
    assert sorted(ids) == expected
    assert per_worker == Counter({0: 391, 1: 391})


class _WorkerIds(torch.utils.data.IterableDataset):
    """Replace each item of a stream with the id of the DataLoader worker that yielded it."""

    def __init__(self, stream):
        self.stream = stream

    def __iter__(self):
        worker = torch.utils.data.get_worker_info().id
        for _ in self.stream:
            yield worker


# ---------------------------------------------------------------------------------------------------------------------
# Resume


@pytest.mark.parametrize("stream_type", ["windows", "anchors"])
def test_state_dict_resumes_exactly_twice(uneven_shards, stream_type):
    def make():
        if stream_type == "windows":
            stream = WindowStream(uneven_shards, rank=1, world_size=2, shuffle_buffer_size=50, seed=4)
        else:
            stream = AnchorCandidateStream(
                uneven_shards, num_candidates=6, rank=1, world_size=2, shuffle_buffer_size=50, seed=4
            )
        stream.set_epoch(2)
        return stream

    uninterrupted = _item_ids(make())
    # Stop once in the middle of the epoch and once while the buffer drains at its end.
    first_stop, second_stop = 101, len(uninterrupted) - 20

    stream = make()
    ids = _item_ids(stream, first_stop)
    state = stream.state_dict()
    assert state["epoch"] == 2
    assert state["positions"] == [first_stop]

    restored = make()
    restored.load_state_dict(json.loads(json.dumps(state)))
    ids += _item_ids(restored, second_stop - first_stop)
    state = restored.state_dict()
    assert state["positions"] == [second_stop]

    restored_again = make()
    restored_again.load_state_dict(state)
    ids += _item_ids(restored_again)

    assert ids == uninterrupted
    restored_again.set_epoch(3)
    assert restored_again.state_dict()["positions"] == [0]
    assert len(_item_ids(restored_again)) == len(uninterrupted)


def test_loader_state_resumes_workers_exactly(watch_shards):
    batch_size, num_workers = 353, 2  # 1412 and 1411 windows per worker: 4 and 3 batches

    def make():
        stream = WindowStream(watch_shards, shuffle_buffer_size=256, seed=9)
        stream.set_epoch(1)
        return stream

    def batches(stream, count=None):
        loader = DataLoader(stream, batch_size=batch_size, num_workers=num_workers, drop_last=True)
        ids = []
        for batch in loader:
            ids.append([_window_id(window) for window in batch])
            if len(ids) == count:
                break
        return ids

    uninterrupted = batches(make())
    assert len(uninterrupted) == 7

    ids = batches(make(), 3)
    state = make().loader_state_dict(3, batch_size, num_workers)
    assert state["positions"] == [2 * batch_size, batch_size]
    assert state["first_worker"] == 1

    stream = make()
    stream.load_state_dict(state)
    ids += batches(stream, 2)
    stream = make()
    stream.load_state_dict(stream.loader_state_dict(5, batch_size, num_workers))
    ids += batches(stream)

    assert ids == uninterrupted


def test_load_state_dict_rejects_other_settings(watch_shards):
    state = WindowStream(watch_shards, rank=0, world_size=2).loader_state_dict(2, 64, 1)

    with pytest.raises(ValueError, match="world_size=2 into a stream with world_size=1"):
        WindowStream(watch_shards).load_state_dict(state)
    with pytest.raises(ValueError, match="seed=0 into a stream with seed=1"):
        WindowStream(watch_shards, world_size=2, seed=1).load_state_dict(state)
    with pytest.raises(ValueError, match="more than the 22 batches"):
        WindowStream(watch_shards).loader_state_dict(23, 128, 0)

    saved_with_worker = WindowStream(watch_shards, rank=0, world_size=2)
    saved_with_worker.load_state_dict(state)
    with pytest.raises(ValueError, match="saved with num_workers=1, but this pass runs with num_workers=0"):
        next(iter(saved_with_worker))


def test_training_resumes_with_workers_and_old_checkpoints(tmp_path, watch_shards):
    def settings(output_dir, max_steps, resume_from=None, num_workers=1):
        return TrainingSettings(
            output_dir=str(output_dir),
            shards=str(watch_shards),
            max_steps=max_steps,
            batch_size=32,
            eval_steps=0,
            eval_batches=1,
            checkpoint_steps=3,
            resume_from=resume_from,
            num_workers=num_workers,
        )

    def task():
        return DistanceTask(str(watch_shards), model_overrides=TINY_DISTANCE["distance"]["model"])

    run_training(task(), settings(tmp_path / "straight", 6))
    run_training(task(), settings(tmp_path / "interrupted", 3))
    checkpoint = list_checkpoints(tmp_path / "interrupted")[-1]
    training_state = json.loads((checkpoint / "training_state.json").read_text())
    assert training_state["batches_in_epoch"] == 3
    assert training_state["data_state"]["positions"] == [3 * 32]
    assert training_state["data_state"]["num_workers"] == 1

    with pytest.raises(ValueError, match="Resume with --num-workers 1"):
        run_training(task(), settings(tmp_path / "interrupted", 6, resume_from="latest", num_workers=0))

    # A checkpoint written before stream positions were saved resumes from its batch count.
    old_checkpoint = tmp_path / "old" / "checkpoints" / checkpoint.name
    shutil.copytree(checkpoint, old_checkpoint)
    del training_state["data_state"]
    (old_checkpoint / "training_state.json").write_text(json.dumps(training_state))

    run_training(task(), settings(tmp_path / "interrupted", 6, resume_from="latest"))
    run_training(task(), settings(tmp_path / "old", 6, resume_from=str(old_checkpoint)))
    straight = load_file(str(tmp_path / "straight" / "model.safetensors"))
    for name in ("interrupted", "old"):
        resumed = load_file(str(tmp_path / name / "model.safetensors"))
        for key, value in straight.items():
            assert torch.equal(value, resumed[key]), (name, key)


# ---------------------------------------------------------------------------------------------------------------------
# Two processes


def test_two_processes_read_disjoint_equal_items(tmp_path, uneven_shards):
    """Two ranks with a DataLoader worker each read the uneven shards for two epochs in step."""
    completed = run_two_processes(
        [str(TESTS_DIR / "record_stream_items.py"), str(uneven_shards), str(tmp_path), "--num-workers", "1"],
        tmp_path,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank_{rank}.json").read_text()) for rank in (0, 1)]
    all_windows = {_window_id(window) for window in load_labelled_windows(uneven_shards, ("train",))["windows"]}
    for name, batch_items in (("windows", 16), ("anchors", 16)):
        num_items = ranks[0][name]["num_items"]
        assert ranks[1][name]["num_items"] == num_items
        for epoch in ("0", "1"):
            items = [
                [tuple(item) if name == "anchors" else item for item in rank[name]["epochs"][epoch]] for rank in ranks
            ]
            assert len(items[0]) == len(items[1]) == num_items // batch_items * batch_items, (name, epoch)
            assert not set(items[0]) & set(items[1]), (name, epoch)
            assert len(set(items[0])) == len(items[0]), (name, epoch)
            assert len(set(items[1])) == len(items[1]), (name, epoch)
            if name == "windows":
                assert set(items[0]) | set(items[1]) <= all_windows
        assert ranks[0][name]["epochs"]["0"] != ranks[0][name]["epochs"]["1"], name
    assert ranks[0]["anchors"]["skipped_groups"] == 3


def test_two_processes_pretrain_distance_on_uneven_shards(tmp_path, uneven_shards):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_DISTANCE))
    output_dir = tmp_path / "distance"
    completed = run_two_processes(
        [
            *CLI,
            "pretrain-distance",
            "--shards",
            str(uneven_shards),
            "--config",
            str(config),
            "--output-dir",
            str(output_dir),
            # 663 windows per rank give 10 batches of 64: step 12 is in the second epoch on both ranks.
            "--max-steps",
            "12",
            "--batch-size",
            "64",
            "--eval-steps",
            "0",
            "--eval-batches",
            "2",
            "--checkpoint-steps",
            "12",
        ],
        tmp_path,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    summary = json.loads((output_dir / "training_summary.json").read_text())
    assert summary["num_processes"] == 2
    assert summary["completed_steps"] == 12
    training_state = json.loads((output_dir / "checkpoints" / "step_12" / "training_state.json").read_text())
    assert training_state["epoch"] == 1
    assert training_state["batches_in_epoch"] == 2
    assert training_state["data_state"]["num_items"] == 663
