"""Tests of ONNX and TorchScript export, run with onnxruntime and torch.jit on real watch windows."""

import json

import numpy as np
import pytest
import torch

from relcon_hf import RelConConfig, RelConFeatureExtractor, RelConForSequenceClassification, RelConModel
from relcon_hf.cli import main
from relcon_hf.export import export_model


SMALL_ENCODER = {
    "stem_channels": 16,
    "stage_channels": [16, 32],
    "stage_num_blocks": [1, 1],
    "stage_kernel_sizes": [5, 3],
}


@pytest.fixture(scope="module")
def real_windows(watch_corpus) -> np.ndarray:
    """24 windows of 256 samples at 100 Hz from three watch recordings."""
    extractor = RelConFeatureExtractor()
    windows = [
        extractor(recording, sampling_rate=watch_corpus.sampling_rate, return_tensors="np")["input_values"][:8]
        for recording in watch_corpus.recordings[:3]
    ]
    return np.concatenate(windows)


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
    config = RelConConfig(**SMALL_ENCODER, num_labels=3, id2label={0: "a", 1: "b", 2: "c"})
    RelConForSequenceClassification(config).save_pretrained(folder)
    return folder


def test_onnx_encoder_matches_pytorch(encoder_dir, real_windows, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    path = tmp_path / "encoder.onnx"

    report = export_model(encoder_dir, path, check_windows=real_windows[:4])

    assert report.output_names == ["embeddings"]
    assert report.max_abs_difference["embeddings"] < 1e-4
    # A batch size other than the export example's, on windows the export never saw.
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (actual,) = session.run(None, {"input_values": real_windows[4:17]})
    model = RelConModel.from_pretrained(encoder_dir).eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(real_windows[4:17])).pooler_output.numpy()
    assert actual.shape == (13, 32)
    assert np.abs(actual - expected).max() < 1e-4


def test_onnx_head_returns_logits(head_dir, real_windows, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    path = tmp_path / "head.onnx"

    report = export_model(head_dir, path, check_windows=real_windows)

    assert report.output_names == ["embeddings", "logits"]
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    embeddings, logits = session.run(None, {"input_values": real_windows})
    model = RelConForSequenceClassification.from_pretrained(head_dir).eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(real_windows))
    assert np.abs(logits - expected.logits.numpy()).max() < 1e-4
    assert np.abs(embeddings - expected.embeddings.numpy()).max() < 1e-4


def test_torchscript_export_matches_pytorch(encoder_dir, real_windows, tmp_path):
    path = tmp_path / "encoder.pt"

    report = export_model(encoder_dir, path, format="torchscript", check_windows=real_windows)

    loaded = torch.jit.load(str(path))
    with torch.no_grad():
        (actual,) = loaded(torch.from_numpy(real_windows[:5]))
        expected = RelConModel.from_pretrained(encoder_dir).eval()(torch.from_numpy(real_windows[:5])).pooler_output
    assert report.max_abs_difference["embeddings"] < 1e-4
    assert torch.allclose(actual, expected, atol=1e-5)


def test_export_rejects_bad_arguments(encoder_dir, tmp_path):
    with pytest.raises(ValueError, match="format"):
        export_model(encoder_dir, tmp_path / "model.tflite", format="tflite")
    with pytest.raises(ValueError, match="check_windows"):
        export_model(encoder_dir, tmp_path / "model.pt", format="torchscript", check_windows=np.zeros((2, 128, 3)))


def test_export_cli_checks_on_recording(encoder_dir, test_data_dir, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    output = tmp_path / "encoder.onnx"
    recording = test_data_dir / "mgait" / "data__data_wrist.csv"

    status = main(
        [
            "export",
            "--model",
            str(encoder_dir),
            "--output",
            str(output),
            "--check-recording",
            str(recording),
            "--sampling-rate",
            "100",
        ]
    )

    assert status == 0
    assert capsys.readouterr().out.strip().endswith(str(output))
    report = json.loads(output.with_name(output.name + ".json").read_text())
    assert report["num_check_windows"] == 10
    assert report["max_abs_difference"]["embeddings"] < 1e-4
