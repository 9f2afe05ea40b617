"""Tests of the feature extractor: resampling, unit conversion, windowing and input checks."""

import numpy as np
import pytest
import scipy.signal
import torch
from transformers import AutoFeatureExtractor

import relcon_hf  # noqa: F401  (registers the Auto classes)
from relcon_hf import RelConConfig, RelConFeatureExtractor, RelConModel
from relcon_hf.modeling.feature_extraction_relcon import (
    STANDARD_GRAVITY,
    resample_polyphase,
    resampling_factors,
)


def sine_recording(frequency: float, rate: float, seconds: float) -> np.ndarray:
    """Three axes: a sine of `frequency` Hz on x, its cosine on y and 1 g of gravity on z."""
    t = np.arange(int(round(seconds * rate))) / rate
    return np.stack([np.sin(2 * np.pi * frequency * t), np.cos(2 * np.pi * frequency * t), np.ones_like(t)], axis=1)


def test_resampled_sine_keeps_its_frequency():
    extractor = RelConFeatureExtractor()
    recording = sine_recording(2.0, rate=50, seconds=20)

    output = extractor(recording, sampling_rate=50, window_length=None)["input_values"][0]

    assert output.shape == (2000, 3)
    spectrum = np.abs(np.fft.rfft(output[:, 0]))
    frequencies = np.fft.rfftfreq(len(output), d=1 / 100)
    assert frequencies[np.argmax(spectrum)] == pytest.approx(2.0, abs=0.05)
    # Away from the edges the samples are the 2 Hz sine at the new sample times, up to the filter's passband ripple.
    t = np.arange(2000) / 100
    assert np.abs(output[100:-100, 0] - np.sin(2 * np.pi * 2.0 * t[100:-100])).max() < 5e-3
    assert np.abs(output[:, 2] - 1.0).max() < 1e-5


@pytest.mark.parametrize(("up", "down"), [(2, 1), (5, 1), (10, 3), (25, 16), (1, 2)])
def test_polyphase_matches_scipy_with_edge_padding(up, down):
    values = np.random.default_rng(0).standard_normal((700, 3)) + np.array([0.0, 0.0, 1.0])

    ours = resample_polyphase(values, up, down)
    reference = scipy.signal.resample_poly(values, up, down, axis=0, padtype="edge")

    assert ours.shape == reference.shape
    # The only difference is the unit DC gain of each polyphase branch, a correction below 0.2 %.
    assert np.abs(ours - reference).max() < 2e-3 * np.abs(reference).max()


@pytest.mark.parametrize(("up", "down"), [(2, 1), (10, 3), (25, 16)])
def test_polyphase_keeps_a_constant_constant(up, down):
    gravity = np.tile(np.array([[0.1, -0.2, 0.98]]), (500, 1))

    output = resample_polyphase(gravity, up, down)

    assert np.abs(output - gravity[:1]).max() < 1e-12


def test_polyphase_removes_content_above_the_new_nyquist():
    # A 40 Hz tone at 100 Hz must not alias into the 25 Hz band of a 50 Hz output.
    t = np.arange(5000) / 100
    tone = np.sin(2 * np.pi * 40 * t)[:, None].repeat(3, axis=1)

    output = resample_polyphase(tone, 1, 2)

    assert np.abs(output[200:-200]).max() < 0.01


@pytest.mark.parametrize(
    ("rate", "expected"), [(50, (2, 1)), (30, (10, 3)), (64, (25, 16)), (25.6, (125, 32)), (100, (1, 1))]
)
def test_resampling_factors(rate, expected):
    assert resampling_factors(rate, 100) == expected


def test_unit_conversion_from_m_s2():
    extractor = RelConFeatureExtractor()
    recording = np.tile(np.array([[0.0, 0.0, STANDARD_GRAVITY]]), (512, 1))

    output = extractor(recording, sampling_rate=100, unit="m/s^2")["input_values"]

    assert np.allclose(output[..., 2], 1.0, atol=1e-6)
    assert np.allclose(output[..., :2], 0.0, atol=1e-6)


def test_m_s2_passed_as_g_warns(caplog):
    extractor = RelConFeatureExtractor()
    recording = np.tile(np.array([[0.0, 0.0, STANDARD_GRAVITY]]), (512, 1))

    with caplog.at_level("WARNING"):
        extractor(recording, sampling_rate=100, unit="g")

    assert "looks like m/s^2" in caplog.text


def test_windows_with_hop_and_positions():
    extractor = RelConFeatureExtractor(window_length=256, hop_length=128)
    recordings = [np.zeros((1000, 3)), np.zeros((300, 3))]

    features = extractor(recordings, sampling_rate=100, return_window_positions=True)

    # (1000 - 256) // 128 + 1 = 6 windows, and (300 - 256) // 128 + 1 = 1.
    assert features["input_values"].shape == (7, 256, 3)
    assert features["recording_index"].tolist() == [0] * 6 + [1]
    assert features["window_start"].tolist() == [0.0, 1.28, 2.56, 3.84, 5.12, 6.4, 0.0]
    assert features["input_values"].dtype == np.float32


def test_window_contents_follow_the_recording():
    extractor = RelConFeatureExtractor()
    recording = np.arange(600 * 3, dtype=np.float64).reshape(600, 3)

    windows = extractor(recording, sampling_rate=100, window_length=200, hop_length=150)["input_values"]

    assert windows.shape == (3, 200, 3)
    assert np.array_equal(windows[1], recording[150:350].astype(np.float32))


def test_explicit_window_length_overrides_default_hop():
    extractor = RelConFeatureExtractor(window_length=256, hop_length=128)

    windows = extractor(np.zeros((3000, 3)), sampling_rate=100, window_length=1000)["input_values"]

    assert windows.shape == (3, 1000, 3)


def test_short_recording_is_skipped_with_a_warning(caplog):
    extractor = RelConFeatureExtractor()

    with caplog.at_level("WARNING"):
        features = extractor([np.zeros((512, 3)), np.zeros((100, 3))], sampling_rate=100)

    assert features["input_values"].shape == (2, 256, 3)
    assert "recording 1: 100 samples" in caplog.text


def test_torch_tensors_and_batched_arrays():
    extractor = RelConFeatureExtractor()

    from_tensor = extractor(torch.zeros(512, 3), sampling_rate=100, return_tensors="pt")["input_values"]
    from_batch = extractor(np.zeros((2, 512, 3)), sampling_rate=100)["input_values"]

    assert isinstance(from_tensor, torch.Tensor)
    assert from_tensor.shape == (2, 256, 3)
    assert from_batch.shape == (4, 256, 3)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"sampling_rate": None}, r"`sampling_rate` is required.*expects 100 Hz"),
        ({"sampling_rate": [50, 50, 50]}, r"Got 3 values of `sampling_rate` for 1 recordings"),
        ({"sampling_rate": 0}, r"`sampling_rate` must be a positive, finite number of Hz, got 0"),
        ({"sampling_rate": float("inf")}, r"`sampling_rate` must be a positive, finite number of Hz, got inf"),
        ({"sampling_rate": 1e-3}, r"Cannot resample recording 0 from 0.001 Hz to 100 Hz"),
        ({"sampling_rate": 1e6}, r"Cannot resample recording 0 from 1000000.0 Hz to 100 Hz"),
        ({"sampling_rate": 100, "unit": "mg"}, r"`unit` must be one of 'g', 'm/s\^2', got 'mg'"),
        ({"sampling_rate": 100, "window_length": 0}, r"`window_length` must be a positive number"),
        ({"sampling_rate": 100, "window_length": 5000}, r"No recording is long enough for one window of 5000"),
    ],
)
def test_extractor_rejects_invalid_arguments(arguments, message):
    extractor = RelConFeatureExtractor()

    with pytest.raises(ValueError, match=message):
        extractor(np.zeros((1000, 3)), **arguments)


def test_extractor_without_resampling_names_both_rates():
    extractor = RelConFeatureExtractor(do_resample=False)

    with pytest.raises(ValueError, match=r"sampled at 50 Hz but the model expects 100 Hz"):
        extractor(np.zeros((1000, 3)), sampling_rate=50)


@pytest.mark.parametrize(
    ("recording", "message"),
    [
        (np.zeros((3, 1000)), r"got \(3, 1000\). It looks channels-first; pass `recording.T`"),
        (np.zeros((1000, 4)), r"must have shape \(time, 3\)"),
        (np.zeros((0, 3)), r"is empty"),
        (np.zeros(1000), r"must have shape \(time, 3\), \(num_recordings, time, 3\)"),
    ],
)
def test_extractor_rejects_invalid_recordings(recording, message):
    with pytest.raises(ValueError, match=message):
        RelConFeatureExtractor()(recording, sampling_rate=100)


def test_extractor_rejects_non_finite_samples():
    recording = np.zeros((1000, 3))
    recording[10, 1] = np.nan
    recording[20, 0] = np.inf

    with pytest.raises(ValueError, match="Recording 0 contains 2 samples with NaN or infinite values"):
        RelConFeatureExtractor()(recording, sampling_rate=100)


def test_extractor_save_and_auto_load(tmp_path):
    RelConFeatureExtractor(window_length=1000, hop_length=500).save_pretrained(tmp_path)

    loaded = AutoFeatureExtractor.from_pretrained(tmp_path)

    assert isinstance(loaded, RelConFeatureExtractor)
    assert loaded.window_length == 1000
    assert loaded.hop_length == 500
    assert loaded.sampling_rate == 100


def test_extractor_output_feeds_the_model(watch_corpus):
    extractor = RelConFeatureExtractor()
    model = RelConModel(RelConConfig(stage_num_blocks=[1, 1, 1])).eval()

    inputs = extractor(watch_corpus.recordings[0], sampling_rate=watch_corpus.sampling_rate, return_tensors="pt")
    with torch.no_grad():
        embeddings = model(**inputs).pooler_output

    assert embeddings.shape == (inputs["input_values"].shape[0], 256)
    assert torch.isfinite(embeddings).all()
