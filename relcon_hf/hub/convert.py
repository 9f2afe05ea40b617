# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Convert state dicts written by the authors' RelCon reference code into relcon-hf checkpoints.

The reference implementation (https://github.com/maxxu05/relcon) saves `checkpoint_*.pkl` files with `torch.save`:
a dict whose `"net"` entry is the network's state dict. Two networks matter here:

- the encoder (`ResNet1D`): `first_block_conv.*`, `first_block_bn.*` and
  `basicblock_list.<n>.{bn1,conv1,bn2,conv2,projection_conv}.*`, one entry of `basicblock_list` per residual block;
- the learned distance (`CrossAttn`): `revin.affine_{weight,bias}`, `{q,k,v}_func.layer0.dilated_conv.*`,
  `{q,k,v}_func.layers.<n>.{bottle,dilated_conv}.*` and `out_proj.*`.

The configuration is read from the weight shapes where they determine it (channels, kernel sizes, blocks per
stage, bottleneck width). Strides and pooling of the encoder stem, and the distance's attention function, leave no
trace in the weights: they take the reference defaults unless overridden.
"""

import dataclasses
import json
import logging
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file

from ..modeling import (
    RelConConfig,
    RelConDistanceConfig,
    RelConDistanceModel,
    RelConFeatureExtractor,
    RelConModel,
)


logger = logging.getLogger(__name__)

KINDS = ("encoder", "distance")
_ENCODER_BLOCK_KEY = re.compile(r"^basicblock_list\.(\d+)\.(bn1|conv1|bn2|conv2|projection_conv)\.(\w+)$")
_ENCODER_BLOCK_LAYERS = {
    "bn1": "norm1",
    "conv1": "conv1",
    "bn2": "norm2",
    "conv2": "conv2",
    "projection_conv": "projection",
}
_DISTANCE_STACKS = {"q_func": "query_encoder", "k_func": "key_encoder", "v_func": "value_encoder"}
_DISTANCE_KEY = re.compile(r"^([qkv]_func)\.(?:layer0\.dilated_conv|layers\.(\d+)\.(bottle|dilated_conv))\.(\w+)$")
_REFERENCE_CHECKPOINT_ENTRY = "net"


@dataclass
class ConversionReport:
    """Outcome of a conversion: the model kind, its configuration, and every key that did not carry over."""

    kind: str
    config: dict
    num_converted: int
    unmapped_source_keys: list[str] = field(default_factory=list)
    unset_target_keys: list[str] = field(default_factory=list)

    def as_text(self) -> str:
        lines = [f"Converted {self.num_converted} tensors into a RelCon {self.kind}."]
        if self.unmapped_source_keys:
            lines.append(f"Source keys with no counterpart ({len(self.unmapped_source_keys)}):")
            lines += [f"  {key}" for key in self.unmapped_source_keys]
        if self.unset_target_keys:
            lines.append(f"Model weights left unset ({len(self.unset_target_keys)}):")
            lines += [f"  {key}" for key in self.unset_target_keys]
        return "\n".join(lines)


def load_reference_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """
    Read a state dict from a `.safetensors` file or a `torch.save` pickle.

    Pickles are read with `torch.load(weights_only=True)`, which only rebuilds tensors and plain containers, so a
    file that tries to run code is rejected instead of executed. A reference training checkpoint, a dict with the
    network under `"net"` beside optimizer state and the epoch, is unwrapped. A `module.` prefix left by
    `DataParallel` is removed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No state dict at {path}.")
    state: object
    if path.suffix == ".safetensors":
        state = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
            # torch's own message suggests weights_only=False, which would run code from the file: leave it out.
            raise ValueError(
                f"Could not read {path} as a weights-only PyTorch pickle ({type(error).__name__}). The file is "
                "damaged, or it contains objects other than tensors and plain containers, which are not loaded "
                "because unpickling them can run code. Re-save the network's state_dict() alone, from code you trust."
            ) from None

    if isinstance(state, dict) and isinstance(state.get(_REFERENCE_CHECKPOINT_ENTRY), dict):
        state = state[_REFERENCE_CHECKPOINT_ENTRY]
    if not isinstance(state, dict) or not state:
        raise ValueError(f"{path} does not contain a state dict (a non-empty mapping of names to tensors).")
    tensors = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{path}: entry {key!r} is a {type(value).__name__}, expected a tensor.")
        tensors[key.removeprefix("module.")] = value
    return tensors


def _check_overrides(config_class: type, overrides: dict) -> None:
    allowed = {item.name for item in dataclasses.fields(config_class)}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ValueError(
            f"{config_class.__name__} has no fields {unknown}; configuration overrides must be among "
            f"{', '.join(sorted(allowed))}."
        )


def detect_kind(state_dict: dict[str, torch.Tensor]) -> str:
    """Tell an encoder state dict from a distance state dict by their reference key names."""
    if any(key.startswith("first_block_conv.") for key in state_dict):
        return "encoder"
    if any(key.startswith("q_func.") for key in state_dict):
        return "distance"
    sample = ", ".join(sorted(state_dict)[:5])
    raise ValueError(
        "The state dict has neither the reference encoder's keys (first_block_conv.*) nor the distance network's "
        f"(q_func.*); first keys: {sample}. Pass the network's own state dict, or the checkpoint's 'net' entry."
    )


def _encoder_block_indices(state_dict: dict[str, torch.Tensor]) -> list[int]:
    return sorted(
        {int(match.group(1)) for key in state_dict if (match := _ENCODER_BLOCK_KEY.match(key))},
    )


def infer_encoder_config(state_dict: dict[str, torch.Tensor], **overrides) -> RelConConfig:
    """
    Read [`RelConConfig`] from reference encoder weights: input channels, stem width and kernel, and the blocks.

    Consecutive blocks with the same width and kernel size form one stage.
    """
    stem = state_dict.get("first_block_conv.weight")
    if stem is None or stem.ndim != 3:
        raise ValueError("The encoder state dict lacks first_block_conv.weight of shape (channels, inputs, kernel).")
    stages: list[list[int]] = []  # [num_blocks, channels, kernel_size]
    for index in _encoder_block_indices(state_dict):
        weight = state_dict.get(f"basicblock_list.{index}.conv1.weight")
        if weight is None:
            raise ValueError(f"The encoder state dict lacks basicblock_list.{index}.conv1.weight.")
        channels, kernel_size = int(weight.shape[0]), int(weight.shape[2])
        if stages and stages[-1][1:] == [channels, kernel_size]:
            stages[-1][0] += 1
        else:
            stages.append([1, channels, kernel_size])
    if not stages:
        raise ValueError("The encoder state dict has no basicblock_list.<n>.* residual blocks.")

    settings = {
        "num_channels": int(stem.shape[1]),
        "stem_channels": int(stem.shape[0]),
        "stem_kernel_size": int(stem.shape[2]),
        "stage_num_blocks": [stage[0] for stage in stages],
        "stage_channels": [stage[1] for stage in stages],
        "stage_kernel_sizes": [stage[2] for stage in stages],
    }
    _check_overrides(RelConConfig, overrides)
    return RelConConfig(**{**settings, **overrides})


def map_encoder_keys(state_dict: dict[str, torch.Tensor], config: RelConConfig) -> tuple[dict, list[str]]:
    """Rename reference encoder keys to [`RelConModel`] keys; returns the renamed tensors and the unmapped keys."""
    # The reference numbers blocks across the whole network; relcon-hf numbers them within each stage.
    block_positions = []
    for stage_index, num_blocks in enumerate(config.stage_num_blocks):
        block_positions += [(stage_index, block_index) for block_index in range(num_blocks)]
    ordered_blocks = {index: position for position, index in enumerate(_encoder_block_indices(state_dict))}

    mapped, unmapped = {}, []
    for key, value in state_dict.items():
        target = None
        if key.startswith("first_block_conv."):
            target = "stem.conv." + key.removeprefix("first_block_conv.")
        elif key.startswith("first_block_bn."):
            target = "stem.norm." + key.removeprefix("first_block_bn.")
        elif match := _ENCODER_BLOCK_KEY.match(key):
            position = ordered_blocks[int(match.group(1))]
            if position < len(block_positions):
                stage_index, block_index = block_positions[position]
                layer = _ENCODER_BLOCK_LAYERS[match.group(2)]
                target = f"stages.{stage_index}.blocks.{block_index}.{layer}.{match.group(3)}"
        if target is None:
            unmapped.append(key)
        else:
            mapped[target] = value
    return mapped, unmapped


def infer_distance_config(state_dict: dict[str, torch.Tensor], **overrides) -> RelConDistanceConfig:
    """Read [`RelConDistanceConfig`] from reference distance weights: channels, width, kernel, bottleneck, blocks."""
    first = state_dict.get("q_func.layer0.dilated_conv.weight")
    if first is None or first.ndim != 3:
        raise ValueError(
            "The distance state dict lacks q_func.layer0.dilated_conv.weight of shape (hidden, channels, kernel)."
        )
    block_indices = sorted(
        {int(match.group(2)) for key in state_dict if (match := _DISTANCE_KEY.match(key)) and match.group(2)}
    )
    settings: dict = {
        "num_channels": int(first.shape[1]),
        "hidden_size": int(first.shape[0]),
        "kernel_size": int(first.shape[2]),
        "num_dilated_blocks": len(block_indices),
        "revin_affine": "revin.affine_weight" in state_dict,
    }
    bottleneck = state_dict.get("q_func.layers.0.bottle.weight")
    if bottleneck is not None:
        settings["bottleneck_size"] = int(bottleneck.shape[0])
    _check_overrides(RelConDistanceConfig, overrides)
    return RelConDistanceConfig(**{**settings, **overrides})


def map_distance_keys(state_dict: dict[str, torch.Tensor]) -> tuple[dict, list[str]]:
    """Rename reference distance keys to [`RelConDistanceModel`] keys; returns the tensors and the unmapped keys."""
    mapped, unmapped = {}, []
    for key, value in state_dict.items():
        target = None
        if key in ("revin.affine_weight", "revin.affine_bias"):
            target = key
        elif key.startswith("out_proj."):
            target = "output_projection." + key.removeprefix("out_proj.")
        elif match := _DISTANCE_KEY.match(key):
            stack, block_index, layer, name = match.groups()
            if block_index is None:
                target = f"{_DISTANCE_STACKS[stack]}.input_conv.{name}"
            else:
                layer_name = "bottleneck" if layer == "bottle" else "dilated_conv"
                target = f"{_DISTANCE_STACKS[stack]}.blocks.{block_index}.{layer_name}.{name}"
        if target is None:
            unmapped.append(key)
        else:
            mapped[target] = value
    return mapped, unmapped


def convert_state_dict(
    state_dict: dict[str, torch.Tensor], *, kind: str | None = None, **config_overrides
) -> tuple[RelConModel | RelConDistanceModel, ConversionReport]:
    """
    Build a relcon-hf model from a reference state dict.

    Args:
        state_dict (`dict[str, torch.Tensor]`): Reference encoder or distance weights.
        kind (`str`, *optional*): `"encoder"` or `"distance"`; detected from the key names when omitted.
        **config_overrides: Configuration fields the weights do not determine, such as `stem_stride` or
            `attention`.

    Returns:
        The model with the converted weights, and a [`ConversionReport`]. Keys that do not carry over are listed in
        the report; the caller decides whether that is acceptable.
    """
    kind = kind or detect_kind(state_dict)
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {', '.join(KINDS)}, got {kind!r}.")

    model: RelConModel | RelConDistanceModel
    if kind == "encoder":
        encoder_config = infer_encoder_config(state_dict, **config_overrides)
        mapped, unmapped = map_encoder_keys(state_dict, encoder_config)
        model = RelConModel(encoder_config)
    else:
        distance_config = infer_distance_config(state_dict, **config_overrides)
        mapped, unmapped = map_distance_keys(state_dict)
        model = RelConDistanceModel(distance_config)

    target_state = model.state_dict()
    for name in list(mapped):
        if name not in target_state:
            unmapped.append(name)
            del mapped[name]
        elif mapped[name].shape != target_state[name].shape:
            raise ValueError(
                f"Converted weight {name} has shape {tuple(mapped[name].shape)}, but the inferred configuration "
                f"expects {tuple(target_state[name].shape)}. Pass the configuration fields that differ explicitly."
            )
    unset = sorted(set(target_state) - set(mapped))
    converted = {name: value.to(target_state[name].dtype) for name, value in mapped.items()}
    model.load_state_dict(converted, strict=False)

    report = ConversionReport(
        kind=kind,
        config=model.config.to_diff_dict(),
        num_converted=len(converted),
        unmapped_source_keys=sorted(unmapped),
        unset_target_keys=unset,
    )
    return model.eval(), report


def convert_checkpoint(
    source: str | Path,
    output_dir: str | Path,
    *,
    kind: str | None = None,
    allow_unmapped: bool = False,
    **config_overrides,
) -> ConversionReport:
    """
    Convert a reference checkpoint file into a `save_pretrained` folder with its feature extractor settings.

    Raises `ValueError` listing the keys when a model weight is left unset, and also when a source key has no
    counterpart, unless `allow_unmapped` is set (then those keys are only reported).
    """
    state_dict = load_reference_state_dict(source)
    model, report = convert_state_dict(state_dict, kind=kind, **config_overrides)
    if report.unset_target_keys or (report.unmapped_source_keys and not allow_unmapped):
        hint = "" if report.unset_target_keys else " Pass --allow-unmapped to convert anyway."
        raise ValueError(f"{source} does not convert cleanly.\n{report.as_text()}\nNothing was written.{hint}")

    output_dir = Path(output_dir)
    model.save_pretrained(output_dir)
    RelConFeatureExtractor(
        feature_size=model.config.num_channels,
        sampling_rate=model.config.sampling_rate,
        window_length=model.config.window_length,
    ).save_pretrained(output_dir)
    with open(output_dir / "conversion_report.json", "w") as handle:
        json.dump({"source": str(source), **report.__dict__}, handle, indent=2)
    logger.info(f"Wrote the converted {report.kind} to {output_dir}")
    return report
