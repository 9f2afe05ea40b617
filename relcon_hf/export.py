# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Export a RelCon encoder (with its head, if any) to ONNX or TorchScript, and check the exported outputs.

The exported graph takes `input_values` of shape `(batch_size, window_length, 3)` in g at the model rate, with a
dynamic batch dimension, and returns `embeddings` of shape `(batch_size, hidden_size)`, plus `logits` of shape
`(batch_size, num_labels)` for a checkpoint with a head. The window length is fixed at the checkpoint's
`window_length`.
"""

import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .modeling import RelConConfig, RelConForSequenceClassification, RelConModel


logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("onnx", "torchscript")
# Largest absolute difference from the PyTorch outputs that `export_model` accepts, for float32 outputs of order 1.
DEFAULT_TOLERANCE = 1e-4


class _ExportWrapper(torch.nn.Module):
    """Plain-tensor forward of an encoder or head, as the exporters need: no ModelOutput, no keyword arguments."""

    def __init__(self, model: torch.nn.Module, has_head: bool):
        super().__init__()
        self.model = model
        self.has_head = has_head

    def forward(self, input_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.has_head:
            output = self.model(input_values=input_values, return_dict=True)
            return output.embeddings, output.logits
        return (self.model(input_values=input_values, return_dict=True).pooler_output,)


@dataclass
class ExportReport:
    """
    Result of `export_model`.

    Args:
        path (`str`): File written.
        format (`str`): `"onnx"` or `"torchscript"`.
        output_names (`list[str]`): Names of the outputs, in order.
        num_check_windows (`int`): Windows the exported model was run on to compare with PyTorch.
        max_abs_difference (`dict[str, float]`): Largest absolute difference from the PyTorch output, per output.
    """

    path: str
    format: str
    output_names: list[str]
    num_check_windows: int
    max_abs_difference: dict[str, float]


def load_for_export(model_dir: str | os.PathLike) -> tuple[_ExportWrapper, RelConConfig, list[str]]:
    """Load a checkpoint in eval mode as a plain-tensor module, and return it with its config and output names."""
    config = RelConConfig.from_pretrained(model_dir)
    has_head = "RelConForSequenceClassification" in (config.architectures or [])
    model_class = RelConForSequenceClassification if has_head else RelConModel
    model = model_class.from_pretrained(model_dir).eval()
    names = ["embeddings", "logits"] if has_head else ["embeddings"]
    return _ExportWrapper(model, has_head).eval(), model.config, names


def export_model(
    model_dir: str | os.PathLike,
    output: str | os.PathLike,
    *,
    format: str = "onnx",
    check_windows: np.ndarray | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    opset_version: int = 18,
) -> ExportReport:
    """
    Export a checkpoint and compare the exported model's outputs with PyTorch's on `check_windows`.

    Args:
        model_dir (`str` or `os.PathLike`): `save_pretrained` folder of [`RelConModel`] or
            [`RelConForSequenceClassification`].
        output (`str` or `os.PathLike`): File to write (`.onnx` or `.pt`).
        format (`str`, *optional*, defaults to `"onnx"`): `"onnx"` (checked with onnxruntime) or `"torchscript"`
            (`torch.jit.trace`, checked with the loaded trace).
        check_windows (`np.ndarray` of shape `(num_windows, window_length, 3)`, *optional*): Windows in g to compare
            on. Without them, 8 windows of Gaussian noise around gravity are used; real windows are the better check.
        tolerance (`float`, *optional*, defaults to 1e-4): Largest accepted absolute difference per output value.
        opset_version (`int`, *optional*, defaults to 18): ONNX opset.

    Returns:
        [`ExportReport`].

    Raises:
        ValueError: the format is unknown, the windows have the wrong shape, or the outputs differ by more than
            `tolerance`.
        ImportError: ONNX export needs `onnx`, `onnxscript` and `onnxruntime` (the `export` extra).
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(f"`format` must be one of {', '.join(EXPORT_FORMATS)}, got {format!r}.")
    wrapper, config, output_names = load_for_export(model_dir)
    window_shape = (config.window_length, config.num_channels)
    if check_windows is None:
        generator = np.random.default_rng(0)
        check_windows = generator.normal(0.0, 0.3, size=(8, *window_shape)) + np.array([0.0, 0.0, 1.0])
    check_windows = np.ascontiguousarray(check_windows, dtype=np.float32)
    if check_windows.ndim != 3 or check_windows.shape[1:] != window_shape or len(check_windows) == 0:
        raise ValueError(
            f"`check_windows` must have shape (num_windows, {window_shape[0]}, {window_shape[1]}) to match the "
            f"checkpoint's window_length, got {check_windows.shape}."
        )
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    example = torch.from_numpy(check_windows[: min(2, len(check_windows))])
    with torch.no_grad():
        expected = [tensor.numpy() for tensor in wrapper(torch.from_numpy(check_windows))]

    if format == "onnx":
        actual = _export_onnx(wrapper, example, output, output_names, check_windows, opset_version)
    else:
        actual = _export_torchscript(wrapper, example, output, check_windows)

    differences = {
        name: float(np.max(np.abs(got - want))) for name, got, want in zip(output_names, actual, expected, strict=True)
    }
    report = ExportReport(str(output), format, output_names, len(check_windows), differences)
    output.with_name(output.name + ".json").write_text(json.dumps(report.__dict__, indent=2) + "\n")
    worst = max(differences.values())
    if not worst <= tolerance:
        raise ValueError(
            f"The {format} export differs from PyTorch by up to {worst:.3g} (per output: {differences}), more than "
            f"the tolerance {tolerance:g}. The file {output} was kept for inspection; do not use it as is."
        )
    return report


def _export_onnx(
    wrapper: _ExportWrapper,
    example: torch.Tensor,
    output: Path,
    output_names: list[str],
    check_windows: np.ndarray,
    opset_version: int,
) -> list[np.ndarray]:
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError(
            "ONNX export is checked with onnxruntime, which is not installed. Install it with "
            '`pip install "relcon-hf[export]"`.'
        ) from error

    batch = torch.export.Dim("batch_size", min=1)
    torch.onnx.export(
        wrapper,
        (example,),
        str(output),
        input_names=["input_values"],
        output_names=output_names,
        dynamic_shapes={"input_values": {0: batch}},
        opset_version=opset_version,
        dynamo=True,
        external_data=False,
    )
    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    return session.run(output_names, {"input_values": check_windows})


def _export_torchscript(
    wrapper: _ExportWrapper, example: torch.Tensor, output: Path, check_windows: np.ndarray
) -> list[np.ndarray]:
    # The model's input checks branch on shapes, so tracing warns that it records them as constants. The batch
    # dimension still stays free, as the tests check with other batch sizes.
    # NOTE: torch 2.13 marks torch.jit.save and torch.jit.load as deprecated in favour of torch.export.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        traced = torch.jit.trace(wrapper, (example,), check_trace=False)
    torch.jit.save(traced, str(output))
    loaded = torch.jit.load(str(output))
    with torch.no_grad():
        return [tensor.numpy() for tensor in loaded(torch.from_numpy(check_windows))]


__all__ = ["EXPORT_FORMATS", "ExportReport", "export_model", "load_for_export"]
