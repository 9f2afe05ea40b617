"""Tests of the RelCon encoder, its task head and their configuration."""

import inspect
import json

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

from relcon_hf import RelConConfig, RelConForSequenceClassification, RelConModel


def tiny_config(**overrides) -> RelConConfig:
    """Two narrow stages: fast enough for many tests, with a channel change that needs a projection shortcut."""
    settings = {
        "stem_channels": 8,
        "stage_num_blocks": [1, 2],
        "stage_channels": [8, 16],
        "stage_kernel_sizes": [3, 4],
    }
    settings.update(overrides)
    return RelConConfig(**settings)


@pytest.fixture
def real_windows(watch_corpus):
    """Six real 256-sample windows (acceleration in g) from the watch corpus, resampled to 100 Hz."""
    from relcon_hf import RelConFeatureExtractor

    extractor = RelConFeatureExtractor()
    recordings = watch_corpus.recordings[:3]
    windows = extractor(recordings, sampling_rate=watch_corpus.sampling_rate, return_tensors="pt")["input_values"]
    return windows[:6]


def test_config_defaults_match_paper_encoder():
    config = RelConConfig()

    assert config.stage_num_blocks == [3, 4, 6]
    assert config.stage_channels == [64, 128, 256]
    assert config.stage_kernel_sizes == [3, 4, 4]
    assert config.hidden_size == 256
    assert config.sampling_rate == 100
    assert config.window_length == 256
    assert config.num_channels == 3


def test_config_save_load_save_is_identical(tmp_path):
    config = tiny_config(classifier_head="linear", num_labels=3, id2label={0: "a", 1: "b", 2: "c"})
    config.save_pretrained(tmp_path / "first")
    reloaded = RelConConfig.from_pretrained(tmp_path / "first")
    reloaded.save_pretrained(tmp_path / "second")

    first = json.loads((tmp_path / "first" / "config.json").read_text())
    second = json.loads((tmp_path / "second" / "config.json").read_text())
    assert first == second
    assert reloaded.stage_channels == [8, 16]
    assert reloaded.id2label == {0: "a", 1: "b", 2: "c"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"num_channels": 0}, r"`num_channels` must be a positive integer, got 0"),
        ({"sampling_rate": -100}, r"`sampling_rate` must be a positive integer, got -100"),
        ({"window_length": 2.5}, r"`window_length` must be a positive integer, got 2.5"),
        ({"stage_channels": [64, 128]}, r"of equal length .* got lengths"),
        ({"stage_num_blocks": [], "stage_channels": [], "stage_kernel_sizes": []}, r"non-empty"),
        ({"stage_kernel_sizes": [3, 0, 4]}, r"`stage_kernel_sizes\[1\]` must be a positive integer, got 0"),
        ({"classifier_head": "transformer"}, r"`classifier_head` must be one of 'linear', 'mlp', got 'transformer'"),
        ({"classifier_dropout": 1.5}, r"`classifier_dropout` must be a number in \[0, 1\), got 1.5"),
        ({"batch_norm_eps": 0}, r"`batch_norm_eps` must be a positive number, got 0"),
        ({"freeze_encoder": "yes"}, r"`freeze_encoder` must be True or False, got 'yes'"),
    ],
)
def test_config_rejects_invalid_values(overrides, message):
    with pytest.raises(ValueError, match=message):
        RelConConfig(**overrides)


def test_config_derived_lengths():
    config = RelConConfig()

    assert config.min_sequence_length == 11
    # Stem (7) and pool (+2 * 2) give 11; each conv adds (kernel - 1) * 4 samples at the stem's quarter rate.
    assert config.receptive_field == 11 + 4 * (2 * 3 * 2 + 2 * 4 * 3 + 2 * 6 * 3)


def test_encoder_parameter_count():
    model = RelConModel(RelConConfig())

    num_parameters = sum(parameter.numel() for parameter in model.parameters())

    assert abs(num_parameters - 3.64e6) < 0.01e6


@pytest.mark.parametrize("sequence_length", [256, 1000])
def test_encoder_output_shapes(sequence_length):
    model = RelConModel(RelConConfig()).eval()

    with torch.no_grad():
        outputs = model(torch.randn(2, sequence_length, 3), output_hidden_states=True)

    reduced_length = ((sequence_length - 7) // 2 + 1 - 3) // 2 + 1
    assert outputs.pooler_output.shape == (2, 256)
    assert outputs.last_hidden_state.shape == (2, reduced_length, 256)
    assert len(outputs.hidden_states) == 4
    assert [state.shape[-1] for state in outputs.hidden_states] == [64, 64, 128, 256]
    assert torch.allclose(outputs.pooler_output, outputs.last_hidden_state.mean(dim=1), atol=1e-6)


def test_encoder_hidden_states_off_by_default():
    model = RelConModel(tiny_config()).eval()

    outputs = model(torch.randn(2, 64, 3))

    assert outputs.hidden_states is None


def test_encoder_tuple_output():
    model = RelConModel(tiny_config()).eval()

    outputs = model(torch.randn(2, 64, 3), return_dict=False)

    assert isinstance(outputs, tuple)
    assert outputs[1].shape == (2, 16)


def test_main_input_name_matches_forward():
    for model_class in (RelConModel, RelConForSequenceClassification):
        parameters = list(inspect.signature(model_class.forward).parameters)
        assert parameters[1] == model_class.main_input_name == "input_values"


def test_encoder_embeds_real_windows(real_windows):
    model = RelConModel(tiny_config()).eval()

    with torch.no_grad():
        embeddings = model(real_windows).pooler_output

    assert embeddings.shape == (6, 16)
    assert torch.isfinite(embeddings).all()


def test_encoder_accepts_float64_and_integer_input():
    model = RelConModel(tiny_config()).eval()
    windows = torch.randn(2, 64, 3)

    with torch.no_grad():
        reference = model(windows).pooler_output
        from_double = model(windows.double()).pooler_output
        from_integers = model(torch.ones(2, 64, 3, dtype=torch.int64)).pooler_output

    assert from_double.dtype == torch.float32
    assert torch.allclose(reference, from_double, atol=1e-6)
    assert torch.isfinite(from_integers).all()


@pytest.mark.parametrize(
    ("values", "error", "message"),
    [
        (torch.randn(64, 3), ValueError, r"rank 2 with shape \(64, 3\).*input_values\[None\]"),
        (torch.randn(2, 3, 64), ValueError, r"got \(2, 3, 64\).*channels-first.*transpose\(1, 2\)"),
        (torch.randn(2, 64, 6), ValueError, r"\(batch_size, sequence_length, 3\).*got \(2, 64, 6\)"),
        (torch.randn(2, 8, 3), ValueError, r"at least 11 samples .* got sequence_length 8"),
        (torch.randn(0, 64, 3), ValueError, r"at least one window"),
        ([[0.0, 0.0, 1.0]], TypeError, r"must be a torch.Tensor .* got list"),
    ],
)
def test_encoder_rejects_invalid_input(values, error, message):
    model = RelConModel(tiny_config())

    with pytest.raises(error, match=message):
        model(values)


def test_encoder_rejects_unknown_argument():
    model = RelConModel(tiny_config())

    with pytest.raises(TypeError, match="attention_mask"):
        model(torch.randn(2, 64, 3), attention_mask=torch.ones(2, 64))


def test_encoder_save_load_round_trip(tmp_path):
    model = RelConModel(tiny_config()).eval()
    windows = torch.randn(3, 100, 3)
    model.save_pretrained(tmp_path)

    reloaded, loading_info = RelConModel.from_pretrained(tmp_path, output_loading_info=True)

    assert (tmp_path / "model.safetensors").exists()
    assert not list(tmp_path.glob("*.bin"))
    assert not loading_info["missing_keys"]
    assert not loading_info["unexpected_keys"]
    with torch.no_grad():
        assert torch.equal(model(windows).pooler_output, reloaded.eval()(windows).pooler_output)


def test_auto_classes_resolve_to_relcon(tmp_path):
    RelConModel(tiny_config()).save_pretrained(tmp_path)

    config = AutoConfig.from_pretrained(tmp_path)
    encoder = AutoModel.from_pretrained(tmp_path)
    classifier = AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=4)

    assert type(config) is RelConConfig
    assert type(encoder) is RelConModel
    assert type(classifier) is RelConForSequenceClassification
    assert classifier.config.num_labels == 4


def test_saved_checkpoint_names_both_auto_classes(tmp_path):
    RelConModel(tiny_config()).save_pretrained(tmp_path)

    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]

    assert auto_map["AutoConfig"] == "configuration_relcon.RelConConfig"
    assert auto_map["AutoModel"] == "modeling_relcon.RelConModel"
    assert auto_map["AutoModelForSequenceClassification"] == "modeling_relcon.RelConForSequenceClassification"
    assert (tmp_path / "modeling_relcon.py").exists()
    assert (tmp_path / "configuration_relcon.py").exists()


@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_classifier_heads_shapes_and_loss(head):
    config = tiny_config(classifier_head=head, num_labels=7)
    model = RelConForSequenceClassification(config)
    labels = torch.tensor([0, 3, 6, 1])

    outputs = model(torch.randn(4, 128, 3), labels=labels)

    assert outputs.logits.shape == (4, 7)
    assert outputs.embeddings.shape == (4, 16)
    expected = torch.nn.functional.cross_entropy(outputs.logits, labels)
    assert torch.allclose(outputs.loss, expected)
    assert model.config.problem_type == "single_label_classification"


def test_classifier_linear_head_has_no_hidden_layer():
    linear = RelConForSequenceClassification(tiny_config(classifier_head="linear", num_labels=3))
    mlp = RelConForSequenceClassification(tiny_config(classifier_head="mlp", num_labels=3, classifier_hidden_size=32))

    linear_layers = [m for m in linear.classifier.modules() if isinstance(m, torch.nn.Linear)]
    mlp_layers = [m for m in mlp.classifier.modules() if isinstance(m, torch.nn.Linear)]

    assert [(m.in_features, m.out_features) for m in linear_layers] == [(16, 3)]
    assert [(m.in_features, m.out_features) for m in mlp_layers] == [(16, 32), (32, 3)]


def test_regression_head_uses_mse_and_named_targets():
    targets = {0: "walking_speed", 1: "stride_length", 2: "cadence"}
    config = tiny_config(num_labels=3, problem_type="regression", id2label=targets)
    model = RelConForSequenceClassification(config)
    labels = torch.tensor([[1.2, 1.3, 110.0], [0.9, 1.1, 95.0]])

    outputs = model(torch.randn(2, 128, 3), labels=labels)

    assert outputs.logits.shape == (2, 3)
    assert torch.allclose(outputs.loss, torch.nn.functional.mse_loss(outputs.logits, labels))
    assert model.config.id2label[2] == "cadence"


def test_regression_rejects_wrong_label_shape():
    model = RelConForSequenceClassification(tiny_config(num_labels=3, problem_type="regression"))

    with pytest.raises(ValueError, match=r"Regression `labels` must have shape \(2, 3\).*got \(2,\)"):
        model(torch.randn(2, 128, 3), labels=torch.tensor([1.0, 2.0]))


def test_frozen_encoder_trains_only_the_head():
    model = RelConForSequenceClassification(tiny_config(num_labels=2, freeze_encoder=True))
    model.train()
    encoder_state = {name: value.clone() for name, value in model.relcon.state_dict().items()}
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.1)

    loss = model(torch.randn(8, 128, 3), labels=torch.randint(0, 2, (8,))).loss
    loss.backward()
    optimizer.step()

    assert not any(parameter.requires_grad for parameter in model.relcon.parameters())
    assert not model.relcon.training
    for name, value in model.relcon.state_dict().items():
        assert torch.equal(value, encoder_state[name]), name


def test_head_loads_over_encoder_checkpoint(tmp_path):
    encoder = RelConModel(tiny_config()).eval()
    encoder.save_pretrained(tmp_path)
    windows = torch.randn(2, 128, 3)

    classifier, loading_info = RelConForSequenceClassification.from_pretrained(
        tmp_path, num_labels=5, output_loading_info=True
    )

    assert all(key.startswith("classifier.") for key in loading_info["missing_keys"])
    assert loading_info["missing_keys"]
    assert not loading_info["unexpected_keys"]
    with torch.no_grad():
        assert torch.equal(encoder(windows).pooler_output, classifier.eval()(windows).embeddings)


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("length", [256, 203])
def test_cpu_inference_layout_matches_conv1d(real_windows, training, length):
    """Without autograd the stages run as channels-last 2-D convolutions; the result equals the Conv1d path."""
    torch.manual_seed(0)
    # The kernel sizes 3 and 4 of `tiny_config` cover the symmetric and the asymmetric padding.
    model = RelConModel(tiny_config()).train(training)
    # Statistics and affine parameters away from their initial values, so a wrong BatchNorm fold shows.
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            size = module.num_features
            module.running_mean.copy_(torch.randn(size, generator=generator) * 0.5)
            module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
            torch.nn.init.normal_(module.weight, 1.0, 0.3, generator=generator)
            torch.nn.init.normal_(module.bias, 0.0, 0.3, generator=generator)
    windows = real_windows[:, :length]
    expected_model = RelConModel(model.config).train(training)
    expected_model.load_state_dict(model.state_dict())

    with torch.enable_grad():
        expected = expected_model(windows, output_hidden_states=True)
    with torch.no_grad():
        result = model(windows, output_hidden_states=True)

    torch.testing.assert_close(result.pooler_output, expected.pooler_output.detach(), rtol=1e-5, atol=1e-5)
    for hidden, expected_hidden in zip(result.hidden_states, expected.hidden_states, strict=True):
        torch.testing.assert_close(hidden, expected_hidden.detach(), rtol=1e-5, atol=1e-5)
    # In training mode both paths update the BatchNorm running statistics alike.
    for (name, buffer), expected_buffer in zip(model.named_buffers(), expected_model.buffers(), strict=True):
        torch.testing.assert_close(buffer, expected_buffer, rtol=1e-5, atol=1e-6, msg=name)


def test_inference_runs_forward_hooks(real_windows):
    """A hook on a layer inside a stage still fires without autograd, and the output is the Conv1d one."""
    torch.manual_seed(0)
    model = RelConModel(tiny_config()).eval()
    calls = []
    model.stages[1].blocks[0].conv1.register_forward_hook(lambda module, args, output: calls.append(output.shape))

    with torch.enable_grad():
        expected = model(real_windows).pooler_output.detach()
    with torch.no_grad():
        result = model(real_windows).pooler_output

    assert len(calls) == 2
    torch.testing.assert_close(result, expected, rtol=1e-6, atol=1e-6)


def test_inference_with_disk_offload(real_windows, tmp_path):
    """Weights offloaded by accelerate reach the layers through their forward hooks, also under no_grad."""
    torch.manual_seed(0)
    RelConModel(tiny_config()).save_pretrained(tmp_path / "model")
    reference = RelConModel.from_pretrained(tmp_path / "model").eval()
    device_map = {"stem": "cpu", "stages.0": "cpu", "stages.1": "disk"}
    offloaded = RelConModel.from_pretrained(
        tmp_path / "model", device_map=device_map, offload_folder=str(tmp_path / "offload")
    ).eval()

    with torch.no_grad():
        result = offloaded(real_windows).pooler_output
        expected = reference(real_windows).pooler_output

    torch.testing.assert_close(result, expected, rtol=1e-5, atol=1e-5)


class ScaledConv(torch.nn.Module):
    """A wrapper in place of a Conv1d that changes its output, as adapters do; it is not a Conv1d subclass."""

    def __init__(self, conv: torch.nn.Conv1d):
        super().__init__()
        self.base = conv
        self.weight, self.bias, self.kernel_size = conv.weight, conv.bias, conv.kernel_size

    def forward(self, hidden_states):
        return 2 * self.base(hidden_states)


def test_inference_runs_wrapped_layers(real_windows):
    torch.manual_seed(0)
    model = RelConModel(tiny_config()).eval()
    model.stages[1].blocks[0].conv2 = ScaledConv(model.stages[1].blocks[0].conv2)

    with torch.enable_grad():
        expected = model(real_windows).pooler_output.detach()
    with torch.no_grad():
        result = model(real_windows).pooler_output

    torch.testing.assert_close(result, expected, rtol=1e-6, atol=1e-6)
