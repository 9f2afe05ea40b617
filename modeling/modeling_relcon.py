# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""PyTorch RelCon encoder and task heads.

The encoder is the 1-D pre-activation ResNet of Xu et al., "RelCon: Relative Contrastive Learning for a Motion
Foundation Model for Wearable Data", ICLR 2025 (arXiv:2411.18822); layer layout and parameter names follow the
authors' reference code (https://github.com/maxxu05/relcon) closely enough that its checkpoints map one to one.
"""

import math
import os
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPoolingAndNoAttention
from transformers.utils import ModelOutput, logging

from .configuration_relcon import RelConConfig


logger = logging.get_logger(__name__)

# Largest absolute input accepted, in g. Wrist accelerometers saturate at 8 to 16 g and high-g sensors at a few
# hundred g, so larger values are raw sensor counts or a unit mistake rather than acceleration.
MAX_ABS_ACCELERATION = 1e4
# Weight files that `from_pretrained` reads only when the caller opts in with `use_safetensors=False`.
PICKLE_WEIGHT_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
SAFETENSORS_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")


def validate_input_values(
    input_values: object, num_channels: int, min_length: int, name: str = "input_values"
) -> None:
    """Raise `ValueError` or `TypeError` unless `input_values` is a (batch, sequence_length, num_channels) tensor."""
    if not isinstance(input_values, torch.Tensor):
        raise TypeError(
            f"`{name}` must be a torch.Tensor of shape (batch_size, sequence_length, {num_channels}), "
            f"got {type(input_values).__name__}. Use the feature extractor with return_tensors='pt'."
        )
    shape = tuple(input_values.shape)
    if input_values.ndim != 3:
        fix = f"Add a batch dimension with `{name}[None]` for one window."
        if input_values.ndim == 2 and shape[0] == num_channels and shape[1] != num_channels:
            fix = f"It looks like one channels-first window; pass `{name}.T[None]`."
        raise ValueError(
            f"`{name}` must have shape (batch_size, sequence_length, {num_channels}), got a tensor of rank "
            f"{input_values.ndim} with shape {shape}. {fix}"
        )
    if shape[-1] != num_channels:
        hint = ""
        if shape[1] == num_channels:
            hint = f" The tensor looks channels-first; pass `{name}.transpose(1, 2)`."
        raise ValueError(
            f"`{name}` must have shape (batch_size, sequence_length, {num_channels}) with the axes last, "
            f"got {shape}.{hint}"
        )
    if shape[0] == 0:
        raise ValueError(f"`{name}` must contain at least one window, got shape {shape}.")
    if shape[1] < min_length:
        raise ValueError(
            f"`{name}` windows must be at least {min_length} samples long for this encoder, got sequence_length "
            f"{shape[1]} (shape {shape})."
        )
    if input_values.is_complex() or input_values.dtype == torch.bool:
        raise TypeError(f"`{name}` must hold real acceleration values, got dtype {input_values.dtype}.")
    check_value_range(input_values, name)


def check_value_range(input_values: torch.Tensor, name: str = "input_values") -> None:
    """
    Raise `ValueError` if `input_values` contains NaN, an infinity or an absolute value above `MAX_ABS_ACCELERATION` g.

    Without this check NaN input gives NaN embeddings and no error. The check reduces the whole tensor to one
    number, which on a GPU waits for the values to be computed (one device synchronisation per call).
    """
    if torch.compiler.is_exporting() or torch.compiler.is_compiling():
        # A traced graph cannot branch on tensor values; an exported model leaves the check to its caller.
        return
    values = input_values.detach()
    if not values.is_floating_point():
        values = values.double()  # abs() of the smallest int32 or int64 overflows and stays negative
    peak = float(values.abs().amax()) if values.numel() else 0.0
    if not math.isfinite(peak):
        non_finite = ~torch.isfinite(input_values.detach())
        windows = non_finite.flatten(1).any(dim=1).nonzero().flatten()
        raise ValueError(
            f"`{name}` must hold finite acceleration values, got {int(non_finite.sum())} NaN or infinite values in "
            f"{len(windows)} windows (first: {windows[:5].tolist()}). Interpolate or drop those samples first; "
            "RelConFeatureExtractor rejects recordings that contain them."
        )
    if peak > MAX_ABS_ACCELERATION:
        raise ValueError(
            f"`{name}` must be acceleration in g with absolute values up to {MAX_ABS_ACCELERATION:g}, got a maximum "
            f"absolute value of {peak:.4g}. Convert raw sensor counts or m/s^2 to g first (RelConFeatureExtractor "
            "converts m/s^2 with unit='m/s^2')."
        )


def cast_input_values(input_values: torch.Tensor, weight_dtype: torch.dtype) -> torch.Tensor:
    """
    Return `input_values` in the dtype of the weights, or under autocast in a floating dtype that autocast casts.

    Integer and float64 input is accepted this way: autocast casts floating tensors only, so integers would reach the
    convolutions unconverted.
    """
    if torch.is_autocast_enabled(input_values.device.type):
        if input_values.dtype in (torch.float32, torch.float16, torch.bfloat16):
            return input_values
        return input_values.to(torch.float32)
    return input_values.to(weight_dtype)


def check_batch_statistics(config: RelConConfig, input_values: torch.Tensor) -> None:
    """
    Raise `ValueError` if BatchNorm in training mode would see a single value per channel.

    The residual stages normalise over the batch and the time steps left after the stem, so training needs more
    than one of them in total. One window in training mode is fine when it is long enough.
    """
    batch_size, sequence_length = input_values.shape[:2]
    stem_length = (sequence_length - config.stem_kernel_size) // config.stem_stride + 1
    reduced_length = (stem_length - config.stem_pool_kernel_size) // config.stem_pool_stride + 1
    if batch_size * reduced_length < 2:
        min_length = config.min_sequence_length + config.stem_stride * config.stem_pool_stride
        raise ValueError(
            f"`input_values` of shape {tuple(input_values.shape)} leave {batch_size} x {reduced_length} time step "
            "after the stem, but BatchNorm in training mode needs more than one value per channel. Pass at least 2 "
            f"windows, windows of at least {min_length} samples, or call model.eval()."
        )


def check_weight_files(pretrained_model_name_or_path: object, kwargs: dict) -> dict:
    """
    Return `from_pretrained` keyword arguments that load safetensors weights only, unless the caller opts in.

    Pickled weights (`pytorch_model.bin`) can run code when unpickled. They are read only with
    `use_safetensors=False`, and then always with `torch.load(weights_only=True)`, which rebuilds tensors and plain
    containers only. A local folder that has pickled weights but no safetensors file raises `OSError` naming the file
    and the opt-in.
    """
    kwargs = dict(kwargs)
    if kwargs.get("weights_only", True) is not True:
        raise ValueError(
            f"`weights_only` must be True for RelCon checkpoints, got {kwargs['weights_only']!r}. Unpickling with "
            "weights_only=False can run code from the file; re-save the weights as safetensors from code you trust."
        )
    if kwargs.get("use_safetensors") is None:
        kwargs["use_safetensors"] = True
    folder = os.path.join(str(pretrained_model_name_or_path), kwargs.get("subfolder", ""))
    if kwargs["use_safetensors"] and os.path.isdir(folder):
        has_safetensors = any(os.path.isfile(os.path.join(folder, name)) for name in SAFETENSORS_WEIGHT_FILES)
        pickles = [name for name in PICKLE_WEIGHT_FILES if os.path.isfile(os.path.join(folder, name))]
        if pickles and not has_safetensors:
            raise OSError(
                f"{folder} has pickled weights ({pickles[0]}) but no model.safetensors. Pickles are not loaded by "
                "default because unpickling can run code. If you trust the source, pass use_safetensors=False (read "
                "with torch.load(weights_only=True)), or convert the file with `relcon-hf convert`."
            )
    return kwargs


@dataclass
class RelConSequenceClassifierOutput(ModelOutput):
    r"""
    Output of [`RelConForSequenceClassification`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` is given):
            Cross-entropy for classification, mean squared error for regression, binary cross-entropy for
            multi-label classification.
        logits (`torch.FloatTensor` of shape `(batch_size, num_labels)`):
            Class scores before softmax, or the regression predictions.
        embeddings (`torch.FloatTensor` of shape `(batch_size, hidden_size)`):
            Encoder embeddings the head was applied to.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned with `output_hidden_states=True`):
            Stem output and the output of each stage, each of shape `(batch_size, stage_length, stage_channels)`.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    embeddings: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


class RelConStem(nn.Module):
    """Strided conv, BatchNorm, ReLU and max-pool: (batch, channels, time) -> (batch, stem_channels, time / 4)."""

    def __init__(self, config: RelConConfig):
        super().__init__()
        self.conv = nn.Conv1d(
            config.num_channels, config.stem_channels, kernel_size=config.stem_kernel_size, stride=config.stem_stride
        )
        self.norm = nn.BatchNorm1d(
            config.stem_channels, eps=config.batch_norm_eps, momentum=config.batch_norm_momentum
        )
        self.activation = nn.ReLU()
        self.pool = nn.MaxPool1d(kernel_size=config.stem_pool_kernel_size, stride=config.stem_pool_stride)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.pool(self.activation(self.norm(self.conv(hidden_states))))


def _use_channels_last(stage: nn.Module, hidden_states: torch.Tensor) -> bool:
    """
    Decide whether a stage runs as 2-D channels-last convolutions: CPU inference outside tracing and export, on plain
    layers only.

    oneDNN's channels-last 2-D convolution ran the `paper` encoder's inference forward 21 % faster than `Conv1d` on a
    Xeon (docs/benchmarks.md) with float32 outputs equal to 2e-7. Its backward was slower, so training keeps `Conv1d`.
    """
    return (
        hidden_states.device.type == "cpu"
        and not torch.is_grad_enabled()
        and not torch.jit.is_tracing()
        and not torch.compiler.is_exporting()
        and not torch.compiler.is_compiling()
        and _has_plain_layers(stage)
    )


def _has_plain_layers(stage: nn.Module) -> bool:
    """
    Check that no layer of `stage` needs its own `forward` call, which the channels-last path skips.

    That path reads the weights of the `Conv1d` and `BatchNorm1d` layers directly. Forward hooks (feature extraction,
    legacy weight norm), accelerate's device and offload hooks, which replace an instance's `forward`, and subclasses
    with their own `forward` (adapters) would then be bypassed, so any of them sends the stage through `Conv1d`.
    """
    # Hooks registered for every module with `register_module_forward_hook` and its pre-hook twin.
    if nn.modules.module._global_forward_hooks or nn.modules.module._global_forward_pre_hooks:
        return False
    for module in stage.modules():
        if module._forward_hooks or module._forward_pre_hooks or "forward" in vars(module):
            return False
    # Exact types: a wrapper in place of a layer (a LoRA adapter, say) need not subclass it but has its own forward.
    for block in getattr(stage, "blocks", ()):
        layers = {
            "conv1": nn.Conv1d,
            "conv2": nn.Conv1d,
            "norm1": nn.BatchNorm1d,
            "norm2": nn.BatchNorm1d,
            "activation": nn.ReLU,
        }
        if any(type(getattr(block, name, None)) is not layer for name, layer in layers.items()):
            return False
        if type(block.projection) not in (nn.Conv1d, nn.Identity):
            return False
    return True


def _conv_channels_last(
    conv: nn.Conv1d,
    hidden_states: torch.Tensor,
    padding: tuple[int, int],
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """
    Apply `conv` with (left, right) zero padding to (batch, channels, 1, time) channels-last input.

    `weight` and `bias`, when given, replace the layer's own (same shapes), as for a folded BatchNorm.
    """
    left, right = padding
    widest = max(left, right)
    weight = conv.weight if weight is None else weight
    bias = conv.bias if bias is None else bias
    output = nn.functional.conv2d(hidden_states, weight.unsqueeze(2), bias, padding=(0, widest))
    if left != right:
        # Symmetric padding by the wider side yields |right - left| extra steps at one end; drop them.
        length = hidden_states.shape[-1] + left + right - conv.kernel_size[0] + 1
        output = output[..., widest - left : widest - left + length]
    return output


def _batch_norm_any_rank(norm: nn.BatchNorm1d, hidden_states: torch.Tensor) -> torch.Tensor:
    """`norm(hidden_states)` for (batch, channels, ...) input, which `BatchNorm1d` itself rejects beyond 3-D."""
    momentum = 0.0 if norm.momentum is None else norm.momentum
    if norm.training and norm.track_running_stats and norm.num_batches_tracked is not None:
        norm.num_batches_tracked.add_(1)
        if norm.momentum is None:
            momentum = 1.0 / float(norm.num_batches_tracked)
    use_batch_statistics = norm.training or (norm.running_mean is None and norm.running_var is None)
    track = not norm.training or norm.track_running_stats
    return nn.functional.batch_norm(
        hidden_states,
        norm.running_mean if track else None,
        norm.running_var if track else None,
        norm.weight,
        norm.bias,
        use_batch_statistics,
        momentum,
        norm.eps,
    )


class RelConResidualBlock(nn.Module):
    """Pre-activation residual block: BN, ReLU, conv, BN, ReLU, conv, plus the (projected) input."""

    def __init__(self, config: RelConConfig, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__()
        eps, momentum = config.batch_norm_eps, config.batch_norm_momentum
        # "Same" padding, with the extra sample on the right for even kernels (as PyTorch's padding="same" does).
        self.padding = ((kernel_size - 1) // 2, kernel_size // 2)
        self.norm1 = nn.BatchNorm1d(in_channels, eps=eps, momentum=momentum)
        self.conv1 = nn.Conv1d(in_channels, out_channels, kernel_size=kernel_size)
        self.norm2 = nn.BatchNorm1d(out_channels, eps=eps, momentum=momentum)
        self.conv2 = nn.Conv1d(out_channels, out_channels, kernel_size=kernel_size)
        self.activation = nn.ReLU()
        self.projection: nn.Module = (
            nn.Conv1d(in_channels, out_channels, kernel_size=1) if in_channels != out_channels else nn.Identity()
        )

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        residual = self.projection(hidden_states)
        hidden_states = self.conv1(nn.functional.pad(self.activation(self.norm1(hidden_states)), self.padding))
        hidden_states = self.conv2(nn.functional.pad(self.activation(self.norm2(hidden_states)), self.padding))

        return hidden_states + residual

    def forward_channels_last(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Same as `forward` for (batch, channels, 1, time) channels-last input; see `_use_channels_last`."""
        if isinstance(self.projection, nn.Identity):
            residual = hidden_states
        else:
            residual = _conv_channels_last(cast(nn.Conv1d, self.projection), hidden_states, (0, 0))
        normalized = self.activation(_batch_norm_any_rank(self.norm1, hidden_states))
        norm2 = self.norm2
        if self.training or norm2.running_mean is None or norm2.running_var is None:
            hidden_states = _conv_channels_last(self.conv1, normalized, self.padding)
            normalized = self.activation(_batch_norm_any_rank(norm2, hidden_states))
        else:
            # In evaluation mode norm2 is a fixed affine map of conv1's output, so it folds into conv1's weights.
            scale = torch.rsqrt(norm2.running_var + norm2.eps)
            if norm2.weight is not None:
                scale = scale * norm2.weight
            bias = norm2.running_mean.neg() if self.conv1.bias is None else self.conv1.bias - norm2.running_mean
            bias = bias * scale if norm2.bias is None else bias * scale + norm2.bias
            weight = self.conv1.weight * scale[:, None, None]
            normalized = self.activation(_conv_channels_last(self.conv1, normalized, self.padding, weight, bias))
        hidden_states = _conv_channels_last(self.conv2, normalized, self.padding)

        return hidden_states + residual


class RelConStage(nn.Module):
    """Residual blocks of one width; the first block projects the shortcut when the width changes."""

    def __init__(self, config: RelConConfig, in_channels: int, out_channels: int, num_blocks: int, kernel_size: int):
        super().__init__()
        self.blocks = nn.ModuleList(
            RelConResidualBlock(config, in_channels if index == 0 else out_channels, out_channels, kernel_size)
            for index in range(num_blocks)
        )

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if _use_channels_last(self, hidden_states):
            # (batch, channels, time) -> (batch, channels, 1, time) in channels-last memory; a no-op copy from the
            # previous stage, which returns that layout already.
            hidden_states = hidden_states.unsqueeze(2).contiguous(memory_format=torch.channels_last)
            for block in self.blocks:
                hidden_states = cast(RelConResidualBlock, block).forward_channels_last(hidden_states)
            return hidden_states.squeeze(2)

        for block in self.blocks:
            hidden_states = block(hidden_states)

        return hidden_states


class RelConPreTrainedModel(PreTrainedModel):
    """Weight initialisation and loading glue shared by the RelCon encoder and its heads."""

    config: RelConConfig
    config_class = RelConConfig
    base_model_prefix = "relcon"
    main_input_name = "input_values"
    _no_split_modules = ["RelConResidualBlock"]

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):  # type: ignore[override]
        """Load a checkpoint like `PreTrainedModel.from_pretrained`, reading safetensors weights only by default."""
        kwargs = check_weight_files(pretrained_model_name_or_path, kwargs)
        return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)

    def save_pretrained(self, save_directory, *args, **kwargs):
        # An encoder checkpoint should also load as a task head (and a head as an encoder) with remote code, so
        # auto_map names both classes, not only the one being saved.
        if self._auto_class is not None:
            auto_map = dict(getattr(self.config, "auto_map", None) or {})
            auto_map.setdefault("AutoModel", "modeling_relcon.RelConModel")
            auto_map.setdefault(
                "AutoModelForSequenceClassification", "modeling_relcon.RelConForSequenceClassification"
            )
            self.config.auto_map = auto_map
        return super().save_pretrained(save_directory, *args, **kwargs)

    def _init_weights(self, module: nn.Module) -> None:
        # PyTorch's default layer initialisation, which the reference code trains from.
        if isinstance(module, (nn.Conv1d, nn.Linear)):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                fan_in = module.weight.shape[1] * math.prod(module.weight.shape[2:])
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
                init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, nn.BatchNorm1d) and module.running_mean is not None:
            init.ones_(module.weight)
            init.zeros_(module.bias)
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)  # type: ignore[arg-type]
            init.zeros_(module.num_batches_tracked)  # type: ignore[arg-type]


class RelConModel(RelConPreTrainedModel):
    """
    The RelCon encoder: 3-axis acceleration windows to 256-d embeddings.

    Example:

    ```python
    >>> import torch
    >>> from relcon_hf import RelConConfig, RelConModel

    >>> model = RelConModel(RelConConfig()).eval()
    >>> windows = torch.randn(2, 256, 3)  # (batch_size, sequence_length, axes), in g at 100 Hz
    >>> model(windows).pooler_output.shape
    torch.Size([2, 256])
    ```
    """

    def __init__(self, config: RelConConfig):
        super().__init__(config)
        self.stem = RelConStem(config)

        in_channels = config.stem_channels
        stages = []
        for num_blocks, channels, kernel_size in zip(
            config.stage_num_blocks, config.stage_channels, config.stage_kernel_sizes, strict=True
        ):
            stages.append(RelConStage(config, in_channels, channels, num_blocks, kernel_size))
            in_channels = channels
        self.stages = nn.ModuleList(stages)

        self.post_init()

    def forward(
        self,
        input_values: torch.Tensor,
        *,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPoolingAndNoAttention | tuple[torch.Tensor, ...]:
        r"""
        Embed windows of acceleration.

        Args:
            input_values (`torch.FloatTensor` of shape `(batch_size, sequence_length, num_channels)`):
                Acceleration in g at `config.sampling_rate`, axes last, as returned by [`RelConFeatureExtractor`].
                Any `sequence_length` of at least `config.min_sequence_length` works.
            output_hidden_states (`bool`, *optional*):
                Whether to return the stem output and the output of each stage.
            return_dict (`bool`, *optional*):
                Whether to return a [`~transformers.utils.ModelOutput`] instead of a tuple.

        Returns:
            [`~transformers.modeling_outputs.BaseModelOutputWithPoolingAndNoAttention`] with
            `last_hidden_state` of shape `(batch_size, reduced_length, hidden_size)` (the last feature map, time
            first), `pooler_output` of shape `(batch_size, hidden_size)` (its mean over time: the embedding) and,
            when requested, `hidden_states`: a tuple of `1 + num_stages` tensors of shape
            `(batch_size, reduced_length, channels)`.
        """
        _reject_unexpected_kwargs(type(self).__name__, kwargs)
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        validate_input_values(input_values, self.config.num_channels, self.config.min_sequence_length)
        if self.training:
            check_batch_statistics(self.config, input_values)

        # The convolutions read (batch, channels, time); users pass time-first windows.
        input_values = cast_input_values(input_values, self.stem.conv.weight.dtype)
        hidden_states = self.stem(input_values.transpose(1, 2))

        all_hidden_states = [hidden_states] if output_hidden_states else None
        for stage in self.stages:
            hidden_states = stage(hidden_states)
            if all_hidden_states is not None:
                all_hidden_states.append(hidden_states)

        pooled_output = hidden_states.mean(dim=-1)
        last_hidden_state = hidden_states.transpose(1, 2)
        hidden_states_out = tuple(state.transpose(1, 2) for state in all_hidden_states) if all_hidden_states else None

        if not return_dict:
            outputs: tuple = (last_hidden_state, pooled_output)
            return outputs + (hidden_states_out,) if hidden_states_out is not None else outputs

        return BaseModelOutputWithPoolingAndNoAttention(
            last_hidden_state=last_hidden_state,
            pooler_output=pooled_output,
            hidden_states=hidden_states_out,
        )


class RelConClassificationHead(nn.Module):
    """Linear or MLP head on the embedding: (batch, hidden_size) -> (batch, num_labels)."""

    def __init__(self, config: RelConConfig):
        super().__init__()
        num_labels = len(config.id2label) if config.id2label else 2
        if config.classifier_head == "linear":
            self.layers = nn.Sequential(
                nn.Dropout(config.classifier_dropout),
                nn.Linear(config.hidden_size, num_labels),
            )
        else:
            self.layers = nn.Sequential(
                nn.Dropout(config.classifier_dropout),
                nn.Linear(config.hidden_size, config.classifier_hidden_size),
                nn.ReLU(),
                nn.Dropout(config.classifier_dropout),
                nn.Linear(config.classifier_hidden_size, num_labels),
            )

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.layers(embeddings)


class RelConForSequenceClassification(RelConPreTrainedModel):
    """
    RelCon encoder with a linear or MLP head, for activity recognition (single-label classification) or gait
    metrics (`problem_type="regression"`, one output per target named in `id2label`).

    Example:

    ```python
    >>> import torch
    >>> from relcon_hf import RelConConfig, RelConForSequenceClassification

    >>> config = RelConConfig(num_labels=3, problem_type="regression",
    ...                       id2label={0: "walking_speed", 1: "stride_length", 2: "cadence"})
    >>> model = RelConForSequenceClassification(config).eval()
    >>> model(torch.randn(4, 1000, 3)).logits.shape
    torch.Size([4, 3])
    ```
    """

    def __init__(self, config: RelConConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.relcon = RelConModel(config)
        self.classifier = RelConClassificationHead(config)
        for name in ("target_mean", "target_std"):
            values = getattr(config, name)
            if values is not None and len(values) != config.num_labels:
                raise ValueError(
                    f"`config.{name}` must hold one value per target ({config.num_labels}), got {len(values)} values."
                )

        self.post_init()
        if config.freeze_encoder:
            self.freeze_encoder()

    def freeze_encoder(self) -> None:
        """Stop gradient updates of the encoder and keep its BatchNorm statistics fixed; only the head trains."""
        self.config.freeze_encoder = True
        for parameter in self.relcon.parameters():
            parameter.requires_grad_(False)
        self.relcon.eval()

    def unfreeze_encoder(self) -> None:
        """Train the encoder together with the head."""
        self.config.freeze_encoder = False
        for parameter in self.relcon.parameters():
            parameter.requires_grad_(True)
        self.relcon.train(self.training)

    def train(self, mode: bool = True) -> "RelConForSequenceClassification":
        super().train(mode)
        # A frozen encoder must not update its BatchNorm running statistics in training mode.
        if self.config.freeze_encoder:
            self.relcon.eval()
        return self

    def forward(
        self,
        input_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        *,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> RelConSequenceClassifierOutput | tuple[torch.Tensor, ...]:
        r"""
        Predict activity classes or gait targets from windows of acceleration.

        Args:
            input_values (`torch.FloatTensor` of shape `(batch_size, sequence_length, num_channels)`):
                Acceleration in g at `config.sampling_rate`, axes last.
            labels (`torch.Tensor`, *optional*):
                Class indices of shape `(batch_size,)` for single-label classification; float targets of shape
                `(batch_size, num_labels)` (or `(batch_size,)` when `num_labels == 1`) for regression; 0/1 floats of
                shape `(batch_size, num_labels)` for multi-label classification.
            output_hidden_states (`bool`, *optional*):
                Whether to return the encoder's hidden states.
            return_dict (`bool`, *optional*):
                Whether to return a [`~transformers.utils.ModelOutput`] instead of a tuple.

        Returns:
            [`RelConSequenceClassifierOutput`] with `logits` of shape `(batch_size, num_labels)`, `embeddings` of
            shape `(batch_size, hidden_size)` and `loss` when `labels` is given.
        """
        _reject_unexpected_kwargs(type(self).__name__, kwargs)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if self.config.input_mean is not None and self.config.input_std is not None:
            input_values = torch.as_tensor(input_values)
            mean = input_values.new_tensor(self.config.input_mean)
            std = input_values.new_tensor(self.config.input_std)
            input_values = (input_values - mean) / std
        encoder_outputs = self.relcon(input_values, output_hidden_states=output_hidden_states, return_dict=True)
        embeddings = encoder_outputs.pooler_output
        logits = self.classifier(embeddings)

        loss = None
        target_scale = self._target_scale(logits)
        if labels is not None:
            labels = labels.to(logits.device)
            if target_scale is not None:
                if labels.ndim == 1 and self.num_labels == 1:
                    labels = labels[:, None]
                if labels.shape == logits.shape:  # other shapes are rejected by `_compute_loss`
                    # The head predicts standardised targets; the loss compares them with standardised labels.
                    labels = (labels.to(logits.dtype) - target_scale[0]) / target_scale[1]
            loss = self._compute_loss(logits, labels)
        if target_scale is not None:
            logits = logits * target_scale[1] + target_scale[0]

        if not return_dict:
            outputs: tuple = (logits, embeddings)
            if encoder_outputs.hidden_states is not None:
                outputs = outputs + (encoder_outputs.hidden_states,)
            return ((loss,) + outputs) if loss is not None else outputs

        return RelConSequenceClassifierOutput(
            loss=loss, logits=logits, embeddings=embeddings, hidden_states=encoder_outputs.hidden_states
        )

    def _target_scale(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Mean and standard deviation of the regression targets as tensors like `logits`, or `None` when unset."""
        if self.config.problem_type != "regression" or self.config.target_mean is None:
            return None
        mean = logits.new_tensor(self.config.target_mean)
        std = logits.new_tensor(self.config.target_std)
        return mean, std

    def _compute_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.config.problem_type is None:
            if self.num_labels == 1:
                self.config.problem_type = "regression"
            elif labels.dtype in (torch.long, torch.int):
                self.config.problem_type = "single_label_classification"
            else:
                self.config.problem_type = "multi_label_classification"

        if self.config.problem_type == "regression":
            if labels.ndim == 1 and self.num_labels == 1:
                labels = labels[:, None]
            if labels.shape != logits.shape:
                raise ValueError(
                    f"Regression `labels` must have shape {tuple(logits.shape)} (batch_size, num_labels), "
                    f"got {tuple(labels.shape)}."
                )
            return nn.functional.mse_loss(logits, labels.to(logits.dtype))

        if self.config.problem_type == "single_label_classification":
            if labels.ndim != 1 or labels.shape[0] != logits.shape[0]:
                raise ValueError(
                    f"Classification `labels` must be class indices of shape ({logits.shape[0]},), "
                    f"got shape {tuple(labels.shape)}."
                )
            if labels.is_floating_point():
                raise ValueError(f"Classification `labels` must be integer class indices, got dtype {labels.dtype}.")
            return nn.functional.cross_entropy(logits, labels)

        return nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


def _reject_unexpected_kwargs(model_name: str, kwargs: dict) -> None:
    if kwargs:
        raise TypeError(f"{model_name}.forward() got unexpected keyword arguments: {', '.join(sorted(kwargs))}.")


__all__ = ["RelConForSequenceClassification", "RelConModel", "RelConPreTrainedModel"]
