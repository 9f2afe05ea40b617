"""Hub paths as users meet them: model cards, publishing, downloads from the cache, reference checkpoints.

The Hub itself is the only stand-in: publishing runs huggingface_hub's real client against `hub_stand_in.StandInHub`
on 127.0.0.1, and downloads read a real Hugging Face cache folder with `HF_HUB_OFFLINE=1`.
"""

import copy
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import yaml
from hub_stand_in import StandInHub
from huggingface_hub import ModelCard, constants, scan_cache_dir
from huggingface_hub.repocard_data import model_index_to_eval_results
from safetensors.torch import save_file

from relcon_hf import (
    RelConConfig,
    RelConDistanceConfig,
    RelConDistanceModel,
    RelConFeatureExtractor,
    RelConForSequenceClassification,
    RelConModel,
)
from relcon_hf.cli import main
from relcon_hf.hub import add_to_hub_cache, check_checkpoint_folder, load_evaluation_results, write_model_card
from relcon_hf.hub.convert import convert_state_dict
from relcon_hf.hub.model_card import CARD_TAGS


REPO_ID = "relcon-test/relcon-tiny"
TOKEN = "hf_stand_in_token_alice"
TINY_RUN = {
    "distance": {"max_steps": 4, "batch_size": 16, "eval_steps": 2, "eval_batches": 2, "logging_steps": 2,
                 "checkpoint_steps": 2, "model": {"hidden_size": 16, "bottleneck_size": 4}},
    "encoder": {"max_steps": 3, "batch_size": 8, "num_candidates": 4, "eval_steps": 3, "eval_batches": 2,
                "checkpoint_steps": 3, "logging_steps": 1,
                "model": {"stem_channels": 8, "stage_channels": [8, 16, 32], "stage_num_blocks": [1, 1, 1]}},
    "probe": {"num_folds": 2},
}  # fmt: skip


LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Fail any name lookup for a host other than loopback, so no test of this module can reach the real Hub."""
    lookup = socket.getaddrinfo

    def guarded_getaddrinfo(host, *args, **kwargs):
        if host not in LOOPBACK_HOSTS:
            raise AssertionError(f"A test tried to reach {host!r}; only loopback addresses are allowed here.")
        return lookup(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, watch_shards):
    """A complete tiny two-stage run with its linear probe, on the real watch shards."""
    folder = tmp_path_factory.mktemp("hub_run")
    settings = folder / "tiny.json"
    settings.write_text(json.dumps(TINY_RUN))
    run = folder / "run"
    exit_code = main(["pretrain", "--shards", str(watch_shards), "--config", str(settings), "--output-dir", str(run)])
    assert exit_code == 0
    return run


@pytest.fixture
def encoder_dir(run_dir, tmp_path):
    """A copy of the run (so tests may change it) and the path of its encoder checkpoint."""
    shutil.copytree(run_dir, tmp_path / "run", ignore=shutil.ignore_patterns("checkpoints"))
    shutil.copytree(run_dir / "encoder" / "checkpoints", tmp_path / "run" / "encoder" / "checkpoints")
    return tmp_path / "run" / "encoder"


def front_matter(card_path) -> dict:
    return yaml.safe_load(card_path.read_text().split("---")[1])


# Model cards.


def test_encoder_card_round_trips_through_model_card_load(encoder_dir):
    probe = json.loads((encoder_dir.parent / "probe_results.json").read_text())

    written = write_model_card(encoder_dir, repo_id=REPO_ID)
    loaded = ModelCard.load(encoder_dir / "README.md")

    assert loaded.data.to_dict() == written.data.to_dict()
    assert loaded.data.library_name == "transformers"
    assert loaded.data.license == "apache-2.0"
    assert loaded.data.pipeline_tag == "feature-extraction"
    assert loaded.data.tags == CARD_TAGS
    model_name, results = model_index_to_eval_results(front_matter(encoder_dir / "README.md")["model-index"])
    assert model_name == "relcon-tiny"
    values = {result.metric_type: result.metric_value for result in results}
    assert values["f1"] == pytest.approx(probe["results"]["pretrained"]["macro_f1_mean"])
    assert values["accuracy"] == pytest.approx(probe["results"]["pretrained"]["accuracy_mean"])


def test_encoder_card_has_every_section_filled(encoder_dir):
    text = write_model_card(encoder_dir, repo_id=REPO_ID).text
    encoder_summary = json.loads((encoder_dir / "training_summary.json").read_text())
    distance_summary = json.loads((encoder_dir.parent / "distance" / "training_summary.json").read_text())

    for heading in ("Input contract", "Training", "How to use", "Evaluation", "Limitations", "Citation"):
        assert f"## {heading}" in text, heading
    assert "{{" not in text
    assert "<your-namespace>" not in text
    assert f'AutoModel.from_pretrained("{REPO_ID}", trust_remote_code=True, revision=' in text
    assert "import relcon_hf" in text
    assert "Apple Heart and Movement Study" in text.split("## Limitations")[1]
    assert f"{encoder_summary['completed_steps']} optimizer steps" in text.split("Stage 2")[1]
    assert f"{distance_summary['completed_steps']} optimizer steps" in text.split("Stage 1")[1]
    assert "at 100 Hz" in text
    assert "256 samples (2.56 s)" in text
    assert "training windows from 8 subjects" in text


def test_distance_card_reports_validation_loss(run_dir, tmp_path):
    distance_dir = shutil.copytree(run_dir / "distance", tmp_path / "distance", ignore=shutil.ignore_patterns("ch*"))
    summary = json.loads((distance_dir / "training_summary.json").read_text())

    card = write_model_card(distance_dir, repo_id="relcon-test/relcon-tiny-distance")

    loaded = ModelCard.load(distance_dir / "README.md")
    assert loaded.data.to_dict() == card.data.to_dict()
    _, results = model_index_to_eval_results(front_matter(distance_dir / "README.md")["model-index"])
    assert results[0].metric_value == pytest.approx(summary["best_eval_loss"])
    assert "trust_remote_code=True" in card.text
    assert "{{" not in card.text


def evaluation_results(problem_type: str) -> dict:
    if problem_type == "regression":
        metrics = [
            {"name": "mae", "target": "gait_speed", "value": 0.071, "std": 0.01},
            {"name": "pearson_r", "target": "cadence", "value": 0.83},
        ]
    else:
        metrics = [{"name": "macro_f1", "value": 0.812, "std": 0.05}, {"name": "cohen_kappa", "value": 0.774}]
    return {
        "format_version": 1,
        "task": "gait metrics" if problem_type == "regression" else "activity recognition",
        "problem_type": problem_type,
        "dataset": {"id": "seglearn-watch", "name": "seglearn smartwatch exercises", "split": "5-fold by subject"},
        "protocol": "fine-tuning, subject-wise cross-validation",
        "metrics": metrics,
        "training": {"epochs": 10, "batch_size": 16, "learning_rate": 0.001},
    }


@pytest.mark.parametrize("problem_type", ["single_label_classification", "regression"])
def test_task_head_card_reads_results_file(encoder_dir, tmp_path, problem_type):
    labels = ["gait_speed", "cadence"] if problem_type == "regression" else ["curl", "press", "raise"]
    head = RelConForSequenceClassification.from_pretrained(
        encoder_dir, id2label=dict(enumerate(labels)), problem_type=problem_type, freeze_encoder=True
    )
    head_dir = tmp_path / "head"
    head.save_pretrained(head_dir)
    results_path = tmp_path / "evaluation_results.json"
    results_path.write_text(json.dumps(evaluation_results(problem_type)))

    card = write_model_card(
        head_dir, repo_id="relcon-test/relcon-tiny-head", evaluation_results=results_path, base_model=REPO_ID
    )

    loaded = ModelCard.load(head_dir / "README.md")
    assert loaded.data.to_dict() == card.data.to_dict()
    assert loaded.data.base_model == REPO_ID
    assert loaded.data.datasets == ["seglearn-watch"]
    _, results = model_index_to_eval_results(front_matter(head_dir / "README.md")["model-index"])
    expected = json.loads(results_path.read_text())["metrics"]
    assert [result.metric_value for result in results] == [metric["value"] for metric in expected]
    for label in labels:
        assert label in card.text
    assert "frozen" in card.text
    assert "AutoModelForSequenceClassification" in card.text
    assert "{{" not in card.text


def test_task_head_card_needs_results(encoder_dir, tmp_path):
    RelConForSequenceClassification.from_pretrained(encoder_dir, num_labels=3).save_pretrained(tmp_path / "head")

    with pytest.raises(ValueError, match="evaluation_results"):
        write_model_card(tmp_path / "head", repo_id=REPO_ID)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"format_version": 2}, "`format_version` must be 1"),
        ({"problem_type": "multi_label_classification"}, "`problem_type` must be one of"),
        ({"dataset": {"id": "x", "name": "y"}}, "`dataset.split`"),
        ({"metrics": []}, "`metrics` must be a non-empty list"),
        ({"metrics": [{"name": "auroc", "value": 0.9}]}, "`metrics[0].name` must be one of macro_f1"),
        ({"metrics": [{"name": "mae", "value": "0.1"}]}, "`metrics[0].value` must be a finite number"),
        ({"metrics": [{"name": "mae", "value": 0.1, "std": float("nan")}]}, "`metrics[0].std`"),
        ({"task": ""}, "`task` must be a non-empty string"),
        (
            {"metrics": [{"name": "mae", "value": 0.1}, {"name": "mae", "value": 0.2}]},
            "`metrics[1]` repeats mae from `metrics[0]`",
        ),
    ],
)
def test_evaluation_results_reject_bad_fields(tmp_path, change, message):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({**evaluation_results("regression"), **change}))

    with pytest.raises(ValueError, match=None) as raised:
        load_evaluation_results(path)

    assert message in str(raised.value)
    assert str(path) in str(raised.value)


# Downloading through the Hugging Face cache.


def test_cache_layout_matches_huggingface_hub(encoder_dir, tmp_path):
    write_model_card(encoder_dir, repo_id=REPO_ID)
    shutil.rmtree(encoder_dir / "checkpoints")

    commit = add_to_hub_cache(encoder_dir, REPO_ID, cache_dir=tmp_path / "cache")

    info = scan_cache_dir(tmp_path / "cache")
    assert not info.warnings
    (repo,) = info.repos
    assert repo.repo_id == REPO_ID
    (revision,) = repo.revisions
    assert revision.commit_hash == commit
    assert revision.refs == frozenset({"main"})
    assert {file.file_name for file in revision.files} == {
        path.name for path in encoder_dir.iterdir() if path.is_file()
    }
    weights = tmp_path / "cache" / "models--relcon-test--relcon-tiny" / "snapshots" / commit / "model.safetensors"
    assert weights.is_symlink()
    assert os.readlink(weights).startswith("../../blobs/")
    assert weights.read_bytes() == (encoder_dir / "model.safetensors").read_bytes()


OFFLINE_LOAD_SCRIPT = """
import json
import numpy as np
import torch
from huggingface_hub import ModelCard
from transformers import AutoFeatureExtractor, AutoModel

{import_line}
options = {options}
model = AutoModel.from_pretrained("{repo_id}", **options).eval()
extractor = AutoFeatureExtractor.from_pretrained("{repo_id}", **options)
inputs = extractor(np.load("recording.npy"), sampling_rate=50, return_tensors="pt")
with torch.no_grad():
    embeddings = model(**inputs).pooler_output
card = ModelCard.load("{repo_id}")
print(json.dumps({{
    "module": type(model).__module__,
    "extractor": type(extractor).__name__,
    "embeddings": embeddings.tolist(),
    "eval_results": {{result.metric_type: result.metric_value for result in card.data.eval_results}},
}}))
"""


@pytest.mark.parametrize("with_relcon_hf", [True, False], ids=["relcon_hf", "remote_code"])
def test_offline_download_from_cache(encoder_dir, tmp_path, watch_corpus, with_relcon_hf):
    write_model_card(encoder_dir, repo_id=REPO_ID)
    shutil.rmtree(encoder_dir / "checkpoints")
    cache = tmp_path / "home" / "hub"
    commit = add_to_hub_cache(encoder_dir, REPO_ID, cache_dir=cache)
    recording = watch_corpus.recordings[3]
    np.save(tmp_path / "recording.npy", recording)
    model = RelConModel.from_pretrained(encoder_dir).eval()
    with torch.no_grad():
        inputs = RelConFeatureExtractor.from_pretrained(encoder_dir)(recording, sampling_rate=50, return_tensors="pt")
        expected = model(**inputs).pooler_output.numpy()
    probe = json.loads((encoder_dir.parent / "probe_results.json").read_text())

    if with_relcon_hf:
        import_line, options = "import relcon_hf", {}
    else:
        # Any import of relcon_hf now raises ImportError, as on a machine without the package.
        import_line, options = "import sys\nsys.modules['relcon_hf'] = None", {"trust_remote_code": True}
        options["revision"] = commit
    script = OFFLINE_LOAD_SCRIPT.format(import_line=import_line, options=options, repo_id=REPO_ID)
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("HF_", "HUGGINGFACE", "TRANSFORMERS"))
    }
    environment.update(
        HF_HOME=str(tmp_path / "home"),
        HF_HUB_CACHE=str(cache),
        HF_HUB_OFFLINE="1",
        HF_MODULES_CACHE=str(tmp_path / "modules"),
        # Where relcon_hf is absent it must not be importable from the checkout either.
        PYTHONPATH="",
    )
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=300,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    expected_module = "relcon_hf.modeling" if with_relcon_hf else "transformers_modules"
    assert result["module"].startswith(expected_module)
    assert result["extractor"] == "RelConFeatureExtractor"
    assert np.abs(np.array(result["embeddings"]) - expected).max() < 1e-5
    assert result["eval_results"]["f1"] == pytest.approx(probe["results"]["pretrained"]["macro_f1_mean"])


# Publishing, against the stand-in Hub.


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """The stand-in Hub, with huggingface_hub pointed at it and a token for the user 'alice' in HF_TOKEN."""
    with StandInHub(tokens={TOKEN: "alice", "hf_bob": "bob"}) as stand_in:
        # What huggingface_hub derives from HF_ENDPOINT when it is imported, set here for this process.
        monkeypatch.setattr(constants, "ENDPOINT", stand_in.url)
        monkeypatch.setattr(
            constants, "HUGGINGFACE_CO_URL_TEMPLATE", stand_in.url + "/{repo_id}/resolve/{revision}/{filename}"
        )
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token-file"))
        monkeypatch.setenv("HF_ENDPOINT", stand_in.url)
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        yield stand_in


@pytest.fixture
def publishable(encoder_dir):
    """The tiny encoder with its card, as `relcon-hf pretrain` leaves it (checkpoints/ included)."""
    assert check_checkpoint_folder(encoder_dir) == []
    return encoder_dir


def pushed_files(hub: StandInHub, repo_id: str, branch: str = "main") -> dict[str, bytes]:
    return hub.repos[repo_id].branches[branch]


def test_push_uploads_checkpoint(hub, publishable, capsys):
    exit_code = main(["push", str(publishable), "--repo-id", "alice/relcon-tiny", "--private"])

    assert exit_code == 0, capsys.readouterr().err
    create = next(request for request in hub.requests if request.path == "/api/repos/create")
    assert json.loads(create.body) == {"name": "relcon-tiny", "organization": "alice", "visibility": "private"}
    # LFS uploads go to pre-signed storage URLs, and huggingface_hub fetches its public agent registry, both without
    # the token; every other request carries it.
    unauthenticated = [
        request.path
        for request in hub.requests
        if request.authorization != f"Bearer {TOKEN}"
        and not request.path.startswith("/lfs-objects/")
        and request.path != "/api/agent-harnesses"
    ]
    assert unauthenticated == []
    files = pushed_files(hub, "alice/relcon-tiny")
    local = {path.name for path in publishable.iterdir() if path.is_file()}
    assert set(files) == local
    for name in local - {"README.md"}:
        assert files[name] == (publishable / name).read_bytes(), name
    card = files["README.md"].decode()
    assert "<your-namespace>" not in card
    assert 'AutoModel.from_pretrained("alice/relcon-tiny", trust_remote_code=True' in card
    (commit,) = hub.commits
    assert commit["summary"] == "Upload relcon checkpoint with relcon-hf"
    kinds = {operation["path"]: operation["key"] for operation in commit["operations"]}
    assert kinds["model.safetensors"] == "lfsFile"
    assert kinds["config.json"] == "file"
    assert set(hub.lfs_objects.values()) == {(publishable / "model.safetensors").read_bytes()}
    assert not any(name.startswith("checkpoints") for name in files)
    output = capsys.readouterr().out
    assert f"{hub.url}/alice/relcon-tiny/commit/{commit['oid']}" in output
    assert "checkpoints/" in output


def test_push_keeps_card_already_on_hub(hub, publishable, capsys):
    hub.add_repo("alice/relcon-tiny", owner="alice", files={"README.md": b"---\nlicense: mit\n---\nTheir card\n"})

    exit_code = main(["push", str(publishable), "--repo-id", "alice/relcon-tiny", "--commit-message", "Add weights"])

    assert exit_code == 0, capsys.readouterr().err
    files = pushed_files(hub, "alice/relcon-tiny")
    assert files["README.md"] == b"---\nlicense: mit\n---\nTheir card\n"
    assert "model.safetensors" in files
    assert hub.commits[0]["summary"] == "Add weights"
    assert "README.md" not in {operation["path"] for operation in hub.commits[0]["operations"]}
    assert "--overwrite-card" in capsys.readouterr().out


def test_push_overwrite_card_replaces_it(hub, publishable, capsys):
    hub.add_repo("alice/relcon-tiny", owner="alice", files={"README.md": b"---\nlicense: mit\n---\nTheir card\n"})

    exit_code = main(["push", str(publishable), "--repo-id", "alice/relcon-tiny", "--overwrite-card"])

    assert exit_code == 0, capsys.readouterr().err
    assert b"relcon-tiny" in pushed_files(hub, "alice/relcon-tiny")["README.md"]
    assert b"Their card" not in pushed_files(hub, "alice/relcon-tiny")["README.md"]


def test_push_to_new_branch(hub, publishable, capsys):
    hub.add_repo("alice/relcon-tiny", owner="alice", files={"README.md": b"---\nlicense: mit\n---\nmain card\n"})

    exit_code = main(["push", str(publishable), "--repo-id", "alice/relcon-tiny", "--revision", "tiny-run"])

    assert exit_code == 0, capsys.readouterr().err
    assert "model.safetensors" in pushed_files(hub, "alice/relcon-tiny", "tiny-run")
    assert set(pushed_files(hub, "alice/relcon-tiny", "main")) == {"README.md"}
    assert any(request.path.endswith("/branch/tiny-run") for request in hub.requests)
    assert hub.commits[0]["revision"] == "tiny-run"


def test_push_opens_pull_request(hub, publishable, capsys):
    hub.add_repo("alice/relcon-tiny", owner="alice")

    exit_code = main(["push", str(publishable), "--repo-id", "alice/relcon-tiny", "--create-pr"])

    assert exit_code == 0, capsys.readouterr().err
    assert hub.commits[0]["create_pr"] is True
    assert pushed_files(hub, "alice/relcon-tiny", "main") == {}
    assert "model.safetensors" in pushed_files(hub, "alice/relcon-tiny", "refs/pr/1")
    assert f"Pull request: {hub.url}/alice/relcon-tiny/discussions/1" in capsys.readouterr().out


def test_push_dry_run_sends_nothing(hub, publishable, capsys):
    exit_code = main(["push", str(publishable), "--repo-id", "alice/relcon-tiny", "--dry-run", "--private"])

    assert exit_code == 0
    assert hub.requests == []
    output = capsys.readouterr().out
    assert "Dry run: nothing was sent." in output
    card_text = output.split("Model card:\n", 1)[1].removesuffix("\n")  # print() adds the last newline
    for path in publishable.iterdir():
        if path.is_file():
            size = len(card_text.encode()) if path.name == "README.md" else path.stat().st_size
            assert any(line.split() == [path.name, str(size)] for line in output.splitlines()), path
    assert card_text.startswith("---\n")
    assert 'AutoModel.from_pretrained("alice/relcon-tiny"' in card_text
    assert "checkpoints/" in output


def test_push_refuses_incomplete_folder(hub, publishable, capsys):
    config = json.loads((publishable / "config.json").read_text())
    del config["auto_map"]
    (publishable / "config.json").write_text(json.dumps(config))
    for name in ("model.safetensors", "preprocessor_config.json", "README.md", "configuration_relcon.py"):
        (publishable / name).unlink()

    exit_code = main(["push", str(publishable), "--repo-id", "alice/relcon-tiny"])

    assert exit_code == 2
    assert hub.requests == []
    error = capsys.readouterr().err
    for missing in ("auto_map in config.json", "*.safetensors", "preprocessor_config.json", "README.md model card"):
        assert missing in error, missing


def test_push_refuses_missing_modeling_file(hub, publishable, capsys):
    (publishable / "configuration_relcon.py").unlink()

    exit_code = main(["push", str(publishable), "--repo-id", "alice/relcon-tiny"])

    assert exit_code == 2
    assert "configuration_relcon.py" in capsys.readouterr().err
    assert hub.requests == []


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("model.safetensors", b"", "readable weights in model.safetensors"),
        ("model.safetensors", b"not safetensors at all", "readable weights in model.safetensors"),
        ("README.md", b"---\nfoo: [unclosed\n---\n# Card\n", "valid metadata in README.md"),
    ],
)
def test_push_refuses_damaged_files(hub, publishable, capsys, name, content, message):
    (publishable / name).write_bytes(content)

    exit_code = main(["push", str(publishable), "--repo-id", "alice/relcon-tiny", "--dry-run"])

    assert exit_code == 2
    assert message in capsys.readouterr().err
    assert hub.requests == []


def test_push_without_token(hub, publishable, monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN")

    exit_code = main(["push", str(publishable), "--repo-id", "alice/relcon-tiny"])

    assert exit_code == 2
    assert "No Hugging Face token found" in capsys.readouterr().err
    assert hub.requests == []


def test_push_with_rejected_token(hub, publishable, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", "hf_revoked")

    exit_code = main(["push", str(publishable), "--repo-id", "alice/relcon-tiny"])

    assert exit_code == 2
    error = capsys.readouterr().err
    assert "rejected the token (HTTP 401" in error
    assert "hf auth login" in error
    assert hub.commits == []


def test_push_to_repo_of_someone_else(hub, publishable, capsys):
    hub.add_repo("bob/relcon", owner="bob")

    exit_code = main(["push", str(publishable), "--repo-id", "bob/relcon"])

    assert exit_code == 2
    error = capsys.readouterr().err
    assert "may not write to bob/relcon (HTTP 403" in error
    assert "namespace 'bob' belongs to another user" in error
    assert hub.commits == []
    assert pushed_files(hub, "bob/relcon") == {}


def test_push_to_namespace_of_someone_else(hub, publishable, capsys):
    exit_code = main(["push", str(publishable), "--repo-id", "bob/new-model"])

    assert exit_code == 2
    assert "may not write to bob/new-model (HTTP 403" in capsys.readouterr().err
    assert "bob/new-model" not in hub.repos


def test_push_when_hub_unreachable(publishable, monkeypatch, capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    address = f"http://127.0.0.1:{closed_port}"
    monkeypatch.setattr(constants, "ENDPOINT", address)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", address + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", TOKEN)

    exit_code = main(["push", str(publishable), "--repo-id", "alice/relcon-tiny"])

    assert exit_code == 2
    error = capsys.readouterr().err
    assert f"Could not reach the Hub at {address}" in error
    assert "ConnectError" in error


def test_model_push_to_hub_sends_remote_code(hub, run_dir, tmp_path):
    """transformers' own `push_to_hub` (in a fresh process configured through HF_ENDPOINT) sends the modeling files."""
    script = f"""
    import relcon_hf
    from transformers import AutoModel

    model = AutoModel.from_pretrained({str(run_dir / "encoder")!r})
    model.push_to_hub("alice/relcon-pushed", commit_message="Push from Python")
    """
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "HUGGINGFACE"))}
    environment.update(
        HF_ENDPOINT=hub.url,
        HF_TOKEN=TOKEN,
        HF_HUB_DISABLE_XET="1",
        HF_HOME=str(tmp_path / "home"),
        NO_PROXY="127.0.0.1",
    )
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, env=environment, timeout=300
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    files = pushed_files(hub, "alice/relcon-pushed")
    assert {"config.json", "model.safetensors", "modeling_relcon.py", "configuration_relcon.py"} <= set(files)
    config = json.loads(files["config.json"])
    assert config["auto_map"]["AutoModel"] == "modeling_relcon.RelConModel"
    assert files["modeling_relcon.py"] == (run_dir / "encoder" / "modeling_relcon.py").read_bytes()
    # transformers writes its own generic card when the repository has none.
    assert "library_name: transformers" in files["README.md"].decode()
    assert hub.commits[0]["summary"] == "Push from Python"


# Converting checkpoints of the reference implementation.


def reference_encoder_state_dict(model: RelConModel) -> dict[str, torch.Tensor]:
    """Rename a RelConModel's weights to the reference ResNet1D names, block by block in network order."""
    state = {}
    for name in ("weight", "bias"):
        state[f"first_block_conv.{name}"] = model.stem.conv.state_dict()[name]
    for name, value in model.stem.norm.state_dict().items():
        state[f"first_block_bn.{name}"] = value
    blocks = [block for stage in model.stages for block in stage.blocks]
    for index, block in enumerate(blocks):
        for ours, theirs in (("norm1", "bn1"), ("conv1", "conv1"), ("norm2", "bn2"), ("conv2", "conv2")):
            for name, value in getattr(block, ours).state_dict().items():
                state[f"basicblock_list.{index}.{theirs}.{name}"] = value
        if isinstance(block.projection, torch.nn.Conv1d):
            for name, value in block.projection.state_dict().items():
                state[f"basicblock_list.{index}.projection_conv.{name}"] = value
    return {key: value.clone() for key, value in state.items()}


def reference_distance_state_dict(model: RelConDistanceModel) -> dict[str, torch.Tensor]:
    """Rename a RelConDistanceModel's weights to the reference CrossAttn names."""
    state = {"revin.affine_weight": model.revin.affine_weight, "revin.affine_bias": model.revin.affine_bias}
    for prefix, stack in (
        ("q_func", model.query_encoder),
        ("k_func", model.key_encoder),
        ("v_func", model.value_encoder),
    ):
        for name, value in stack.input_conv.state_dict().items():
            state[f"{prefix}.layer0.dilated_conv.{name}"] = value
        for index, block in enumerate(stack.blocks):
            for name, value in block.bottleneck.state_dict().items():
                state[f"{prefix}.layers.{index}.bottle.{name}"] = value
            for name, value in block.dilated_conv.state_dict().items():
                state[f"{prefix}.layers.{index}.dilated_conv.{name}"] = value
    for name, value in model.output_projection.state_dict().items():
        state[f"out_proj.{name}"] = value
    return {key: value.detach().clone() for key, value in state.items()}


@pytest.fixture(scope="module")
def source_encoder():
    """The default encoder layout (13 blocks over 3 stages), weights and BatchNorm statistics all non-default."""
    torch.manual_seed(1)
    model = RelConModel(RelConConfig()).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model


@pytest.fixture(scope="module")
def source_distance():
    torch.manual_seed(2)
    model = RelConDistanceModel(RelConDistanceConfig(bottleneck_size=6, num_dilated_blocks=3)).eval()
    with torch.no_grad():
        model.revin.affine_weight.uniform_(0.8, 1.2)
        model.revin.affine_bias.uniform_(-0.1, 0.1)
    return model


def test_convert_encoder_pickle_gives_same_embeddings(source_encoder, tmp_path, capsys):
    checkpoint = {
        "net": reference_encoder_state_dict(source_encoder),
        "optimizer": {"state": {}, "param_groups": [{"lr": 1e-6, "params": [0, 1]}]},
        "test_loss": 12.5,
        "epoch": 9,
    }
    torch.save(checkpoint, tmp_path / "checkpoint_best.pkl")

    exit_code = main(["convert", str(tmp_path / "checkpoint_best.pkl"), "--output-dir", str(tmp_path / "converted")])

    assert exit_code == 0, capsys.readouterr().err
    converted = RelConModel.from_pretrained(tmp_path / "converted").eval()
    assert converted.config.stage_num_blocks == [3, 4, 6]
    assert converted.config.stage_channels == [64, 128, 256]
    assert converted.config.stage_kernel_sizes == [3, 4, 4]
    windows = torch.randn(4, 256, 3)
    with torch.no_grad():
        assert torch.equal(converted(windows).pooler_output, source_encoder(windows).pooler_output)
    assert check_checkpoint_folder(tmp_path / "converted") == [
        "README.md model card (write it with relcon_hf.hub.write_model_card)"
    ]
    assert f"Converted {len(checkpoint['net'])} tensors into a RelCon encoder." in capsys.readouterr().out


def test_convert_distance_safetensors_gives_same_distances(source_distance, tmp_path):
    save_file(reference_distance_state_dict(source_distance), tmp_path / "motifdist.safetensors")

    exit_code = main(
        ["convert", str(tmp_path / "motifdist.safetensors"), "--output-dir", str(tmp_path / "converted"),
         "--attention", "softmax"]
    )  # fmt: skip

    assert exit_code == 0
    converted = RelConDistanceModel.from_pretrained(tmp_path / "converted").eval()
    assert converted.config.bottleneck_size == 6
    assert converted.config.num_dilated_blocks == 3
    assert converted.config.attention == "softmax"
    source = copy.deepcopy(source_distance)
    source.config.attention = "softmax"
    anchors, candidates = torch.randn(3, 256, 3), torch.randn(3, 256, 3)
    with torch.no_grad():
        assert torch.equal(converted(anchors, candidates).distance, source(anchors, candidates).distance)


def test_convert_small_encoder_infers_config(tmp_path):
    torch.manual_seed(3)
    config = RelConConfig(stem_channels=8, stage_channels=[8, 16], stage_num_blocks=[2, 1], stage_kernel_sizes=[5, 3])
    source = RelConModel(config).eval()

    model, report = convert_state_dict(reference_encoder_state_dict(source))

    assert report.kind == "encoder"
    assert report.unmapped_source_keys == []
    assert report.unset_target_keys == []
    for name in ("stem_channels", "stage_channels", "stage_num_blocks", "stage_kernel_sizes"):
        assert getattr(model.config, name) == getattr(config, name), name
    windows = torch.randn(2, 300, 3)
    with torch.no_grad():
        assert torch.equal(model(windows).pooler_output, source(windows).pooler_output)


def test_convert_reports_unmapped_and_unset_keys(source_encoder, tmp_path, capsys):
    state = reference_encoder_state_dict(source_encoder)
    state["head.fc.weight"] = torch.zeros(4, 256)
    del state["basicblock_list.5.conv2.bias"]
    torch.save(state, tmp_path / "encoder.pt")

    exit_code = main(["convert", str(tmp_path / "encoder.pt"), "--output-dir", str(tmp_path / "converted")])

    assert exit_code == 2
    error = capsys.readouterr().err
    assert "head.fc.weight" in error
    assert "stages.1.blocks.2.conv2.bias" in error
    assert not (tmp_path / "converted").exists()


def test_convert_allow_unmapped_keeps_going(source_encoder, tmp_path):
    state = reference_encoder_state_dict(source_encoder)
    state["head.fc.weight"] = torch.zeros(4, 256)
    torch.save(state, tmp_path / "encoder.pt")

    exit_code = main(
        ["convert", str(tmp_path / "encoder.pt"), "--output-dir", str(tmp_path / "out"), "--allow-unmapped"]
    )

    assert exit_code == 0
    report = json.loads((tmp_path / "out" / "conversion_report.json").read_text())
    assert report["unmapped_source_keys"] == ["head.fc.weight"]


class NotWeights:
    """Any class outside torch's weights-only allow-list; unpickling it would need arbitrary code."""


def test_convert_rejects_pickle_with_code(tmp_path, capsys):
    torch.save({"net": {"first_block_conv.weight": torch.zeros(1)}, "extra": NotWeights()}, tmp_path / "bad.pkl")

    exit_code = main(["convert", str(tmp_path / "bad.pkl"), "--output-dir", str(tmp_path / "out")])

    assert exit_code == 2
    error = capsys.readouterr().err
    assert "weights-only" in error
    assert "weights_only set to False" not in error
    assert not (tmp_path / "out").exists()


def test_convert_rejects_unknown_state_dict(tmp_path, capsys):
    torch.save({"layer.weight": torch.zeros(2)}, tmp_path / "other.pt")

    exit_code = main(["convert", str(tmp_path / "other.pt"), "--output-dir", str(tmp_path / "out")])

    assert exit_code == 2
    assert "first keys: layer.weight" in capsys.readouterr().err


def test_push_server_error_names_next_step(hub, publishable, capsys):
    hub.faults.append(("POST", r"/api/models/alice/relcon-tiny/commit/main", 500, b'{"error": "Internal Error"}'))

    exit_code = main(["push", str(publishable), "--repo-id", "alice/relcon-tiny"])

    assert exit_code == 2
    error = capsys.readouterr().err
    assert "responded with HTTP 500" in error
    assert "Wait a little" in error
    assert hub.commits == []


def test_push_client_error_names_the_message(hub, publishable, capsys):
    hub.faults.append(("POST", r"/api/models/alice/relcon-tiny/commit/main", 413, b'{"error": "Payload too large"}'))

    exit_code = main(["push", str(publishable), "--repo-id", "alice/relcon-tiny"])

    assert exit_code == 2
    error = capsys.readouterr().err
    assert "rejected the push to alice/relcon-tiny with HTTP 413: Payload too large" in error
    assert "Wait a little" not in error


def test_push_unreadable_response_is_reported(hub, publishable, capsys):
    # A 200 response without the commit fields that huggingface_hub reads.
    hub.faults.append(("POST", r"/api/models/alice/relcon-tiny/commit/main", 200, b"{}"))

    exit_code = main(["push", str(publishable), "--repo-id", "alice/relcon-tiny"])

    assert exit_code == 2
    error = capsys.readouterr().err
    assert "with a body that huggingface_hub could not read (KeyError" in error
    assert "HF_ENDPOINT" in error
