"""Checkpoints where a cluster keeps them: a local or mounted folder, or object storage (S3, GCS,
anything pyarrow opens by URI).

On a cluster, a checkpoint is written by a worker on one node and read by a driver, a trial or
a teammate somewhere else, so what runs and trials record is the checkpoint's storage URI, and
a reader takes a local copy (`local_copy`) when it needs the files. Credentials and endpoints
come from the environment, as for Ray's own storage access (`AWS_ACCESS_KEY_ID`, ...;
`AWS_ENDPOINT_URL` for S3-compatible stores such as MinIO).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ganpipe.errors import CheckpointError
from ganpipe.project import is_remote


def uri_of(checkpoint: Any, storage: str) -> str:
    """A Ray Train/Tune `Checkpoint`'s full URI under `storage` (Ray keeps the path without
    the scheme, e.g. `bucket/prefix/run/checkpoint_x`); a local path as it is."""
    if not is_remote(storage):
        return str(checkpoint.path)
    return f"{storage.split('://', 1)[0]}://{str(checkpoint.path).lstrip('/')}"


def _fs(uri: str) -> tuple[Any, str]:
    import pyarrow.fs

    return pyarrow.fs.FileSystem.from_uri(uri)


def local_copy(uri: str | Path, cache: Path | None = None) -> Path:
    """The checkpoint's folder on this machine, verified: a local path as it is; a remote one
    downloaded once into `cache` (keyed by its URI; checkpoints are never rewritten under the
    same name), else into a new temporary folder."""
    from ganpipe.train.checkpoint import verify

    uri = str(uri)
    if not is_remote(uri):
        return Path(uri)
    dest = None if cache is None else cache / "checkpoints" / hashlib.sha256(uri.encode()).hexdigest()[:24]
    if dest is not None and dest.is_dir():
        try:
            verify(dest)
            return dest
        except CheckpointError:
            shutil.rmtree(dest, ignore_errors=True)
    import pyarrow.fs

    fs, path = _fs(uri)
    tmp = Path(tempfile.mkdtemp(prefix="ganpipe-ckpt-", dir=None if dest is None else _mkdir(dest.parent)))
    try:
        pyarrow.fs.copy_files(path, str(tmp), source_filesystem=fs)
        verify(tmp)
    except (OSError, CheckpointError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointError(f"could not fetch checkpoint {uri}: {str(e)[:300]}", hint="check the storage credentials (AWS_* or the cloud's) and that the run's checkpoint still exists") from None
    if dest is None:
        return tmp
    tmp.replace(dest)  # whole or not at all
    return dest


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def newest_verified_remote(run_uri: str) -> tuple[Path, int, str] | None:
    """`checkpoint.newest_verified` for a run folder on object storage: the highest-step
    `checkpoint_*` whose files verify, copied here, with its step and its URI (what other
    nodes copy); None when there is none."""
    import pyarrow.fs

    fs, root = _fs(run_uri)
    try:
        entries = fs.get_file_info(pyarrow.fs.FileSelector(root, allow_not_found=True))
    except OSError:
        return None
    found = []
    for e in entries:
        if e.type != pyarrow.fs.FileType.Directory or not e.base_name.startswith("checkpoint_"):
            continue
        try:
            with fs.open_input_stream(f"{e.path}/meta.json") as f:
                found.append((int(json.loads(f.read())["step"]), e.base_name, e.path))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # no meta.json yet: not complete
    scheme = run_uri.split("://", 1)[0]
    for step, _, path in sorted(found, reverse=True):
        try:
            return local_copy(f"{scheme}://{path}"), step, f"{scheme}://{path}"
        except CheckpointError:
            continue
    return None
