"""Bad input on the model side: every case either gives a defined result or raises ValueError naming the argument.

Also property-based tests (hypothesis) that drive the feature extractor and the encoder with random shapes, rates,
dtypes and values, and the bf16 autocast comparison with float32 on real and loud (+-16 g) windows.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as npst

from relcon_hf import RelConConfig, RelConDistanceConfig, RelConDistanceModel, RelConFeatureExtractor, RelConModel
from relcon_hf.modeling.modeling_relcon import MAX_ABS_ACCELERATION


TINY_ENCODER = {
    "stem_channels": 8,
    "stage_num_blocks": [1, 1],
    "stage_channels": [8, 16],
    "stage_kernel_sizes": [3, 4],
}
TINY_DISTANCE = {"hidden_size": 16, "bottleneck_size": 4}
# Few examples keep each property test to seconds; the strategies aim them at the edges (empty, short, NaN, huge).
PROPERTY_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def encoder() -> RelConModel:
    torch.manual_seed(0)
    return RelConModel(RelConConfig(**TINY_ENCODER)).eval()


@pytest.fixture(scope="module")
def distance() -> RelConDistanceModel:
    torch.manual_seed(0)
    return RelConDistanceModel(RelConDistanceConfig(**TINY_DISTANCE)).eval()


@pytest.fixture(scope="module")
def real_windows(watch_corpus) -> torch.Tensor:
    """Real 256-sample windows in g at 100 Hz: four from every tenth recording of the watch corpus (56 in all)."""
    extractor = RelConFeatureExtractor()
    windows = [
        extractor(recording[:, :3], sampling_rate=watch_corpus.sampling_rate, return_tensors="pt")["input_values"][:4]
        for recording in watch_corpus.recordings[::10]
    ]
    return torch.cat(windows)


def windows(batch: int = 2, length: int = 256, channels: int = 3) -> torch.Tensor:
    return torch.randn(batch, length, channels, generator=torch.Generator().manual_seed(1))


# ---------------------------------------------------------------------------------------------------------------------
# Non-finite and extreme values


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf"), -float("inf")])
def test_encoder_rejects_non_finite_samples(encoder, bad_value):
    values = windows(batch=3)
    values[1, 10, 0] = bad_value
    values[1, 11, 2] = bad_value

    with pytest.raises(ValueError, match="`input_values` must hold finite") as error:
        encoder(values)
    assert "got 2 NaN or infinite values in 1 windows (first: [1])" in str(error.value)


@pytest.mark.parametrize("argument", ["anchor_values", "candidate_values"])
def test_distance_rejects_non_finite_samples_by_name(distance, argument):
    inputs = {"anchor_values": windows(), "candidate_values": windows()}
    inputs[argument][0, 0, 0] = float("nan")

    with pytest.raises(ValueError, match=f"`{argument}` must hold finite"):
        distance(**inputs)
    with pytest.raises(ValueError, match=f"`{argument}` must hold finite"):
        distance.distances_for_pairs(**inputs, anchor_index=torch.tensor([0]), candidate_index=torch.tensor([1]))


def test_extreme_magnitudes_rejected_above_limit(encoder, distance):
    loud = windows() / windows().abs().max() * MAX_ABS_ACCELERATION
    too_loud = loud.clone()
    too_loud[0, 0, 0] = 2 * MAX_ABS_ACCELERATION

    with torch.no_grad():
        embeddings = encoder(loud).pooler_output
        distances = distance(loud, loud.flip(0)).distance
    assert torch.isfinite(embeddings).all()
    assert torch.isfinite(distances).all()
    with pytest.raises(ValueError, match=r"absolute values up to 10000, got a maximum absolute value of 2e\+04"):
        encoder(too_loud)
    with pytest.raises(ValueError, match="`candidate_values` must be acceleration in g"):
        distance(loud, too_loud)


def test_extractor_rejects_raw_counts():
    """Raw sensor counts passed as g exceed the limit; the same numbers read as m/s^2 (1671 g) are within it."""
    counts = np.full((500, 3), 2048 * 8, dtype=np.int16)

    with pytest.raises(ValueError, match=r"Recording 0 must be acceleration with absolute values up to 10000 g"):
        RelConFeatureExtractor()(counts, sampling_rate=100)
    result = RelConFeatureExtractor()(counts, sampling_rate=100, unit="m/s^2")
    assert np.allclose(result["input_values"][0], 2048 * 8 / 9.80665)


# ---------------------------------------------------------------------------------------------------------------------
# Constant windows


def test_revin_constant_window_uses_eps(distance):
    """Zero variance: the standard deviation is sqrt(eps), so normalising divides by sqrt(1e-5), not by zero."""
    constant = torch.full((1, 256, 3), 0.98)

    mean, std = distance.revin.statistics(constant)

    assert torch.allclose(mean, torch.full((1, 1, 3), 0.98))
    assert torch.allclose(std, torch.full((1, 1, 3), math.sqrt(1e-5)))
    # The float32 mean of 256 equal values is off by rounding, so the result is near 0, bounded because std >= 3e-3.
    assert distance.revin.normalize(constant, mean, std).abs().max() < 1e-3


@pytest.mark.parametrize("attention", ["sparsemax", "softmax"])
def test_constant_candidate_trains_with_finite_gradients(attention):
    torch.manual_seed(0)
    model = RelConDistanceModel(RelConDistanceConfig(**TINY_DISTANCE, attention=attention)).train()
    anchors = windows()
    candidates = torch.ones(2, 256, 3)  # a watch lying still, gravity on every axis

    output = model(anchors, candidates)
    output.loss.backward()

    assert torch.isfinite(output.distance).all()
    for name, parameter in model.named_parameters():
        assert parameter.grad is None or torch.isfinite(parameter.grad).all(), name


def test_encoder_constant_window_in_training_mode():
    torch.manual_seed(0)
    model = RelConModel(RelConConfig(**TINY_ENCODER)).train()

    embeddings = model(torch.zeros(1, 256, 3)).pooler_output

    assert torch.isfinite(embeddings).all()


# ---------------------------------------------------------------------------------------------------------------------
# Shapes and dtypes


@pytest.mark.parametrize(
    "shape, message",
    [
        ((256, 3), r"rank 2 with shape \(256, 3\)\. Add a batch dimension"),
        ((3, 256), r"looks like one channels-first window; pass `input_values.T\[None\]`"),
        ((1, 2, 256, 3), r"rank 4 with shape \(1, 2, 256, 3\)"),
        ((2, 256, 4), r"must have shape \(batch_size, sequence_length, 3\) with the axes last, got \(2, 256, 4\)\.$"),
        ((2, 3, 256), r"got \(2, 3, 256\)\. The tensor looks channels-first; pass `input_values.transpose\(1, 2\)`"),
        ((0, 256, 3), r"must contain at least one window, got shape \(0, 256, 3\)"),
        ((2, 0, 3), r"at least 11 samples long for this encoder, got sequence_length 0"),
        ((2, 10, 3), r"at least 11 samples long for this encoder, got sequence_length 10"),
    ],
)
def test_encoder_names_expected_and_received_shape(encoder, shape, message):
    with pytest.raises(ValueError, match=message):
        encoder(torch.zeros(shape))


def test_ambiguous_square_window_is_read_time_first(encoder):
    """(batch, 3, 3) could be either layout; it is read as 3 time steps and rejected as too short, not transposed."""
    with pytest.raises(ValueError, match="got sequence_length 3"):
        encoder(torch.zeros(2, 3, 3))


def test_window_shorter_than_receptive_field_is_zero_padded(encoder):
    """Windows from the stem's minimum up to the receptive field work: the 'same' convolutions read zero padding."""
    config = encoder.config
    assert config.min_sequence_length < 32 < config.receptive_field

    with torch.no_grad():
        short = encoder(windows(length=config.min_sequence_length)).pooler_output
        medium = encoder(windows(length=32)).pooler_output

    assert short.shape == medium.shape == (2, config.hidden_size)
    assert torch.isfinite(short).all()
    assert torch.isfinite(medium).all()


def test_paper_encoder_receptive_field_exceeds_pretraining_window():
    assert RelConConfig().receptive_field > RelConConfig().window_length


@pytest.mark.parametrize("dtype", [torch.int16, torch.int32, torch.int64, torch.float64, torch.float16])
def test_encoder_casts_input_dtypes(encoder, dtype):
    values = torch.randint(-2, 3, (2, 256, 3))

    with torch.no_grad():
        expected = encoder(values.float()).pooler_output
        result = encoder(values.to(dtype)).pooler_output

    assert result.dtype == torch.float32
    assert torch.equal(result, expected)


@pytest.mark.parametrize("dtype", [torch.int16, torch.float64])
def test_models_cast_input_dtypes_under_autocast(encoder, distance, dtype):
    values = torch.randint(-2, 3, (2, 256, 3)).to(dtype)

    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        embeddings = encoder(values).pooler_output
        distances = distance(values, values.flip(0)).distance
        pair_distances = distance.distances_for_pairs(
            values, values, anchor_index=torch.tensor([0, 1]), candidate_index=torch.tensor([1, 0])
        )

    assert torch.isfinite(embeddings).all()
    assert torch.isfinite(distances).all()
    assert torch.isfinite(pair_distances).all()


def test_bool_and_complex_input_raise_type_error(encoder):
    with pytest.raises(TypeError, match="must hold real acceleration values"):
        encoder(torch.zeros(2, 256, 3, dtype=torch.bool))
    with pytest.raises(TypeError, match="must hold real acceleration values"):
        encoder(torch.zeros(2, 256, 3, dtype=torch.complex64))


# ---------------------------------------------------------------------------------------------------------------------
# Batch of one in training mode


def test_encoder_trains_on_one_window():
    torch.manual_seed(0)
    model = RelConModel(RelConConfig(**TINY_ENCODER)).train()
    running_mean = model.stem.norm.running_mean.clone()

    embeddings = model(windows(batch=1)).pooler_output
    embeddings.sum().backward()

    assert torch.isfinite(embeddings).all()
    assert not torch.equal(model.stem.norm.running_mean, running_mean)
    assert all(torch.isfinite(parameter.grad).all() for parameter in model.parameters() if parameter.grad is not None)


def test_batch_norm_starved_input_names_shape():
    """One window of the minimum length leaves one time step after the stem: too few for batch statistics."""
    model = RelConModel(RelConConfig(**TINY_ENCODER)).train()
    length = model.config.min_sequence_length
    # The next length with 2 steps after the stem: one more stem stride times pool stride (2 x 2 samples).
    long_enough = length + 4

    with pytest.raises(ValueError, match=rf"shape \(1, {length}, 3\) leave 1 x 1 time step.*at least {long_enough}"):
        model(torch.randn(1, length, 3))
    assert torch.isfinite(model(torch.randn(1, long_enough, 3)).pooler_output).all()
    assert torch.isfinite(model(torch.randn(2, length, 3)).pooler_output).all()
    assert torch.isfinite(model.eval()(torch.randn(1, length, 3)).pooler_output).all()


def test_distance_batch_of_one_in_training_mode():
    torch.manual_seed(0)
    model = RelConDistanceModel(RelConDistanceConfig(**TINY_DISTANCE)).train()

    output = model(windows(batch=1), windows(batch=1).flip(1))
    output.loss.backward()

    assert output.distance.shape == (1,)
    assert torch.isfinite(output.loss)


# ---------------------------------------------------------------------------------------------------------------------
# Property-based tests


@st.composite
def recordings(draw) -> tuple[np.ndarray, float, str, int]:
    length = draw(st.integers(min_value=0, max_value=1500))
    channels = draw(st.sampled_from([3, 3, 3, 2, 4]))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int16]))
    if dtype == np.int16:
        elements = st.integers(min_value=-200, max_value=200)
    else:
        elements = st.floats(min_value=-1e6, max_value=1e6, width=32) | st.floats(
            min_value=-16, max_value=16, width=32
        )
        if draw(st.booleans()):
            elements = elements | st.just(float("nan"))
    values = draw(npst.arrays(dtype, (length, channels), elements=elements))
    rate = draw(st.sampled_from([12.5, 20.0, 30.0, 50.0, 64.0, 100.0, 128.0, 200.0]) | st.floats(5.0, 400.0))
    unit = draw(st.sampled_from(["g", "m/s^2"]))
    window_length = draw(st.integers(min_value=1, max_value=400))
    return values, rate, unit, window_length


@PROPERTY_SETTINGS
@given(recordings())
def test_extractor_property_windows_or_value_error(recording):
    values, rate, unit, window_length = recording
    extractor = RelConFeatureExtractor()
    try:
        result = extractor(values, sampling_rate=rate, unit=unit, window_length=window_length, return_tensors="np")
    except ValueError as error:
        message = str(error)
        as_float = values.astype(np.float64)
        in_g = as_float / 9.80665 if unit == "m/s^2" else as_float
        reasons = [
            values.shape[0] == 0 and "is empty" in message,
            values.shape[1] != 3 and "must have shape (time, 3)" in message,
            not np.isfinite(as_float).all() and "NaN or infinite" in message,
            np.isfinite(in_g).all()
            and np.abs(in_g).max(initial=0) > MAX_ABS_ACCELERATION
            and "up to 10000 g" in message,
            "long enough for one window" in message,
            "Cannot resample" in message,
        ]
        assert any(reasons), message
        return

    output = result["input_values"]
    # Length after resampling: time * 100 / rate, within one sample (rounding) and the 0.1 % rate tolerance. The hop
    # defaults to the window length, so n samples give (n - window_length) // window_length + 1 windows.
    expected_length = values.shape[0] * 100 / rate
    shortest = math.floor(expected_length * 0.999) - 1
    longest = math.ceil(expected_length * 1.001) + 1

    def num_windows(length: int) -> int:
        return max(0, (length - window_length) // window_length + 1)

    assert output.dtype == np.float32
    assert output.shape[1:] == (window_length, 3)
    assert num_windows(shortest) <= output.shape[0] <= num_windows(longest)
    assert np.isfinite(output).all()


@st.composite
def model_inputs(draw) -> torch.Tensor:
    rank = draw(st.sampled_from([3, 3, 3, 2, 4]))
    shape = [draw(st.integers(min_value=0, max_value=3))]  # batch
    shape.append(draw(st.integers(min_value=0, max_value=300)))  # time
    shape.append(draw(st.sampled_from([3, 3, 3, 1, 4])))  # channels
    shape = shape[:rank] if rank < 3 else shape + [2] * (rank - 3)
    dtype = draw(st.sampled_from([torch.float32, torch.float64, torch.float16, torch.int32]))
    special = draw(st.sampled_from([None, float("nan"), float("inf"), 1e5, 16.0]))
    values = torch.randn(shape, generator=torch.Generator().manual_seed(draw(st.integers(0, 2**16)))) * 4
    if special is not None and values.numel():
        values.view(-1)[draw(st.integers(0, values.numel() - 1))] = special
    return values.to(dtype)


@pytest.fixture(scope="module")
def property_encoder() -> RelConModel:
    """An encoder of its own: training-mode calls change its BatchNorm statistics."""
    torch.manual_seed(0)
    return RelConModel(RelConConfig(**TINY_ENCODER))


@PROPERTY_SETTINGS
@given(model_inputs(), st.booleans())
def test_encoder_property_embeddings_or_value_error(property_encoder, values, training):
    encoder = property_encoder.train(training)
    config = encoder.config
    finite = values.numel() == 0 or torch.isfinite(values.double()).all()
    in_range = values.numel() == 0 or values.double().abs().max() <= MAX_ABS_ACCELERATION
    well_formed = values.ndim == 3 and values.shape[0] > 0 and values.shape[2] == 3
    long_enough = well_formed and values.shape[1] >= config.min_sequence_length
    if training and long_enough:
        stem = (values.shape[1] - config.stem_kernel_size) // config.stem_stride + 1
        long_enough = values.shape[0] * ((stem - config.stem_pool_kernel_size) // config.stem_pool_stride + 1) > 1
    try:
        with torch.no_grad():
            embeddings = encoder(values).pooler_output
    except ValueError as error:
        assert "`input_values`" in str(error)
        valid = finite and in_range and long_enough
        assert not valid, str(error)
        return

    assert finite
    assert in_range
    assert long_enough
    assert embeddings.shape == (values.shape[0], config.hidden_size)
    assert torch.isfinite(embeddings).all()


# ---------------------------------------------------------------------------------------------------------------------
# Mixed precision (bf16 autocast on CPU) against float32
#
# Tolerances: bf16 keeps 8 significant bits, a relative rounding error of at most 2^-9 (0.2 %) per operation. The
# embeddings are compared by relative L2 error (at most 2 %) and cosine similarity (at least 0.999). The distances sum
# squared errors of a bf16 reconstruction, so their relative error may be larger (at most 3 %). The Spearman rank
# correlation of each anchor's 8 candidates must be at least 0.9, which allows a few swaps of near ties. The models are
# randomly initialised with seed 0; the paper-sized encoder and distance are used.


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> torch.Tensor:
    return (actual.float() - expected).norm(dim=-1) / expected.norm(dim=-1)


def spearman(first: torch.Tensor, second: torch.Tensor) -> float:
    ranks = [values.argsort().argsort().double() for values in (first, second)]
    return float(torch.corrcoef(torch.stack(ranks))[0, 1])


@pytest.mark.parametrize("loudness", ["as recorded", "scaled to 16 g"])
def test_bf16_autocast_matches_float32(real_windows, loudness):
    values = real_windows
    if loudness == "scaled to 16 g":
        values = values / values.abs().amax(dim=(1, 2), keepdim=True) * 16
    assert values.abs().max() <= 16
    torch.manual_seed(0)
    encoder = RelConModel(RelConConfig()).eval()
    distance = RelConDistanceModel(RelConDistanceConfig()).eval()
    anchors = values[:8].repeat_interleave(8, dim=0)
    candidates = values[8:16].repeat(8, 1, 1)

    with torch.no_grad():
        embeddings = encoder(values[:24]).pooler_output
        distances = distance(anchors, candidates).distance
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16_embeddings = encoder(values[:24]).pooler_output
            bf16_distances = distance(anchors, candidates).distance

    assert bf16_embeddings.dtype == torch.bfloat16
    assert torch.isfinite(bf16_embeddings).all()
    assert torch.isfinite(bf16_distances).all()
    assert relative_error(bf16_embeddings, embeddings).max() <= 0.02
    cosine = torch.nn.functional.cosine_similarity(bf16_embeddings.float(), embeddings, dim=1)
    assert cosine.min() >= 0.999
    assert ((bf16_distances - distances).abs() / distances).max() <= 0.03
    for anchor in range(8):
        rows = slice(8 * anchor, 8 * anchor + 8)
        assert spearman(bf16_distances[rows], distances[rows]) >= 0.9, anchor
