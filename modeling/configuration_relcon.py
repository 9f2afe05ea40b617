# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Configurations of the RelCon encoder and of its learned motif distance.

RelCon is described in Xu et al., "RelCon: Relative Contrastive Learning for a Motion Foundation Model for Wearable
Data", ICLR 2025 (arXiv:2411.18822). The authors' reference code is https://github.com/maxxu05/relcon. The defaults
below reproduce the paper's encoder and distance network.
"""

import math

from transformers import PreTrainedConfig
from transformers.utils import logging


logger = logging.get_logger(__name__)

CLASSIFIER_HEADS = ("linear", "mlp")
ATTENTION_FUNCTIONS = ("sparsemax", "softmax")


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")


def _check_probability(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be a number in [0, 1), got {value!r}.")


def _check_positive_float(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"`{name}` must be a positive number, got {value!r}.")


# Keys that `PreTrainedConfig.__post_init__` receives as keyword arguments and handles itself.
_BASE_CONFIG_KEYS = frozenset(
    {
        "auto_map",
        "num_labels",
        "torch_dtype",
        "name_or_path",
        "_commit_hash",
        "output_attentions",
        "attn_implementation",
        "experts_implementation",
        "per_layer_config",
        "_attn_implementation",
        "_attn_implementation_internal",
        "_experts_implementation",
        "_experts_implementation_internal",
    }
)


def _check_config_keys(config_class: type[PreTrainedConfig], kwargs: dict) -> None:
    """
    Reject a `model_type` of another model and warn about keys that `config_class` does not define.

    transformers only warns when a config.json of another model type is loaded into this class, and would then build
    a RelCon model with default settings. Unknown keys only warn, so a checkpoint saved by a newer relcon-hf with
    extra fields still loads. A misspelt field name shows up in the warning.
    """
    model_type = kwargs.pop("model_type", config_class.model_type)
    if model_type != config_class.model_type:
        raise ValueError(
            f"`model_type` must be {config_class.model_type!r} for {config_class.__name__}, got {model_type!r}. The "
            "configuration belongs to another kind of model: load it with that model's class or with AutoConfig."
        )
    unknown = sorted(key for key in kwargs if key not in _BASE_CONFIG_KEYS)
    if unknown:
        logger.warning(
            f"{config_class.__name__} does not define the fields {unknown}; they are kept on the configuration but "
            "have no effect. Check them for misspellings, or update relcon-hf if the checkpoint comes from a newer "
            "version."
        )


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {', '.join(repr(c) for c in choices)}, got {value!r}.")


class RelConConfig(PreTrainedConfig):
    r"""
    Configuration of [`RelConModel`] and its task heads: a 1-D pre-activation ResNet that maps a window of 3-axis
    acceleration to one embedding.

    ```
    input (batch, time, 3) in g at `sampling_rate`
      -> stem: conv(kernel 7, stride 2, no padding) -> BatchNorm -> ReLU -> max-pool(kernel 3, stride 2)
      -> stage 1: 3 blocks x  64 channels, kernel 3  (each block: BN, ReLU, conv, BN, ReLU, conv + shortcut)
      -> stage 2: 4 blocks x 128 channels, kernel 4  (1x1 projection shortcut where channels change)
      -> stage 3: 6 blocks x 256 channels, kernel 4
      -> mean over time -> embedding (batch, 256)
    ```

    Every block convolution has stride 1 and "same" padding, so the network is fully convolutional and accepts any
    window of at least [`~RelConConfig.min_sequence_length`] samples.

    Args:
        num_channels (`int`, *optional*, defaults to 3):
            Number of acceleration axes in the input.
        sampling_rate (`int`, *optional*, defaults to 100):
            Sampling rate in Hz that the model was trained on. The feature extractor resamples input to this rate.
        window_length (`int`, *optional*, defaults to 256):
            Pre-training window length in samples (2.56 s at 100 Hz). Inference accepts other lengths.
        stem_channels (`int`, *optional*, defaults to 64):
            Output channels of the stem convolution.
        stem_kernel_size (`int`, *optional*, defaults to 7):
            Kernel size of the stem convolution, in samples.
        stem_stride (`int`, *optional*, defaults to 2):
            Stride of the stem convolution, in samples.
        stem_pool_kernel_size (`int`, *optional*, defaults to 3):
            Kernel size of the max-pool after the stem convolution.
        stem_pool_stride (`int`, *optional*, defaults to 2):
            Stride of the max-pool after the stem convolution.
        stage_num_blocks (`list[int]`, *optional*, defaults to `[3, 4, 6]`):
            Number of residual blocks in each stage.
        stage_channels (`list[int]`, *optional*, defaults to `[64, 128, 256]`):
            Channels of each stage. The last entry is the embedding size (`hidden_size`).
        stage_kernel_sizes (`list[int]`, *optional*, defaults to `[3, 4, 4]`):
            Convolution kernel size of each stage, in samples (at the stem's output rate, a quarter of the input rate).
        batch_norm_eps (`float`, *optional*, defaults to 1e-5):
            Epsilon of every BatchNorm layer.
        batch_norm_momentum (`float`, *optional*, defaults to 0.1):
            Momentum of the BatchNorm running statistics.
        classifier_head (`str`, *optional*, defaults to `"mlp"`):
            Head of [`RelConForSequenceClassification`]: `"linear"` (embedding -> labels) or `"mlp"`
            (embedding -> `classifier_hidden_size` -> labels, with ReLU and dropout).
        classifier_hidden_size (`int`, *optional*, defaults to 512):
            Hidden width of the MLP head.
        classifier_dropout (`float`, *optional*, defaults to 0.1):
            Dropout probability applied before each linear layer of the head.
        freeze_encoder (`bool`, *optional*, defaults to `False`):
            Whether [`RelConForSequenceClassification`] keeps the encoder weights and BatchNorm statistics fixed and
            trains only the head (a probe).
        target_mean (`list[float]`, *optional*):
            Regression only: mean of each target in the training data, in physical units. With `target_std`, the
            head predicts standardised targets and [`RelConForSequenceClassification`] returns `logits` in the
            targets' units (`prediction * target_std + target_mean`); the loss is computed on standardised targets.
        target_std (`list[float]`, *optional*):
            Regression only: standard deviation of each target in the training data; positive.
        input_mean (`list[float]`, *optional*):
            Per-channel mean subtracted from `input_values` by [`RelConForSequenceClassification`] before the
            encoder, for heads trained on z-scored windows (the 2 s benchmark protocols). Set with `input_std`.
        input_std (`list[float]`, *optional*):
            Per-channel standard deviation that `input_values` are divided by after `input_mean`; positive.

    Example:

    ```python
    >>> from relcon_hf import RelConConfig, RelConModel

    >>> config = RelConConfig()
    >>> model = RelConModel(config)
    >>> config.hidden_size
    256
    ```
    """

    model_type = "relcon"

    num_channels: int = 3
    sampling_rate: int = 100
    window_length: int = 256
    stem_channels: int = 64
    stem_kernel_size: int = 7
    stem_stride: int = 2
    stem_pool_kernel_size: int = 3
    stem_pool_stride: int = 2
    stage_num_blocks: list[int] | tuple[int, ...] = (3, 4, 6)
    stage_channels: list[int] | tuple[int, ...] = (64, 128, 256)
    stage_kernel_sizes: list[int] | tuple[int, ...] = (3, 4, 4)
    batch_norm_eps: float = 1e-5
    batch_norm_momentum: float = 0.1
    classifier_head: str = "mlp"
    classifier_hidden_size: int = 512
    classifier_dropout: float = 0.1
    freeze_encoder: bool = False
    target_mean: list[float] | None = None
    target_std: list[float] | None = None
    input_mean: list[float] | None = None
    input_std: list[float] | None = None

    def __post_init__(self, **kwargs):
        # JSON has no tuples; storing lists keeps save -> load -> save byte-identical.
        self.stage_num_blocks = list(self.stage_num_blocks)
        self.stage_channels = list(self.stage_channels)
        self.stage_kernel_sizes = list(self.stage_kernel_sizes)
        self._validate_fields()
        _check_config_keys(type(self), kwargs)
        super().__post_init__(**kwargs)

    def _validate_fields(self) -> None:
        for name in (
            "num_channels",
            "sampling_rate",
            "window_length",
            "stem_channels",
            "stem_kernel_size",
            "stem_stride",
            "stem_pool_kernel_size",
            "stem_pool_stride",
            "classifier_hidden_size",
        ):
            _check_positive_int(name, getattr(self, name))

        stage_lists = {
            "stage_num_blocks": self.stage_num_blocks,
            "stage_channels": self.stage_channels,
            "stage_kernel_sizes": self.stage_kernel_sizes,
        }
        lengths = {name: len(values) for name, values in stage_lists.items()}
        if len(set(lengths.values())) != 1 or lengths["stage_channels"] == 0:
            raise ValueError(
                "`stage_num_blocks`, `stage_channels` and `stage_kernel_sizes` must be non-empty and of equal length "
                f"(one entry per stage), got lengths {lengths}."
            )
        for name, values in stage_lists.items():
            for index, value in enumerate(values):
                _check_positive_int(f"{name}[{index}]", value)

        _check_positive_float("batch_norm_eps", self.batch_norm_eps)
        _check_probability("batch_norm_momentum", self.batch_norm_momentum)
        _check_probability("classifier_dropout", self.classifier_dropout)
        _check_choice("classifier_head", self.classifier_head, CLASSIFIER_HEADS)
        if not isinstance(self.freeze_encoder, bool):
            raise ValueError(f"`freeze_encoder` must be True or False, got {self.freeze_encoder!r}.")
        self._validate_standardisation("target_mean", "target_std", None)
        self._validate_standardisation("input_mean", "input_std", self.num_channels)

    def _validate_standardisation(self, mean_name: str, std_name: str, length: int | None) -> None:
        """Check a mean/std pair: both unset, or both lists of equal length (`length` when given), std positive."""
        mean, std = getattr(self, mean_name), getattr(self, std_name)
        if mean is None and std is None:
            return
        if mean is None or std is None:
            raise ValueError(f"`{mean_name}` and `{std_name}` must be set together, got {mean!r} and {std!r}.")
        mean, std = [float(value) for value in mean], [float(value) for value in std]
        expected = length if length is not None else len(mean)
        if len(mean) != expected or len(std) != expected:
            raise ValueError(
                f"`{mean_name}` and `{std_name}` must each hold {expected} values, got {len(mean)} and {len(std)}."
            )
        if not all(math.isfinite(value) for value in mean) or not all(math.isfinite(v) and v > 0 for v in std):
            raise ValueError(f"`{mean_name}` must be finite and `{std_name}` positive, got {mean} and {std}.")
        setattr(self, mean_name, mean)
        setattr(self, std_name, std)

    @property
    def hidden_size(self) -> int:
        """Size of the embedding (`pooler_output`): the channels of the last stage."""
        return self.stage_channels[-1]

    @property
    def num_stages(self) -> int:
        """Number of residual stages."""
        return len(self.stage_channels)

    @property
    def min_sequence_length(self) -> int:
        """Shortest input, in samples, for which the stem convolution and max-pool produce one output step."""
        return self.stem_kernel_size + self.stem_stride * (self.stem_pool_kernel_size - 1)

    @property
    def receptive_field(self) -> int:
        """Input samples that one output step of the last stage depends on."""
        field = self.stem_kernel_size
        jump = self.stem_stride
        field += (self.stem_pool_kernel_size - 1) * jump
        jump *= self.stem_pool_stride
        for num_blocks, kernel_size in zip(self.stage_num_blocks, self.stage_kernel_sizes, strict=True):
            field += 2 * num_blocks * (kernel_size - 1) * jump

        return field


class RelConDistanceConfig(PreTrainedConfig):
    r"""
    Configuration of [`RelConDistanceModel`], the learned motif distance of RelCon's first stage.

    The model reconstructs an anchor window from a candidate window by cross-attention over time. Both windows are
    normalised with the candidate's per-channel mean and standard deviation (RevIN), three dilated-convolution
    stacks give the queries (from the anchor) and the keys and values (from the candidate), and a linear layer maps
    the attended features back to the axes. The distance is the summed squared reconstruction error.

    Args:
        num_channels (`int`, *optional*, defaults to 3):
            Number of acceleration axes.
        sampling_rate (`int`, *optional*, defaults to 100):
            Sampling rate in Hz of the windows the distance was trained on.
        window_length (`int`, *optional*, defaults to 256):
            Training window length in samples.
        hidden_size (`int`, *optional*, defaults to 64):
            Channels of each dilated-convolution stack and size of the attention features.
        kernel_size (`int`, *optional*, defaults to 15):
            Kernel size, in samples, of the input convolution and of the dilated convolution of each block.
        bottleneck_size (`int`, *optional*, defaults to 8):
            Channels of the 1x1 bottleneck convolution at the start of each dilated block.
        num_dilated_blocks (`int`, *optional*, defaults to 2):
            Residual dilated blocks after the input convolution; block `i` has dilation `2**i`.
        attention (`str`, *optional*, defaults to `"sparsemax"`):
            Function that turns attention scores into weights: `"sparsemax"` (what the reference code trains with)
            or `"softmax"`. The same function is used in training and ranking.
        attention_dropout (`float`, *optional*, defaults to 0.1):
            Dropout on the attention weights during training.
        revin_eps (`float`, *optional*, defaults to 1e-5):
            Added to the candidate's biased variance before the square root, so constant windows do not divide by
            zero.
        revin_affine (`bool`, *optional*, defaults to `True`):
            Whether RevIN learns a per-channel scale and shift (initialised to 1 and 0).
        rescale_input_borders (`bool`, *optional*, defaults to `True`):
            Whether the input convolution rescales its output near the window edges by kernel taps / taps inside the
            window, as a partial convolution does, so zero padding does not shrink the edge features. The reference
            code's first layer does this.

    Example:

    ```python
    >>> from relcon_hf import RelConDistanceConfig, RelConDistanceModel

    >>> config = RelConDistanceConfig(attention="softmax")
    >>> model = RelConDistanceModel(config)
    >>> config.receptive_field
    57
    ```
    """

    model_type = "relcon_distance"

    num_channels: int = 3
    sampling_rate: int = 100
    window_length: int = 256
    hidden_size: int = 64
    kernel_size: int = 15
    bottleneck_size: int = 8
    num_dilated_blocks: int = 2
    attention: str = "sparsemax"
    attention_dropout: float = 0.1
    revin_eps: float = 1e-5
    revin_affine: bool = True
    rescale_input_borders: bool = True

    def __post_init__(self, **kwargs):
        for name in (
            "num_channels",
            "sampling_rate",
            "window_length",
            "hidden_size",
            "kernel_size",
            "bottleneck_size",
        ):
            _check_positive_int(name, getattr(self, name))
        if isinstance(self.num_dilated_blocks, bool) or not isinstance(self.num_dilated_blocks, int):
            raise ValueError(f"`num_dilated_blocks` must be a non-negative integer, got {self.num_dilated_blocks!r}.")
        if self.num_dilated_blocks < 0:
            raise ValueError(f"`num_dilated_blocks` must be a non-negative integer, got {self.num_dilated_blocks!r}.")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"`kernel_size` must be odd so that 'same' padding is symmetric, got {self.kernel_size}.")
        _check_choice("attention", self.attention, ATTENTION_FUNCTIONS)
        _check_probability("attention_dropout", self.attention_dropout)
        _check_positive_float("revin_eps", self.revin_eps)
        for name in ("revin_affine", "rescale_input_borders"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"`{name}` must be True or False, got {getattr(self, name)!r}.")
        _check_config_keys(type(self), kwargs)
        super().__post_init__(**kwargs)

    @property
    def receptive_field(self) -> int:
        """Samples of the input that one feature of a dilated-convolution stack depends on."""
        field = self.kernel_size
        for block_index in range(self.num_dilated_blocks):
            field += (self.kernel_size - 1) * 2**block_index

        return field


__all__ = ["RelConConfig", "RelConDistanceConfig"]
