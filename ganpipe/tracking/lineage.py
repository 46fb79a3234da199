"""Lineage tags: which code, data and config produced a run."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

import ganpipe


def git_commit(folder: Path) -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder, capture_output=True, text=True, timeout=10)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def dvc_data_version(folder: Path) -> str:
    """The md5 of the raw data folder recorded in data.dvc (what `dvc checkout` restores)."""
    p = folder / "data.dvc"
    if not p.is_file():
        return "untracked"
    try:
        outs = (yaml.safe_load(p.read_text()) or {}).get("outs", [])
        return str(outs[0].get("md5", "unknown")) if outs else "unknown"
    except yaml.YAMLError:
        return "unknown"


def lineage_tags(project: Path, manifest: dict[str, Any] | None) -> dict[str, str]:
    m = manifest or {}
    return {
        "ganpipe.version": ganpipe.__version__,
        "git.commit": git_commit(project),
        "data.dvc_md5": dvc_data_version(project),
        "data.fingerprint": str(m.get("fingerprint", "unknown")),
        "data.source": str(m.get("source", "unknown")),
        "data.skipped_files": str(len(m.get("skipped") or [])),
    }
