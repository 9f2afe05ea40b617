# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Tests for relcon_hf.augmentations on real wrist accelerometry from the seglearn watch dataset."""

import functools
import importlib.metadata
import itertools
import math
import re

import numpy as np
import pytest
import torch

from relcon_hf import augmentations
from relcon_hf.augmentations import (
    AUGMENTATION_NAMES,
    AUGMENTATIONS,
    add_gaussian_noise,
    augment,
    natural_cubic_spline,
    negate,
    permute_axes,
    permute_segments,
    random_rotation_matrices,
    reverse_time,
    rotate,
    scale_axes,
    time_warp,
)


WINDOW_LENGTH = 256
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
RANDOM_AUGMENTATIONS = [add_gaussian_noise, scale_axes, rotate, permute_axes, permute_segments, time_warp]


@functools.cache
def load_watch_windows(num_recordings: int = 16, windows_per_recording: int = 4) -> np.ndarray:
    """Cut non-overlapping 256-sample windows of 3-axis acceleration (g) from the seglearn watch dataset.

    The recordings are sampled at 50 Hz and used as they are, not resampled to the 100 Hz of RelCon, because the tests
    only need realistic signals. Returns a float32 array of shape (num_recordings * windows_per_recording, 256, 3).
    """
    try:
        distribution = importlib.metadata.distribution("seglearn")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("seglearn is not installed; install the test extra (pip install -e '.[test]').")
    path = distribution.locate_file("seglearn/data/watch_dataset.npy")
    recordings = np.load(path, allow_pickle=True).item()["X"]

    windows = []
    for recording in recordings[:num_recordings]:
        for index in range(windows_per_recording):
            start = index * WINDOW_LENGTH
            windows.append(recording[start : start + WINDOW_LENGTH, :3])
    return np.stack(windows).astype(np.float32)


@pytest.fixture
def windows() -> torch.Tensor:
    return torch.from_numpy(load_watch_windows().copy())


def make_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def index_encoded_windows(batch_size: int, num_channels: int = 3) -> torch.Tensor:
    """Windows whose channel c is `step + 1000 c`, so an output value tells which input step it came from."""
    steps = torch.arange(WINDOW_LENGTH, dtype=torch.float64)[None, :, None]
    offsets = 1000.0 * torch.arange(num_channels, dtype=torch.float64)[None, None, :]
    return (steps + offsets).expand(batch_size, WINDOW_LENGTH, num_channels).clone()


def recover_linear_maps(inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
    """Solve outputs[b] = inputs[b] @ maps[b].mT for the (3, 3) maps by least squares, in float64."""
    transposed = torch.linalg.lstsq(inputs.double(), outputs.double()).solution
    return transposed.mT


def rotation_angles(matrices: torch.Tensor) -> torch.Tensor:
    """Rotation angle in [0, pi] of each (3, 3) rotation matrix, from its trace."""
    cosine = (matrices.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    return cosine.clamp(-1, 1).acos()


def test_watch_windows_are_realistic(windows):
    assert windows.shape == (64, WINDOW_LENGTH, 3)
    # Gravity alone gives a norm of about 1 g at rest.
    median_norm = torch.linalg.vector_norm(windows, dim=-1).median().item()
    assert 0.7 < median_norm < 1.5
    # Several tests recover channel permutations by matching columns, so no two columns of a window may be equal.
    for first, second in itertools.combinations(range(3), 2):
        assert not (windows[:, :, first] == windows[:, :, second]).all(dim=1).any()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("augmentation", AUGMENTATIONS, ids=AUGMENTATION_NAMES)
def test_augmentation_keeps_shape_dtype_device(windows, augmentation, dtype, device):
    inputs = windows[:8].to(device=device, dtype=dtype)
    original = inputs.clone()

    outputs = augmentation(inputs, make_generator(0, device))

    assert outputs.shape == inputs.shape
    assert outputs.dtype == dtype
    assert outputs.device == inputs.device
    assert torch.equal(inputs, original)
    assert outputs.data_ptr() != inputs.data_ptr()
    assert torch.isfinite(outputs.float()).all()


@pytest.mark.parametrize("augmentation", AUGMENTATIONS, ids=AUGMENTATION_NAMES)
def test_augmentation_accepts_empty_batch(augmentation):
    outputs = augmentation(torch.zeros(0, WINDOW_LENGTH, 3), make_generator(0))
    assert outputs.shape == (0, WINDOW_LENGTH, 3)


@pytest.mark.parametrize("augmentation", RANDOM_AUGMENTATIONS, ids=lambda function: function.__name__)
def test_augmentation_reproducible_from_seed(windows, augmentation):
    first = augmentation(windows, make_generator(1))
    repeated = augmentation(windows, make_generator(1))
    other_seed = augmentation(windows, make_generator(2))

    assert torch.equal(first, repeated)
    assert not torch.equal(first, other_seed)


@pytest.mark.parametrize("augmentation", AUGMENTATIONS, ids=AUGMENTATION_NAMES)
def test_augmentation_rejects_invalid_windows(augmentation):
    generator = make_generator(0)
    with pytest.raises(ValueError, match=re.escape("got a torch.float32 tensor of shape (256, 3)")):
        augmentation(torch.zeros(WINDOW_LENGTH, 3), generator)
    with pytest.raises(ValueError, match="`windows` must be a floating-point tensor"):
        augmentation(torch.zeros(2, WINDOW_LENGTH, 3, dtype=torch.int64), generator)
    with pytest.raises(ValueError, match="got an object of type list"):
        augmentation([[[0.0, 0.0, 0.0]]], generator)
    with pytest.raises(ValueError, match="`generator` must be a torch.Generator, got an object of type int"):
        augmentation(torch.zeros(2, WINDOW_LENGTH, 3), 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_augmentation_rejects_generator_on_other_device():
    with pytest.raises(ValueError, match="`generator` must be on the device of the windows"):
        add_gaussian_noise(torch.zeros(2, WINDOW_LENGTH, 3, device="cuda"), make_generator(0, "cpu"))


def test_add_gaussian_noise_matches_sigma(windows):
    for sigma in (0.1, 0.5):
        noise = add_gaussian_noise(windows, make_generator(3), sigma=sigma) - windows

        # With 49,152 samples the standard errors are sigma / 222 for the mean and sigma / 314 for the std.
        assert abs(noise.mean().item()) < 0.02 * sigma
        assert noise.std().item() == pytest.approx(sigma, rel=0.02)
        # Noise drawn independently per axis is uncorrelated across axes.
        correlation = torch.corrcoef(noise.reshape(-1, 3).T)
        assert (correlation - torch.eye(3)).abs().max().item() < 0.03


def test_add_gaussian_noise_default_sigma(windows):
    noise = add_gaussian_noise(windows, make_generator(4)) - windows
    assert noise.std().item() == pytest.approx(0.1, rel=0.02)


def test_scale_axes_matches_sigma(windows):
    inputs = windows.repeat(16, 1, 1)
    outputs = scale_axes(inputs, make_generator(5))

    # Least-squares factor per window and axis. The output must be exactly that multiple of the input.
    factors = (inputs * outputs).sum(dim=1) / (inputs * inputs).sum(dim=1)
    torch.testing.assert_close(outputs, inputs * factors[:, None, :], rtol=1e-5, atol=1e-6)

    # With 3,072 factors the standard errors are 0.0045 for the mean and 0.0032 for the standard deviation.
    assert factors.mean().item() == pytest.approx(1.0, abs=0.02)
    assert factors.std().item() == pytest.approx(0.25, abs=0.02)


def test_scale_axes_draws_one_factor_per_axis(windows):
    outputs = scale_axes(windows, make_generator(6))
    factors = (windows * outputs).sum(dim=1) / (windows * windows).sum(dim=1)
    assert (factors[:, 0] != factors[:, 1]).all()
    assert (factors[:, 1] != factors[:, 2]).all()


def test_random_rotation_matrices_are_rotations():
    matrices = random_rotation_matrices(4096, make_generator(7))

    assert matrices.shape == (4096, 3, 3)
    assert matrices.dtype == torch.float32
    identity = torch.eye(3).expand(4096, 3, 3)
    torch.testing.assert_close(matrices @ matrices.mT, identity, rtol=0, atol=1e-5)
    torch.testing.assert_close(torch.linalg.det(matrices), torch.ones(4096), rtol=0, atol=1e-5)


def test_random_rotation_matrices_distribution():
    matrices = random_rotation_matrices(4096, make_generator(8), dtype=torch.float64)

    # A uniform angle in [-pi, pi] gives |angle| uniform in [0, pi], with mean pi / 2 and standard error 0.014 here.
    angles = rotation_angles(matrices)
    assert angles.mean().item() == pytest.approx(math.pi / 2, abs=0.07)
    # With E[cos] = 0 and an isotropic axis, E[R] = I + E[1 - cos] E[K^2] = I - 2/3 I = I / 3.
    torch.testing.assert_close(matrices.mean(dim=0), torch.eye(3, dtype=torch.float64) / 3, rtol=0, atol=0.04)


def test_rotate_preserves_sample_norms(windows):
    outputs = rotate(windows, make_generator(9))

    input_norms = torch.linalg.vector_norm(windows, dim=-1)
    output_norms = torch.linalg.vector_norm(outputs, dim=-1)
    torch.testing.assert_close(output_norms, input_norms, rtol=1e-5, atol=1e-6)


def test_rotate_applies_one_rotation_per_window(windows):
    inputs = windows.repeat(8, 1, 1)
    outputs = rotate(inputs, make_generator(10))

    maps = recover_linear_maps(inputs, outputs)
    # The recovered map must reproduce every sample, so one rotation covers the whole window.
    torch.testing.assert_close((inputs.double() @ maps.mT).float(), outputs, rtol=1e-4, atol=1e-5)
    identity = torch.eye(3, dtype=torch.float64).expand_as(maps)
    torch.testing.assert_close(maps @ maps.mT, identity, rtol=0, atol=1e-4)
    torch.testing.assert_close(torch.linalg.det(maps), torch.ones(len(maps), dtype=torch.float64), rtol=0, atol=1e-4)


def test_rotate_uses_random_rotation_matrices(windows):
    matrices = random_rotation_matrices(len(windows), make_generator(12))
    expected = torch.einsum("bij,btj->bti", matrices, windows)
    torch.testing.assert_close(rotate(windows, make_generator(12)), expected, rtol=1e-5, atol=1e-6)


def test_rotate_is_not_identity(windows):
    inputs = windows.repeat(8, 1, 1)
    outputs = rotate(inputs, make_generator(11))

    angles = rotation_angles(recover_linear_maps(inputs, outputs))
    assert angles.mean().item() == pytest.approx(math.pi / 2, abs=0.15)
    changed = (outputs - inputs).abs().amax(dim=(1, 2)) > 0.05
    assert changed.float().mean().item() > 0.9


def test_rotate_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match=re.escape("got 6 channels in shape (2, 256, 6)")):
        rotate(torch.zeros(2, WINDOW_LENGTH, 6), make_generator(0))


def test_random_rotation_matrices_rejects_invalid_arguments():
    with pytest.raises(ValueError, match="`num_matrices` must be a non-negative integer, got -1"):
        random_rotation_matrices(-1, make_generator(0))
    with pytest.raises(ValueError, match="`dtype` must be a floating-point torch.dtype"):
        random_rotation_matrices(2, make_generator(0), dtype=torch.int32)


def test_negate_is_exact(windows):
    assert torch.equal(negate(windows, make_generator(0)), -windows)


def test_reverse_time_is_exact(windows):
    outputs = reverse_time(windows, make_generator(0))

    assert torch.equal(outputs, windows.flip(dims=(1,)))
    assert torch.equal(outputs[:, 0], windows[:, -1])
    assert torch.equal(outputs[:, -1], windows[:, 0])


def recover_axis_permutations(inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
    """Return matches[b, i, j]: whether output channel i of window b equals its input channel j at every step."""
    return (outputs[:, :, :, None] == inputs[:, :, None, :]).all(dim=1)


def test_permute_axes_is_non_identity_permutation(windows):
    inputs = windows.repeat(20, 1, 1)
    outputs = permute_axes(inputs, make_generator(12))

    matches = recover_axis_permutations(inputs, outputs)
    assert (matches.sum(dim=2) == 1).all()
    assert (matches.sum(dim=1) == 1).all()
    permutations = matches.int().argmax(dim=2)
    is_identity = (permutations == torch.arange(3)).all(dim=1)
    assert not is_identity.any()


def test_permute_axes_uniform_over_non_identity(windows):
    inputs = windows.repeat(20, 1, 1)
    outputs = permute_axes(inputs, make_generator(13))

    permutations = recover_axis_permutations(inputs, outputs).int().argmax(dim=2)
    counts = {permutation: 0 for permutation in itertools.permutations(range(3))}
    for row in permutations.tolist():
        counts[tuple(row)] += 1
    assert counts[(0, 1, 2)] == 0
    # Over 1,280 draws each non-identity permutation has frequency 1/5 with standard error 0.011.
    for permutation, count in counts.items():
        if permutation != (0, 1, 2):
            assert count / len(permutations) == pytest.approx(0.2, abs=0.05), permutation


def test_permute_axes_general_channel_counts():
    two_channels = index_encoded_windows(50, num_channels=2)
    swapped = permute_axes(two_channels, make_generator(14))
    assert torch.equal(swapped, two_channels.flip(dims=(2,)))

    four_channels = index_encoded_windows(500, num_channels=4)
    outputs = permute_axes(four_channels, make_generator(15))
    permutations = (outputs[:, 0, :] / 1000).round().long()
    assert torch.equal(permutations.sort(dim=1).values, torch.arange(4).expand(500, 4))
    assert not (permutations == torch.arange(4)).all(dim=1).any()
    # 4 axes have 23 non-identity permutations, and 500 draws reach nearly all of them.
    assert len({tuple(row) for row in permutations.tolist()}) >= 20


def test_permute_axes_rejects_single_channel():
    with pytest.raises(ValueError, match="at least 2 channels to permute, got 1 channels"):
        permute_axes(torch.zeros(2, WINDOW_LENGTH, 1), make_generator(0))


def test_permute_segments_reorders_time(windows):
    outputs = permute_segments(windows, make_generator(16))

    assert torch.equal(outputs.sort(dim=1).values, windows.sort(dim=1).values)
    unchanged = (outputs == windows).all(dim=2).all(dim=1)
    # The segments keep their order with probability 1/720, plus rare draws whose cuts leave one non-empty segment.
    assert unchanged.float().mean().item() < 0.05


@pytest.mark.parametrize("num_cuts", [0, 1, 5, 20])
def test_permute_segments_moves_contiguous_segments(num_cuts):
    inputs = index_encoded_windows(200)
    outputs = permute_segments(inputs, make_generator(17), num_cuts=num_cuts)

    source_steps = outputs[:, :, 0].long()
    # Every channel of a window is reordered the same way.
    for channel in range(1, 3):
        assert torch.equal(outputs[:, :, channel] - 1000 * channel, outputs[:, :, 0])
    assert torch.equal(source_steps.sort(dim=1).values, torch.arange(WINDOW_LENGTH).expand(200, WINDOW_LENGTH))
    # num_cuts + 1 contiguous segments meet at no more than num_cuts places where the source step jumps.
    jumps = (source_steps.diff(dim=1) != 1).sum(dim=1)
    assert (jumps <= num_cuts).all()
    if num_cuts > 0:
        assert (jumps > 0).any()


def test_permute_segments_rejects_negative_cuts():
    with pytest.raises(ValueError, match="`num_cuts` must be a non-negative integer, got -1"):
        permute_segments(torch.zeros(2, WINDOW_LENGTH, 3), make_generator(0), num_cuts=-1)


def test_time_warp_keeps_end_samples(windows):
    outputs = time_warp(windows, make_generator(18))

    assert torch.equal(outputs[:, 0], windows[:, 0])
    assert torch.equal(outputs[:, -1], windows[:, -1])
    assert (outputs - windows).abs().mean().item() > 0.005


def test_time_warp_keeps_constant_window():
    inputs = torch.full((16, WINDOW_LENGTH, 3), 0.981)
    outputs = time_warp(inputs, make_generator(19))
    torch.testing.assert_close(outputs, inputs, rtol=0, atol=1e-6)


def test_time_warp_shares_monotonic_curve_across_axes():
    inputs = index_encoded_windows(64)
    outputs = time_warp(inputs, make_generator(20))

    # Linear interpolation of a ramp returns the read positions themselves.
    positions = outputs[:, :, 0]
    for channel in range(1, 3):
        torch.testing.assert_close(outputs[:, :, channel] - 1000 * channel, positions, rtol=0, atol=1e-9)
    assert (positions.diff(dim=1) > 0).all()
    assert (positions[:, 0] == 0).all()
    assert (positions[:, -1] == WINDOW_LENGTH - 1).all()
    steps = torch.arange(WINDOW_LENGTH, dtype=torch.float64)
    assert (positions - steps).abs().amax(dim=1).min().item() > 0.5


def test_time_warp_stays_monotonic_for_negative_speeds():
    inputs = index_encoded_windows(64)
    # With sigma = 3 most windows have knots with negative speed, which the clamp must absorb.
    outputs = time_warp(inputs, make_generator(21), sigma=3.0)
    assert (outputs[:, :, 0].diff(dim=1) > 0).all()


def test_time_warp_zero_sigma_is_identity(windows):
    outputs = time_warp(windows, make_generator(22), sigma=0.0)
    torch.testing.assert_close(outputs, windows, rtol=1e-5, atol=1e-5)


def test_time_warp_short_windows_unchanged():
    inputs = torch.randn(4, 1, 3, generator=make_generator(0))
    assert torch.equal(time_warp(inputs, make_generator(23)), inputs)


def test_time_warp_rejects_invalid_settings():
    inputs = torch.zeros(2, WINDOW_LENGTH, 3)
    with pytest.raises(ValueError, match=r"`num_knots` must be a non-negative integer, got 1\.5"):
        time_warp(inputs, make_generator(0), num_knots=1.5)
    with pytest.raises(ValueError, match="`sigma` must be a finite non-negative number, got -0.2"):
        time_warp(inputs, make_generator(0), sigma=-0.2)
    with pytest.raises(ValueError, match="`sigma` must be a finite non-negative number, got nan"):
        add_gaussian_noise(inputs, make_generator(0), sigma=float("nan"))
    with pytest.raises(ValueError, match="`sigma` must be a finite non-negative number, got -1"):
        scale_axes(inputs, make_generator(0), sigma=-1)


def test_natural_cubic_spline_matches_scipy():
    interpolate = pytest.importorskip("scipy.interpolate")
    knots = torch.tensor([0.0, 0.7, 2.0, 3.5, 3.9, 6.0], dtype=torch.float64)
    values = torch.randn(5, 6, generator=make_generator(24), dtype=torch.float64)
    positions = torch.linspace(0.0, 6.0, 97, dtype=torch.float64)

    spline = natural_cubic_spline(knots, values, positions)

    for row in range(5):
        reference = interpolate.CubicSpline(knots.numpy(), values[row].numpy(), bc_type="natural")(positions.numpy())
        np.testing.assert_allclose(spline[row].numpy(), reference, rtol=0, atol=1e-12)


def test_natural_cubic_spline_two_knots_is_linear():
    knots = torch.tensor([0.0, 4.0])
    values = torch.tensor([[1.0, 3.0]])
    spline = natural_cubic_spline(knots, values, torch.tensor([0.0, 1.0, 4.0]))
    torch.testing.assert_close(spline, torch.tensor([[1.0, 1.5, 3.0]]))


def test_natural_cubic_spline_rejects_invalid_knots():
    values = torch.zeros(2, 3)
    positions = torch.zeros(4)
    with pytest.raises(ValueError, match="`knots` must be strictly increasing"):
        natural_cubic_spline(torch.tensor([0.0, 2.0, 1.0]), values, positions)
    with pytest.raises(ValueError, match=re.escape("`values` must have shape (..., 4)")):
        natural_cubic_spline(torch.arange(4.0), values, positions)
    with pytest.raises(ValueError, match="at least 2 positions"):
        natural_cubic_spline(torch.zeros(1), torch.zeros(2, 1), positions)


def test_augment_picks_distinct_augmentations(windows):
    outputs, choices = augment(windows, make_generator(25), return_choices=True)

    assert outputs.shape == windows.shape
    assert choices.shape == (len(windows), 2)
    assert choices.dtype == torch.long
    assert (choices[:, 0] != choices[:, 1]).all()
    assert ((choices >= 0) & (choices < len(AUGMENTATIONS))).all()
    assert set(choices.flatten().tolist()) == set(range(len(AUGMENTATIONS)))


def test_augment_draws_uniformly(windows):
    _, choices = augment(windows.repeat(32, 1, 1), make_generator(26), return_choices=True)

    # Over 2,048 windows each augmentation has frequency 1/8 at each step, with standard error 0.0073.
    for step in range(2):
        counts = torch.bincount(choices[:, step], minlength=len(AUGMENTATIONS))
        frequencies = counts.double() / len(choices)
        assert (frequencies - 1 / len(AUGMENTATIONS)).abs().max().item() < 0.035


def test_augment_reproducible_from_seed(windows):
    first, first_choices = augment(windows, make_generator(27), return_choices=True)
    repeated, repeated_choices = augment(windows, make_generator(27), return_choices=True)
    other_seed, other_choices = augment(windows, make_generator(28), return_choices=True)

    assert torch.equal(first, repeated)
    assert torch.equal(first_choices, repeated_choices)
    assert not torch.equal(first, other_seed)
    assert not torch.equal(first_choices, other_choices)


def test_augment_does_not_modify_input(windows):
    original = windows.clone()
    outputs = augment(windows, make_generator(29), num_augmentations=8)
    assert torch.equal(windows, original)
    assert not torch.equal(outputs, windows)


def make_marker_augmentation(index: int):
    def marker(windows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return 10 * windows + index

    return marker


def test_augment_applies_choices_in_drawn_order(monkeypatch):
    # Marker k maps x to 10 x + k, so on zero windows the output spells the applied indices as decimal digits.
    markers = tuple(make_marker_augmentation(index) for index in range(len(AUGMENTATIONS)))
    monkeypatch.setattr(augmentations, "AUGMENTATIONS", markers)
    inputs = torch.zeros(300, 4, 3, dtype=torch.float64)

    outputs, choices = augment(inputs, make_generator(30), num_augmentations=3, return_choices=True)

    expected = (100 * choices[:, 0] + 10 * choices[:, 1] + choices[:, 2]).double()
    assert torch.equal(outputs, expected[:, None, None].expand_as(outputs))


def test_augment_all_and_none(windows):
    outputs, choices = augment(windows, make_generator(31), num_augmentations=8, return_choices=True)
    assert torch.equal(choices.sort(dim=1).values, torch.arange(8).expand(len(windows), 8))

    outputs, choices = augment(windows, make_generator(31), num_augmentations=0, return_choices=True)
    assert torch.equal(outputs, windows)
    assert outputs.data_ptr() != windows.data_ptr()
    assert choices.shape == (len(windows), 0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_augment_keeps_dtype_and_device(windows, dtype, device):
    inputs = windows.to(device=device, dtype=dtype)
    outputs, choices = augment(inputs, make_generator(32, device), return_choices=True)

    assert outputs.dtype == dtype
    assert outputs.device == inputs.device
    assert choices.device == inputs.device
    assert torch.isfinite(outputs.float()).all()


def test_augment_rejects_invalid_input():
    generator = make_generator(0)
    expected_shape = re.escape("(batch_size, sequence_length, 3)")
    with pytest.raises(ValueError, match=expected_shape + ".*" + re.escape("shape (4, 256)")):
        augment(torch.zeros(4, WINDOW_LENGTH), generator)
    with pytest.raises(ValueError, match=expected_shape + ".*got 6 channels"):
        augment(torch.zeros(4, WINDOW_LENGTH, 6), generator)
    with pytest.raises(ValueError, match=expected_shape + ".*torch.int32"):
        augment(torch.zeros(4, WINDOW_LENGTH, 3, dtype=torch.int32), generator)
    for invalid in (-1, 9, 2.0, True):
        message = f"`num_augmentations` must be an integer in [0, 8], got {invalid!r}"
        with pytest.raises(ValueError, match=re.escape(message)):
            augment(torch.zeros(4, WINDOW_LENGTH, 3), generator, num_augmentations=invalid)
