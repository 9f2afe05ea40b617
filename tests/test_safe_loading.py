"""Bad input on the checkpoint side: mismatched heads, foreign configs, pickled weights and remote code."""

import ast
import json
import logging
import pickle
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModel

import relcon_hf
from relcon_hf import (
    RelConConfig,
    RelConDistanceConfig,
    RelConDistanceModel,
    RelConForSequenceClassification,
    RelConModel,
)


TINY_ENCODER = {
    "stem_channels": 8,
    "stage_num_blocks": [1, 1],
    "stage_channels": [8, 16],
    "stage_kernel_sizes": [3, 4],
}
PACKAGE_ROOT = Path(relcon_hf.__file__).resolve().parent


@pytest.fixture()
def transformers_logs(caplog):
    """Records of the transformers logger, which does not propagate to the root logger by default."""
    transformers.logging.enable_propagation()
    caplog.set_level(logging.INFO, logger="transformers")
    yield caplog
    transformers.logging.disable_propagation()


def save(model, folder: Path) -> Path:
    model.save_pretrained(folder)
    return folder


# ---------------------------------------------------------------------------------------------------------------------
# Heads and encoders


def test_head_label_count_mismatch(tmp_path):
    torch.manual_seed(0)
    folder = save(RelConForSequenceClassification(RelConConfig(num_labels=3, **TINY_ENCODER)), tmp_path / "head")

    with pytest.raises(RuntimeError, match="ignore_mismatched_sizes"):
        RelConForSequenceClassification.from_pretrained(folder, num_labels=5)
    model, info = RelConForSequenceClassification.from_pretrained(
        folder, num_labels=5, ignore_mismatched_sizes=True, output_loading_info=True
    )

    assert {name for name, _, _ in info["mismatched_keys"]} == {
        "classifier.layers.4.weight",
        "classifier.layers.4.bias",
    }
    assert info["missing_keys"] == set()
    assert model.config.num_labels == 5
    assert len(model.config.id2label) == 5
    assert model.classifier.layers[-1].out_features == 5
    saved = load_file(str(folder / "model.safetensors"))
    for name, value in model.state_dict().items():
        if not name.startswith("classifier.layers.4"):
            assert torch.equal(value, saved[name]), name


def test_head_over_encoder_checkpoint_reports_only_head_weights(tmp_path, transformers_logs):
    torch.manual_seed(0)
    encoder = RelConModel(RelConConfig(**TINY_ENCODER))
    folder = save(encoder, tmp_path / "encoder")

    model, info = RelConForSequenceClassification.from_pretrained(folder, num_labels=4, output_loading_info=True)

    head_weights = {f"classifier.layers.{index}.{kind}" for index in (1, 4) for kind in ("weight", "bias")}
    assert info["missing_keys"] == head_weights
    assert info["unexpected_keys"] == set()
    report = "\n".join(record.getMessage() for record in transformers_logs.records)
    missing_lines = [line for line in report.splitlines() if "MISSING" in line and "|" in line]
    assert missing_lines, report
    assert all(line.startswith("classifier.layers.") for line in missing_lines), missing_lines
    for name, value in encoder.state_dict().items():
        assert torch.equal(model.relcon.state_dict()[name], value), name


# ---------------------------------------------------------------------------------------------------------------------
# Configurations


def test_config_with_other_model_type_is_rejected(tmp_path):
    encoder_dir = save(RelConModel(RelConConfig(**TINY_ENCODER)), tmp_path / "encoder")

    with pytest.raises(
        ValueError, match="`model_type` must be 'relcon_distance' for RelConDistanceConfig, got 'relcon'"
    ):
        RelConDistanceModel.from_pretrained(encoder_dir)
    config = json.loads((encoder_dir / "config.json").read_text())
    config["model_type"] = "bert"
    (encoder_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="`model_type` must be 'relcon' for RelConConfig, got 'bert'"):
        RelConModel.from_pretrained(encoder_dir)


def test_config_unknown_field_warns_and_loads(tmp_path, transformers_logs):
    folder = save(RelConModel(RelConConfig(**TINY_ENCODER)), tmp_path / "encoder")
    config = json.loads((folder / "config.json").read_text())
    config["stage_channel"] = [4, 4]  # misspelt: the real field is stage_channels
    (folder / "config.json").write_text(json.dumps(config))

    model = RelConModel.from_pretrained(folder)

    assert model.config.stage_channels == [8, 16]
    warnings = [record.getMessage() for record in transformers_logs.records if record.levelno == logging.WARNING]
    assert any("does not define the fields ['stage_channel']" in text for text in warnings), warnings


@pytest.mark.parametrize(
    "build",
    [
        lambda: RelConModel(RelConConfig(**TINY_ENCODER)),
        lambda: RelConForSequenceClassification(
            RelConConfig(num_labels=2, problem_type="regression", id2label={0: "speed", 1: "cadence"}, **TINY_ENCODER)
        ),
        lambda: RelConDistanceModel(RelConDistanceConfig(hidden_size=16, bottleneck_size=4, attention="softmax")),
    ],
    ids=["encoder", "regression head", "distance"],
)
def test_save_load_save_keeps_config_json(tmp_path, build):
    model = build()
    first = save(model, tmp_path / "first")
    texts = [(first / "config.json").read_text()]
    for cycle in range(2):
        loaded = type(model).from_pretrained(tmp_path / ("first" if cycle == 0 else f"cycle_{cycle - 1}"))
        folder = save(loaded, tmp_path / f"cycle_{cycle}")
        texts.append((folder / "config.json").read_text())

    assert texts[1] == texts[0]
    assert texts[2] == texts[0]


# ---------------------------------------------------------------------------------------------------------------------
# Pickled weights


class WritesFileWhenUnpickled:
    """Unpickling this object calls `Path.write_text`: what a hostile pytorch_model.bin could do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


def pickled_checkpoint(tmp_path: Path) -> tuple[Path, RelConModel]:
    torch.manual_seed(0)
    model = RelConModel(RelConConfig(**TINY_ENCODER))
    folder = save(model, tmp_path / "pickled")
    (folder / "model.safetensors").unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    return folder, model


def test_pickled_weights_need_opt_in(tmp_path):
    folder, model = pickled_checkpoint(tmp_path)

    with pytest.raises(OSError, match=r"pickled weights \(pytorch_model.bin\) but no model.safetensors") as error:
        RelConModel.from_pretrained(folder)
    assert "use_safetensors=False" in str(error.value)
    with pytest.raises(OSError, match="pytorch_model.bin"):
        AutoModel.from_pretrained(folder)
    with pytest.raises(ValueError, match="`weights_only` must be True"):
        RelConModel.from_pretrained(folder, use_safetensors=False, weights_only=False)

    loaded = RelConModel.from_pretrained(folder, use_safetensors=False)
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name


def test_hostile_pickle_is_not_executed_with_opt_in(tmp_path):
    folder, model = pickled_checkpoint(tmp_path)
    marker = tmp_path / "marker.txt"
    state = dict(model.state_dict())
    state["payload"] = WritesFileWhenUnpickled(marker)
    with open(folder / "pytorch_model.bin", "wb") as handle:
        pickle.dump(state, handle)

    with pytest.raises(Exception, match="(?i)weights only|weights_only|Unsupported global"):
        RelConModel.from_pretrained(folder, use_safetensors=False)
    assert not marker.exists()


def test_distance_model_refuses_pickles_too(tmp_path):
    model = RelConDistanceModel(RelConDistanceConfig(hidden_size=16, bottleneck_size=4))
    folder = save(model, tmp_path / "distance")
    (folder / "model.safetensors").unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")

    with pytest.raises(OSError, match="pytorch_model.bin"):
        RelConDistanceModel.from_pretrained(folder)
    assert isinstance(RelConDistanceModel.from_pretrained(folder, use_safetensors=False), RelConDistanceModel)


# ---------------------------------------------------------------------------------------------------------------------
# Remote code


def test_package_never_passes_trust_remote_code_true():
    """No call in relcon_hf (or the modeling files it ships) passes trust_remote_code=True or a variable."""
    calls = []
    for path in sorted(PACKAGE_ROOT.parent.glob("relcon_hf/**/*.py")) + sorted(
        (PACKAGE_ROOT / "modeling").resolve().glob("*.py")
    ):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                for keyword in node.keywords:
                    if keyword.arg == "trust_remote_code":
                        calls.append((path.name, node.lineno, ast.unparse(keyword.value)))

    assert all(value == "False" for _, _, value in calls), calls


def test_checkpoint_modeling_files_are_not_imported(tmp_path):
    """A checkpoint whose shipped modeling file is replaced by hostile code loads with the installed classes only."""
    folder = save(RelConModel(RelConConfig(**TINY_ENCODER)), tmp_path / "encoder")
    marker = tmp_path / "marker.txt"
    hostile = f"from pathlib import Path\nPath({str(marker)!r}).write_text('code ran')\n"
    for name in ("modeling_relcon.py", "configuration_relcon.py"):
        (folder / name).write_text(hostile + (folder / name).read_text())

    loaders = [
        lambda: RelConModel.from_pretrained(folder),
        lambda: RelConForSequenceClassification.from_pretrained(folder, num_labels=2),
        lambda: AutoConfig.from_pretrained(folder),
        lambda: AutoModel.from_pretrained(folder),
    ]
    for load in loaders:
        try:
            load()
        except ValueError as error:
            # transformers may refuse a checkpoint with auto_map when trust_remote_code is not given: also safe.
            assert "trust_remote_code" in str(error)
        assert not marker.exists()
