# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""A stand-in for the Hugging Face Hub on 127.0.0.1 that records what clients send.

It serves the HTTP endpoints that `HfApi.create_repo`, `create_branch`, `file_exists`, `repo_info`,
`create_commit` (README validation, preupload, the LFS "basic" transfer with verify, the NDJSON commit) and
`hf_hub_download` use, for model repositories only, with answers shaped like the Hub's (status codes, `X-Error-Code`
and `X-Repo-Commit` headers, JSON fields that huggingface_hub reads). It keeps repositories, branches and pull
requests in memory. The Xet transfer protocol is not served: clients must run with `HF_HUB_DISABLE_XET=1`, so
files that the stand-in marks for LFS go through the LFS batch API.
"""

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml


LFS_SUFFIXES = (".safetensors", ".bin")
INVALID_TOKEN_MESSAGE = "Invalid credentials in Authorization header"


@dataclass
class Repository:
    owner: str
    private: bool
    branches: dict[str, dict[str, bytes]] = field(default_factory=lambda: {"main": {}})
    heads: dict[str, str] = field(default_factory=lambda: {"main": "0" * 40})
    pull_requests: int = 0


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict
    authorization: str | None
    body: bytes


class StandInHub:
    """In-memory Hub state plus the request log; `tokens` maps access tokens to user names."""

    def __init__(self, tokens: dict[str, str]):
        self.tokens = tokens
        self.repos: dict[str, Repository] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.requests: list[RecordedRequest] = []
        self.commits: list[dict] = []
        # One-shot responses that replace the normal one: (method, path regex, status, body), used once in order.
        self.faults: list[tuple[str, str, int, bytes]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "StandInHub":
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add_repo(self, repo_id: str, owner: str, files: dict[str, bytes] | None = None, private: bool = False) -> None:
        repo = Repository(owner=owner, private=private)
        repo.branches["main"] = dict(files or {})
        repo.heads["main"] = _commit_oid(repo_id, "main", repo.branches["main"], 0)
        self.repos[repo_id] = repo


def _commit_oid(repo_id: str, branch: str, files: dict[str, bytes], counter: int) -> str:
    digest = hashlib.sha1(f"{repo_id}\0{branch}\0{counter}".encode())
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha1(files[name]).digest())
    return digest.hexdigest()


def _git_blob_sha1(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _handler_for(hub: StandInHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # keep pytest output clean
            pass

        # Plumbing.

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _send(self, status: int, payload=None, headers: dict | None = None, body: bytes | None = None) -> None:
            if body is None:
                body = json.dumps(payload if payload is not None else {}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _error(self, status: int, message: str, code: str | None = None) -> None:
            self._send(status, {"error": message}, headers={"X-Error-Code": code} if code else None)

        def _user(self) -> str | None:
            authorization = self.headers.get("Authorization") or ""
            return hub.tokens.get(authorization.removeprefix("Bearer "))

        def _dispatch(self) -> None:
            parts = urlsplit(self.path)
            path, query = unquote(parts.path), parse_qs(parts.query)
            body = self._read_body() if self.command in ("POST", "PUT") else b""
            with hub.lock:
                hub.requests.append(
                    RecordedRequest(self.command, path, query, self.headers.get("Authorization"), body)
                )
                for index, (method, pattern, status, fault_body) in enumerate(hub.faults):
                    if method == self.command and re.fullmatch(pattern, path):
                        del hub.faults[index]
                        return self._send(status, body=fault_body)
                for pattern, method, handler in ROUTES:
                    match = re.fullmatch(pattern, path)
                    if match and method == self.command:
                        return handler(self, match, query, body)
            self._error(404, f"The stand-in Hub does not serve {self.command} {path}")

        do_GET = do_POST = do_PUT = do_HEAD = _dispatch

        # Access checks, in the Hub's terms.

        def _writable_repo(self, repo_id: str) -> Repository | None:
            user = self._user()
            if user is None:
                self._error(401, INVALID_TOKEN_MESSAGE)
                return None
            repo = hub.repos.get(repo_id)
            if repo is None or (repo.private and repo.owner != user):
                self._error(404, "Repository not found", "RepoNotFound")
                return None
            if repo.owner != user:
                self._error(403, f"You don't have write access to {repo_id}")
                return None
            return repo

        # Endpoints.

        def create_repo(self, match, query, body):
            user = self._user()
            if user is None:
                return self._error(401, INVALID_TOKEN_MESSAGE)
            request = json.loads(body)
            namespace = request.get("organization") or user
            repo_id = f"{namespace}/{request['name']}"
            if namespace != user:
                return self._error(
                    403, f'You don\'t have the rights to create a model under the namespace "{namespace}"'
                )
            if repo_id in hub.repos:
                return self._send(409, {"error": "You already created this model repo", "url": f"{hub.url}/{repo_id}"})
            hub.add_repo(repo_id, owner=user, private=request.get("visibility") == "private")
            self._send(200, {"url": f"{hub.url}/{repo_id}", "name": repo_id})

        def repo_info(self, match, query, body):
            repo_id, revision = match.group("repo"), match.group("revision") or "main"
            repo = hub.repos.get(repo_id)
            if repo is None or (repo.private and repo.owner != self._user()):
                return self._error(404, "Repository not found", "RepoNotFound")
            if revision not in repo.branches:
                return self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            files = repo.branches[revision]
            self._send(
                200,
                {
                    "id": repo_id,
                    "author": repo.owner,
                    "sha": repo.heads[revision],
                    "private": repo.private,
                    "siblings": [{"rfilename": name} for name in sorted(files)],
                },
            )

        def create_branch(self, match, query, body):
            repo = self._writable_repo(match.group("repo"))
            if repo is None:
                return
            branch = match.group("branch")
            if branch in repo.branches:
                return self._error(409, f"Reference {branch} already exists")
            repo.branches[branch] = dict(repo.branches["main"])
            repo.heads[branch] = repo.heads["main"]
            self._send(200, {})

        def validate_yaml(self, match, query, body):
            content = json.loads(body)["content"]
            if not content.startswith("---"):
                return self._send(200, {"errors": [], "warnings": [{"message": "empty or missing yaml metadata"}]})
            try:
                metadata = yaml.safe_load(content.split("---")[1])
            except yaml.YAMLError as error:
                return self._send(400, {"errors": [{"message": str(error)}]})
            if not isinstance(metadata, dict):
                return self._send(400, {"errors": [{"message": "metadata must be a YAML mapping"}]})
            self._send(200, {"errors": [], "warnings": []})

        def preupload(self, match, query, body):
            repo = self._writable_repo(match.group("repo"))
            if repo is None:
                return
            revision = match.group("revision")
            existing = repo.branches.get(revision, repo.branches["main"])
            answers = []
            for item in json.loads(body)["files"]:
                lfs = item["path"].endswith(LFS_SUFFIXES)
                oid = None
                if item["path"] in existing:
                    content = existing[item["path"]]
                    oid = hashlib.sha256(content).hexdigest() if lfs else _git_blob_sha1(content)
                answers.append(
                    {
                        "path": item["path"],
                        "uploadMode": "lfs" if lfs else "regular",
                        "shouldIgnore": False,
                        "oid": oid,
                    }
                )
            self._send(200, {"files": answers})

        def lfs_batch(self, match, query, body):
            if self._writable_repo(match.group("repo")) is None:
                return
            objects = []
            for item in json.loads(body)["objects"]:
                answer = {"oid": item["oid"], "size": item["size"]}
                if item["oid"] not in hub.lfs_objects:
                    answer["actions"] = {
                        "upload": {"href": f"{hub.url}/lfs-objects/{item['oid']}"},
                        "verify": {"href": f"{hub.url}/lfs-verify/{item['oid']}"},
                    }
                objects.append(answer)
            self._send(200, {"transfer": "basic", "objects": objects})

        def lfs_upload(self, match, query, body):
            oid = match.group("oid")
            if hashlib.sha256(body).hexdigest() != oid:
                return self._error(400, "Uploaded content does not match its sha256")
            hub.lfs_objects[oid] = body
            self._send(200, {})

        def lfs_verify(self, match, query, body):
            request = json.loads(body)
            stored = hub.lfs_objects.get(match.group("oid"))
            if stored is None or len(stored) != request["size"]:
                return self._error(404, "Object not found", "EntryNotFound")
            self._send(200, {})

        def commit(self, match, query, body):
            repo_id = match.group("repo")
            repo = self._writable_repo(repo_id)
            if repo is None:
                return
            revision = match.group("revision")
            if revision not in repo.branches:
                return self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            header = next(line["value"] for line in lines if line["key"] == "header")
            files = dict(repo.branches[revision])
            operations = []
            for line in lines:
                value = line["value"]
                if line["key"] == "file":
                    files[value["path"]] = base64.b64decode(value["content"])
                    operations.append({"key": "file", "path": value["path"]})
                elif line["key"] == "lfsFile":
                    if value["oid"] not in hub.lfs_objects:
                        return self._error(422, f"LFS object {value['oid']} of {value['path']} was never uploaded")
                    files[value["path"]] = hub.lfs_objects[value["oid"]]
                    operations.append({"key": "lfsFile", "path": value["path"], "oid": value["oid"]})
                elif line["key"] != "header":
                    return self._error(400, f"The stand-in Hub does not support {line['key']} operations")

            create_pr = query.get("create_pr") == ["1"]
            target = revision
            if create_pr:
                repo.pull_requests += 1
                target = f"refs/pr/{repo.pull_requests}"
            oid = _commit_oid(repo_id, target, files, len(hub.commits) + 1)
            repo.branches[target] = files
            repo.heads[target] = oid
            hub.commits.append(
                {
                    "repo_id": repo_id,
                    "revision": revision,
                    "target": target,
                    "create_pr": create_pr,
                    "summary": header["summary"],
                    "operations": operations,
                    "oid": oid,
                }
            )
            pr_url = f"{hub.url}/{repo_id}/discussions/{repo.pull_requests}" if create_pr else None
            self._send(
                200, {"commitUrl": f"{hub.url}/{repo_id}/commit/{oid}", "commitOid": oid, "pullRequestUrl": pr_url}
            )

        def resolve(self, match, query, body):
            repo_id, revision, filename = match.group("repo"), match.group("revision"), match.group("filename")
            repo = hub.repos.get(repo_id)
            if repo is None or (repo.private and repo.owner != self._user()):
                return self._error(404, "Repository not found", "RepoNotFound")
            if revision not in repo.branches:
                return self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            content = repo.branches[revision].get(filename)
            if content is None:
                return self._error(404, f"{filename} does not exist on {revision}", "EntryNotFound")
            etag = hashlib.sha256(content).hexdigest() if filename.endswith(LFS_SUFFIXES) else _git_blob_sha1(content)
            self._send(200, body=content, headers={"X-Repo-Commit": repo.heads[revision], "ETag": f'"{etag}"'})

    repo = r"(?P<repo>[\w.-]+/[\w.-]+)"
    ROUTES = [
        (r"/api/repos/create", "POST", Handler.create_repo),
        (rf"/api/models/{repo}(?:/revision/(?P<revision>.+))?", "GET", Handler.repo_info),
        (rf"/api/models/{repo}/branch/(?P<branch>.+)", "POST", Handler.create_branch),
        (r"/api/validate-yaml", "POST", Handler.validate_yaml),
        (rf"/api/models/{repo}/preupload/(?P<revision>.+)", "POST", Handler.preupload),
        (rf"/{repo}\.git/info/lfs/objects/batch", "POST", Handler.lfs_batch),
        (r"/lfs-objects/(?P<oid>[0-9a-f]{64})", "PUT", Handler.lfs_upload),
        (r"/lfs-verify/(?P<oid>[0-9a-f]{64})", "POST", Handler.lfs_verify),
        (rf"/api/models/{repo}/commit/(?P<revision>.+)", "POST", Handler.commit),
        (rf"/{repo}/resolve/(?P<revision>[^/]+)/(?P<filename>.+)", "HEAD", Handler.resolve),
        (rf"/{repo}/resolve/(?P<revision>[^/]+)/(?P<filename>.+)", "GET", Handler.resolve),
    ]
    return Handler
