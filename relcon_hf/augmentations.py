# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Random augmentations of 3-axis accelerometry windows for stage 1 of RelCon pre-training.

Stage 1 of RelCon (Xu et al., ICLR 2025) trains a learned distance on pairs of a window and the same window after two
augmentations. `augment` draws the two from the eight functions in `AUGMENTATIONS`, without replacement and
independently for each window, and applies them in the drawn order. The eight augmentations follow Um et al., "Data
augmentation of wearable sensor data for Parkinson's disease monitoring using convolutional neural networks" (ICMI
2017), and Tang et al., "Exploring contrastive learning in human activity recognition for healthcare"
(arXiv:2011.11542, 2020), as used by RelCon.

Every augmentation takes windows of shape `(batch_size, sequence_length, num_channels)` and a `torch.Generator` on the
same device, and draws all of its randomness from that generator, so a seed reproduces its output. It returns a new
tensor with the dtype and device of the input and never modifies the input. float16 and bfloat16 windows are processed
in float32 and cast back.
"""

import math
from collections.abc import Callable

import torch


Augmentation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]

_HALF_PRECISION_DTYPES = (torch.float16, torch.bfloat16)
# Lower bound on the interpolated speed of `time_warp`, in samples per step. The spline can dip below zero for extreme
# knot draws, and a positive speed keeps the time map strictly increasing.
MIN_TIME_WARP_SPEED = 1e-2


def _validate_windows(windows: torch.Tensor, num_channels: int | None = None) -> None:
    expected_channels = "num_channels" if num_channels is None else str(num_channels)
    expected_shape = f"(batch_size, sequence_length, {expected_channels})"
    if not isinstance(windows, torch.Tensor):
        raise ValueError(
            f"`windows` must be a floating-point tensor of shape {expected_shape}, got an object of type "
            f"{type(windows).__name__}."
        )
    if windows.ndim != 3 or not windows.is_floating_point():
        raise ValueError(
            f"`windows` must be a floating-point tensor of shape {expected_shape}, got a {windows.dtype} tensor of "
            f"shape {tuple(windows.shape)}."
        )
    if num_channels is not None and windows.shape[-1] != num_channels:
        raise ValueError(
            f"`windows` must have {num_channels} channels (x, y, z acceleration), that is shape {expected_shape}, "
            f"got {windows.shape[-1]} channels in shape {tuple(windows.shape)}."
        )


def _validate_generator(generator: torch.Generator, device: torch.device) -> None:
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"`generator` must be a torch.Generator, got an object of type {type(generator).__name__}.")
    same_type = generator.device.type == device.type
    same_index = generator.device.index is None or device.index is None or generator.device.index == device.index
    if not (same_type and same_index):
        raise ValueError(
            f"`generator` must be on the device of the windows ({device}), got a generator on {generator.device}. "
            "Create it with `torch.Generator(device=windows.device)`."
        )


def _validate_non_negative_number(name: str, value: float) -> None:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not is_number or not math.isfinite(value) or value < 0:
        raise ValueError(f"`{name}` must be a finite non-negative number, got {value!r}.")


def _validate_non_negative_integer(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative integer, got {value!r}.")


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in _HALF_PRECISION_DTYPES else dtype


def _draw_permutations(
    num_permutations: int, size: int, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """Draw `num_permutations` independent uniform permutations of `range(size)` as rows of a LongTensor."""
    # Sorting i.i.d. uniform keys gives a uniform permutation. float64 keys make ties, which would bias the draw,
    # vanishingly rare.
    keys = torch.rand((num_permutations, size), generator=generator, device=device, dtype=torch.float64)
    return keys.argsort(dim=1)


def _draw_non_identity_permutations(
    num_permutations: int, size: int, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """Draw permutations uniformly from the `size! - 1` non-identity permutations of `range(size)` (`size >= 2`)."""
    identity = torch.arange(size, device=device)
    permutations = _draw_permutations(num_permutations, size, generator, device)
    # Rejection sampling: redrawing the identity rows keeps the draw uniform over the remaining permutations.
    redraw = (permutations == identity).all(dim=1)
    while bool(redraw.any()):
        rows = redraw.nonzero().squeeze(1)
        permutations[rows] = _draw_permutations(rows.numel(), size, generator, device)
        redraw = (permutations == identity).all(dim=1)
    return permutations


def add_gaussian_noise(windows: torch.Tensor, generator: torch.Generator, sigma: float = 0.1) -> torch.Tensor:
    r"""
    Add independent Gaussian noise (jitter) to every sample.

    Args:
        windows (`torch.Tensor` of shape `(batch_size, sequence_length, num_channels)`):
            Acceleration windows in g.
        generator (`torch.Generator`):
            Source of randomness, on the device of `windows`.
        sigma (`float`, *optional*, defaults to 0.1):
            Standard deviation of the noise in g.

    Returns:
        `torch.Tensor` of shape `(batch_size, sequence_length, num_channels)`: `windows` plus noise drawn from
        N(0, sigma^2) for every sample, channel and window.
    """
    _validate_windows(windows)
    _validate_generator(generator, windows.device)
    _validate_non_negative_number("sigma", sigma)

    values = windows.to(_compute_dtype(windows.dtype))
    noise = torch.randn(values.shape, generator=generator, device=values.device, dtype=values.dtype)
    return (values + sigma * noise).to(windows.dtype)


def scale_axes(windows: torch.Tensor, generator: torch.Generator, sigma: float = 0.25) -> torch.Tensor:
    r"""
    Multiply each axis of each window by its own random factor.

    Args:
        windows (`torch.Tensor` of shape `(batch_size, sequence_length, num_channels)`):
            Acceleration windows.
        generator (`torch.Generator`):
            Source of randomness, on the device of `windows`.
        sigma (`float`, *optional*, defaults to 0.25):
            Standard deviation of the factors, which are drawn from N(1, sigma^2).

    Returns:
        `torch.Tensor` of shape `(batch_size, sequence_length, num_channels)`: the scaled windows. Each factor is
        constant over time.
    """
    _validate_windows(windows)
    _validate_generator(generator, windows.device)
    _validate_non_negative_number("sigma", sigma)

    values = windows.to(_compute_dtype(windows.dtype))
    batch_size, _, num_channels = values.shape
    standard_normal = torch.randn(
        (batch_size, 1, num_channels), generator=generator, device=values.device, dtype=values.dtype
    )
    return (values * (1 + sigma * standard_normal)).to(windows.dtype)


def random_rotation_matrices(
    num_matrices: int, generator: torch.Generator, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    r"""
    Draw random 3-D rotation matrices with Rodrigues' formula.

    The rotation axis is uniform on the unit sphere (a normalized standard-normal 3-vector) and the angle is uniform
    in [-pi, pi).

    Args:
        num_matrices (`int`):
            Number of matrices to draw.
        generator (`torch.Generator`):
            Source of randomness. The matrices are created on its device.
        dtype (`torch.dtype`, *optional*, defaults to `torch.float32`):
            Floating-point dtype of the matrices. float16 and bfloat16 matrices are computed in float32.

    Returns:
        `torch.Tensor` of shape `(num_matrices, 3, 3)`: orthonormal matrices with determinant 1, which rotate a column
        vector `v` to `matrix @ v`.
    """
    _validate_non_negative_integer("num_matrices", num_matrices)
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"`generator` must be a torch.Generator, got an object of type {type(generator).__name__}.")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"`dtype` must be a floating-point torch.dtype, got {dtype!r}.")

    compute_dtype = _compute_dtype(dtype)
    device = generator.device
    axes = torch.randn((num_matrices, 3), generator=generator, device=device, dtype=compute_dtype)
    # The clamp only guards against a zero draw, which has probability zero.
    axes = axes / torch.linalg.vector_norm(axes, dim=-1, keepdim=True).clamp_min(torch.finfo(compute_dtype).tiny)
    angles = (2 * torch.rand(num_matrices, generator=generator, device=device, dtype=compute_dtype) - 1) * math.pi

    # Rodrigues: R = I + sin(angle) K + (1 - cos(angle)) K^2, where K v = axis x v is the cross-product matrix.
    x, y, z = axes.unbind(dim=-1)
    zeros = torch.zeros_like(x)
    cross_product = torch.stack([zeros, -z, y, z, zeros, -x, -y, x, zeros], dim=-1).view(num_matrices, 3, 3)
    identity = torch.eye(3, device=device, dtype=compute_dtype)
    sin = angles.sin()[:, None, None]
    cos = angles.cos()[:, None, None]
    matrices = identity + sin * cross_product + (1 - cos) * (cross_product @ cross_product)
    return matrices.to(dtype)


def rotate(windows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    r"""
    Rotate the acceleration vectors of each window by its own random 3-D rotation.

    The rotations come from `random_rotation_matrices`, and one rotation applies to every time step of a window.

    Args:
        windows (`torch.Tensor` of shape `(batch_size, sequence_length, 3)`):
            Acceleration windows with x, y and z in the last dimension.
        generator (`torch.Generator`):
            Source of randomness, on the device of `windows`.

    Returns:
        `torch.Tensor` of shape `(batch_size, sequence_length, 3)`: the rotated windows. Each sample keeps its
        Euclidean norm.

    Raises:
        `ValueError`: If `windows` does not have exactly 3 channels.
    """
    _validate_windows(windows, num_channels=3)
    _validate_generator(generator, windows.device)

    values = windows.to(_compute_dtype(windows.dtype))
    matrices = random_rotation_matrices(values.shape[0], generator, dtype=values.dtype)
    # Row vectors: (matrix @ v)^T = v^T @ matrix^T.
    return (values @ matrices.mT).to(windows.dtype)


def negate(windows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    r"""
    Multiply the windows by -1.

    Args:
        windows (`torch.Tensor` of shape `(batch_size, sequence_length, num_channels)`):
            Acceleration windows.
        generator (`torch.Generator`):
            Unused. It is accepted so that every augmentation has the same signature.

    Returns:
        `torch.Tensor` of shape `(batch_size, sequence_length, num_channels)`: `-windows`.
    """
    _validate_windows(windows)
    _validate_generator(generator, windows.device)
    return -windows


def reverse_time(windows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    r"""
    Reverse the order of the samples along the time axis.

    Args:
        windows (`torch.Tensor` of shape `(batch_size, sequence_length, num_channels)`):
            Acceleration windows.
        generator (`torch.Generator`):
            Unused. It is accepted so that every augmentation has the same signature.

    Returns:
        `torch.Tensor` of shape `(batch_size, sequence_length, num_channels)`: the windows flipped along time.
    """
    _validate_windows(windows)
    _validate_generator(generator, windows.device)
    return windows.flip(dims=(1,))


def permute_axes(windows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    r"""
    Reorder the axes of each window with a random permutation that is never the identity.

    The permutation is uniform over the `num_channels! - 1` non-identity permutations (5 for 3 axes) and drawn
    independently for each window.

    Args:
        windows (`torch.Tensor` of shape `(batch_size, sequence_length, num_channels)`):
            Acceleration windows with at least 2 channels.
        generator (`torch.Generator`):
            Source of randomness, on the device of `windows`.

    Returns:
        `torch.Tensor` of shape `(batch_size, sequence_length, num_channels)`: the windows with their channels
        reordered, so that output channel `i` of a window is its input channel `permutation[i]`.

    Raises:
        `ValueError`: If `windows` has fewer than 2 channels, which leaves no non-identity permutation.
    """
    _validate_windows(windows)
    _validate_generator(generator, windows.device)
    batch_size, sequence_length, num_channels = windows.shape
    if num_channels < 2:
        raise ValueError(
            f"`windows` must have at least 2 channels to permute, got {num_channels} channels in shape "
            f"{tuple(windows.shape)}."
        )

    permutations = _draw_non_identity_permutations(batch_size, num_channels, generator, windows.device)
    index = permutations[:, None, :].expand(batch_size, sequence_length, num_channels)
    return windows.gather(2, index)


def permute_segments(windows: torch.Tensor, generator: torch.Generator, num_cuts: int = 5) -> torch.Tensor:
    r"""
    Cut each window into segments along time and concatenate the segments in a random order.

    The `num_cuts` cut points of a window are drawn uniformly from `[0, sequence_length)` with replacement and sorted,
    so segments may be empty. The `num_cuts + 1` segments are then concatenated in a uniformly random order, which
    may be the original order. All channels of a window share the cuts and the order.

    Args:
        windows (`torch.Tensor` of shape `(batch_size, sequence_length, num_channels)`):
            Acceleration windows.
        generator (`torch.Generator`):
            Source of randomness, on the device of `windows`.
        num_cuts (`int`, *optional*, defaults to 5):
            Number of cut points per window. 0 returns a copy of `windows`.

    Returns:
        `torch.Tensor` of shape `(batch_size, sequence_length, num_channels)`: each window with its time steps
        reordered.
    """
    _validate_windows(windows)
    _validate_generator(generator, windows.device)
    _validate_non_negative_integer("num_cuts", num_cuts)
    batch_size, sequence_length, num_channels = windows.shape
    if num_cuts == 0 or sequence_length == 0:
        return windows.clone()

    device = windows.device
    cuts = torch.randint(0, sequence_length, (batch_size, num_cuts), generator=generator, device=device)
    boundaries = torch.cat(
        [
            torch.zeros((batch_size, 1), dtype=torch.long, device=device),
            cuts.sort(dim=1).values,
            torch.full((batch_size, 1), sequence_length, dtype=torch.long, device=device),
        ],
        dim=1,
    )
    segment_starts = boundaries[:, :-1]
    segment_lengths = boundaries[:, 1:] - segment_starts

    # Output segment k of a window is its input segment order[k].
    order = _draw_permutations(batch_size, num_cuts + 1, generator, device)
    source_starts = segment_starts.gather(1, order)
    output_lengths = segment_lengths.gather(1, order)
    output_ends = output_lengths.cumsum(dim=1)
    output_starts = output_ends - output_lengths

    # The first output segment whose end lies beyond step t contains t. Empty segments end where the previous one
    # ends, so they are never picked.
    steps = torch.arange(sequence_length, device=device).expand(batch_size, sequence_length).contiguous()
    segment = torch.searchsorted(output_ends, steps, right=True)
    source_steps = source_starts.gather(1, segment) + steps - output_starts.gather(1, segment)
    return windows.gather(1, source_steps[:, :, None].expand(batch_size, sequence_length, num_channels))


def _natural_cubic_spline(knots: torch.Tensor, values: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Evaluate natural cubic splines without input checks; see `natural_cubic_spline`."""
    num_knots = knots.shape[0]
    widths = knots.diff()
    slopes = values.diff(dim=-1) / widths

    # Second derivatives at the knots: 0 at both ends (natural end condition). The inner ones solve the tridiagonal
    # system w[i-1] m[i-1] + 2 (w[i-1] + w[i]) m[i] + w[i] m[i+1] = 6 (slope[i] - slope[i-1]) with w the knot widths.
    second_derivatives = torch.zeros_like(values)
    if num_knots > 2:
        num_inner = num_knots - 2
        matrix = (
            torch.diag(2 * (widths[:-1] + widths[1:]))
            + torch.diag(widths[1:-1], diagonal=1)
            + torch.diag(widths[1:-1], diagonal=-1)
        )
        right_hand_sides = 6 * slopes.diff(dim=-1)
        # The matrix depends only on the knots, so one solve covers every spline as a column of the right-hand side.
        columns = right_hand_sides.reshape(-1, num_inner).mT
        inner = torch.linalg.solve(matrix, columns).mT.reshape(right_hand_sides.shape)
        second_derivatives[..., 1:-1] = inner

    interval = (torch.searchsorted(knots, positions, right=True) - 1).clamp(0, num_knots - 2)
    width = widths[interval]
    to_right = knots[interval + 1] - positions
    from_left = positions - knots[interval]
    left_value = values[..., interval]
    right_value = values[..., interval + 1]
    left_second = second_derivatives[..., interval]
    right_second = second_derivatives[..., interval + 1]
    cubic = (left_second * to_right**3 + right_second * from_left**3) / (6 * width)
    linear = (left_value / width - left_second * width / 6) * to_right + (
        right_value / width - right_second * width / 6
    ) * from_left
    return cubic + linear


def natural_cubic_spline(knots: torch.Tensor, values: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    r"""
    Evaluate natural cubic splines through a batch of value sets that share their knots.

    A natural cubic spline is twice continuously differentiable and has zero second derivative at both end knots.
    Positions outside `[knots[0], knots[-1]]` are extrapolated with the first or last cubic piece.

    Args:
        knots (`torch.Tensor` of shape `(num_knots,)`):
            Strictly increasing knot positions, at least 2.
        values (`torch.Tensor` of shape `(..., num_knots)`):
            Values at the knots. Leading dimensions are batch dimensions, one spline each.
        positions (`torch.Tensor` of shape `(num_positions,)`):
            Positions at which every spline is evaluated.

    Returns:
        `torch.Tensor` of shape `(..., num_positions)`: the spline values, in the dtype of `values`. float16 and
        bfloat16 inputs are computed in float32.
    """
    if knots.ndim != 1 or knots.shape[0] < 2:
        raise ValueError(f"`knots` must be a 1-D tensor of at least 2 positions, got shape {tuple(knots.shape)}.")
    if values.ndim < 1 or values.shape[-1] != knots.shape[0]:
        raise ValueError(
            f"`values` must have shape (..., {knots.shape[0]}) to match `knots`, got shape {tuple(values.shape)}."
        )
    if positions.ndim != 1:
        raise ValueError(f"`positions` must be a 1-D tensor, got shape {tuple(positions.shape)}.")
    if not values.is_floating_point():
        raise ValueError(f"`values` must be a floating-point tensor, got dtype {values.dtype}.")

    compute_dtype = _compute_dtype(values.dtype)
    knots = knots.to(compute_dtype).contiguous()
    if not bool((knots.diff() > 0).all()):
        raise ValueError(f"`knots` must be strictly increasing, got {knots.tolist()}.")
    spline = _natural_cubic_spline(knots, values.to(compute_dtype), positions.to(compute_dtype).contiguous())
    return spline.to(values.dtype)


def time_warp(
    windows: torch.Tensor, generator: torch.Generator, num_knots: int = 4, sigma: float = 0.2
) -> torch.Tensor:
    r"""
    Resample each window along a smooth random time map that keeps its first and last sample.

    A window's speed is drawn from N(1, sigma^2) at `num_knots + 2` evenly spaced knots over `[0, sequence_length - 1]`
    (both ends included), interpolated at every step with a natural cubic spline and clamped to at least
    `MIN_TIME_WARP_SPEED`. Its cumulative sum, shifted and scaled to run from 0 to `sequence_length - 1`, gives the
    positions at which every axis is read by linear interpolation.

    All axes of a window share one warp curve, because they share one clock. The reference code of Um et al. (2017),
    github.com/terryum/Data-Augmentation-For-Wearable-Sensor-Data, differs in three ways. It warps each axis with its
    own curve and uses SciPy's default not-a-knot spline end condition. It also places the input samples at the warped
    positions and reads the output on the regular grid, which applies the inverse of such a time map.

    Args:
        windows (`torch.Tensor` of shape `(batch_size, sequence_length, num_channels)`):
            Acceleration windows.
        generator (`torch.Generator`):
            Source of randomness, on the device of `windows`.
        num_knots (`int`, *optional*, defaults to 4):
            Number of inner knots of the speed curve.
        sigma (`float`, *optional*, defaults to 0.2):
            Standard deviation of the speeds at the knots.

    Returns:
        `torch.Tensor` of shape `(batch_size, sequence_length, num_channels)`: the warped windows. Windows shorter
        than 2 samples are returned unchanged (as a copy).
    """
    _validate_windows(windows)
    _validate_generator(generator, windows.device)
    _validate_non_negative_integer("num_knots", num_knots)
    _validate_non_negative_number("sigma", sigma)
    batch_size, sequence_length, num_channels = windows.shape
    if sequence_length < 2:
        return windows.clone()

    values = windows.to(_compute_dtype(windows.dtype))
    device = values.device
    dtype = values.dtype
    knots = torch.linspace(0, sequence_length - 1, num_knots + 2, device=device, dtype=dtype)
    knot_speeds = 1 + sigma * torch.randn((batch_size, num_knots + 2), generator=generator, device=device, dtype=dtype)
    steps = torch.arange(sequence_length, device=device, dtype=dtype)
    speeds = _natural_cubic_spline(knots, knot_speeds, steps).clamp_min(MIN_TIME_WARP_SPEED)

    elapsed = speeds.cumsum(dim=1)
    elapsed = elapsed - elapsed[:, :1]
    # elapsed[:, -1:] / elapsed[:, -1:] is exactly 1, so the last position is exactly sequence_length - 1.
    positions = elapsed / elapsed[:, -1:] * (sequence_length - 1)

    lower = positions.floor().long().clamp(0, sequence_length - 2)
    weights = (positions - lower)[:, :, None]
    index = lower[:, :, None].expand(batch_size, sequence_length, num_channels)
    # lerp returns its start for weight 0 and its end for weight 1 exactly, so both end samples are kept bit for bit.
    warped = torch.lerp(values.gather(1, index), values.gather(1, index + 1), weights)
    return warped.to(windows.dtype)


AUGMENTATIONS: tuple[Augmentation, ...] = (
    add_gaussian_noise,
    scale_axes,
    rotate,
    negate,
    reverse_time,
    permute_axes,
    permute_segments,
    time_warp,
)
AUGMENTATION_NAMES: tuple[str, ...] = tuple(augmentation.__name__ for augmentation in AUGMENTATIONS)


def augment(
    windows: torch.Tensor,
    generator: torch.Generator,
    num_augmentations: int = 2,
    return_choices: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    r"""
    Apply `num_augmentations` distinct random augmentations from `AUGMENTATIONS` to each window.

    For each window, the augmentations are drawn uniformly without replacement and applied in the drawn order, first
    draw first, each with its default settings. float16 and bfloat16 windows stay in float32 through the whole chain.

    Args:
        windows (`torch.Tensor` of shape `(batch_size, sequence_length, 3)`):
            Acceleration windows in g with x, y and z in the last dimension.
        generator (`torch.Generator`):
            Source of randomness, on the device of `windows`. The same generator state gives the same output.
        num_augmentations (`int`, *optional*, defaults to 2):
            Number of augmentations per window, from 0 to `len(AUGMENTATIONS)` (8).
        return_choices (`bool`, *optional*, defaults to `False`):
            Whether to also return the drawn augmentations.

    Returns:
        `torch.Tensor` of shape `(batch_size, sequence_length, 3)`: the augmented windows. With `return_choices=True`,
        a tuple of these and a `torch.LongTensor` of shape `(batch_size, num_augmentations)` that holds, in order of
        application, the indices into `AUGMENTATIONS` (and `AUGMENTATION_NAMES`) applied to each window.
    """
    _validate_windows(windows, num_channels=3)
    _validate_generator(generator, windows.device)
    num_available = len(AUGMENTATIONS)
    if (
        isinstance(num_augmentations, bool)
        or not isinstance(num_augmentations, int)
        or not 0 <= num_augmentations <= num_available
    ):
        raise ValueError(f"`num_augmentations` must be an integer in [0, {num_available}], got {num_augmentations!r}.")

    # The first num_augmentations entries of a uniform permutation are a uniform draw without replacement, in order.
    choices = _draw_permutations(windows.shape[0], num_available, generator, windows.device)[:, :num_augmentations]

    augmented = windows.to(_compute_dtype(windows.dtype), copy=True)
    for step in range(num_augmentations):
        for index, augmentation in enumerate(AUGMENTATIONS):
            rows = (choices[:, step] == index).nonzero().squeeze(1)
            if rows.numel() == 0:
                continue
            augmented.index_copy_(0, rows, augmentation(augmented.index_select(0, rows), generator))
    augmented = augmented.to(windows.dtype)

    if return_choices:
        return augmented, choices
    return augmented


__all__ = [
    "AUGMENTATIONS",
    "AUGMENTATION_NAMES",
    "MIN_TIME_WARP_SPEED",
    "Augmentation",
    "add_gaussian_noise",
    "augment",
    "natural_cubic_spline",
    "negate",
    "permute_axes",
    "permute_segments",
    "random_rotation_matrices",
    "reverse_time",
    "rotate",
    "scale_axes",
    "time_warp",
]
