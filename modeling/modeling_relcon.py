# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""PyTorch RelCon encoder and task heads.

The encoder is the 1-D pre-activation ResNet of Xu et al., "RelCon: Relative Contrastive Learning for a Motion
Foundation Model for Wearable Data", ICLR 2025 (arXiv:2411.18822); layer layout and parameter names follow the
authors' reference code (https://github.com/maxxu05/relcon) closely enough that its checkpoints map one to one.
"""

import math
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPoolingAndNoAttention
from transformers.utils import ModelOutput, logging

from .configuration_relcon import RelConConfig


logger = logging.get_logger(__name__)


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
        raise ValueError(
            f"`{name}` must have shape (batch_size, sequence_length, {num_channels}), got a tensor of rank "
            f"{input_values.ndim} with shape {shape}. Add a batch dimension with `{name}[None]` for one window."
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


class RelConStage(nn.Module):
    """Residual blocks of one width; the first block projects the shortcut when the width changes."""

    def __init__(self, config: RelConConfig, in_channels: int, out_channels: int, num_blocks: int, kernel_size: int):
        super().__init__()
        self.blocks = nn.ModuleList(
            RelConResidualBlock(config, in_channels if index == 0 else out_channels, out_channels, kernel_size)
            for index in range(num_blocks)
        )

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
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

        # The convolutions read (batch, channels, time); users pass time-first windows.
        weight_dtype = self.stem.conv.weight.dtype
        if input_values.dtype != weight_dtype and not torch.is_autocast_enabled(input_values.device.type):
            input_values = input_values.to(weight_dtype)
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
