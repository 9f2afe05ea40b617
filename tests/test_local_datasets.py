"""Loaders of WISDM, the scikit-digital-health ambulation files and the mobgap gait data, on the real files.

Expected counts, labels and targets are derived here from the raw files with plain parsing (text lines, CSV rows,
`scipy.io.loadmat` without cell simplification), not from the loaders' code paths.
"""

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy.io import loadmat, savemat

from relcon_hf.evaluation.datasets import DATASET_LOADERS
from relcon_hf.evaluation.local_datasets import load_mobgap_gait, load_skdh_ambulation, load_wisdm


STANDARD_GRAVITY = 9.80665
# 20 Hz rows become 5 samples each at 100 Hz.
UPSAMPLING_20_HZ = 5
WINDOW = 256
WISDM_CODES = {"A": "walking", "B": "jogging", "C": "stairs", "D": "sitting", "E": "standing", "M": "kicking"}
# 1600 is complete, 1616 has no jogging, 1629 contains its whole data twice.
WISDM_SUBJECTS = ["1600", "1616", "1629"]


def windows_in(num_samples: int, hop: int = WINDOW) -> int:
    return max(0, (num_samples - WINDOW) // hop + 1)


def wisdm_runs(path: Path) -> list[tuple[str, list[str]]]:
    """Split a WISDM file's lines into runs of one activity: `(code, lines)`."""
    runs: list[tuple[str, list[str]]] = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        code = line.split(",")[1]
        if not runs or runs[-1][0] != code:
            runs.append((code, []))
        runs[-1][1].append(line)
    return runs


def expected_wisdm_windows(path: Path) -> tuple[Counter, int]:
    """Windows per activity name, and windows of runs that repeat an earlier run line for line."""
    counts: Counter = Counter()
    repeated = 0
    seen: list[list[str]] = []
    for code, lines in wisdm_runs(path):
        num_windows = windows_in(len(lines) * UPSAMPLING_20_HZ)
        if lines in seen:
            repeated += num_windows
        else:
            counts[WISDM_CODES[code]] += num_windows
        seen.append(lines)
    return counts, repeated


@pytest.fixture(scope="module")
def wisdm_dir(test_data_dir) -> Path:
    return test_data_dir / "wisdm2019_watch"


@pytest.fixture(scope="module")
def wisdm_subset(wisdm_dir):
    return load_wisdm(wisdm_dir, subjects=WISDM_SUBJECTS)


def test_loaders_are_registered():
    assert DATASET_LOADERS["wisdm"] is load_wisdm
    assert DATASET_LOADERS["skdh-ambulation"] is load_skdh_ambulation
    assert DATASET_LOADERS["mobgap-gait"] is load_mobgap_gait


def test_wisdm_counts_per_subject_activity(wisdm_dir, wisdm_subset):
    dataset = wisdm_subset
    names = np.array(dataset.label_names)[dataset.labels]
    total_repeated = 0
    for subject in WISDM_SUBJECTS:
        expected, repeated = expected_wisdm_windows(wisdm_dir / f"data_{subject}_accel_watch.txt")
        total_repeated += repeated
        found = Counter(names[dataset.subjects == subject].tolist())
        assert found == expected, subject
    assert dataset.report["windows_dropped"]["repeated_block"] == total_repeated
    assert total_repeated > 0
    assert dataset.report["files_read"] == len(WISDM_SUBJECTS)
    assert dataset.report["files_failed"] == {}


def test_wisdm_labels_subjects_and_metadata(wisdm_subset):
    dataset = wisdm_subset
    assert dataset.task == "classification"
    assert dataset.label_names == list(WISDM_CODES.values())
    assert sorted(np.unique(dataset.subjects)) == WISDM_SUBJECTS
    assert dataset.windows.shape[1:] == (WINDOW, 3)
    assert dataset.sampling_rate == 100.0
    assert dataset.split == "kfold-5"
    assert dataset.body_location == "wrist"
    assert set(dataset.recordings[dataset.subjects == "1600"]) == {"data_1600_accel_watch"}
    assert "jogging" not in np.array(dataset.label_names)[dataset.labels[dataset.subjects == "1616"]]


def test_wisdm_window_times_and_units(wisdm_dir, wisdm_subset):
    dataset = wisdm_subset
    rows = [line.rstrip(";").split(",") for line in (wisdm_dir / "data_1600_accel_watch.txt").read_text().split()]
    raw = np.array([[float(value) for value in row[2:5]] for row in rows])
    first_jogging_row = next(index for index, row in enumerate(rows) if row[1] == "B")
    mine = dataset.subjects == "1600"
    times, windows, labels = dataset.window_times[mine], dataset.windows[mine], dataset.labels[mine]

    jogging = labels == dataset.label_names.index("jogging")
    assert times[jogging][0] == pytest.approx(first_jogging_row / 20)
    np.testing.assert_allclose(np.diff(times[jogging]), WINDOW / 100)
    # A window of 2.56 s covers 51.2 rows at 20 Hz. Its mean in g matches the raw rows' mean in m/s^2 divided by g.
    start = int(round(times[jogging][3] * 20))
    np.testing.assert_allclose(
        windows[jogging][3].mean(axis=0), raw[start : start + 51].mean(axis=0) / STANDARD_GRAVITY, atol=0.05
    )


def test_wisdm_activity_filter(wisdm_dir):
    dataset = load_wisdm(wisdm_dir, subjects=[1600], activities=["B", "A"])

    assert dataset.label_names == ["jogging", "walking"]
    expected, _ = expected_wisdm_windows(wisdm_dir / "data_1600_accel_watch.txt")
    names = np.array(dataset.label_names)[dataset.labels]
    assert Counter(names.tolist()) == {"jogging": expected["jogging"], "walking": expected["walking"]}
    others = sum(count for name, count in expected.items() if name not in ("jogging", "walking"))
    assert dataset.report["windows_other_activities"] == others


def test_wisdm_overridden_window(wisdm_dir):
    dataset = load_wisdm(wisdm_dir, subjects=["1600"], window_length=200, hop_length=100)

    assert dataset.windows.shape[1] == 200
    per_activity = (2400 * UPSAMPLING_20_HZ - 200) // 100 + 1
    assert len(dataset) == 6 * per_activity


@pytest.mark.slow
def test_wisdm_whole_folder(wisdm_dir):
    dataset = load_wisdm(wisdm_dir)

    expected_total = 0
    for path in sorted(wisdm_dir.glob("data_*_accel_watch.txt")):
        counts, _ = expected_wisdm_windows(path)
        expected_total += sum(counts.values())
    assert len(dataset) == expected_total
    assert dataset.num_subjects == 51
    assert dataset.report["files_read"] == 51


def test_wisdm_bad_file_skipped(wisdm_dir, tmp_path):
    shutil.copy(wisdm_dir / "data_1600_accel_watch.txt", tmp_path)
    (tmp_path / "data_1601_accel_watch.txt").write_text("1601,A,1.0,2.0,3.0;\n" * 10 + "1601,A,abc,2.0,3.0;\n")
    (tmp_path / "data_1602_accel_watch.txt").write_text("1603,A,1.0,2.0,3.0;\n" * 600)

    dataset = load_wisdm(tmp_path)

    failed = dataset.report["files_failed"]
    assert set(failed) == {str(tmp_path / "data_1601_accel_watch.txt"), str(tmp_path / "data_1602_accel_watch.txt")}
    assert "subject 1603" in failed[str(tmp_path / "data_1602_accel_watch.txt")]
    assert dataset.report["files_read"] == 1
    assert set(dataset.subjects) == {"1600"}


def test_wisdm_invalid_arguments(wisdm_dir, tmp_path):
    with pytest.raises(ValueError, match="not a folder"):
        load_wisdm(tmp_path / "absent")
    with pytest.raises(ValueError, match=r"no WISDM file found.*data_<subject>_accel_watch\.txt"):
        load_wisdm(tmp_path)
    with pytest.raises(ValueError, match=r"no file for \['9999'\]"):
        load_wisdm(wisdm_dir, subjects=["1600", "9999"])
    with pytest.raises(ValueError, match="activity codes"):
        load_wisdm(wisdm_dir, subjects=["1600"], activities=["Z"])
    with pytest.raises(ValueError, match="keep_flagged"):
        load_wisdm(wisdm_dir, subjects=["1600"], keep_flagged=["noise"])


def test_wisdm_all_files_broken(tmp_path):
    (tmp_path / "data_1601_accel_watch.txt").write_text("not,a,wisdm,line\n")

    with pytest.raises(ValueError, match="none of the 1 files"):
        load_wisdm(tmp_path)


# ---------------------------------------------------------------------------------------------------------------------
# scikit-digital-health ambulation files


@pytest.fixture(scope="module")
def skdh_dir(test_data_dir) -> Path:
    return test_data_dir / "skdh" / "context" / "data"


def test_skdh_labels_follow_the_files(skdh_dir):
    """The files have no label column, and scikit-digital-health's tests treat test1 as walking, test2 as not."""
    dataset = load_skdh_ambulation(skdh_dir.parent.parent)

    names = np.array(dataset.label_names)[dataset.labels]
    for stem, label in (("ambulation_test1", "walking"), ("ambulation_test2", "not walking")):
        rows = [line for line in (skdh_dir / f"{stem}.csv").read_text().splitlines() if line.strip()]
        mine = dataset.subjects == stem
        assert mine.sum() == windows_in(len(rows) * UPSAMPLING_20_HZ), stem
        assert set(names[mine]) == {label}
        assert set(dataset.recordings[mine]) == {stem}
    assert dataset.split == "loso"
    assert dataset.report["windows_by_label"] == {"walking": 46, "not walking": 23}


def test_skdh_windows_are_in_g(skdh_dir):
    dataset = load_skdh_ambulation(skdh_dir)
    raw = np.loadtxt(skdh_dir / "ambulation_test2.csv", delimiter=",")
    mine = dataset.subjects == "ambulation_test2"

    start = int(round(dataset.window_times[mine][2] * 20))
    np.testing.assert_allclose(dataset.windows[mine][2].mean(axis=0), raw[start : start + 51].mean(axis=0), atol=0.02)


def test_skdh_unlabelled_file_skipped(skdh_dir, tmp_path):
    shutil.copy(skdh_dir / "ambulation_test1.csv", tmp_path)
    shutil.copy(skdh_dir / "ambulation_test2.csv", tmp_path / "ambulation_test3.csv")

    dataset = load_skdh_ambulation(tmp_path)

    assert list(dataset.report["files_failed"]) == [str(tmp_path / "ambulation_test3.csv")]
    assert set(dataset.subjects) == {"ambulation_test1"}

    relabelled = load_skdh_ambulation(tmp_path, file_labels={"ambulation_test1": "gait", "ambulation_test3": "rest"})
    assert relabelled.label_names == ["gait", "rest"]
    assert relabelled.report["files_failed"] == {}


def test_skdh_malformed_file_skipped(skdh_dir, tmp_path):
    shutil.copy(skdh_dir / "ambulation_test1.csv", tmp_path)
    (tmp_path / "ambulation_test2.csv").write_text("0.1,0.2\n0.3,0.4\n")

    dataset = load_skdh_ambulation(tmp_path)

    assert list(dataset.report["files_failed"]) == [str(tmp_path / "ambulation_test2.csv")]
    assert dataset.report["files_read"] == 1


def test_skdh_missing_files(tmp_path):
    with pytest.raises(ValueError, match=r"no ambulation_test\*\.csv file found"):
        load_skdh_ambulation(tmp_path)


# ---------------------------------------------------------------------------------------------------------------------
# Mobilise-D laboratory gait (mobgap)


@pytest.fixture(scope="module")
def mobgap_dir(test_data_dir) -> Path:
    return test_data_dir / "mobgap"


@pytest.fixture(scope="module")
def mobgap(mobgap_dir):
    return load_mobgap_gait(mobgap_dir)


def raw_trial(mobgap_dir: Path, participant: str, test: str, trial: str):
    """One trial read with plain `loadmat` (MATLAB structs as record arrays)."""
    data = loadmat(mobgap_dir / "data" / "lab" / participant / "data.mat")["data"][0, 0]
    return data["TimeMeasure1"][0, 0][test][0, 0][trial][0, 0]


def raw_bouts(trial) -> list:
    bouts = trial["Standards"][0, 0]["INDIP"][0, 0]["MicroWB"]
    return [bouts[0, index] for index in range(bouts.shape[1])] if bouts.size else []


def field(bout, name: str) -> np.ndarray:
    return np.asarray(bout[name], dtype=np.float64)


def test_mobgap_targets_match_reference_strides(mobgap_dir, mobgap):
    trial = raw_trial(mobgap_dir, "HA/001", "Test11", "Trial1")
    bout = raw_bouts(trial)[3]
    start, end = field(bout, "Start").item(), field(bout, "End").item()
    contacts = field(bout, "Stride_InitialContacts") / 100
    speed = field(bout, "Stride_Speed").ravel()
    length = field(bout, "Stride_Length").ravel()
    cadence = 120 / field(bout, "Stride_Duration").ravel()
    mine = mobgap.recordings == "HA/001/TimeMeasure1/Test11/Trial1/bout-3"

    num_rows = round(end * 100) - round(start * 100) + 1
    assert mine.sum() == windows_in(num_rows, hop=128)
    assert np.isnan(speed).any()  # this bout has strides without values, which must be skipped
    for position in (0, 2, 5):
        window_start = mobgap.window_times[mine][position]
        assert window_start == pytest.approx(start + position * 1.28)
        overlap = (contacts[:, 0] < window_start + 2.56) & (contacts[:, 1] > window_start)
        expected = [np.nanmean(values[overlap]) for values in (speed, length, cadence)]
        np.testing.assert_allclose(mobgap.targets[mine][position], expected, rtol=1e-5)


def test_mobgap_windows_stay_inside_bouts(mobgap_dir, mobgap):
    for participant in ("HA/001", "HA/002", "MS/001"):
        for test, trial_name in (("Test5", "Trial1"), ("Test5", "Trial2"), ("Test11", "Trial1")):
            bouts = raw_bouts(raw_trial(mobgap_dir, participant, test, trial_name))
            for index, bout in enumerate(bouts):
                mine = mobgap.recordings == f"{participant}/TimeMeasure1/{test}/{trial_name}/bout-{index}"
                start, end = field(bout, "Start").item(), field(bout, "End").item()
                assert mine.any()
                assert (mobgap.window_times[mine] >= start - 1e-9).all()
                assert (mobgap.window_times[mine] + 2.56 <= end + 0.01 + 1e-9).all()
                assert set(mobgap.subjects[mine]) == {participant}


def test_mobgap_windows_equal_csv_copy_in_g(mobgap_dir, mobgap):
    """
    The CSV copies store the lower-back acceleration in g, one row per 100 Hz sample. They were made by converting
    the MATLAB values to m/s^2 with g = 9.81 and back with 9.80665, so they are 9.81 / 9.80665 times the
    MATLAB values, which the loader reads unchanged.
    """
    path = mobgap_dir / "data_csv" / "MS" / "001" / "TimeMeasure1_Test11_Trial1.csv"
    acceleration = np.loadtxt(path, delimiter=",", skiprows=1)[:, 1:4] * STANDARD_GRAVITY / 9.81
    mine = np.flatnonzero(np.char.startswith(mobgap.recordings.astype(str), "MS/001/TimeMeasure1/Test11/Trial1/"))

    for index in mine[[0, len(mine) // 2, -1]]:
        row = round(mobgap.window_times[index] * 100)
        np.testing.assert_allclose(mobgap.windows[index], acceleration[row : row + 256], atol=1e-6)
    assert 0.9 < np.median(np.linalg.norm(mobgap.windows, axis=-1)) < 1.1


def test_mobgap_metadata_and_report(mobgap_dir, mobgap):
    assert mobgap.task == "regression"
    assert mobgap.label_names == ["walking_speed", "stride_length", "cadence"]
    assert mobgap.target_units == ["m/s", "m", "steps/min"]
    assert mobgap.body_location == "lower back"
    assert mobgap.split == "loso"
    assert sorted(np.unique(mobgap.subjects)) == ["HA/001", "HA/002", "MS/001"]

    num_bouts = 0
    without_reference = 0
    for participant in ("HA/001", "HA/002", "MS/001"):
        for test, trial_name in (("Test5", "Trial1"), ("Test5", "Trial2"), ("Test11", "Trial1")):
            bouts = raw_bouts(raw_trial(mobgap_dir, participant, test, trial_name))
            num_bouts += len(bouts)
            without_reference += not bouts
    assert mobgap.report["bouts"] == num_bouts == 19
    assert mobgap.report["trials_without_reference"] == without_reference == 2
    assert mobgap.report["trials"] == 9
    assert mobgap.report["windows"] == len(mobgap)


def write_trial_file(path: Path, acceleration: np.ndarray, bouts: list[dict], trial: dict | None = None) -> None:
    """Write a data.mat in the mobgap layout with one trial."""
    trial = trial or {
        "SU": {"LowerBack": {"Acc": acceleration, "Fs": {"Acc": 100}}},
        "Standards": {"INDIP": {"MicroWB": bouts if bouts else np.zeros(0), "Fs": 100}},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {"data": {"TimeMeasure1": {"Test5": {"Trial1": trial}}}})


def synthetic_bout(start: float, end: float, stride_value: float, average: float) -> dict:
    contacts = np.array([[start, start + 1.1], [start + 1.1, start + 2.2], [start + 2.2, end]]) * 100
    return {
        "Start": start,
        "End": end,
        "WalkingSpeed": average,
        "AverageStrideLength": average,
        "Cadence": average,
        "Stride_InitialContacts": contacts,
        "Stride_Speed": np.full(3, stride_value),
        "Stride_Length": np.full(3, stride_value),
        "Stride_Duration": np.full(3, 1.1 if np.isfinite(stride_value) else np.nan),
    }


@pytest.fixture(scope="module")
def mobgap_acceleration(mobgap_dir) -> np.ndarray:
    csv = mobgap_dir / "data_csv" / "HA" / "001" / "TimeMeasure1_Test5_Trial1.csv"
    return np.loadtxt(csv, delimiter=",", skiprows=1)[:, 1:4]


def test_mobgap_falls_back_to_bout_values(mobgap_acceleration, tmp_path):
    bouts = [synthetic_bout(1.0, 5.0, np.nan, 0.8), synthetic_bout(6.0, 9.5, np.nan, np.nan)]
    write_trial_file(tmp_path / "lab" / "HA" / "900" / "data.mat", mobgap_acceleration, bouts)

    dataset = load_mobgap_gait(tmp_path / "lab")

    assert set(dataset.recordings) == {"HA/900/TimeMeasure1/Test5/Trial1/bout-0"}
    np.testing.assert_allclose(dataset.targets, 0.8)
    assert dataset.report["bouts_without_reference"] == 1
    assert dataset.report["targets_from_bout_average"] == dict.fromkeys(dataset.label_names, len(dataset))


def test_mobgap_bad_file_and_trial_skipped(mobgap_acceleration, tmp_path):
    lab = tmp_path / "data" / "lab"
    write_trial_file(lab / "HA" / "900" / "data.mat", mobgap_acceleration, [synthetic_bout(1.0, 5.0, 1.0, 1.0)])
    write_trial_file(lab / "HA" / "901" / "data.mat", mobgap_acceleration, [], trial={"Standards": {}})
    (lab / "HA" / "902").mkdir()
    (lab / "HA" / "902" / "data.mat").write_bytes(b"not a MATLAB file" * 10)
    write_trial_file(lab / "HA" / "903" / "data.mat", mobgap_acceleration, [synthetic_bout(0.5, 1.5, 1.0, 1.0)])
    (lab / "HA" / "904").mkdir()
    (lab / "HA" / "904" / "data.mat").write_text("garbage")  # scipy raises MatReadError, not OSError

    dataset = load_mobgap_gait(tmp_path)

    assert sorted(dataset.report["files_failed"]) == [str(lab / "HA" / name / "data.mat") for name in ("902", "904")]
    assert list(dataset.report["trials_failed"]) == [f"{lab / 'HA' / '901' / 'data.mat'}:TimeMeasure1/Test5/Trial1"]
    assert dataset.report["bouts_shorter_than_window"] == 1
    assert set(dataset.subjects) == {"HA/900"}
    # Strides of 1.1 s give 120 / 1.1 steps per minute.
    np.testing.assert_allclose(dataset.targets, [[1.0, 1.0, 120 / 1.1]] * len(dataset), rtol=1e-5)


def test_mobgap_missing_files(tmp_path):
    with pytest.raises(ValueError, match=r"no data\.mat file found.*data/lab/<cohort>/<participant>/data\.mat"):
        load_mobgap_gait(tmp_path)
    with pytest.raises(ValueError, match="not a folder"):
        load_mobgap_gait(tmp_path / "absent")
