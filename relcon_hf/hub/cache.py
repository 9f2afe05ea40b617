# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Place a local checkpoint folder in the Hugging Face cache, laid out as `snapshot_download` leaves a repository.

On a machine without access to the Hub (a cluster node, an air-gapped workstation), a checkpoint copied there as a
folder then loads by its repository id with `HF_HUB_OFFLINE=1`:
`AutoModel.from_pretrained("org/name")`, pinned or not to the revision this module returns.

```
HF_HUB_CACHE/models--org--name/
    blobs/<git blob sha1, or sha256 for LFS files>   the file contents
    refs/main                                        the commit hash of the snapshot
    snapshots/<commit hash>/<file>                   relative symbolic links into blobs/
```
"""

import hashlib
import logging
import os
import shutil
from pathlib import Path

from huggingface_hub import constants


logger = logging.getLogger(__name__)

# Suffixes that the .gitattributes of a new Hub model repository routes to LFS. Their blobs are named by the sha256 of
# the content, and other files by their git blob sha1.
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".npy", ".npz")


def git_blob_sha1(content: bytes) -> str:
    """Git's object id of a file: sha1 of `blob <size>\\0` followed by the content."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def blob_name(path_in_repo: str, content: bytes) -> str:
    """Name of a file's blob in the cache: the ETag the Hub serves for it."""
    if path_in_repo.endswith(LFS_SUFFIXES):
        return hashlib.sha256(content).hexdigest()
    return git_blob_sha1(content)


def repo_folder_name(repo_id: str, repo_type: str = "model") -> str:
    """Cache folder of a repository: `models--org--name`."""
    return "--".join([f"{repo_type}s", *repo_id.split("/")])


def add_to_hub_cache(
    folder: str | Path,
    repo_id: str,
    *,
    cache_dir: str | Path | None = None,
    commit_hash: str | None = None,
    branch: str = "main",
) -> str:
    """
    Copy the top-level files of `folder` into the Hugging Face cache as a snapshot of `repo_id`.

    Args:
        folder (`str` or `Path`): Checkpoint folder (`save_pretrained` output and model card).
        repo_id (`str`): Repository id the snapshot is filed under, `namespace/name`.
        cache_dir (`str` or `Path`, *optional*): Hub cache; by default `HF_HUB_CACHE` (`~/.cache/huggingface/hub`).
        commit_hash (`str`, *optional*): 40 hexadecimal digits naming the snapshot, such as the commit the folder
            was downloaded from. By default a hash of the file names and contents, so the same folder always gives
            the same revision.
        branch (`str`): Branch whose ref points to the snapshot.

    Returns:
        `str`: The commit hash, to pass as `revision=` when loading.
    """
    folder = Path(folder)
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"`repo_id` must look like 'namespace/name', got {repo_id!r}.")
    files = sorted(path for path in folder.iterdir() if path.is_file() and not path.name.startswith("."))
    if not files:
        raise ValueError(f"{folder} contains no files to place in the cache.")

    contents = {path.name: path.read_bytes() for path in files}
    blobs = {name: blob_name(name, content) for name, content in contents.items()}
    if commit_hash is None:
        listing = "".join(f"{name}\0{blobs[name]}\n" for name in sorted(blobs))
        commit_hash = hashlib.sha1(listing.encode()).hexdigest()
    elif len(commit_hash) != 40 or any(character not in "0123456789abcdef" for character in commit_hash):
        raise ValueError(f"`commit_hash` must be 40 lowercase hexadecimal digits, got {commit_hash!r}.")

    repo_dir = Path(cache_dir or constants.HF_HUB_CACHE) / repo_folder_name(repo_id)
    snapshot_dir = repo_dir / "snapshots" / commit_hash
    (repo_dir / "blobs").mkdir(parents=True, exist_ok=True)
    if snapshot_dir.exists():
        shutil.rmtree(snapshot_dir)
    snapshot_dir.mkdir(parents=True)

    for name, content in contents.items():
        blob_path = repo_dir / "blobs" / blobs[name]
        if not blob_path.exists():
            blob_path.write_bytes(content)
        # Relative links, as huggingface_hub creates them, so the cache folder can be moved as a whole.
        os.symlink(os.path.relpath(blob_path, snapshot_dir), snapshot_dir / name)
    ref_path = repo_dir / "refs" / branch
    ref_path.parent.mkdir(parents=True, exist_ok=True)
    ref_path.write_text(commit_hash)
    logger.info(f"Placed {len(files)} files of {folder} in {snapshot_dir} ({branch} -> {commit_hash})")

    return commit_hash
