"""Self-describing, verified checkpoints.

A checkpoint folder holds `state.pt` (recipe state, step, RNG), `generator.pt` + `spec.json`
(the exported generator, enough to sample without the recipe), `config.json` (the resolved
config) and `meta.json` with sha256 digests of the tensor files. Files are written under a
temporary name and renamed; `meta.json` is written last, so a folder without a valid
meta.json is incomplete. Loading uses `torch.load(weights_only=True)` (no code execution)
and refuses files whose digest does not match.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from ganpipe.errors import CheckpointError

META = "meta.json"
FORMAT_VERSION = 1


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic_write_bytes(path: Path, write: Any) -> None:
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_checkpoint(
    folder: str | Path,
    *,
    step: int,
    recipe_state: dict[str, Any],
    export: tuple[dict[str, Any], dict[str, torch.Tensor]],
    config: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    spec, gen_state = export
    state = {"step": step, "recipe": recipe_state, "rng": torch.get_rng_state()}
    try:
        _atomic_write_bytes(folder / "state.pt", lambda f: torch.save(state, f))
        _atomic_write_bytes(folder / "generator.pt", lambda f: torch.save({k: v.detach().cpu() for k, v in gen_state.items()}, f))
        (folder / "spec.json").write_text(json.dumps(spec, indent=2, sort_keys=True))
        (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        meta = {
            "format_version": FORMAT_VERSION,
            "step": step,
            "family": spec.get("family"),
            "sha256": {n: _sha256(folder / n) for n in ("state.pt", "generator.pt", "spec.json", "config.json")},
            **(extra or {}),
        }
        _atomic_write_bytes(folder / META, lambda f: f.write(json.dumps(meta, indent=2, sort_keys=True).encode()))
    except OSError as e:
        (folder / META).unlink(missing_ok=True)
        raise CheckpointError(f"could not write checkpoint to {folder}: {e}", hint="free disk space or fix permissions") from e
    return folder


def verify(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    meta_p = folder / META
    if not meta_p.is_file():
        raise CheckpointError(f"incomplete checkpoint {folder}: no {META}", hint="use an earlier checkpoint")
    try:
        meta = json.loads(meta_p.read_text())
    except json.JSONDecodeError:
        raise CheckpointError(f"corrupt {meta_p}") from None
    for name, digest in meta["sha256"].items():
        p = folder / name
        if not p.is_file():
            raise CheckpointError(f"checkpoint {folder} is missing {name}")
        if _sha256(p) != digest:
            raise CheckpointError(f"checkpoint file {p} fails verification (sha256 mismatch): tampered or corrupt")
    return meta


def newest_verified(run_dir: str | Path) -> tuple[Path, int] | None:
    """The checkpoint with the highest step under a run folder (`checkpoint_*/`) that passes
    verification, with its step; None when there is none.

    Ray Train records a reported checkpoint only when its controller next polls the workers
    (every couple of seconds, one report per poll), so after a crash or a lost node its
    "latest checkpoint" can be one or two behind what rank 0 had already written in full.
    Checkpoints here are written by rank 0 alone and verify themselves (digests, meta.json
    last), so the newest one that verifies is safe to resume from; a half-uploaded one fails
    verification and is skipped. A run folder on object storage (`s3://...`) is searched the
    same way and the checkpoint chosen is copied here (`storage.newest_verified_remote`).
    """
    if "://" in str(run_dir) and not str(run_dir).startswith("file://"):
        from ganpipe.train.storage import newest_verified_remote

        found = newest_verified_remote(str(run_dir))
        return None if found is None else found[:2]
    found = []
    for meta in Path(run_dir).glob(f"checkpoint_*/{META}"):
        try:
            found.append((int(json.loads(meta.read_text())["step"]), meta.parent.name, meta.parent))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    for step, _, folder in sorted(found, reverse=True):
        try:
            verify(folder)
        except (CheckpointError, OSError, ValueError, KeyError, TypeError):
            continue
        return folder, step
    return None


def load_state(folder: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    folder = Path(folder)
    verify(folder)
    return torch.load(folder / "state.pt", map_location=map_location, weights_only=True)


def load_export(folder: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    folder = Path(folder)
    verify(folder)
    spec = json.loads((folder / "spec.json").read_text())
    state = torch.load(folder / "generator.pt", map_location="cpu", weights_only=True)
    return spec, state
