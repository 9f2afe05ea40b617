"""Readers for device files, device CSV exports and WISDM, the cleaning steps, and prepare on messy recordings."""

import json
import os
import sys
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from relcon_hf.cli import main
from relcon_hf.data import assign_subject_splits, prepare_recordings, read_recording
from relcon_hf.data.cleaning import (
    find_repeated_blocks,
    flag_samples,
    infer_sampling_rate,
    order_timestamps,
    split_at_gaps,
    still_windows,
    to_uniform_grid,
)
from relcon_hf.modeling.feature_extraction_relcon import STANDARD_GRAVITY


WHEELS_ENV = "RELCON_TEST_WHEELS"
DEFAULT_WHEELS = Path(__file__).resolve().parents[1] / ".ci" / "wheels"
WISDM_ROWS_PER_SECOND = 20


# ---------------------------------------------------------------------------------------------------------------------
# Cleaning steps


def test_rate_inference_survives_millisecond_rounding():
    timestamps = np.round(np.arange(3000) / 30.0, 3)

    assert infer_sampling_rate(timestamps) == pytest.approx(30.0, rel=1e-4)


def test_rate_inference_ignores_gaps_and_dropped_samples():
    timestamps = np.arange(1000) / 50.0
    timestamps = np.delete(timestamps, [100, 101, 500])
    timestamps[600:] += 30.0

    assert infer_sampling_rate(timestamps) == pytest.approx(50.0, rel=1e-6)


def test_order_timestamps_counts_out_of_order_and_duplicates():
    timestamps = np.array([0.0, 0.1, 0.3, 0.2, 0.3, 0.4])

    order = order_timestamps(timestamps)

    assert order.out_of_order == 1
    assert order.duplicates == 1
    np.testing.assert_array_equal(order.keep, [0, 1, 3, 2, 5])


def test_split_at_gaps():
    timestamps = np.concatenate([np.arange(10) * 0.1, 5 + np.arange(5) * 0.1])

    assert split_at_gaps(timestamps, max_gap_seconds=1.0) == [(0, 10), (10, 15)]


def test_uniform_grid_removes_jitter_and_fills_short_gaps():
    rng = np.random.default_rng(0)
    timestamps = np.arange(200) / 50.0 + rng.uniform(-0.003, 0.003, 200)
    timestamps = np.delete(timestamps, [50, 51, 52])
    values = np.stack([timestamps, 2 * timestamps, np.ones_like(timestamps)], axis=1)

    grid, nearest = to_uniform_grid(timestamps, values, 50.0)

    # The grid runs from the first timestamp to the last (3.98 s give 199 or 200 points, depending on jitter).
    length = int(np.floor((timestamps[-1] - timestamps[0]) * 50.0 + 0.01)) + 1
    assert len(grid) == length
    assert nearest.shape == (length,)
    expected = timestamps[0] + np.arange(length) / 50.0
    np.testing.assert_allclose(grid[:, 0], expected, atol=1e-9)
    np.testing.assert_allclose(grid[:, 1], 2 * expected, atol=1e-9)


def test_repeated_block_found_and_first_copy_kept(watch_corpus):
    block = watch_corpus.recordings[0][:, :3]
    values = np.concatenate([block, watch_corpus.recordings[1][:, :3], block])

    repeated = find_repeated_blocks(values, min_rows=200)

    assert not repeated[: len(block)].any()
    assert repeated[-len(block) :].all()
    assert repeated.sum() == len(block)


def test_flag_samples_out_of_range_and_clipped():
    values = np.zeros((100, 3))
    values[10, 0] = 9.0
    values[20:25, 1] = 8.0
    values[40, 2] = -8.0

    flags = flag_samples(values, range_g=8.0)

    np.testing.assert_array_equal(np.flatnonzero(flags["out_of_range"]), [10])
    np.testing.assert_array_equal(np.flatnonzero(flags["clipped"]), [20, 21, 22, 23, 24])
    assert not flag_samples(values, range_g=None)["out_of_range"].any()


def test_still_windows_need_a_long_enough_stretch():
    rng = np.random.default_rng(0)
    windows = rng.normal(0, 0.1, (30, 256, 3))
    windows[5:25] = rng.normal(0, 0.001, (20, 256, 3))
    starts = np.arange(30) * 2.56

    long_enough = still_windows(windows, starts, 2.56, min_seconds=20 * 2.56)
    too_short = still_windows(windows, starts, 2.56, min_seconds=21 * 2.56)

    np.testing.assert_array_equal(np.flatnonzero(long_enough), np.arange(5, 25))
    assert not too_short.any()


# ---------------------------------------------------------------------------------------------------------------------
# Device files against their decoded truth arrays


@pytest.mark.parametrize(
    ("file", "truth", "decimals"),
    [
        ("ax3_sample.cwa", "ax3_data.npz", None),
        ("ax6_sample.cwa", "ax6_data.npz", 6),
        ("gnactv_sample.bin", "gnactv_data.npz", 4),
    ],
)
def test_device_files_decode_to_truth(test_data_dir, file, truth, decimals):
    """The truth arrays store acceleration rounded to `decimals` places and times to 0.1 ms."""
    pytest.importorskip("skdh")
    folder = test_data_dir / "skdh" / "io" / "data"
    expected = np.load(folder / truth)

    recording = read_recording(folder / file)

    if decimals is None:
        np.testing.assert_array_equal(recording.values, expected["accel"])
    else:
        np.testing.assert_allclose(
            recording.values, expected["accel"], rtol=0, atol=0.5 * 10.0**-decimals * (1 + 1e-9)
        )
    assert recording.timestamps is not None
    np.testing.assert_allclose(recording.timestamps, expected["time"], rtol=0, atol=1e-4)
    if "fs" in expected:
        assert recording.sampling_rate == float(expected["fs"][0])
    assert recording.unit == "g"
    assert recording.source_timezone == "unknown (read as UTC)"


def test_gt3x_shows_idle_sleep_gaps(test_data_dir):
    pytest.importorskip("pygt3x")

    recording = read_recording(test_data_dir / "ggir" / "actigraph_testfile.gt3x")

    steps = np.diff(recording.timestamps)
    assert recording.sampling_rate == 30.0
    assert recording.device["range_g"] == 8.0
    assert recording.device["idle_sleep_rows_removed"] == 35400
    assert len(recording.values) == 53040 - 35400
    assert (steps > 1.0).sum() == 23
    assert recording.source_timezone == "+02:00"
    # The file's first sample is 10:09 local time at UTC+2.
    assert recording.start_time == datetime(2020, 8, 26, 8, 9, tzinfo=timezone.utc)


def test_device_file_without_library_names_the_extra(test_data_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "pygt3x.reader", None)

    with pytest.raises(ImportError, match=r"relcon-hf\[devices\]"):
        read_recording(test_data_dir / "ggir" / "actigraph_testfile.gt3x")


def test_damaged_device_file_is_a_value_error(tmp_path):
    pytest.importorskip("skdh")
    path = tmp_path / "damaged.cwa"
    path.write_bytes(b"MD" + b"\x00" * 1000)

    with pytest.raises(ValueError, match="truncated or damaged"):
        read_recording(path)


# ---------------------------------------------------------------------------------------------------------------------
# Device CSV exports


@pytest.fixture(scope="session")
def geneactiv_demo_csv(tmp_path_factory) -> Path:
    """GENEActiv CSV export from the gaitpy 1.6.1 wheel, downloaded by `.ci/run` (`pip download --no-deps`)."""
    folder = Path(os.environ.get(WHEELS_ENV, DEFAULT_WHEELS))
    wheels = sorted(folder.glob("gaitpy-1.6.1-*.whl"))
    if not wheels:
        pytest.skip(
            f"gaitpy-1.6.1 wheel not found in {folder}; run `pip download --no-deps -d {folder} gaitpy==1.6.1`."
        )
    target = tmp_path_factory.mktemp("gaitpy")
    with zipfile.ZipFile(wheels[0]) as archive:
        return Path(archive.extract("gaitpy/demo/demo_data.csv", target))


def test_geneactiv_csv_export(geneactiv_demo_csv):
    recording = read_recording(geneactiv_demo_csv)

    assert recording.format == "geneactiv-csv"
    assert recording.values.shape == (8400, 3)
    assert recording.sampling_rate == 50.0
    assert recording.unit == "g"
    assert recording.device["range_g"] == 8.0
    assert recording.source_timezone == "-04:00"
    # First row 10:25:50 local time at GMT-4.
    assert recording.start_time == datetime(2019, 8, 6, 14, 25, 50, tzinfo=timezone.utc)
    np.testing.assert_allclose(recording.values[0], [-0.4264, 0.7279, 0.5089])


@pytest.mark.parametrize("name", ["ActiGraph13_timestamps_headers.csv", "ActiGraph13.csv", "ActiGraph61.csv"])
def test_actigraph_count_files_are_rejected(test_data_dir, name):
    with pytest.raises(ValueError, match="epoch file of activity counts.*raw acceleration"):
        read_recording(test_data_dir / "ggir" / name)


def test_actigraph_raw_csv_export(tmp_path, watch_corpus):
    """An ActiLife raw export, written here in that layout from real watch samples."""
    values = watch_corpus.recordings[0][:300, :3]
    lines = [
        "------------ Data File Created By ActiGraph GT3X+ ActiLife v6.13.3 Firmware v2.5.0 date format M/d/yyyy "
        "at 30 Hz  Filter Normal -----------",
        "Serial Number: NEO1F00000000",
        "Start Time 09:00:00",
        "Start Date 3/14/2025",
        "Epoch Period (hh:mm:ss) 00:00:00",
        "--------------------------------------------------",
        "Timestamp,Accelerometer X,Accelerometer Y,Accelerometer Z",
    ]
    start = pd.Timestamp("2025-03-14 09:00:00")
    for index, row in enumerate(values):
        stamp = start + pd.Timedelta(seconds=index / 30)
        lines.append(
            f"{stamp.month}/{stamp.day}/{stamp.year} {stamp:%H:%M:%S.%f}"[:-3]
            + ","
            + ",".join(f"{v:.3f}" for v in row)
        )
    path = tmp_path / "actilife_raw.csv"
    path.write_text("\n".join(lines) + "\n")

    recording = read_recording(path, timezone="Europe/Berlin")

    assert recording.format == "actigraph-csv"
    assert recording.sampling_rate == 30.0
    np.testing.assert_allclose(recording.values, np.round(values, 3))
    assert recording.start_time == datetime(2025, 3, 14, 8, 0, tzinfo=timezone.utc)
    assert recording.device["serial"] == "NEO1F00000000"


# ---------------------------------------------------------------------------------------------------------------------
# WISDM


def _wisdm_truth(folder: Path) -> dict:
    """Per file: subject and rows per activity run, read with plain Python."""
    truth = {}
    for path in sorted(folder.glob("data_*_accel_watch.txt")):
        rows = [line.split(",") for line in path.read_text().splitlines() if line.strip()]
        runs: list[list] = []
        for row in rows:
            if runs and runs[-1][0] == row[1]:
                runs[-1][1] += 1
            else:
                runs.append([row[1], 1])
        truth[str(path)] = {"subject": rows[0][0], "runs": runs, "rows": len(rows)}
    return truth


def test_wisdm_folder_to_shards(tmp_path, test_data_dir):
    folder = test_data_dir / "wisdm2019_watch"
    truth = _wisdm_truth(folder)

    manifest = prepare_recordings(sorted(truth), tmp_path / "shards")

    assert manifest["label_names"] == ["walking", "jogging", "stairs", "sitting", "standing", "kicking"]
    subjects = manifest["splits"]["train"]["subjects"] + manifest["splits"]["validation"]["subjects"]
    assert sorted(subjects) == sorted(entry["subject"] for entry in truth.values())
    assert len(subjects) == 51
    total = 0
    for path, entry in truth.items():
        report = manifest["inputs"][path]
        assert report["subject_id"] == entry["subject"]
        # 20 Hz rows become 5 samples each at 100 Hz; no window crosses an activity change or a repeated block.
        repeated = report["repeated_rows"]
        expected = sum(max(0, (rows * 5 - 256) // 256 + 1) for _, rows in entry["runs"])
        assert report["windows_written"] + report["windows_dropped"]["repeated_block"] == expected, path
        total += report["windows_written"]
        if entry["subject"] == "1629":
            assert repeated == entry["rows"] // 2
            assert report["windows_dropped"]["repeated_block"] == report["windows_written"]
        else:
            assert repeated == 0
    assert manifest["splits"]["train"]["num_windows"] + manifest["splits"]["validation"]["num_windows"] == total


# ---------------------------------------------------------------------------------------------------------------------
# A real recording with injected faults, across the autumn daylight-saving change


def _messy_recording(test_data_dir: Path, tmp_path: Path) -> tuple[Path, dict]:
    """
    Two real WISDM recordings (m/s^2, 20 Hz) as one CSV of London wall-clock times from 01:45 BST to 01:09 GMT on
    26 October 2025, with jitter, a 0.3 s gap, a 5 s gap, duplicates, swapped rows, NaN rows and out-of-range values.
    """
    folder = test_data_dir / "wisdm2019_watch"
    values = np.concatenate(
        [
            pd.read_csv(
                folder / name, header=None, usecols=[2, 3, 4], converters={4: lambda t: float(t.rstrip(";"))}
            ).to_numpy(dtype=np.float64)
            for name in ("data_1600_accel_watch.txt", "data_1601_accel_watch.txt")
        ]
    )
    rng = np.random.default_rng(0)
    utc = pd.Timestamp("2025-10-26 00:45:00", tz="UTC") + pd.to_timedelta(np.arange(len(values)) / 20, unit="s")
    utc = utc + pd.to_timedelta(rng.uniform(-0.004, 0.004, len(values)), unit="s")
    keep = np.ones(len(values), dtype=bool)
    keep[5000:5006] = False  # 0.3 s: filled on the grid
    keep[20000:20100] = False  # 5 s: splits the recording
    values[1000:1003] = np.nan
    values[9000, 0] = 20 * STANDARD_GRAVITY
    values[15000, 1] = -20 * STANDARD_GRAVITY
    frame = pd.DataFrame(values[keep], columns=["x", "y", "z"])
    frame.insert(
        0, "time", utc[keep].tz_convert("Europe/London").tz_localize(None).strftime("%Y-%m-%d %H:%M:%S.%f").str[:-3]
    )
    rows = frame.to_dict("records")
    for index in range(3000, 3100, 2):
        rows.insert(index + 1, dict(rows[index]))  # 50 rows logged twice, each right after itself
    for index in (8000, 12000, 16000):
        rows[index], rows[index + 1] = rows[index + 1], rows[index]
    path = tmp_path / "p01.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path, {"rows": int(keep.sum()), "first_utc": utc[0], "last_utc": utc[keep][-1]}


def test_messy_recording_counts(tmp_path, test_data_dir):
    path, injected = _messy_recording(test_data_dir, tmp_path)

    manifest = prepare_recordings(
        [path], tmp_path / "shards", timezone="Europe/London", range_g=8.0, validation_fraction=0
    )

    report = manifest["inputs"][str(path)]
    assert report["unit_in"] == "m/s^2"
    assert report["unit_detected"] is True
    assert report["sampling_rate_in"] == 20.0
    assert report["source_timezone"] == "Europe/London"
    assert report["duplicate_timestamps"] == 50
    # Three swapped pairs, and no extra row out of order at the repeated 01:00-02:00 hour.
    assert report["out_of_order_rows"] == 3
    assert report["non_finite_samples"] == 3
    assert report["segments"] == 2
    assert report["gap_seconds"] == pytest.approx(5.05, abs=0.02)
    assert report["windows_dropped"]["non_finite"] >= 1
    # Each of the two out-of-range samples reaches one or two windows through the resampling filter.
    assert 2 <= report["windows_dropped"]["out_of_range"] <= 4
    # UTC start and a duration that neither loses nor gains the repeated hour.
    assert report["start_time"].startswith("2025-10-26T00:45:00")
    span = (injected["last_utc"] - injected["first_utc"]).total_seconds() + 1 / 20
    assert report["duration_seconds"] == pytest.approx(span, abs=0.01)
    groups = {}
    for file in sorted((tmp_path / "shards" / "train").glob("*.parquet")):
        table = pd.read_parquet(file, columns=["group_id", "window_start"])
        for group_id, starts in zip(table["group_id"], table["window_start"], strict=True):
            groups[group_id] = len(starts)
    assert sorted(groups) == ["p01/2025-10-26T00", "p01/2025-10-26T01"]


def test_messy_recording_without_timezone_is_read_as_utc(tmp_path, test_data_dir):
    path, _ = _messy_recording(test_data_dir, tmp_path)

    recording = read_recording(path)

    assert recording.source_timezone == "unknown (read as UTC)"
    # Without the zone, the repeated wall-clock hour folds back onto itself: rows come out of order.
    assert recording.out_of_order_rows > 3


def test_unknown_timezone_names_the_zone(tmp_path, test_data_dir):
    path, _ = _messy_recording(test_data_dir, tmp_path)

    with pytest.raises(ValueError, match="time zone 'Mars/Olympus'"):
        read_recording(path, timezone="Mars/Olympus")


def test_prepare_cli_keeps_flagged_windows(tmp_path, test_data_dir, capsys):
    path, _ = _messy_recording(test_data_dir, tmp_path)

    exit_code = main(
        [
            "prepare",
            "--input",
            str(path),
            "--output-dir",
            str(tmp_path / "shards"),
            "--timezone",
            "Europe/London",
            "--range-g",
            "8",
            "--keep-flagged",
            "out_of_range",
            "--validation-fraction",
            "0",
        ]
    )

    assert exit_code == 0
    report = json.loads((tmp_path / "shards" / "manifest.json").read_text())["inputs"][str(path)]
    dropping = prepare_recordings(
        [path], tmp_path / "dropping", timezone="Europe/London", range_g=8.0, validation_fraction=0
    )["inputs"][str(path)]
    assert report["windows_dropped"]["out_of_range"] == 0
    assert report["windows_kept_flagged"]["out_of_range"] == dropping["windows_dropped"]["out_of_range"]
    assert report["windows_written"] == dropping["windows_written"] + dropping["windows_dropped"]["out_of_range"]


# ---------------------------------------------------------------------------------------------------------------------
# Parallel and resumable prepare


def _shard_windows(shard_dir: Path) -> dict[str, np.ndarray]:
    groups = {}
    for file in sorted(shard_dir.glob("*/shard-*.parquet")):
        table = pd.read_parquet(file, columns=["group_id", "windows"])
        for group_id, windows in zip(table["group_id"], table["windows"], strict=True):
            groups[group_id] = np.stack([np.stack(list(window)) for window in windows])
    return groups


def test_prepare_in_two_processes_matches_one(tmp_path, test_data_dir):
    inputs = sorted((test_data_dir / "wisdm2019_watch").glob("data_16[0-3]?_accel_watch.txt"))[:4]

    serial = prepare_recordings(inputs, tmp_path / "serial")
    parallel = prepare_recordings(inputs, tmp_path / "parallel", num_workers=2)

    assert parallel["inputs"] == serial["inputs"]
    assert parallel["splits"] == serial["splits"]
    serial_windows, parallel_windows = _shard_windows(tmp_path / "serial"), _shard_windows(tmp_path / "parallel")
    assert sorted(parallel_windows) == sorted(serial_windows)
    for group_id, windows in serial_windows.items():
        np.testing.assert_array_equal(parallel_windows[group_id], windows)
    assert not (tmp_path / "parallel" / ".inputs").exists()


def test_interrupted_prepare_resumes_without_rereading(tmp_path, test_data_dir, monkeypatch):
    from relcon_hf.data import shards

    inputs = sorted((test_data_dir / "wisdm2019_watch").glob("data_16[0-3]?_accel_watch.txt"))[:3]
    complete = prepare_recordings(inputs, tmp_path / "complete")

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(shards, "_write_splits", interrupt)
        with pytest.raises(KeyboardInterrupt):
            prepare_recordings(inputs, tmp_path / "resumed")
    assert len(list((tmp_path / "resumed" / ".inputs").glob("*.parquet"))) == 3

    reads = []
    original = shards.iter_recording_chunks
    monkeypatch.setattr(
        shards, "iter_recording_chunks", lambda *args, **kwargs: reads.append(args) or original(*args, **kwargs)
    )
    resumed = prepare_recordings(inputs, tmp_path / "resumed")

    assert reads == []
    assert resumed["inputs"] == complete["inputs"]
    assert resumed["splits"]["train"]["num_windows"] == complete["splits"]["train"]["num_windows"]


@pytest.mark.parametrize(
    ("num_subjects", "validation", "test", "expected"),
    [(10, 0.2, 0.1, (7, 2, 1)), (3, 0.2, 0.2, (1, 1, 1)), (2, 0.2, 0.2, (1, 0, 1)), (10, 0.2, 0.0, (8, 2, 0))],
)
def test_subject_splits_sizes(num_subjects, validation, test, expected):
    subjects = [f"s{index:02d}" for index in range(num_subjects)]

    splits = assign_subject_splits(subjects * 2, validation_fraction=validation, test_fraction=test, seed=3)

    assert tuple(len(splits[name]) for name in ("train", "validation", "test")) == expected
    assert sorted(splits["train"] + splits["validation"] + splits["test"]) == subjects
    assert splits == assign_subject_splits(subjects, validation_fraction=validation, test_fraction=test, seed=3)


def test_prepare_writes_a_test_split(tmp_path, test_data_dir):
    inputs = sorted((test_data_dir / "wisdm2019_watch").glob("data_16[0-3]?_accel_watch.txt"))[:5]

    manifest = prepare_recordings(inputs, tmp_path / "shards", validation_fraction=0.2, test_fraction=0.2)

    splits = manifest["splits"]
    assert [len(splits[name]["subjects"]) for name in ("train", "validation", "test")] == [3, 1, 1]
    assert not set(splits["test"]["subjects"]) & set(splits["train"]["subjects"] + splits["validation"]["subjects"])
    assert all((tmp_path / "shards" / file).is_file() for file in splits["test"]["files"])
    test_reports = [report for report in manifest["inputs"].values() if report["split"] == "test"]
    assert [report["subject_id"] for report in test_reports] == splits["test"]["subjects"]
    assert sum(report["windows_written"] for report in test_reports) == splits["test"]["num_windows"]


def test_chunked_reading_matches_whole_file(tmp_path, test_data_dir):
    """Small chunks of the messy recording give the windows of the whole file, less a few at chunk boundaries."""
    path, _ = _messy_recording(test_data_dir, tmp_path)
    options = {"timezone": "Europe/London", "range_g": 8.0, "validation_fraction": 0}

    whole = prepare_recordings([path], tmp_path / "whole", **options)["inputs"][str(path)]
    chunked = prepare_recordings([path], tmp_path / "chunked", chunk_rows=5000, **options)["inputs"][str(path)]

    assert chunked["chunks"] == 6
    assert chunked["source_timezone"] == "Europe/London"
    # No hour is lost or repeated at the daylight-saving change, which falls inside a chunk boundary's reach.
    assert chunked["duration_seconds"] == pytest.approx(whole["duration_seconds"], abs=0.1)
    assert chunked["duplicate_timestamps"] == whole["duplicate_timestamps"]
    assert chunked["non_finite_samples"] == whole["non_finite_samples"]
    # Each of the 5 chunk boundaries cuts at most one window short.
    assert whole["windows_written"] - 5 <= chunked["windows_written"] <= whole["windows_written"]
    # The window grid restarts at each chunk, so the two out-of-range samples can reach other windows.
    assert 2 <= chunked["windows_dropped"]["out_of_range"] <= 4


# ---------------------------------------------------------------------------------------------------------------------
# Errors found by review


def test_elapsed_milliseconds_are_not_read_as_seconds(tmp_path, watch_corpus):
    values = watch_corpus.recordings[0][:600, :3]
    frame = pd.DataFrame(values, columns=["x", "y", "z"])
    frame.insert(0, "time", np.arange(len(values)) * 20)
    path = tmp_path / "elapsed_ms.csv"
    frame.to_csv(path, index=False)

    with pytest.raises(ValueError, match=r"give 0.05 Hz, below the 1 Hz.*milliseconds"):
        read_recording(path)


def test_gap_threshold_below_sample_step(tmp_path, test_data_dir):
    path, _ = _messy_recording(test_data_dir, tmp_path)

    manifest = prepare_recordings(
        [path, test_data_dir / "wisdm2019_watch" / "data_1600_accel_watch.txt"],
        tmp_path / "shards",
        timezone="Europe/London",
        max_gap_seconds=0.01,
        validation_fraction=0,
    )

    # The timestamped file fails with the reason, the file without timestamps is prepared.
    assert len(manifest["failed_inputs"]) == 1
    assert (
        "`max_gap_seconds` (0.01 s) is shorter than the recording's sample step"
        in manifest["failed_inputs"][0]["error"]
    )
    assert manifest["splits"]["train"]["num_windows"] > 0


def test_skipped_spring_hour_names_file_and_zone(tmp_path, watch_corpus):
    values = watch_corpus.recordings[0][:3000, :3]
    times = pd.Timestamp("2025-03-30 01:10:00") + pd.to_timedelta(np.arange(len(values)) / 50, unit="s")
    frame = pd.DataFrame(values, columns=["x", "y", "z"])
    frame.insert(0, "time", times.strftime("%Y-%m-%d %H:%M:%S.%f"))
    path = tmp_path / "spring.csv"
    frame.to_csv(path, index=False)

    with pytest.raises(ValueError, match=r"spring.csv: \d+ rows have wall-clock times inside the hour skipped"):
        read_recording(path, timezone="Europe/London")
    # The device clock on standard time all year: a fixed offset reads it.
    assert read_recording(path, timezone="+00:00").source_timezone == "+00:00"


@pytest.mark.parametrize("zone", ["Europe/Lodnon", "UTC+2", "+25:00"])
def test_unknown_timezone_stops_prepare_before_reading(tmp_path, test_data_dir, zone, capsys):
    path = test_data_dir / "wisdm2019_watch" / "data_1600_accel_watch.txt"

    exit_code = main(["prepare", "--input", str(path), "--timezone", zone, "--output-dir", str(tmp_path / "s")])

    assert exit_code == 2
    assert f"Unknown time zone {zone!r}" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_forced_wrong_format_says_so(tmp_path, test_data_dir):
    path = test_data_dir / "mgait" / "data__data_wrist.csv"

    with pytest.raises(ValueError, match=r"could not be read as format 'wisdm'.*Leave --format"):
        read_recording(path, format="wisdm")
