# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Shared test fixtures: the seglearn watch corpus, shards prepared from it, and the developer data folder."""

import os
from pathlib import Path

import pytest

from relcon_hf.data import find_watch_file, load_watch_corpus, prepare_watch


# Real recordings kept next to the repository on developer and CI machines that have them (never committed).
# RELCON_TEST_DATA points elsewhere. Tests that need the folder skip without it.
TEST_DATA_ENV = "RELCON_TEST_DATA"
DEFAULT_TEST_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# Small enough that the 8 training subjects of the watch corpus (about 1 MiB of windows each) fill several files.
WATCH_TEST_SHARD_BYTES = 3 * 2**20


@pytest.fixture(scope="session")
def test_data_dir() -> Path:
    """Return the folder of real developer recordings, or skip the test when it is absent."""
    folder = Path(os.environ.get(TEST_DATA_ENV, DEFAULT_TEST_DATA))
    if not folder.is_dir():
        pytest.skip(f"Developer data folder {folder} not found; set {TEST_DATA_ENV} to run this test.")
    return folder


@pytest.fixture(scope="session")
def watch_file() -> Path:
    """`watch_dataset.npy` of the installed seglearn wheel (a test dependency)."""
    return find_watch_file()


@pytest.fixture(scope="session")
def watch_corpus(watch_file):
    return load_watch_corpus(watch_file)


@pytest.fixture(scope="session")
def watch_shards(tmp_path_factory, watch_file) -> Path:
    """The watch corpus prepared once per session with default settings, written as several shard files."""
    output_dir = tmp_path_factory.mktemp("watch") / "shards"
    prepare_watch(output_dir, watch_path=watch_file, target_shard_bytes=WATCH_TEST_SHARD_BYTES)
    return output_dir
