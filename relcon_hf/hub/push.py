# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Publish a RelCon checkpoint folder to the Hugging Face Hub.

`relcon-hf push DIR --repo-id ID` first checks that DIR loads the way Hub users load it: weights in safetensors,
`config.json` with `auto_map`, the modeling files it names, the preprocessor config and a model card. It then creates
the repository when it does not exist and uploads the top-level files of DIR in one commit through huggingface_hub's
`HfApi`. The token comes from the usual places: the `HF_TOKEN` environment variable or the file written by
`hf auth login`.
"""

import ast
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
from huggingface_hub import CommitOperationAdd, HfApi, ModelCard, constants, get_token
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled, RepositoryNotFoundError


logger = logging.getLogger(__name__)

CARD_NAME = "README.md"
CONFIG_NAME = "config.json"
PREPROCESSOR_NAME = "preprocessor_config.json"
SAFETENSORS_INDEX_NAME = "model.safetensors.index.json"
# Model types whose checkpoints take raw recordings and therefore need the feature extractor's settings.
MODEL_TYPES_WITH_PREPROCESSOR = ("relcon",)
# The model card templates name this repository until the push names the real one.
PLACEHOLDER_REPO_ID = re.compile(r"<your-namespace>/[\w.-]+")


class HubPushError(RuntimeError):
    """Error raised when the Hub rejects a push or cannot be reached; the message states what to do next."""


@dataclass
class PushResult:
    """Files, card and commit of a push, or of what a dry run would send."""

    repo_id: str
    revision: str
    files: list[tuple[str, int]]
    card_text: str | None
    dry_run: bool
    card_kept: bool = False
    commit_url: str | None = None
    commit_oid: str | None = None
    pr_url: str | None = None
    skipped: list[str] = field(default_factory=list)


def _auto_map_modules(auto_map: dict) -> set[str]:
    """Module names (without `.py`) that an `auto_map` points to; an entry may list a (slow, fast) pair."""
    modules = set()
    for reference in auto_map.values():
        for item in reference if isinstance(reference, (list, tuple)) else [reference]:
            if not item:
                continue
            # "module.Class", or "repo_id--module.Class" when the code lives in another repository.
            if "--" in item:
                continue
            modules.add(item.rsplit(".", 1)[0])
    return modules


def _relative_imports(path: Path) -> set[str]:
    """Sibling modules that a modeling file imports with `from .name import ...`."""
    tree = ast.parse(path.read_text())
    return {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
    }


def _read_json(path: Path, problems: list[str]) -> dict | None:
    try:
        with open(path) as handle:
            content = json.load(handle)
    except json.JSONDecodeError as error:
        problems.append(f"{path.name} is not valid JSON ({error})")
        return None
    if not isinstance(content, dict):
        problems.append(f"{path.name} must contain a JSON object, got {type(content).__name__}")
        return None
    return content


def _safetensors_problem(path: Path) -> str | None:
    """Return why a safetensors file cannot be read, or None when its header lists at least one tensor."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            if not list(handle.keys()):
                return "it contains no tensor"
    except Exception as error:  # safetensors raises its own error type for malformed headers
        return f"{type(error).__name__}: {error}"
    return None


def check_checkpoint_folder(folder: str | Path) -> list[str]:
    """
    List what a checkpoint folder lacks before it can be published; an empty list means it is complete.

    A complete folder has `config.json` with an `auto_map`, and every Python module that `auto_map` names together
    with the sibling modules those import. It has safetensors weights (all shards when an index is present) and, for
    encoders and task heads, `preprocessor_config.json` and the modules of its own `auto_map`. Its `README.md` model
    card has metadata that parses.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return [f"{folder} is not a folder"]
    problems: list[str] = []
    modules: set[str] = set()

    # 1. config.json and the remote code it names.
    model_type = None
    config_path = folder / CONFIG_NAME
    if not config_path.is_file():
        problems.append(f"{CONFIG_NAME} (write it with model.save_pretrained)")
    else:
        config = _read_json(config_path, problems)
        if config is not None:
            model_type = config.get("model_type")
            auto_map = config.get("auto_map")
            if not auto_map:
                problems.append(
                    f"auto_map in {CONFIG_NAME} (save with relcon_hf imported, so that the checkpoint also loads "
                    "with trust_remote_code=True where relcon_hf is not installed)"
                )
            else:
                modules |= _auto_map_modules(auto_map)

    # 2. Weights in safetensors, every shard when sharded.
    index_path = folder / SAFETENSORS_INDEX_NAME
    if index_path.is_file():
        index = _read_json(index_path, problems)
        if index is not None:
            for shard in sorted(set(index.get("weight_map", {}).values())):
                if not (folder / shard).is_file():
                    problems.append(f"{shard} (a weight shard listed in {SAFETENSORS_INDEX_NAME})")
    elif not list(folder.glob("*.safetensors")):
        problems.append("*.safetensors weights (save with model.save_pretrained, which writes safetensors)")
    for weights in sorted(folder.glob("*.safetensors")):
        problem = _safetensors_problem(weights)
        if problem is not None:
            problems.append(f"readable weights in {weights.name} ({problem}; save them again with save_pretrained)")

    # 3. The feature extractor's settings, for models that read raw recordings.
    if model_type in MODEL_TYPES_WITH_PREPROCESSOR:
        preprocessor_path = folder / PREPROCESSOR_NAME
        if not preprocessor_path.is_file():
            problems.append(f"{PREPROCESSOR_NAME} (write it with RelConFeatureExtractor.save_pretrained)")
        else:
            preprocessor = _read_json(preprocessor_path, problems)
            if preprocessor is not None:
                modules |= _auto_map_modules(preprocessor.get("auto_map") or {})

    # 4. Modeling files, followed through their relative imports.
    pending, seen = sorted(modules), set()
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        path = folder / f"{module}.py"
        if not path.is_file():
            problems.append(f"{module}.py (named in auto_map or imported by another modeling file)")
            continue
        pending.extend(sorted(_relative_imports(path) - seen))

    # 5. The model card.
    card_path = folder / CARD_NAME
    if not card_path.is_file():
        problems.append(f"{CARD_NAME} model card (write it with relcon_hf.hub.write_model_card)")
    else:
        try:
            card = ModelCard.load(card_path)
        except Exception as error:  # yaml raises its own error types for malformed front matter
            problems.append(f"valid metadata in {CARD_NAME} ({type(error).__name__}: {error})")
        else:
            if not card.data.library_name:
                problems.append(f"library_name in the metadata of {CARD_NAME}")

    return problems


def files_to_push(folder: str | Path) -> tuple[list[Path], list[str]]:
    """
    Files of `folder` that a push uploads, and the entries it leaves out.

    Only regular top-level files are uploaded. Subfolders are left out because `checkpoints/` contains resumable
    training states (optimizer moments, random generator states), which are not part of a model repository. Hidden
    files and symbolic links are left out too.
    """
    folder = Path(folder)
    files, skipped = [], []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.is_symlink() or not path.is_file():
            skipped.append(path.name + ("/" if path.is_dir() else ""))
        else:
            files.append(path)
    return files, skipped


def card_for_repo(card_text: str, repo_id: str) -> str:
    """Replace the placeholder repository id of the card templates with `repo_id`."""
    return PLACEHOLDER_REPO_ID.sub(repo_id, card_text)


def _describe_http_error(error: HfHubHTTPError, repo_id: str, endpoint: str) -> str:
    status = error.response.status_code if error.response is not None else None
    server_message = getattr(error, "server_message", None) or str(error).splitlines()[0]
    namespace = repo_id.split("/")[0] if "/" in repo_id else "your user name"
    if status == 401:
        return (
            f"The Hub at {endpoint} rejected the token (HTTP 401: {server_message}). Log in again with "
            "`hf auth login`, or set HF_TOKEN to a valid token with write access."
        )
    if status == 403:
        return (
            f"The token may not write to {repo_id} (HTTP 403: {server_message}). The namespace '{namespace}' "
            "belongs to another user or organization, or the token is read-only. Push to a repository under your "
            "own user name or an organization you belong to, or use a token with write access."
        )
    if isinstance(error, RepositoryNotFoundError):
        return (
            f"Repository {repo_id} was not found at {endpoint}, or the token may not see it (HTTP {status}). "
            "Check the repository id and that the token has access."
        )
    if status == 429 or (status is not None and status >= 500):
        return (
            f"The Hub at {endpoint} responded with HTTP {status} while pushing to {repo_id}: {server_message}. A "
            "failed commit uploads nothing (a repository created before the failure stays). Wait a little, check "
            "HF_ENDPOINT and the Hub's status page, then run the push again."
        )
    return (
        f"The Hub at {endpoint} rejected the push to {repo_id} with HTTP {status}: {server_message}. Fix what the "
        "message names (for example file size or repository settings), then run the push again."
    )


def push_checkpoint(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    commit_message: str | None = None,
    overwrite_card: bool = False,
    dry_run: bool = False,
    token: str | None = None,
    endpoint: str | None = None,
) -> PushResult:
    """
    Upload a checkpoint folder to a model repository on the Hub, creating the repository when needed.

    Args:
        folder (`str` or `Path`): Checkpoint folder written by `save_pretrained` plus a model card.
        repo_id (`str`): Target repository, `namespace/name`.
        private (`bool`, *optional*): Visibility of a newly created repository; an existing one keeps its own.
        revision (`str`, *optional*): Branch to commit to (created from `main` when missing); defaults to `main`.
        create_pr (`bool`): Open a pull request with the commit instead of committing to the branch.
        commit_message (`str`, *optional*): Commit summary.
        overwrite_card (`bool`): Replace a `README.md` that the repository already has. Without it an existing card
            is kept and the local one is not sent.
        dry_run (`bool`): Check the folder and return what would be sent, without contacting the Hub.
        token (`str`, *optional*): Access token; by default `HF_TOKEN` or the token saved by `hf auth login`.
        endpoint (`str`, *optional*): Hub address; by default `HF_ENDPOINT` or https://huggingface.co.

    Returns:
        [`PushResult`].

    Raises:
        `ValueError`: The folder is incomplete (every missing piece is listed) or `repo_id` is malformed.
        [`HubPushError`]: No token, a token without write access, or the Hub could not be reached.
    """
    folder = Path(folder)
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"`repo_id` must look like 'namespace/name', got {repo_id!r}.")
    problems = check_checkpoint_folder(folder)
    if problems:
        listing = "\n".join(f"  - {problem}" for problem in problems)
        raise ValueError(f"{folder} is not ready to publish; it lacks:\n{listing}")

    files, skipped = files_to_push(folder)
    for name in skipped:
        logger.info(f"Not uploading {name}: only regular top-level files of the checkpoint are published.")
    card_text = card_for_repo((folder / CARD_NAME).read_text(), repo_id)
    # The card is sent with the repository id filled in, so its size is that of the text sent.
    sizes = [(path.name, len(card_text.encode()) if path.name == CARD_NAME else path.stat().st_size) for path in files]
    branch = revision or constants.DEFAULT_REVISION
    if commit_message is None:
        model_type = json.loads((folder / CONFIG_NAME).read_text()).get("model_type", "RelCon")
        commit_message = f"Upload {model_type} checkpoint with relcon-hf"

    if dry_run:
        return PushResult(
            repo_id=repo_id, revision=branch, files=sizes, card_text=card_text, dry_run=True, skipped=skipped
        )

    if constants.HF_HUB_OFFLINE:
        raise HubPushError("HF_HUB_OFFLINE is set, so nothing can be sent to the Hub. Unset it to push.")
    token = token or get_token()
    if not token:
        raise HubPushError(
            "No Hugging Face token found. Set HF_TOKEN to a token with write access, or run `hf auth login`."
        )
    api = HfApi(endpoint=endpoint, token=token)

    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision is not None and revision != constants.DEFAULT_REVISION and not create_pr:
            api.create_branch(repo_id, branch=revision, exist_ok=True)

        # An existing card on the Hub wins unless the user asks to replace it.
        card_kept = not overwrite_card and api.file_exists(repo_id, CARD_NAME, revision=branch)
        operations = []
        for path in files:
            if path.name == CARD_NAME:
                if card_kept:
                    logger.info(f"{repo_id} already has a {CARD_NAME}; keeping it (pass --overwrite-card to replace).")
                    continue
                operations.append(CommitOperationAdd(path_in_repo=CARD_NAME, path_or_fileobj=card_text.encode()))
            else:
                operations.append(CommitOperationAdd(path_in_repo=path.name, path_or_fileobj=str(path)))

        commit = api.create_commit(
            repo_id,
            operations,
            commit_message=commit_message,
            revision=revision,
            create_pr=create_pr,
        )
    except OfflineModeIsEnabled as error:
        raise HubPushError(f"HF_HUB_OFFLINE is set, so nothing can be sent to the Hub ({error}). Unset it.") from None
    except HfHubHTTPError as error:
        raise HubPushError(_describe_http_error(error, repo_id, api.endpoint)) from error
    except (KeyError, json.JSONDecodeError) as error:
        # huggingface_hub reads fixed JSON fields from successful responses. A proxy or a server that is not a Hub
        # can respond 200 with a body that lacks them.
        raise HubPushError(
            f"The server at {api.endpoint} responded to the push to {repo_id} with a body that huggingface_hub "
            f"could not read ({type(error).__name__}: {error}). Check that HF_ENDPOINT points to a Hugging Face Hub "
            "and that no proxy rewrites its responses, then run the push again."
        ) from error
    except httpx2.TransportError as error:
        try:
            url = f" for {error.request.method} {error.request.url}"
        except RuntimeError:  # httpx raises RuntimeError when the error carries no request
            url = ""
        raise HubPushError(
            f"Could not reach the Hub at {api.endpoint}{url} ({type(error).__name__}: {error}). Check the network "
            "connection, proxy settings and HF_ENDPOINT, then run the push again."
        ) from error

    sent = [(name, size) for name, size in sizes if not (card_kept and name == CARD_NAME)]
    return PushResult(
        repo_id=repo_id,
        revision=branch,
        files=sent,
        card_text=None if card_kept else card_text,
        dry_run=False,
        card_kept=card_kept,
        commit_url=commit.commit_url,
        commit_oid=commit.oid,
        pr_url=commit.pr_url,
        skipped=skipped,
    )


def format_push_result(result: PushResult, *, private: bool | None = None, create_pr: bool = False) -> str:
    """Text that `relcon-hf push` prints: the files (path and size in bytes) and, for a dry run, the card."""
    total = sum(size for _, size in result.files)
    lines = []
    if result.dry_run:
        visibility = {True: "private", False: "public", None: "public unless the namespace defaults to private"}[
            private
        ]
        lines += [
            "Dry run: nothing was sent.",
            f"Repository: {result.repo_id} (created if missing, {visibility})",
            f"Revision: {result.revision}" + (" (as a pull request)" if create_pr else ""),
            f"Files ({len(result.files)}, {total} bytes):",
        ]
    else:
        lines.append(f"Pushed {len(result.files)} files ({total} bytes) to {result.repo_id}@{result.revision}:")
    width = max((len(name) for name, _ in result.files), default=0)
    lines += [f"  {name:<{width}}  {size:>12}" for name, size in result.files]
    if result.skipped:
        lines.append(f"Not uploaded (not regular top-level files): {', '.join(result.skipped)}")
    if result.card_kept:
        lines.append(f"Kept the {CARD_NAME} already on the Hub; pass --overwrite-card to replace it.")
    if result.dry_run:
        lines += [
            f"{CARD_NAME} is sent unless the repository already has one (checked when pushing; --overwrite-card "
            "replaces it). Model card:",
            result.card_text or "",
        ]
    else:
        lines.append(f"Commit: {result.commit_url}")
        if result.pr_url:
            lines.append(f"Pull request: {result.pr_url}")
    return "\n".join(lines)
