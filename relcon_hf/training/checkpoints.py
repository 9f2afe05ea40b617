# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Integrity of training checkpoints: file lists with SHA-256 digests, verification, durable writes and folder swaps.

A checkpoint folder is complete when it contains `training_state.json`, which the loop writes last. Before that it
writes `checkpoint_files.json`: the size and SHA-256 digest of every other file. Verification compares the files on
disk with that list, so a file that was truncated, overwritten or removed after the save is found before any state
is loaded, and the error names it.
"""

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path


logger = logging.getLogger(__name__)

CHECKPOINT_FILES = "checkpoint_files.json"
_DIGEST_BLOCK_BYTES = 2**20


def file_sha256(path: Path) -> str:
    """Return the hexadecimal SHA-256 digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_DIGEST_BLOCK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync_file(path: Path) -> None:
    """Flush a file's data to the storage device, so a power cut after a rename cannot leave it empty."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_folder(path: Path) -> None:
    """Flush a folder's entries (names created or renamed in it) to the storage device, where the OS supports it."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return  # Windows cannot open folders; its renames are flushed with the file system journal.
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some network file systems reject fsync on folders
    finally:
        os.close(descriptor)


def write_file_list(folder: Path) -> dict:
    """
    Write `checkpoint_files.json` with the size and SHA-256 digest of every file below `folder`, flushed to disk.

    Returns:
        `dict` mapping each path relative to `folder` (with `/` separators) to `{"bytes": int, "sha256": str}`.
    """
    files = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name == CHECKPOINT_FILES:
            continue
        fsync_file(path)
        files[path.relative_to(folder).as_posix()] = {"bytes": path.stat().st_size, "sha256": file_sha256(path)}
    target = folder / CHECKPOINT_FILES
    with open(target, "w") as handle:
        json.dump({"files": files}, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())

    return files


def verify_checkpoint_files(folder: Path) -> None:
    """
    Check the files of a checkpoint against its `checkpoint_files.json`.

    Checkpoints written before file lists existed have none; they pass, and damage in them shows only when loading.

    Raises:
        `ValueError`: naming the first file that is missing, has another size or another SHA-256 digest, or naming
        an unreadable `checkpoint_files.json`.
    """
    list_path = folder / CHECKPOINT_FILES
    if not list_path.exists():
        return
    try:
        files = json.loads(list_path.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"Checkpoint {folder} is damaged: {list_path} cannot be read ({error}).") from None

    for relative, expected in files.items():
        path = folder / relative
        if not path.is_file():
            raise ValueError(f"Checkpoint {folder} is damaged: {path} is missing.")
        size = path.stat().st_size
        if size != expected["bytes"]:
            raise ValueError(
                f"Checkpoint {folder} is damaged: {path} has {size} bytes, but {expected['bytes']} were written "
                "(truncated or overwritten)."
            )
        if file_sha256(path) != expected["sha256"]:
            raise ValueError(
                f"Checkpoint {folder} is damaged: the SHA-256 digest of {path} differs from the one recorded when "
                "it was saved (the file was corrupted or changed)."
            )


def replace_folder(source: Path, target: Path) -> None:
    """
    Move the complete folder `source` to `target`, replacing what was there.

    POSIX cannot rename a folder over a non-empty one, so the old `target` is first renamed aside and removed after
    the swap. A kill between the two renames leaves `target` absent and both other folders in place, never a
    `target` that mixes old and new files.
    """
    old = target.with_name(f"{target.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        target.rename(old)
    source.rename(target)
    fsync_folder(target.parent)
    if old.exists():
        shutil.rmtree(old)


def copy_folder(source: Path, target: Path) -> None:
    """Copy `source` to `target` through a temporary sibling folder, replacing `target` only once the copy is whole."""
    partial = target.with_name(f"{target.name}.incomplete")
    if partial.exists():
        shutil.rmtree(partial)
    shutil.copytree(source, partial)
    replace_folder(partial, target)
