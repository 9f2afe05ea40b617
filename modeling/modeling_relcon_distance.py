# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""PyTorch learned motif distance of RelCon (stage 1).

Xu et al., "RelCon: Relative Contrastive Learning for a Motion Foundation Model for Wearable Data", ICLR 2025
(arXiv:2411.18822), reference code https://github.com/maxxu05/relcon. The distance reconstructs an anchor window
from a candidate window with one-head cross-attention over time; the summed squared reconstruction error is the
distance, so candidates that share the anchor's motifs are near. Sparsemax follows Martins and Astudillo, "From
Softmax to Sparsemax", ICML 2016.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput, logging

from .configuration_relcon import RelConDistanceConfig
from .modeling_relcon import _reject_unexpected_kwargs, cast_input_values, check_weight_files, validate_input_values


logger = logging.get_logger(__name__)


# Sparsemax first looks for its support among this many top scores; sorting whole rows is the slow path on CPU.
# With a trained watch distance the support held a median of 6 and at most 34 of 256 scores, so 32 sends about 1 row
# in 5,000 to the full sort. 32 made the ranking of a paper-sized batch 14 % faster than 64 (docs/benchmarks.md).
_SPARSEMAX_TOP_K = 32


def _sparsemax_threshold(sorted_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Threshold and support size from scores sorted in descending order along the last dimension."""
    cumulative = sorted_values.cumsum(dim=-1) - 1
    ranks = torch.arange(1, sorted_values.shape[-1] + 1, device=sorted_values.device, dtype=sorted_values.dtype)
    # The support is every sorted position where rank * value still exceeds the running sum minus one.
    support_size = (ranks * sorted_values > cumulative).sum(dim=-1, keepdim=True)
    threshold = cumulative.gather(-1, support_size - 1) / support_size.to(sorted_values.dtype)
    return threshold, support_size


def sparsemax(scores: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """
    Project `scores` onto the probability simplex along `dim`: like softmax, but exact zeros for low scores.

    The result is `max(scores - threshold, 0)`, with the threshold chosen so that each slice sums to one. The
    threshold is found among the top 32 scores of each slice, and from a full sort only for slices whose support is
    larger. Autograd through the top-k, cumsum and gather gives the sparsemax Jacobian, so no custom backward is
    needed. Half-precision input is computed in float32.
    """
    compute_dtype = torch.float32 if scores.dtype in (torch.float16, torch.bfloat16) else scores.dtype
    values = scores.to(compute_dtype).movedim(dim, -1)
    size = values.shape[-1]

    top_k = min(size, _SPARSEMAX_TOP_K)
    top_values = torch.topk(values, top_k, dim=-1).values
    threshold, support_size = _sparsemax_threshold(top_values)

    # Where the support fills every one of the top-k scores it may continue past them: redo those slices fully.
    if top_k < size:
        needs_full_sort = (support_size == top_k).squeeze(-1)
        if needs_full_sort.any():
            rows = needs_full_sort.nonzero(as_tuple=True)
            sorted_rows = torch.sort(values[rows], dim=-1, descending=True).values
            threshold = threshold.index_put(rows, _sparsemax_threshold(sorted_rows)[0])

    probabilities = torch.clamp(values - threshold, min=0)
    return probabilities.movedim(-1, dim).to(scores.dtype)


@dataclass
class RelConDistanceOutput(ModelOutput):
    r"""
    Output of [`RelConDistanceModel`].

    Args:
        loss (`torch.FloatTensor` of shape `()`):
            Mean of `distance` over the batch: the stage-1 training objective.
        distance (`torch.FloatTensor` of shape `(batch_size,)`):
            Sum over time and axes of the squared difference between the reconstruction and the anchor, in g^2.
            Smaller means the candidate explains the anchor better. Not symmetric.
        reconstruction (`torch.FloatTensor` of shape `(batch_size, anchor_length, num_channels)`):
            The anchor rebuilt from the candidate, in g.
        attention_weights (`torch.FloatTensor` of shape `(batch_size, anchor_length, candidate_length)`, *optional*):
            Attention of each anchor time step over the candidate's time steps, returned with
            `output_attentions=True`.
    """

    loss: torch.Tensor | None = None
    distance: torch.Tensor | None = None
    reconstruction: torch.Tensor | None = None
    attention_weights: torch.Tensor | None = None


# Fixed-point steps of the sort-free sparsemax threshold used by the compiled ranking path. We ran a randomly
# initialised distance on the real watch windows of a paper-sized batch (5,312 pairs of 256 x 256 scores). After 6
# steps 3,941 pairs had an unconverged row, after 7 steps 64, after 8 steps 1, which rounding kept from settling.
# Pairs with an unconverged row are redone through `sparsemax`, so this bounds the cost, not the result.
_SPARSEMAX_ITERATIONS = 8


def sparsemax_threshold_by_iteration(scores: torch.Tensor, num_iterations: int) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Sparsemax threshold along the last dimension by fixed-point iteration, with no sort or top-k.

    No probability exceeds one, so the threshold is at least `max - 1` and every score above it lies above `max - 1`.
    Starting there, each step sets the threshold to `(sum of the scores above it - 1) / (their count)`. The set of
    scores above the threshold shrinks towards the support, and the threshold rises until it is exact, once the set
    stops changing (Michelot's projection onto the simplex). A fixed number of steps keeps the work free of
    data-dependent branches, so `torch.compile` fuses it into one pass per row.

    Args:
        scores (`torch.Tensor` of shape `(..., size)`): Floating-point scores.
        num_iterations (`int`): Fixed-point steps.

    Returns:
        `(threshold, converged)`: `threshold` of shape `(..., 1)`, and `converged` of shape `(...)`, true where the
        last step left the set unchanged, so that the threshold is exact.
    """
    threshold = scores.amax(dim=-1, keepdim=True) - 1
    count = torch.zeros_like(threshold)
    for _ in range(num_iterations):
        above = scores > threshold
        # Counting in the scores' dtype keeps the reduction in floating point, which the compiled loop vectorises.
        count = torch.where(above, 1.0, 0.0).sum(dim=-1, keepdim=True)
        threshold = (torch.where(above, scores, 0.0).sum(dim=-1, keepdim=True) - 1) / count
    converged = torch.where(scores > threshold, 1.0, 0.0).sum(dim=-1, keepdim=True) == count
    return threshold, converged.squeeze(-1)


class RelConRevIN(nn.Module):
    """Reversible instance normalisation with statistics taken from the candidate window."""

    def __init__(self, config: RelConDistanceConfig):
        super().__init__()
        self.eps = config.revin_eps
        self.affine = config.revin_affine
        if self.affine:
            self.affine_weight = nn.Parameter(torch.ones(config.num_channels))
            self.affine_bias = nn.Parameter(torch.zeros(config.num_channels))

    def statistics(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-window, per-channel mean and standard deviation over time, each of shape (batch, 1, channels)."""
        mean = values.mean(dim=1, keepdim=True).detach()
        std = torch.sqrt(values.var(dim=1, keepdim=True, unbiased=False) + self.eps).detach()
        return mean, std

    def normalize(self, values: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        values = (values - mean) / std
        if self.affine:
            values = values * self.affine_weight + self.affine_bias
        return values

    def denormalize(self, values: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        if self.affine:
            # eps squared keeps the division finite if training drives a scale to zero, as in the reference code.
            values = (values - self.affine_bias) / (self.affine_weight + self.eps * self.eps)
        return values * std + mean


class RelConDilatedBlock(nn.Module):
    """1x1 bottleneck, dilated convolution, residual sum, GELU, InstanceNorm: (batch, hidden, time) kept."""

    def __init__(self, config: RelConDistanceConfig, dilation: int):
        super().__init__()
        self.bottleneck = nn.Conv1d(config.hidden_size, config.bottleneck_size, kernel_size=1)
        self.dilated_conv = nn.Conv1d(
            config.bottleneck_size,
            config.hidden_size,
            kernel_size=config.kernel_size,
            dilation=dilation,
            padding=(config.kernel_size - 1) // 2 * dilation,
        )
        self.activation = nn.GELU()
        self.norm = nn.InstanceNorm1d(config.hidden_size, affine=False, track_running_stats=False)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.norm(self.activation(self.dilated_conv(self.bottleneck(hidden_states)) + hidden_states))


class RelConDilatedConvStack(nn.Module):
    """Input convolution and dilated residual blocks: (batch, channels, time) -> (batch, hidden_size, time)."""

    def __init__(self, config: RelConDistanceConfig):
        super().__init__()
        self.kernel_size = config.kernel_size
        self.rescale_borders = config.rescale_input_borders
        self.input_conv = nn.Conv1d(
            config.num_channels, config.hidden_size, kernel_size=config.kernel_size, padding=config.kernel_size // 2
        )
        self.activation = nn.GELU()
        self.norm = nn.InstanceNorm1d(config.hidden_size, affine=False, track_running_stats=False)
        self.blocks = nn.ModuleList(
            RelConDilatedBlock(config, dilation=2**index) for index in range(config.num_dilated_blocks)
        )

    def _border_scale(self, length: int, like: torch.Tensor) -> torch.Tensor:
        # kernel taps / taps that fall inside the window, per output step: 1 in the interior, up to about 2 at edges.
        ones = torch.ones(1, 1, length, device=like.device, dtype=like.dtype)
        taps = torch.ones(1, 1, self.kernel_size, device=like.device, dtype=like.dtype)
        valid_taps = nn.functional.conv1d(ones, taps, padding=self.kernel_size // 2)
        return self.kernel_size / valid_taps

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        features = self.input_conv(hidden_states)
        if self.rescale_borders and self.input_conv.bias is not None:
            bias = self.input_conv.bias.view(1, -1, 1)
            features = (features - bias) * self._border_scale(hidden_states.shape[-1], features) + bias
        hidden_states = self.norm(self.activation(features))
        for block in self.blocks:
            hidden_states = block(hidden_states)

        return hidden_states


class RelConDistancePreTrainedModel(PreTrainedModel):
    """Weight initialisation and loading glue of the distance model."""

    config: RelConDistanceConfig
    config_class = RelConDistanceConfig
    base_model_prefix = "relcon_distance"
    main_input_name = "anchor_values"

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):  # type: ignore[override]
        """Load a checkpoint like `PreTrainedModel.from_pretrained`, reading safetensors weights only by default."""
        kwargs = check_weight_files(pretrained_model_name_or_path, kwargs)
        return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)

    def _init_weights(self, module: nn.Module) -> None:
        # PyTorch's default layer initialisation, which the reference code trains from.
        if isinstance(module, (nn.Conv1d, nn.Linear)):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                fan_in = module.weight.shape[1] * math.prod(module.weight.shape[2:])
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
                init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, RelConRevIN) and module.affine:
            init.ones_(module.affine_weight)
            init.zeros_(module.affine_bias)


class RelConDistanceModel(RelConDistancePreTrainedModel):
    """
    Learned motif distance d(anchor, candidate): how badly the candidate reconstructs the anchor.

    Example:

    ```python
    >>> import torch
    >>> from relcon_hf import RelConDistanceConfig, RelConDistanceModel

    >>> model = RelConDistanceModel(RelConDistanceConfig()).eval()
    >>> anchors, candidates = torch.randn(4, 256, 3), torch.randn(4, 256, 3)
    >>> model(anchors, candidates).distance.shape
    torch.Size([4])
    ```
    """

    def __init__(self, config: RelConDistanceConfig):
        super().__init__(config)
        self.revin = RelConRevIN(config)
        self.query_encoder = RelConDilatedConvStack(config)
        self.key_encoder = RelConDilatedConvStack(config)
        self.value_encoder = RelConDilatedConvStack(config)
        self.attention_dropout = nn.Dropout(config.attention_dropout)
        self.output_projection = nn.Linear(config.hidden_size, config.num_channels)

        self.post_init()

    def _attention_scores(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return queries @ keys.transpose(1, 2) / math.sqrt(self.config.hidden_size)

    def _attention_weights(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        scores = self._attention_scores(queries, keys)
        if self.config.attention == "sparsemax":
            return sparsemax(scores, dim=-1)
        return torch.softmax(scores, dim=-1)

    def _encode_candidates(
        self, candidate_values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """RevIN statistics (batch, 1, channels) and keys and values (batch, time, hidden) of candidate windows."""
        mean, std = self.revin.statistics(candidate_values)
        normalized_candidate = self.revin.normalize(candidate_values, mean, std).transpose(1, 2)
        keys = self.key_encoder(normalized_candidate).transpose(1, 2)
        values = self.value_encoder(normalized_candidate).transpose(1, 2)
        return mean, std, keys, values

    def _reconstruct(
        self,
        anchor_values: torch.Tensor,
        mean: torch.Tensor,
        std: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rebuild each anchor from its candidate's keys and values; returns the reconstruction and attention."""
        # The anchor is scaled by the candidate's statistics, so queries depend on the pair, keys and values do not.
        normalized_anchor = self.revin.normalize(anchor_values, mean, std)
        queries = self.query_encoder(normalized_anchor.transpose(1, 2)).transpose(1, 2)
        attention_weights = self._attention_weights(queries, keys)
        attended = self.attention_dropout(attention_weights) @ values
        reconstruction = self.revin.denormalize(self.output_projection(attended), mean, std)
        return reconstruction, attention_weights

    def forward(
        self,
        anchor_values: torch.Tensor,
        candidate_values: torch.Tensor,
        *,
        output_attentions: bool = False,
        return_dict: bool | None = None,
        **kwargs,
    ) -> RelConDistanceOutput | tuple[torch.Tensor, ...]:
        r"""
        Reconstruct each anchor from its candidate and measure the error.

        Args:
            anchor_values (`torch.FloatTensor` of shape `(batch_size, anchor_length, num_channels)`):
                Windows to reconstruct, in g.
            candidate_values (`torch.FloatTensor` of shape `(batch_size, candidate_length, num_channels)`):
                One candidate per anchor, in g. Both windows are normalised with the candidate's statistics.
            output_attentions (`bool`, *optional*, defaults to `False`):
                Whether to return the attention weights.
            return_dict (`bool`, *optional*):
                Whether to return a [`~transformers.utils.ModelOutput`] instead of a tuple.

        Returns:
            [`RelConDistanceOutput`] with `distance` of shape `(batch_size,)` and `reconstruction` of shape
            `(batch_size, anchor_length, num_channels)`.
        """
        _reject_unexpected_kwargs(type(self).__name__, kwargs)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        channels, min_length = self.config.num_channels, self.config.kernel_size // 2 + 1
        validate_input_values(anchor_values, channels, min_length, name="anchor_values")
        validate_input_values(candidate_values, channels, min_length, name="candidate_values")
        if anchor_values.shape[0] != candidate_values.shape[0]:
            raise ValueError(
                "`anchor_values` and `candidate_values` must hold the same number of windows (one candidate per "
                f"anchor), got {anchor_values.shape[0]} and {candidate_values.shape[0]}."
            )
        weight_dtype = self.output_projection.weight.dtype
        anchor_values = cast_input_values(anchor_values, weight_dtype)
        candidate_values = cast_input_values(candidate_values, weight_dtype)

        mean, std, keys, values = self._encode_candidates(candidate_values)
        reconstruction, attention_weights = self._reconstruct(anchor_values, mean, std, keys, values)

        distance = (reconstruction.float() - anchor_values.float()).pow(2).sum(dim=(1, 2))
        loss = distance.mean()

        if not return_dict:
            outputs = (loss, distance, reconstruction)
            return outputs + (attention_weights,) if output_attentions else outputs

        return RelConDistanceOutput(
            loss=loss,
            distance=distance,
            reconstruction=reconstruction,
            attention_weights=attention_weights if output_attentions else None,
        )

    def distances_for_pairs(
        self,
        anchor_values: torch.Tensor,
        candidate_values: torch.Tensor,
        anchor_index: torch.Tensor,
        candidate_index: torch.Tensor,
        *,
        chunk_size: int = 64,
        compile: bool = False,
    ) -> torch.Tensor:
        """
        Distance for each (anchor, candidate) pair, computing each candidate's keys and values once.

        Only the queries depend on the pair (the anchor is normalised with the candidate's statistics), so a window
        that is a candidate of many anchors costs one key and value pass, not one per pair.

        Args:
            anchor_values (`torch.FloatTensor` of shape `(num_anchors, anchor_length, num_channels)`):
                Anchor windows, in g.
            candidate_values (`torch.FloatTensor` of shape `(num_windows, candidate_length, num_channels)`):
                Every window that appears as a candidate, in g.
            anchor_index (`torch.LongTensor` of shape `(num_pairs,)`):
                Row of `anchor_values` for each pair.
            candidate_index (`torch.LongTensor` of shape `(num_pairs,)`):
                Row of `candidate_values` for each pair.
            chunk_size (`int`, *optional*, defaults to 64):
                Windows or pairs per pass; bounds peak memory (each pair holds a `window_length` x
                `window_length` float32 score matrix). On a GPU, larger chunks are faster.
            compile (`bool`, *optional*, defaults to `False`):
                Run the passes through `torch.compile`, with the sparsemax threshold found by fixed-point iteration
                instead of a top-k (see [`sparsemax_threshold_by_iteration`]); pairs where a threshold has not
                converged are redone the usual way. Applies to a model in eval mode with gradients off, as when
                ranking; otherwise, and if compiling fails (no C++ compiler, say), the passes run eagerly. The first
                call compiles (10 to 30 s on a 2-core CPU); later calls with the same shapes reuse the result.

        Returns:
            `torch.FloatTensor` of shape `(num_pairs,)`: `d(anchor_values[anchor_index[p]],
            candidate_values[candidate_index[p]])`.
        """
        channels, min_length = self.config.num_channels, self.config.kernel_size // 2 + 1
        validate_input_values(anchor_values, channels, min_length, name="anchor_values")
        validate_input_values(candidate_values, channels, min_length, name="candidate_values")
        if anchor_index.shape != candidate_index.shape or anchor_index.ndim != 1:
            raise ValueError(
                "`anchor_index` and `candidate_index` must be 1-D and of equal length (one entry per pair), got "
                f"shapes {tuple(anchor_index.shape)} and {tuple(candidate_index.shape)}."
            )
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"`chunk_size` must be a positive integer, got {chunk_size!r}.")
        weight_dtype = self.output_projection.weight.dtype
        anchor_values = cast_input_values(anchor_values, weight_dtype)
        candidate_values = cast_input_values(candidate_values, weight_dtype)

        if compile and not self.training and not torch.is_grad_enabled():
            compiled = _compiled_ranking_functions()
            if compiled is not None:
                encode, pair_distances = compiled
                try:
                    return self._chunked_distances(
                        lambda windows: encode(self, windows),
                        lambda anchors, features: self._settled_distances(pair_distances, anchors, features),
                        anchor_values,
                        candidate_values,
                        anchor_index,
                        candidate_index,
                        chunk_size,
                    )
                except torch._dynamo.exc.BackendCompilerFailed as error:
                    _disable_compiled_ranking(error)

        return self._chunked_distances(
            self._encode_candidates,
            self._reconstruction_error,
            anchor_values,
            candidate_values,
            anchor_index,
            candidate_index,
            chunk_size,
        )

    def _reconstruction_error(self, anchors: torch.Tensor, features: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Compute the distance of each anchor to the candidate whose `(mean, std, keys, values)` are given."""
        reconstruction, _ = self._reconstruct(anchors, *features)
        return (reconstruction.float() - anchors.float()).pow(2).sum(dim=(1, 2))

    def _settled_distances(
        self, pair_distances: Callable, anchors: torch.Tensor, features: tuple[torch.Tensor, ...]
    ) -> torch.Tensor:
        """Compute distances with the compiled pair pass, and redo eagerly the pairs whose threshold is unsettled."""
        distances, converged = pair_distances(self, anchors, features)
        if not converged.all():
            redo = (~converged).nonzero(as_tuple=True)[0]
            redone = self._reconstruction_error(anchors[redo], tuple(feature[redo] for feature in features))
            distances = distances.index_put((redo,), redone)
        return distances

    def _chunked_distances(
        self,
        encode: Callable,
        pair_distances: Callable,
        anchor_values: torch.Tensor,
        candidate_values: torch.Tensor,
        anchor_index: torch.Tensor,
        candidate_index: torch.Tensor,
        chunk_size: int,
    ) -> torch.Tensor:
        """
        Compute [`distances_for_pairs`] chunk by chunk: `encode` maps candidate windows to `(mean, std, keys,
        values)`, and `pair_distances` maps anchors and the features of their candidates to distances.
        """
        features = [
            encode(candidate_values[start : start + chunk_size])
            for start in range(0, candidate_values.shape[0], chunk_size)
        ]
        mean, std, keys, values = (torch.cat(parts) for parts in zip(*features, strict=True))

        distances = []
        for start in range(0, anchor_index.shape[0], chunk_size):
            anchors = anchor_values[anchor_index[start : start + chunk_size]]
            candidates = candidate_index[start : start + chunk_size]
            distances.append(
                pair_distances(anchors, (mean[candidates], std[candidates], keys[candidates], values[candidates]))
            )

        return torch.cat(distances)

    def pairwise_distances(
        self, anchor_values: torch.Tensor, candidate_values: torch.Tensor, *, chunk_size: int = 64
    ) -> torch.Tensor:
        """
        Distance from every anchor to each of its own candidates.

        Args:
            anchor_values (`torch.FloatTensor` of shape `(num_anchors, sequence_length, num_channels)`):
                Anchor windows, in g.
            candidate_values (`torch.FloatTensor` of shape `(num_anchors, num_candidates, length, num_channels)`):
                The candidates of each anchor, in g.
            chunk_size (`int`, *optional*, defaults to 64):
                Windows or pairs per pass; bounds peak memory.

        Returns:
            `torch.FloatTensor` of shape `(num_anchors, num_candidates)`: `distances[i, j] = d(anchor i, candidate j)`.
        """
        if candidate_values.ndim != 4 or candidate_values.shape[0] != anchor_values.shape[0]:
            raise ValueError(
                "`candidate_values` must have shape (num_anchors, num_candidates, sequence_length, num_channels) "
                f"with num_anchors={anchor_values.shape[0]}, got {tuple(candidate_values.shape)}."
            )
        num_anchors, num_candidates = candidate_values.shape[:2]
        device = anchor_values.device
        anchor_index = torch.arange(num_anchors, device=device).repeat_interleave(num_candidates)
        candidate_index = torch.arange(num_anchors * num_candidates, device=device)
        distances = self.distances_for_pairs(
            anchor_values,
            candidate_values.reshape(-1, *candidate_values.shape[2:]),
            anchor_index,
            candidate_index,
            chunk_size=chunk_size,
        )

        return distances.view(num_anchors, num_candidates)


def _encode_candidates_for_compile(
    model: RelConDistanceModel, candidate_values: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    return model._encode_candidates(candidate_values)


def _pair_distances_for_compile(
    model: RelConDistanceModel, anchor_values: torch.Tensor, features: tuple[torch.Tensor, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Compute the distances of a chunk of pairs in eval mode, with the sparsemax threshold from
    [`sparsemax_threshold_by_iteration`]. `features` are the `(mean, std, keys, values)` of each pair's candidate.

    Returns:
        `(distances, converged)`, both of shape `(num_pairs,)`: the distances, and whether every threshold of the
        pair converged; where it is false, that distance is not exact.
    """
    mean, std, keys, values = features
    normalized_anchor = model.revin.normalize(anchor_values, mean, std)
    queries = model.query_encoder(normalized_anchor.transpose(1, 2)).transpose(1, 2)
    scores = model._attention_scores(queries, keys)
    if model.config.attention == "sparsemax":
        # As in `sparsemax`, half-precision scores are thresholded in float32.
        scores = scores.float()
        threshold, converged = sparsemax_threshold_by_iteration(scores, _SPARSEMAX_ITERATIONS)
        attention_weights = torch.clamp(scores - threshold, min=0).to(values.dtype)
        pair_converged = converged.all(dim=-1)
    else:
        attention_weights = torch.softmax(scores, dim=-1)
        pair_converged = torch.ones(scores.shape[0], dtype=torch.bool, device=scores.device)
    reconstruction = model.revin.denormalize(model.output_projection(attention_weights @ values), mean, std)
    return (reconstruction.float() - anchor_values.float()).pow(2).sum(dim=(1, 2)), pair_converged


# The compiled ranking functions, built on first use and shared by every distance model in the process (dynamo
# guards on the model it is given). Once compiling has failed, `_compiled_ranking_disabled` keeps the passes eager.
_compiled_ranking: tuple | None = None
_compiled_ranking_disabled = False


def _compiled_ranking_functions() -> tuple | None:
    global _compiled_ranking
    if _compiled_ranking_disabled:
        return None
    if _compiled_ranking is None:
        try:
            _compiled_ranking = (
                torch.compile(_encode_candidates_for_compile),
                torch.compile(_pair_distances_for_compile),
            )
        except RuntimeError as error:
            # torch.compile raises at once where dynamo does not support the Python version.
            _disable_compiled_ranking(error)
            return None
    return _compiled_ranking


def _disable_compiled_ranking(error: Exception) -> None:
    global _compiled_ranking_disabled
    _compiled_ranking_disabled = True
    # Dynamo's message opens with "backend='inductor' raised:", and the cause is on the next line.
    lines = [line.strip() for line in str(error).splitlines() if line.strip() and not line.strip().endswith("raised:")]
    cause = lines[0] if lines else type(error).__name__
    logger.warning(
        f"Compiling the distance passes failed ({cause}); ranking runs eagerly instead, which gives the same "
        "distances more slowly. torch.compile needs a working C++ compiler on CPU; set `compile_ranking` to false "
        "to skip the attempt."
    )


__all__ = ["RelConDistanceModel", "RelConDistancePreTrainedModel", "sparsemax", "sparsemax_threshold_by_iteration"]
