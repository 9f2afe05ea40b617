# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Downstream protocols on real watch windows: subject folds, probes, fine-tuning, saved heads and the CLI."""

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from relcon_hf import RelConConfig, RelConFeatureExtractor, RelConForSequenceClassification, RelConModel
from relcon_hf.cli import main
from relcon_hf.evaluation.datasets import EvaluationDataset, load_evaluation_dataset
from relcon_hf.evaluation.finetune import WindowStream
from relcon_hf.evaluation.protocols import EvaluationSettings, make_subject_folds, run_evaluation, score_predictions
from relcon_hf.evaluation.report import PREDICTIONS_FILE, RESULTS_FILE, save_final_model, write_results
from relcon_hf.hub.model_card import load_evaluation_results


TINY_ENCODER = {"stem_channels": 8, "stage_channels": [8, 16, 16], "stage_num_blocks": [1, 1, 1]}


@pytest.fixture(scope="module")
def watch_dataset(watch_file) -> EvaluationDataset:
    return load_evaluation_dataset("watch", str(watch_file))


@pytest.fixture(scope="module")
def small_watch(watch_dataset) -> EvaluationDataset:
    """Every fourth window of the watch exercises: all 10 subjects and 7 classes, about 900 windows."""
    rows = np.arange(0, len(watch_dataset), 4)
    return replace(
        watch_dataset,
        windows=watch_dataset.windows[rows],
        subjects=watch_dataset.subjects[rows],
        labels=watch_dataset.labels[rows],
        recordings=watch_dataset.recordings[rows],
        window_times=watch_dataset.window_times[rows],
    )


@pytest.fixture(scope="module")
def magnitude_dataset(small_watch) -> EvaluationDataset:
    """Regression on real windows: each window's mean and standard deviation of the acceleration magnitude in g."""
    magnitude = np.linalg.norm(small_watch.windows, axis=-1)
    return EvaluationDataset(
        name="watch-magnitude",
        description="watch windows, magnitude statistics",
        windows=small_watch.windows,
        subjects=small_watch.subjects,
        task="regression",
        label_names=["magnitude_mean", "magnitude_std"],
        targets=np.stack([magnitude.mean(axis=1), magnitude.std(axis=1)], axis=1),
        target_units=["g", "g"],
    )


@pytest.fixture(scope="module")
def tiny_encoder_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-encoder")
    torch.manual_seed(0)
    RelConModel(RelConConfig(**TINY_ENCODER)).save_pretrained(folder)
    RelConFeatureExtractor().save_pretrained(folder)
    return folder


# ---------------------------------------------------------------------------------------------------------------------
# Folds


def test_subject_folds_hold_out_whole_subjects(watch_dataset):
    subjects = watch_dataset.subjects
    for split, expected_folds in (("loso", 10), ("kfold-5", 5), ("kfold-3", 3)):
        folds = make_subject_folds(subjects, split, seed=0)
        assert len(folds) == expected_folds
        tested = np.concatenate([fold.test for fold in folds])
        assert np.array_equal(np.sort(tested), np.arange(len(subjects)))  # every window is tested exactly once
        for fold in folds:
            parts = [set(subjects[rows]) for rows in (fold.train, fold.validation, fold.test)]
            assert all(parts), "a fold has an empty part"
            assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
            assert len(fold.train) + len(fold.validation) + len(fold.test) == len(subjects)
            assert parts[2] == set(fold.test_subjects)
        if split == "loso":
            assert all(len(fold.test_subjects) == 1 for fold in folds)


def test_subject_folds_are_seeded(watch_dataset):
    first = make_subject_folds(watch_dataset.subjects, "kfold-5", seed=3)
    again = make_subject_folds(watch_dataset.subjects, "kfold-5", seed=3)
    other = make_subject_folds(watch_dataset.subjects, "kfold-5", seed=4)
    assert [fold.test_subjects for fold in first] == [fold.test_subjects for fold in again]
    assert [fold.validation_subjects for fold in first] == [fold.validation_subjects for fold in again]
    assert [fold.test_subjects for fold in first] != [fold.test_subjects for fold in other]


@pytest.mark.parametrize(
    ("subjects", "split", "message"),
    [
        (["a", "b", "c", "d"], "kfold-5", "needs at least 5 subjects"),
        (["a", "a", "b"], "loso", "at least 3 subjects"),
        (["a", "b", "c"], "kfold-1", "kfold-<k>"),
        (["a", "b", "c"], "random", "kfold-<k>"),
    ],
)
def test_subject_folds_reject_impossible_splits(subjects, split, message):
    with pytest.raises(ValueError, match=message):
        make_subject_folds(np.array(subjects), split)


def test_settings_reject_bad_values():
    with pytest.raises(ValueError, match="`protocol` must be one of"):
        EvaluationSettings(protocol="knn")
    with pytest.raises(ValueError, match="scratch"):
        EvaluationSettings(protocol="finetune", random_init=True)
    with pytest.raises(ValueError, match="`epochs` must be a positive integer"):
        EvaluationSettings(protocol="finetune", epochs=0)


# ---------------------------------------------------------------------------------------------------------------------
# Probes


def test_linear_probe_writes_results_that_cards_accept(small_watch, tiny_encoder_dir, tmp_path):
    settings = EvaluationSettings(protocol="linear-probe", max_folds=2)
    outcome = run_evaluation(tiny_encoder_dir, small_watch, settings, work_dir=tmp_path, command="relcon-hf evaluate")
    results = outcome.results
    assert len(results["folds"]) == 2
    assert "first 2 of 5 folds run" in results["dataset"]["split"]
    macro_f1 = next(metric for metric in results["metrics"] if metric["name"] == "macro_f1")
    fold_values = [fold["macro_f1"] for fold in results["folds"]]
    assert macro_f1["value"] == pytest.approx(np.mean(fold_values))
    assert macro_f1["std"] == pytest.approx(np.std(fold_values, ddof=1))
    # Seven classes: chance is about 0.14; a random encoder's embeddings still separate the exercises.
    assert macro_f1["value"] > 0.3
    for fold, predictions in zip(results["folds"], outcome.predictions, strict=True):
        assert set(small_watch.subjects[predictions.test]) == set(fold["test_subjects"])
        assert fold["C"] in settings.l2_grid

    written = write_results(outcome, small_watch, tmp_path / "out")
    assert (tmp_path / "out" / "results.md") in written
    for figure in ("confusion_matrix.png", "embedding_map.png"):
        assert (tmp_path / "out" / figure) in written
        assert (tmp_path / "out" / figure).read_bytes().startswith(b"\x89PNG")
    checked = load_evaluation_results(tmp_path / "out" / RESULTS_FILE)
    assert checked["problem_type"] == "single_label_classification"
    with open(tmp_path / "out" / PREDICTIONS_FILE) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == sum(len(fold.test) for fold in outcome.predictions)
    assert {row["label"] for row in rows} <= set(small_watch.label_names)
    accuracy = np.mean([row["label"] == row["predicted"] for row in rows])
    pooled = np.average([f["accuracy"] for f in results["folds"]], weights=[f["num_test"] for f in results["folds"]])
    assert accuracy == pytest.approx(pooled)


def test_random_init_probe_differs_from_checkpoint(small_watch, tiny_encoder_dir, tmp_path):
    base = EvaluationSettings(protocol="linear-probe", max_folds=1, seed=1)
    loaded = run_evaluation(tiny_encoder_dir, small_watch, base, work_dir=tmp_path).results
    random_init = run_evaluation(tiny_encoder_dir, small_watch, replace(base, random_init=True), work_dir=tmp_path)
    assert random_init.results["encoder_weights"] == "random"
    assert loaded["encoder_weights"] == "pre-trained"
    assert loaded["folds"][0]["macro_f1"] != random_init.results["folds"][0]["macro_f1"]


def test_mlp_probe_stops_on_validation_subjects(small_watch, tiny_encoder_dir, tmp_path):
    settings = EvaluationSettings(protocol="mlp-probe", max_folds=1, mlp_max_epochs=60, mlp_patience=3)
    fold = run_evaluation(tiny_encoder_dir, small_watch, settings, work_dir=tmp_path).results["folds"][0]
    assert 1 <= fold["best_epoch"] <= fold["epochs_run"] <= 60
    assert fold["epochs_run"] < 60 or fold["best_epoch"] > 57  # stopped early unless still improving
    assert fold["macro_f1"] > 0.3


@pytest.mark.parametrize("protocol", ["linear-probe", "mlp-probe"])
def test_regression_probes_predict_in_target_units(magnitude_dataset, tiny_encoder_dir, tmp_path, protocol):
    settings = EvaluationSettings(protocol=protocol, max_folds=2, mlp_max_epochs=40)
    outcome = run_evaluation(tiny_encoder_dir, magnitude_dataset, settings, work_dir=tmp_path)
    results = outcome.results
    assert results["problem_type"] == "regression"
    targets = {(metric["name"], metric["target"]) for metric in results["metrics"]}
    assert ("mae", "magnitude_mean") in targets
    assert ("pearson_r", "magnitude_std") in targets
    predictions = np.concatenate([fold.predictions for fold in outcome.predictions])
    truth = np.concatenate([magnitude_dataset.targets[fold.test] for fold in outcome.predictions])
    # In g, not standardised: the mean prediction is near the mean magnitude (about 1 g at rest).
    assert abs(predictions[:, 0].mean() - truth[:, 0].mean()) < 0.2
    assert np.corrcoef(predictions[:, 1], truth[:, 1])[0, 1] > 0.5
    load_evaluation_results_from(outcome, magnitude_dataset, tmp_path)


def load_evaluation_results_from(outcome, dataset, folder):
    written = write_results(outcome, dataset, folder)
    assert {folder / "regression_magnitude_mean.png", folder / "regression_magnitude_std.png"} <= set(written)
    return load_evaluation_results(folder / RESULTS_FILE)


# ---------------------------------------------------------------------------------------------------------------------
# Fine-tuning


def test_window_stream_gives_ranks_equal_disjoint_shares():
    windows = np.zeros((11, 4, 3), np.float32)
    targets = np.arange(11)
    rows = np.arange(11)
    shares = [list(WindowStream(windows, targets, rows, rank=rank, world_size=3, seed=5)) for rank in range(3)]
    labels = [[int(item["labels"]) for item in share] for share in shares]
    assert [len(share) for share in labels] == [3, 3, 3]
    assert len(set(sum(labels, []))) == 9
    stream = WindowStream(windows, targets, rows, seed=5)
    first = [int(item["labels"]) for item in stream]
    stream.set_epoch(1)
    second = [int(item["labels"]) for item in stream]
    assert sorted(first) == list(range(11))
    assert sorted(second) == list(range(11))
    assert first != second
    fixed = WindowStream(windows, targets, rows, shuffle=False)
    assert [int(item["labels"]) for item in fixed] == list(range(11))
    validation = [
        [
            int(item["labels"])
            for item in WindowStream(windows, targets, rows, rank=rank, world_size=3, equal_ranks=False)
        ]
        for rank in range(3)
    ]
    assert [len(share) for share in validation] == [4, 4, 3]
    assert sorted(sum(validation, [])) == list(range(11))


def test_finetune_and_scratch_run_through_the_training_loop(small_watch, tiny_encoder_dir, tmp_path):
    for protocol in ("finetune", "scratch"):
        settings = EvaluationSettings(protocol=protocol, max_folds=1, epochs=2, batch_size=32)
        outcome = run_evaluation(tiny_encoder_dir, small_watch, settings, work_dir=tmp_path / protocol)
        fold = outcome.results["folds"][0]
        run = tmp_path / protocol / "fold_0"
        log = [json.loads(line) for line in (run / "training_log.jsonl").read_text().splitlines()]
        assert sum("eval_loss" in entry for entry in log) == 2  # one validation pass per epoch
        assert fold["best_step"] in {entry["step"] for entry in log if "eval_loss" in entry}
        assert outcome.predictions[0].embeddings.shape == (fold["num_test"], 16)
        assert 0 <= fold["macro_f1"] <= 1


def test_saved_head_loads_with_auto_class(small_watch, tiny_encoder_dir, tmp_path):
    settings = EvaluationSettings(protocol="finetune", epochs=1, batch_size=32)
    outcome = run_evaluation(
        tiny_encoder_dir, small_watch, replace(settings, protocol="linear-probe", max_folds=1), work_dir=tmp_path
    )
    write_results(outcome, small_watch, tmp_path)
    results_file = tmp_path / RESULTS_FILE
    save_dir = save_final_model(tiny_encoder_dir, small_watch, settings, tmp_path / "head", results_file)

    model = AutoModelForSequenceClassification.from_pretrained(save_dir).eval()
    assert isinstance(model, RelConForSequenceClassification)
    assert [model.config.id2label[index] for index in range(7)] == small_watch.label_names
    with torch.no_grad():
        logits = model(torch.from_numpy(small_watch.windows[:5])).logits
    names = [model.config.id2label[int(index)] for index in logits.argmax(-1)]
    assert set(names) <= set(small_watch.label_names)
    assert (save_dir / "README.md").exists()
    assert (save_dir / RESULTS_FILE).exists()
    assert not (save_dir / "best").exists()


def test_regression_head_predicts_in_physical_units(magnitude_dataset, tiny_encoder_dir, tmp_path):
    settings = EvaluationSettings(protocol="finetune", epochs=1, batch_size=32, max_folds=1)
    outcome = run_evaluation(tiny_encoder_dir, magnitude_dataset, settings, work_dir=tmp_path)
    saved = RelConForSequenceClassification.from_pretrained(tmp_path / "fold_0")
    assert saved.config.problem_type == "regression"
    assert saved.config.target_mean[0] == pytest.approx(magnitude_dataset.targets[:, 0].mean(), abs=0.05)
    predictions = outcome.predictions[0].predictions
    assert abs(predictions[:, 0].mean() - 1.0) < 0.3  # in g: near the 1 g of gravity, not near 0


def test_target_standardisation_in_the_model():
    config = RelConConfig(
        **TINY_ENCODER,
        num_labels=2,
        problem_type="regression",
        target_mean=[1.0, 100.0],
        target_std=[0.5, 10.0],
    )
    torch.manual_seed(0)
    model = RelConForSequenceClassification(config).eval()
    inputs = torch.randn(3, 256, 3)
    labels = torch.tensor([[1.5, 90.0]] * 3)
    output = model(inputs, labels=labels)
    standardised = (output.logits - torch.tensor([1.0, 100.0])) / torch.tensor([0.5, 10.0])
    expected = torch.nn.functional.mse_loss(standardised, torch.tensor([[1.0, -1.0]] * 3))
    assert torch.allclose(output.loss, expected, atol=1e-5)

    with pytest.raises(ValueError, match="set together"):
        RelConConfig(target_mean=[1.0])
    with pytest.raises(ValueError, match="positive"):
        RelConConfig(target_mean=[1.0], target_std=[0.0])
    with pytest.raises(ValueError, match="one value per target"):
        RelConForSequenceClassification(
            RelConConfig(**TINY_ENCODER, num_labels=3, problem_type="regression", target_mean=[0.0], target_std=[1.0])
        )
    with pytest.raises(ValueError, match="3 values"):
        RelConConfig(input_mean=[0.0, 0.0], input_std=[1.0, 1.0])


# ---------------------------------------------------------------------------------------------------------------------
# Command line


def test_cli_rejects_save_model_with_a_probe(tiny_encoder_dir, tmp_path, capsys):
    code = main(
        [
            "evaluate",
            "--model",
            str(tiny_encoder_dir),
            "--dataset",
            "watch",
            "--protocol",
            "linear-probe",
            "--output-dir",
            str(tmp_path),
            "--save-model",
            str(tmp_path / "model"),
        ]
    )
    assert code == 2
    assert "--save-model saves a fine-tuned model" in capsys.readouterr().err


def test_cli_names_known_datasets_for_an_unknown_one(tiny_encoder_dir, tmp_path, capsys):
    code = main(
        ["evaluate", "--model", str(tiny_encoder_dir), "--dataset", "wisdmm", "--protocol", "linear-probe"]
        + ["--output-dir", str(tmp_path)]
    )
    assert code == 2
    error = capsys.readouterr().err
    assert "Unknown dataset 'wisdmm'" in error
    assert "watch, wisdm." in error
    assert "pamap2-hand" in error


def write_pamap2_from_watch(folder, watch_corpus, subjects):
    """
    Write PAMAP2 Protocol files whose ankle accelerometer carries real watch recordings.

    Each watch exercise becomes one PAMAP2 activity id (1 to 7), the 50 Hz samples are repeated to 100 Hz and
    written in m/s^2, the unit of the PAMAP2 files.
    """
    folder.mkdir(parents=True)
    for number, subject in enumerate(subjects, start=101):
        lines, time = [], 0.0
        for recording, label, owner in zip(
            watch_corpus.recordings, watch_corpus.labels, watch_corpus.subject_ids, strict=True
        ):
            if owner != subject:
                continue
            for sample in np.repeat(recording, 2, axis=0) * 9.80665:
                fields = ["NaN"] * 54
                fields[0], fields[1] = f"{time:.2f}", str(int(label) + 1)
                fields[38:41] = [f"{value:.5f}" for value in sample]
                lines.append(" ".join(fields))
                time += 0.01
            time += 5.0  # a pause between recordings, as between protocol activities
        (folder / f"subject{number}.dat").write_text("\n".join(lines) + "\n")


def test_cli_evaluates_z_scored_benchmark(watch_corpus, tiny_encoder_dir, tmp_path, capsys):
    write_pamap2_from_watch(
        tmp_path / "PAMAP2_Dataset" / "Protocol", watch_corpus, sorted(set(watch_corpus.subject_ids))[:5]
    )
    code = main(
        ["evaluate", "--model", str(tiny_encoder_dir), "--dataset", "pamap2-ankle", "--data-path", str(tmp_path)]
        + ["--protocol", "linear-probe", "--output-dir", str(tmp_path / "out"), "--max-folds", "2"]
    )
    assert code == 0
    results = load_evaluation_results(tmp_path / "out" / RESULTS_FILE)
    assert results["dataset"]["id"] == "pamap2-ankle"
    assert "first 2 of 5 folds run" in results["dataset"]["split"]
    assert "--dataset pamap2-ankle" in results["command"]
    assert len(results["folds"]) == 2
    assert all(len(fold["test_subjects"]) == 1 for fold in results["folds"])
    assert "| macro-F1 |" in capsys.readouterr().out


def test_absent_class_does_not_lower_fold_scores(small_watch):
    truth = np.array([0, 0, 1, 1, 1])
    scores = score_predictions(small_watch, truth, truth.copy())
    assert scores["macro_f1"] == 1.0
    assert scores["cohen_kappa"] == 1.0
    assert len(scores["confusion_matrix"]) == len(small_watch.label_names)
    assert np.isnan(scores["per_class_recall"][2])
    assert scores["per_class_recall"][:2] == [1.0, 1.0]


@pytest.mark.parametrize("name", ["wisdm", "mobgap-gait", "pamap2-hand", "opportunity", "hhar", "motionsense"])
def test_downloaded_dataset_needs_a_path(name):
    with pytest.raises(ValueError, match="pass their folder with --data-path"):
        load_evaluation_dataset(name)


# ---------------------------------------------------------------------------------------------------------------------
# Cases found by review


def test_split_without_validation_subjects_is_rejected():
    with pytest.raises(ValueError, match="at least one training and one validation subject"):
        make_subject_folds(np.array(["a", "b", "c"]), "kfold-2")


def test_linear_probe_handles_one_regression_target(magnitude_dataset, tiny_encoder_dir, tmp_path):
    single = replace(
        magnitude_dataset,
        label_names=["magnitude_mean"],
        targets=magnitude_dataset.targets[:, :1],
        target_units=["g"],
    )
    outcome = run_evaluation(
        tiny_encoder_dir, single, EvaluationSettings(protocol="linear-probe", max_folds=1), work_dir=tmp_path
    )
    assert outcome.predictions[0].predictions.shape == (len(outcome.predictions[0].test), 1)
    assert outcome.results["folds"][0]["magnitude_mean"]["pearson_r"] > 0.5


def test_finetune_from_a_head_trains_a_new_head(small_watch, magnitude_dataset, tiny_encoder_dir, tmp_path):
    settings = EvaluationSettings(protocol="finetune", epochs=1, batch_size=32)
    head_dir = save_final_model(tiny_encoder_dir, small_watch, settings, tmp_path / "head")
    saved_head = RelConForSequenceClassification.from_pretrained(head_dir)

    # A regression head with another number of outputs, and a classifier with the same number of classes.
    for dataset, name in ((magnitude_dataset, "regression"), (small_watch, "classification")):
        run_evaluation(head_dir, dataset, replace(settings, max_folds=1), work_dir=tmp_path / name)
        model = RelConForSequenceClassification.from_pretrained(tmp_path / name / "fold_0")
        assert model.config.num_labels == len(dataset.label_names)

    # The classifier run starts from a new head, not from the saved one: its weights differ after training.
    new_weights = model.classifier.state_dict()
    old_weights = saved_head.classifier.state_dict()
    assert any(not torch.equal(new_weights[key], old_weights[key]) for key in new_weights)
    assert torch.equal(
        RelConModel.from_pretrained(head_dir).state_dict()["stem.conv.weight"],
        saved_head.relcon.state_dict()["stem.conv.weight"],
    )


def test_fold_runs_start_clean(small_watch, tiny_encoder_dir, tmp_path):
    settings = EvaluationSettings(protocol="scratch", epochs=1, batch_size=32, max_folds=1)
    for _ in range(2):
        run_evaluation(tiny_encoder_dir, small_watch, settings, work_dir=tmp_path)
    log = (tmp_path / "fold_0" / "training_log.jsonl").read_text().splitlines()
    assert sum("eval_loss" in line for line in log) == 1


def test_regression_head_standardises_with_training_targets(magnitude_dataset, tiny_encoder_dir, tmp_path):
    settings = EvaluationSettings(protocol="finetune", epochs=1, batch_size=32, max_folds=1)
    run_evaluation(tiny_encoder_dir, magnitude_dataset, settings, work_dir=tmp_path)
    fold = make_subject_folds(magnitude_dataset.subjects, "kfold-5", seed=0)[0]
    config = RelConForSequenceClassification.from_pretrained(tmp_path / "fold_0").config
    expected = magnitude_dataset.targets[fold.train].astype(np.float64)
    assert config.target_mean == pytest.approx(expected.mean(axis=0).tolist(), rel=1e-6)
    assert config.target_std == pytest.approx(expected.std(axis=0).tolist(), rel=1e-6)


def test_input_standardisation_applied_in_forward():
    torch.manual_seed(0)
    plain = RelConForSequenceClassification(RelConConfig(**TINY_ENCODER, num_labels=2)).eval()
    config = RelConConfig(**TINY_ENCODER, num_labels=2, input_mean=[0.1, -0.2, 1.0], input_std=[0.5, 0.25, 2.0])
    standardising = RelConForSequenceClassification(config).eval()
    standardising.load_state_dict(plain.state_dict())
    inputs = torch.randn(2, 256, 3)
    expected = plain((inputs - torch.tensor([0.1, -0.2, 1.0])) / torch.tensor([0.5, 0.25, 2.0])).logits
    assert torch.allclose(standardising(inputs).logits, expected, atol=1e-6)


def test_cli_rejects_missing_model_before_reading_data(tmp_path, capsys):
    code = main(
        ["evaluate", "--model", str(tmp_path / "missing"), "--dataset", "wisdm", "--protocol", "linear-probe"]
        + ["--output-dir", str(tmp_path / "out")]
    )
    assert code == 2
    assert "No RelCon checkpoint could be read" in capsys.readouterr().err


def test_cli_rejects_a_used_save_model_folder(tiny_encoder_dir, tmp_path, capsys):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    code = main(
        ["evaluate", "--model", str(tiny_encoder_dir), "--dataset", "watch", "--protocol", "finetune"]
        + ["--output-dir", str(tmp_path / "out"), "--save-model", str(tmp_path / "model")]
    )
    assert code == 2
    assert "already contains files" in capsys.readouterr().err
