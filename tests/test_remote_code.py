"""Tests that saved checkpoints load as Hub remote code, in a process where relcon_hf cannot be imported."""

import ast
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from relcon_hf import (
    RelConConfig,
    RelConDistanceConfig,
    RelConDistanceModel,
    RelConFeatureExtractor,
    RelConModel,
)


ALLOWED_TOP_LEVEL_IMPORTS = {"torch", "numpy", "transformers", "math", "os", "dataclasses", "fractions", "typing"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("remote") / "encoder"
    torch.manual_seed(0)
    RelConModel(RelConConfig(stage_num_blocks=[1, 1, 1])).save_pretrained(folder)
    RelConFeatureExtractor().save_pretrained(folder)
    return folder


def run_without_relcon_hf(script: str, tmp_path) -> dict:
    """Run `script` in a fresh interpreter where `import relcon_hf` fails; return the JSON it prints last."""
    guard = "import sys\nsys.modules['relcon_hf'] = None  # any import of relcon_hf now raises ImportError\n"
    environment = dict(os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    completed = subprocess.run(
        [sys.executable, "-c", guard + textwrap.dedent(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_checkpoint_files_import_only_allowed_packages(checkpoint):
    python_files = sorted(checkpoint.glob("*.py"))

    assert {path.name for path in python_files} == {
        "configuration_relcon.py",
        "modeling_relcon.py",
        "feature_extraction_relcon.py",
    }
    for path in python_files:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module.split(".")[0]]
            else:
                continue
            assert set(names) <= ALLOWED_TOP_LEVEL_IMPORTS, f"{path.name} imports {names}"


def test_remote_code_gives_the_same_embeddings(checkpoint, watch_corpus, tmp_path):
    recording = watch_corpus.recordings[0]
    np.save(tmp_path / "recording.npy", recording)
    model = RelConModel.from_pretrained(checkpoint).eval()
    inputs = RelConFeatureExtractor.from_pretrained(checkpoint)(recording, sampling_rate=50, return_tensors="pt")
    with torch.no_grad():
        expected = model(**inputs).pooler_output.numpy()

    result = run_without_relcon_hf(
        f"""
        import json
        import numpy as np
        import torch
        from transformers import AutoFeatureExtractor, AutoModel

        model = AutoModel.from_pretrained({str(checkpoint)!r}, trust_remote_code=True).eval()
        extractor = AutoFeatureExtractor.from_pretrained({str(checkpoint)!r}, trust_remote_code=True)
        inputs = extractor(np.load("recording.npy"), sampling_rate=50, return_tensors="pt")
        with torch.no_grad():
            embeddings = model(**inputs).pooler_output
        print(json.dumps({{"module": type(model).__module__, "embeddings": embeddings.tolist()}}))
        """,
        tmp_path,
    )

    assert result["module"].startswith("transformers_modules")
    assert np.abs(np.array(result["embeddings"]) - expected).max() < 1e-5


def test_remote_code_loads_a_head_over_the_encoder(checkpoint, tmp_path):
    result = run_without_relcon_hf(
        f"""
        import json
        import torch
        from transformers import AutoModelForSequenceClassification

        model = AutoModelForSequenceClassification.from_pretrained(
            {str(checkpoint)!r}, trust_remote_code=True, num_labels=4
        ).eval()
        logits = model(torch.zeros(2, 256, 3)).logits
        print(json.dumps({{"class": type(model).__name__, "shape": list(logits.shape)}}))
        """,
        tmp_path,
    )

    assert result == {"class": "RelConForSequenceClassification", "shape": [2, 4]}


def test_remote_code_loads_the_distance_model(tmp_path):
    folder = tmp_path / "distance"
    RelConDistanceModel(RelConDistanceConfig(attention="softmax")).save_pretrained(folder)

    result = run_without_relcon_hf(
        f"""
        import json
        import torch
        from transformers import AutoModel

        model = AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
        distance = model(torch.zeros(2, 256, 3), torch.ones(2, 256, 3)).distance
        print(json.dumps({{"class": type(model).__name__, "attention": model.config.attention,
                           "shape": list(distance.shape)}}))
        """,
        tmp_path,
    )

    assert result == {"class": "RelConDistanceModel", "attention": "softmax", "shape": [2]}
