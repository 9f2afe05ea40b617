# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Loaders of the public activity benchmarks, on small files written in each dataset's public format.

Expected window counts come from the fixture layout: a run of D seconds at 100 Hz has D * 100 samples, and windows
of W samples every H samples fit (D * 100 - W) // H + 1 times.
"""

import numpy as np
import pytest

from relcon_hf.evaluation import benchmarks
from relcon_hf.evaluation.datasets import DATASET_LOADERS


G = 9.80665


def windows_in(seconds: float, window_seconds: float, hop_seconds: float) -> int:
    return int((round(seconds * 100) - round(window_seconds * 100)) // round(hop_seconds * 100) + 1)


# Opportunity -----------------------------------------------------------------------------------------------------


def write_opportunity_column_names(folder, *, with_wrist=True):
    named = {1: "MILLISEC", 244: "Locomotion", 245: "HL_Activity"}
    if with_wrist:
        named.update({23: "Accelerometer RWR accX", 24: "Accelerometer RWR accY", 25: "Accelerometer RWR accZ"})
    lines = ["Data columns:"]
    for number in range(1, 251):
        name = named.get(number, f"Sensor{number} value")
        unit = "unit = ms" if number == 1 else "value = round(original_value), unit = milli g"
        lines.append(f"Column: {number} {name}; {unit}")
    (folder / "column_names.txt").write_text("\n".join(lines) + "\n")


def write_opportunity_file(path, wrist_milli_g, locomotion, *, garbage_after=None):
    """Write rows at 30 Hz: millisecond times, RWR columns 23-25, locomotion column 244, other columns 0."""
    lines = []
    for row, (values, label) in enumerate(zip(wrist_milli_g, locomotion, strict=True)):
        fields = ["0"] * 250
        fields[0] = str(round(row * 1000 / 30))
        fields[22:25] = ["NaN" if np.isnan(value) else str(int(round(value))) for value in values]
        fields[243] = str(label)
        lines.append(" ".join(fields))
        if garbage_after == row:
            lines.append("garbage 12 x")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def opportunity_root(tmp_path):
    folder = tmp_path / "OpportunityUCIDataset" / "dataset"
    folder.mkdir(parents=True)
    write_opportunity_column_names(folder)

    # S1: stand 30 s (with a 10-sample NaN gap), walk 30 s at 5 g, null 10 s, sit 30 s with a 3 s NaN gap at
    # 14-17 s into the run, lie 1 s.
    rows = [
        ((0, 0, 1000), 1, 900),
        ((5000, 0, 1000), 2, 900),
        ((0, 0, 1000), 0, 300),
        ((0, 1000, 0), 4, 900),
        ((0, 0, -1000), 5, 30),
    ]
    wrist = np.concatenate([np.tile(np.asarray(v, dtype=float), (n, 1)) for v, _, n in rows])
    locomotion = np.concatenate([np.full(n, label) for _, label, n in rows])
    wrist[100:110] = np.nan
    wrist[2100 + 420 : 2100 + 510] = np.nan
    write_opportunity_file(folder / "S1-ADL1.dat", wrist, locomotion)

    # S2: walk 60 s, a 2 Hz sine of 0.5 g on x, and one corrupt line.
    time = np.arange(1800) / 30
    wrist = np.stack([500 * np.sin(2 * np.pi * 2 * time), np.zeros(1800), np.full(1800, 1000.0)], axis=1)
    write_opportunity_file(folder / "S2-ADL1.dat", wrist, np.full(1800, 2), garbage_after=600)
    return tmp_path


def test_opportunity_counts_labels_and_subjects(opportunity_root):
    dataset = benchmarks.load_opportunity(opportunity_root, runs=("ADL1",))

    # S1: stand 5, walk 5, sit 5 minus the 3 windows that overlap the 14-17 s gap, lie 0. S2: walk 11.
    assert windows_in(30, 10, 5) == 5
    assert windows_in(60, 10, 5) == 11
    assert len(dataset) == 5 + 5 + 2 + 11
    assert dataset.window_length == 1000
    assert dataset.label_names == ["stand", "walk", "sit", "lie"]
    assert dataset.split == "loso"
    assert dataset.standardize_inputs is False
    s1 = dataset.subjects == "S1"
    assert np.bincount(dataset.labels[s1], minlength=4).tolist() == [5, 5, 2, 0]
    assert np.bincount(dataset.labels[~s1], minlength=4).tolist() == [0, 11, 0, 0]
    assert sorted(set(dataset.subjects.tolist())) == ["S1", "S2"]
    assert set(dataset.recordings.tolist()) == {"S1-ADL1", "S2-ADL1"}


def test_opportunity_report_counts_drops(opportunity_root):
    report = benchmarks.load_opportunity(opportunity_root, runs=("ADL1",)).report

    assert report["files_read"] == 2
    assert len(report["missing_files"]) == 2  # S3-ADL1 and S4-ADL1
    assert report["corrupt_rows"] == 1
    assert report["filled_samples"] == 10
    assert report["dropped_windows"]["non_finite"] == 3
    assert report["unused_label_seconds"] == pytest.approx(10.0)
    assert report["windows_per_class"] == [5, 16, 2, 0]
    assert report["clipped_samples"] == 5 * 1000  # x of each 5 g walk window


def test_opportunity_units_clip_and_no_mixed_labels(opportunity_root):
    dataset = benchmarks.load_opportunity(opportunity_root, runs=("ADL1",))
    s1 = dataset.subjects == "S1"

    # Each class had its own constant in S1, so a window that crossed a label change would hold two of them.
    expected = {0: (0.0, 0.0, 1.0), 1: (3.0, 0.0, 1.0), 2: (0.0, 1.0, 0.0)}
    for label, value in expected.items():
        windows = dataset.windows[s1 & (dataset.labels == label)]
        np.testing.assert_allclose(windows, np.broadcast_to(value, windows.shape), atol=1e-5)
    assert np.abs(dataset.windows).max() <= 3.0

    # Label runs of S1 start at 0, 30, 70 s; windows must start and end inside their run.
    run_bounds = {0: (0.0, 30.0), 1: (30.0, 60.0), 2: (70.0, 100.0)}
    for label, (start, stop) in run_bounds.items():
        times = dataset.window_times[s1 & (dataset.labels == label)]
        assert (times >= start - 1e-6).all()
        assert (times + 10.0 <= stop + 1e-6).all()
    # The kept sit windows are the ones clear of the gap at 84-87 s: 70-80 s and 90-100 s.
    np.testing.assert_allclose(np.sort(dataset.window_times[s1 & (dataset.labels == 2)]), [70.0, 90.0], atol=0.02)


def test_opportunity_resampling_keeps_sine(opportunity_root):
    dataset = benchmarks.load_opportunity(opportunity_root, runs=("ADL1",))
    s2 = dataset.subjects == "S2"
    windows, starts = dataset.windows[s2], dataset.window_times[s2]

    # A 2 Hz, 0.5 g sine sampled at 30 Hz must come out at 100 Hz with the same frequency, amplitude and phase.
    spectrum = np.abs(np.fft.rfft(windows[:, :, 0], axis=1)) / 500
    assert (spectrum[:, 1:].argmax(axis=1) + 1 == 20).all()  # bin 20 of a 10 s window is 2 Hz
    np.testing.assert_allclose(spectrum[:, 20], 0.5, rtol=0.01)
    time = starts[:, None] + np.arange(1000)[None, :] / 100
    # The resampling filter reaches 10 samples at 30 Hz (0.33 s) each way. Near the ends of the run it reads the edge
    # values held constant, so only samples at least 0.34 s from the ends are compared.
    clear = (time > 0.34) & (time < 60.0 - 0.34)
    np.testing.assert_allclose(windows[:, :, 0][clear], 0.5 * np.sin(2 * np.pi * 2 * time[clear]), atol=0.01)
    np.testing.assert_allclose(windows[:, :, 2], 1.0, atol=1e-5)


def test_opportunity_window_options(opportunity_root):
    dataset = benchmarks.load_opportunity(
        opportunity_root, runs=("ADL1",), window_seconds=5.0, hop_seconds=5.0, clip_g=None
    )

    assert dataset.window_length == 500
    # The walk of S1 keeps its 5 g without a clip.
    assert dataset.windows[:, :, 0].max() == pytest.approx(5.0, abs=1e-4)
    # 30 s runs give 6 windows and S2 12. The sit run loses its windows at 10-15 s and 15-20 s, which overlap the gap
    # at 14-17 s, and keeps 4.
    assert len(dataset) == 6 + 6 + 4 + 12


def test_opportunity_column_names_checked(opportunity_root):
    folder = opportunity_root / "OpportunityUCIDataset" / "dataset"
    write_opportunity_column_names(folder, with_wrist=False)

    with pytest.raises(ValueError, match="Accelerometer RWR accX"):
        benchmarks.load_opportunity(opportunity_root)


def test_opportunity_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="S1-ADL1.dat"):
        benchmarks.load_opportunity(tmp_path)
    with pytest.raises(ValueError, match="is not a folder"):
        benchmarks.load_opportunity(tmp_path / "absent")


# PAMAP2 ----------------------------------------------------------------------------------------------------------


def write_pamap2_file(path, segments, *, corrupt_row=None):
    """
    Write 54-column rows at 100 Hz. `segments` lists (activity id, seconds, hand m/s^2, ankle m/s^2, time jump
    before the segment in s).
    """
    lines = []
    time = 5.0
    row = 0
    for activity, seconds, hand, ankle, jump in segments:
        time += jump
        for _ in range(round(seconds * 100)):
            fields = ["NaN"] * 54
            fields[0] = f"{time:.2f}"
            fields[1] = str(activity)
            fields[3] = "30.5"
            fields[4:7] = [f"{v:.5f}" for v in hand]
            fields[20] = "32.0"
            fields[37] = "31.0"
            fields[38:41] = [f"{v:.5f}" for v in ankle]
            if row == corrupt_row:
                fields[4] = "abc"
            lines.append(" ".join(fields))
            time += 0.01
            row += 1
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def pamap2_root(tmp_path):
    folder = tmp_path / "PAMAP2_Dataset" / "Protocol"
    folder.mkdir(parents=True)
    lying, walking, running = (0.0, 0.0, G), (G / 2, 0.0, 0.0), (0.0, G, 0.0)
    ankle = (0.0, G, 0.0)
    write_pamap2_file(
        folder / "subject101.dat",
        [(1, 30, lying, ankle, 0), (0, 5, lying, ankle, 0), (4, 30, walking, ankle, 0), (5, 20, running, ankle, 0)],
    )
    # Ironing in two 15 s pieces with a 3 s time gap between them, and one corrupt row.
    write_pamap2_file(
        folder / "subject102.dat", [(17, 15, lying, ankle, 0), (17, 15, lying, ankle, 3.0)], corrupt_row=700
    )
    write_pamap2_file(folder / "subject109.dat", [(24, 20, running, ankle, 0)])
    return tmp_path


def test_pamap2_hand_counts_and_units(pamap2_root):
    dataset = benchmarks.load_pamap2_hand(pamap2_root)

    # 101: lying 5, walking 5, running is not a hand class. 102: ironing 2 + 2. 109 is excluded.
    assert windows_in(15, 10, 5) == 2
    assert len(dataset) == 5 + 5 + 4
    assert dataset.label_names == [
        "lying",
        "sitting",
        "standing",
        "walking",
        "ascending stairs",
        "descending stairs",
        "vacuum cleaning",
        "ironing",
    ]
    assert np.bincount(dataset.labels, minlength=8).tolist() == [5, 0, 0, 5, 0, 0, 0, 4]
    assert sorted(set(dataset.subjects.tolist())) == ["101", "102"]
    assert dataset.split == "loso"
    assert dataset.body_location == "wrist"
    # m/s^2 to g: lying (0, 0, g) -> (0, 0, 1); walking (g/2, 0, 0) -> (0.5, 0, 0).
    np.testing.assert_allclose(
        dataset.windows[dataset.labels == 0], np.broadcast_to((0, 0, 1), (5, 1000, 3)), atol=1e-5
    )
    np.testing.assert_allclose(
        dataset.windows[dataset.labels == 3], np.broadcast_to((0.5, 0, 0), (5, 1000, 3)), atol=1e-5
    )
    report = dataset.report
    assert report["corrupt_rows"] == 1
    assert report["filled_samples"] == 1  # the corrupt row leaves a one-sample hole in the time grid
    assert report["time_gaps"] == 1
    assert report["excluded_subjects"] == ["109"]
    assert len(report["missing_files"]) == 6  # 103 to 108
    assert report["unused_label_seconds"] == pytest.approx(25.0)  # transient 5 s and running 20 s


def test_pamap2_hand_windows_inside_pieces(pamap2_root):
    dataset = benchmarks.load_pamap2_hand(pamap2_root)
    ironing = np.sort(dataset.window_times[dataset.labels == 7])

    # Pieces span 0-15 s and 18-33 s from the first row of subject102.
    np.testing.assert_allclose(ironing, [0.0, 5.0, 18.0, 23.0], atol=0.02)


def test_pamap2_ankle_twelve_classes(pamap2_root):
    dataset = benchmarks.load_pamap2_ankle(pamap2_root)

    # 2 s windows every 1 s: 30 s -> 29, 20 s -> 19, 15 s -> 14.
    assert windows_in(30, 2, 1) == 29
    assert len(dataset) == 29 + 29 + 19 + 14 + 14 + 19
    assert len(dataset.label_names) == 12
    counts = dict(zip(dataset.label_names, np.bincount(dataset.labels, minlength=12).tolist(), strict=True))
    assert counts["lying"] == 29
    assert counts["walking"] == 29
    assert counts["running"] == 19
    assert counts["ironing"] == 28
    assert counts["rope jumping"] == 19
    assert dataset.window_length == 200
    assert dataset.split == "kfold-5"
    assert dataset.standardize_inputs is True
    assert dataset.body_location == "ankle"
    np.testing.assert_allclose(dataset.windows, np.broadcast_to((0, 1, 0), dataset.windows.shape), atol=1e-5)
    assert "109" in set(dataset.subjects.tolist())


def test_pamap2_bad_file_reported(pamap2_root):
    (pamap2_root / "PAMAP2_Dataset" / "Protocol" / "subject103.dat").write_text("not a data file\n")

    dataset = benchmarks.load_pamap2_hand(pamap2_root)

    assert len(dataset) == 14
    assert [entry["file"].endswith("subject103.dat") for entry in dataset.report["bad_files"]] == [True]


def test_pamap2_missing_files(tmp_path):
    (tmp_path / "PAMAP2_Dataset" / "Protocol").mkdir(parents=True)

    with pytest.raises(ValueError, match=r"Protocol/subject101\.dat"):
        benchmarks.load_pamap2_hand(tmp_path)


# HHAR ------------------------------------------------------------------------------------------------------------


def hhar_rows(user, device, model, rate, segments, start_ns):
    rows = []
    time_ns = start_ns
    for label, seconds, values in segments:
        for _ in range(round(seconds * rate)):
            rows.append((time_ns, *values, user, model, device, label))
            time_ns += round(1e9 / rate)
    return rows


@pytest.fixture
def hhar_root(tmp_path):
    folder = tmp_path / "Activity recognition exp"
    folder.mkdir()
    rows = hhar_rows(
        "a",
        "gear_1",
        "gear",
        100,
        [("sit", 10, (0, 0, G)), ("null", 2, (0, 0, G)), ("walk", 10, (G, 0, 0))],
        27_920_678_471_000,
    )
    rows += hhar_rows("b", "lgwatch_1", "lgwatch", 200, [("bike", 10, (0, G / 2, 0))], 1_000_000_000_000)
    # Shuffled rows: the counts below hold only if the loader sorts each device's rows by time.
    order = np.random.default_rng(0).permutation(len(rows))
    lines = ["Index,Arrival_Time,Creation_Time,x,y,z,User,Model,Device,gt"]
    for index, position in enumerate(order):
        time_ns, x, y, z, user, model, device, label = rows[position]
        lines.append(f"{index},{1424696638740 + index},{time_ns},{x},{y},{z},{user},{model},{device},{label}")
    (folder / "Watch_accelerometer.csv").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_hhar_counts_rates_and_units(hhar_root):
    dataset = benchmarks.load_hhar(hhar_root)

    # Each 10 s run gives windows_in(10, 2, 1) = 9 windows, at 100 Hz and at 200 Hz alike.
    assert windows_in(10, 2, 1) == 9
    assert len(dataset) == 27
    assert dataset.label_names == ["bike", "sit", "stand", "walk", "stairsup", "stairsdown"]
    assert np.bincount(dataset.labels, minlength=6).tolist() == [9, 9, 0, 9, 0, 0]
    assert dataset.report["sampling_rates"] == {"a-gear_1": 100.0, "b-lgwatch_1": 200.0}
    assert dataset.report["out_of_order_rows"] > 0
    assert dataset.report["unused_label_seconds"] == pytest.approx(2.0)
    assert set(dataset.subjects.tolist()) == {"a", "b"}
    assert dataset.split == "kfold-5"
    assert dataset.standardize_inputs is True
    bike = dataset.windows[dataset.labels == 0]
    np.testing.assert_allclose(bike, np.broadcast_to((0, 0.5, 0), bike.shape), atol=1e-5)
    sit = dataset.windows[dataset.labels == 1]
    np.testing.assert_allclose(sit, np.broadcast_to((0, 0, 1), sit.shape), atol=1e-5)


def test_hhar_missing_column(tmp_path):
    folder = tmp_path / "Activity recognition exp"
    folder.mkdir()
    (folder / "Watch_accelerometer.csv").write_text(
        "Index,Arrival_Time,x,y,z,User,Model,Device\n0,1,0,0,9.8,a,g,g_1\n"
    )

    with pytest.raises(ValueError, match=r"lacks the columns \['Creation_Time', 'gt'\]"):
        benchmarks.load_hhar(tmp_path)


# MotionSense -----------------------------------------------------------------------------------------------------

MOTIONSENSE_HEADER = (
    ",attitude.roll,attitude.pitch,attitude.yaw,gravity.x,gravity.y,gravity.z,rotationRate.x,rotationRate.y,"
    "rotationRate.z,userAcceleration.x,userAcceleration.y,userAcceleration.z"
)


def write_motionsense_file(path, seconds, gravity, user_acceleration):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [MOTIONSENSE_HEADER]
    for row in range(round(seconds * 50)):
        fields = [row, 0.1, 0.2, 0.3, *gravity, 0.01, 0.02, 0.03, *user_acceleration]
        lines.append(",".join(str(value) for value in fields))
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def motionsense_root(tmp_path):
    folder = tmp_path / "A_DeviceMotion_data"
    write_motionsense_file(folder / "wlk_7" / "sub_1.csv", 10, (0, -1, 0), (0.2, 0, 0))
    write_motionsense_file(folder / "wlk_7" / "sub_2.csv", 10, (0, -1, 0), (0.2, 0, 0))
    write_motionsense_file(folder / "jog_9" / "sub_1.csv", 10, (0, -1, 0), (-0.5, 0, 0))
    write_motionsense_file(folder / "std_6" / "sub_12.csv", 10, (0, 0, -1), (0, 0, 0))
    (folder / "wlk_7" / "sub_3.csv").write_text("a,b,c\n1,2,3\n")
    (folder / "notes").mkdir()
    return tmp_path


def test_motionsense_counts_and_total_acceleration(motionsense_root):
    dataset = benchmarks.load_motionsense(motionsense_root)

    assert len(dataset) == 4 * windows_in(10, 2, 1)
    assert dataset.label_names == ["downstairs", "upstairs", "walking", "jogging", "sitting", "standing"]
    assert np.bincount(dataset.labels, minlength=6).tolist() == [0, 0, 18, 9, 0, 9]
    assert sorted(set(dataset.subjects.tolist())) == ["1", "12", "2"]
    assert dataset.body_location == "trouser pocket (phone)"
    assert dataset.standardize_inputs is True
    walking = dataset.windows[dataset.labels == 2]
    np.testing.assert_allclose(walking, np.broadcast_to((0.2, -1, 0), walking.shape), atol=1e-5)
    jogging = dataset.windows[dataset.labels == 3]
    np.testing.assert_allclose(jogging, np.broadcast_to((-0.5, -1, 0), jogging.shape), atol=1e-5)
    assert [entry["file"].endswith("sub_3.csv") for entry in dataset.report["bad_files"]] == [True]
    assert dataset.report["skipped_folders"] == ["notes"]
    assert dataset.report["files_read"] == 4


def test_motionsense_empty_folder(tmp_path):
    (tmp_path / "A_DeviceMotion_data").mkdir()

    with pytest.raises(ValueError, match="A_DeviceMotion_data/dws_1/sub_1.csv"):
        benchmarks.load_motionsense(tmp_path)


# Shared ----------------------------------------------------------------------------------------------------------


def test_loaders_registered():
    for name in ("opportunity", "pamap2-hand", "pamap2-ankle", "hhar", "motionsense"):
        assert name in DATASET_LOADERS


def test_all_files_bad_raises(tmp_path):
    folder = tmp_path / "A_DeviceMotion_data" / "wlk_7"
    folder.mkdir(parents=True)
    (folder / "sub_1.csv").write_text("a,b\n1,2\n")

    with pytest.raises(ValueError, match="no window could be cut"):
        benchmarks.load_motionsense(tmp_path)


@pytest.mark.parametrize(
    "options",
    [{"window_seconds": 0}, {"window_seconds": 2.005}, {"hop_seconds": -1}, {"clip_g": 0}, {"max_gap_seconds": -1}],
)
def test_window_options_rejected(motionsense_root, options):
    with pytest.raises(ValueError, match=next(iter(options))):
        benchmarks.load_motionsense(motionsense_root, **options)
