# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Data layer of relcon-hf: recording readers, the seglearn watch corpus, Parquet shards and streaming readers.

Recordings (CSV, Parquet, NumPy, device files, WISDM text files, or the seglearn smartwatch corpus) are converted
to g at 100 Hz, cut into windows and written as Parquet shards with one candidate group (one subject in one hour or
session) per row. The streams read them back with `datasets` for the two RelCon training stages.
"""

from .readers import FORMATS, Recording, detect_unit, read_recording
from .shards import (
    CandidateGroup,
    ShardWriter,
    assign_subject_splits,
    prepare_recordings,
    prepare_watch,
    read_manifest,
    shard_features,
    split_subjects,
)
from .streaming import AnchorCandidateStream, WindowStream, load_labelled_windows, shard_files
from .watch import WatchCorpus, find_watch_file, load_watch_corpus
from .windowing import RecordingWindows, window_clean_recording, window_recording


__all__ = [
    "FORMATS",
    "AnchorCandidateStream",
    "CandidateGroup",
    "Recording",
    "RecordingWindows",
    "ShardWriter",
    "WatchCorpus",
    "WindowStream",
    "assign_subject_splits",
    "detect_unit",
    "find_watch_file",
    "load_labelled_windows",
    "load_watch_corpus",
    "prepare_recordings",
    "prepare_watch",
    "read_manifest",
    "read_recording",
    "shard_features",
    "shard_files",
    "split_subjects",
    "window_clean_recording",
    "window_recording",
]
