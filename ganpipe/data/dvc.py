"""DVC through its CLI (the stable interface), one command at a time (DVC holds a repo lock).

The pipeline's prepare stage: materialise raw data if needed, `dvc add data` (data.dvc),
record the data set's parameters in params.yaml, `dvc repro prepare@NAME` (skipped by DVC
when nothing changed), and `dvc push` to the configured remote (skipped when the last push
succeeded for the same data.dvc, dvc.lock and remote). When none of the files these commands
read has changed since they last succeeded (by size and mtime, as DVC's own state database
tracks them), all three are skipped.

Data sets that ganpipe's code generates (no raw files: the Gaussian mixtures) have their own
stage, `generate@NAME` over the `generated` section of params.yaml: it depends on its
parameters alone, so nothing is written into the project for DVC to watch.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ganpipe.errors import DataError

if TYPE_CHECKING:
    from ganpipe.project import Project

TEMPLATE = Path(__file__).resolve().parent.parent / "project_template"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)  # stage commands call `ganpipe` from this venv
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env.setdefault("DVC_NO_ANALYTICS", "1")
    return env


def dvc(args: list[str], cwd: Path, check: bool = True, timeout: float = 1800, progress: bool = False) -> subprocess.CompletedProcess:
    """One DVC command. `progress`: show its progress (DVC's bars, a stage's image count) live
    on stderr, for the commands that take minutes on a large folder (add, repro, push, pull)."""
    cmd = [sys.executable, "-m", "dvc", *args]
    if progress:
        from ganpipe.data.command_progress import run_with_progress

        proc = run_with_progress(cmd, cwd, _env(), f"dvc {args[0]}", timeout)
    else:
        proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise DataError(f"`dvc {' '.join(args)}` failed in {cwd}: {' | '.join(msg[-6:])}", hint="see the DVC message above")
    return proc


def git(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)


def is_dvc_repo(project: Path) -> bool:
    return (project / ".dvc").is_dir() and (project / "dvc.yaml").is_file()


def _project_remote_config(project: Path) -> str:
    """The remote sections of the project's own DVC config files ('' when there are none)."""
    import re

    found = []
    for name in ("config", "config.local"):
        f = project / ".dvc" / name
        if f.is_file():
            text = f.read_text()
            if re.search(r"""^\s*\[\s*'?remote\s+"[^"]+"'?\s*\]""", text, re.M):
                found.append(text)
    return "\n".join(found)


SHARED_REMOTE = "ganpipe-storage"  # the remote that storage.dvc_remote (or storage.root) names


def _local_default(project: Path) -> str | None:
    """The default remote that .dvc/config.local sets (it overrides the committed config's)."""
    import configparser

    f = project / ".dvc" / "config.local"
    if not f.is_file():
        return None
    c = configparser.ConfigParser()
    try:
        c.read_string(f.read_text())
    except configparser.Error:
        return None
    return c.get("core", "remote", fallback=None)


def ensure_remote(project: "Project") -> None:
    """The DVC remote `dvc push` uses: the one the project's storage settings name, else the
    project's own DVC config, else a local default remote.

    A remote named by storage settings (`storage.dvc_remote`, `storage.root`) is shared: it goes
    into the committed `.dvc/config` as the default, so a clone of the project (a teammate, a
    cluster node) finds it and `dvc pull` works there; a default that `.dvc/config.local` sets
    (the per-machine remote of a project made before) would override it, so that one is
    unset. A remote the project declares with the same URL (say, with an `endpointurl`) is
    used as it is. The per-machine default remote lives in `.dvc/config.local`."""
    root = project.root
    if project.dvc_remote_set:
        if f"url = {project.dvc_remote}" in _project_remote_config(root):
            return  # declared already (by an earlier run, or by the user with its endpoint and keys)
        if "://" not in project.dvc_remote:
            Path(project.dvc_remote).mkdir(parents=True, exist_ok=True)
        dvc(["remote", "add", "-f", "-d", SHARED_REMOTE, project.dvc_remote], root)
        if _local_default(root) not in (None, SHARED_REMOTE):
            dvc(["remote", "default", "--local", "--unset"], root)
        return
    if _project_remote_config(root):
        return  # the project names a remote itself: no need to ask DVC (a subprocess) on every run
    listed = dvc(["remote", "list"], root, check=False).stdout.strip()
    if listed:
        return
    Path(project.dvc_remote).mkdir(parents=True, exist_ok=True)
    dvc(["remote", "add", "--local", "-d", "localcache", project.dvc_remote], root)


def init_project(project: Path, settings: "Project | None" = None) -> Path:
    """Scaffold a ganpipe project: git + DVC repo, dvc.yaml, params.yaml, DVC remote (the one
    `settings` names; default: `Project.load(project)`)."""
    project.mkdir(parents=True, exist_ok=True)
    if not (project / ".git").exists():
        git(["init", "-q"], project)
    if not (project / ".dvc").exists():
        dvc(["init", "-q"], project)
        dvc(["config", "core.analytics", "false"], project)
    if not (project / "dvc.yaml").exists():
        shutil.copy(TEMPLATE / "dvc.yaml.in", project / "dvc.yaml")
    if not (project / "params.yaml").exists():
        (project / "params.yaml").write_text("datasets: {}\ngenerated: {}\n")
    gi = project / ".gitignore"
    lines = set(gi.read_text().splitlines()) if gi.exists() else set()
    from ganpipe.project import STATE_DIR, Project

    want = ["/mlflow.db", "/mlartifacts", f"/{STATE_DIR}", "/outputs"]
    gi.write_text("\n".join(sorted(lines | set(want))) + "\n")
    ensure_remote(settings or Project.load(project))
    return project


def is_generated(source: str) -> bool:
    """A built-in set that ganpipe's code generates at prepare time: it has no raw files."""
    from ganpipe.data.sources import SOURCES

    return ":" not in source and SOURCES.get(source).materialize is None


def raw_dep(source: str, raw_root: str) -> str:
    """The prepare stage's dependency: the raw folder of a built-in set or the user's path."""
    from ganpipe.data.sources import resolve

    src, path = resolve(source)
    if path is not None:
        return str(path.resolve())
    if src.materialize is None:
        raise ValueError(f"{source!r} is generated: its stage depends on parameters, not files")
    return f"{raw_root}/{source}"


# params.yaml section -> the dvc.yaml stage that iterates over it (dvc.yaml.in)
STAGES = {"datasets": "prepare", "labelled": "prepare-labelled", "generated": "generate"}


def params_section(cfg: Any) -> str:
    """Where a data set's entry goes in params.yaml: generated sets depend on parameters only,
    sets with a labels file depend on it as well as on their raw files."""
    return "generated" if is_generated(cfg.source) else "labelled" if cfg.labels else "datasets"


def stage_name(cfg: Any) -> str:
    return f"{STAGES[params_section(cfg)]}@{cfg.key}"


def write_params(project: Path, key: str, cfg: Any) -> None:
    """The data set's entry in params.yaml, in its `params_section` (stage `stage_name`). The key
    is removed from the other sections, as two stages may not write the same prepared folder."""
    p = project / "params.yaml"
    params = yaml.safe_load(p.read_text()) if p.exists() else {}
    params = params or {}
    before = yaml.safe_dump(params, sort_keys=True)
    for section in STAGES:  # dvc.yaml's foreach needs every section, even empty
        params[section] = params.get(section) or {}
    entry = {
        "source": cfg.source,
        "image_size": cfg.image_size,
        "channels": cfg.channels or 0,
        "val_fraction": cfg.val_fraction,
        "test_fraction": cfg.test_fraction,
        "seed": cfg.seed,
    }
    section = params_section(cfg)
    if section != "generated":
        entry["raw"] = raw_dep(cfg.source, cfg.raw_root)
        entry["on_bad_file"] = cfg.on_bad_file
        entry["labels"] = str(Path(cfg.labels).expanduser().resolve()) if cfg.labels else ""
    for other in STAGES:
        if other != section:
            params[other].pop(key, None)
    params[section][key] = entry
    text = yaml.safe_dump(params, sort_keys=True)
    if text != before:
        tmp = p.with_suffix(".yaml.tmp")
        tmp.write_text(text)
        tmp.replace(p)


def ensure_stage(project: Path, name: str) -> None:
    """Projects made before stage `name` (`generate`, `prepare-labelled`) existed get it
    appended to their dvc.yaml from the template (as text, so the file's comments stay)."""
    f = project / "dvc.yaml"
    stages = (yaml.safe_load(f.read_text()) or {}).get("stages") or {}
    if name in stages:
        return
    lines = (TEMPLATE / "dvc.yaml.in").read_text().splitlines(keepends=True)
    start = end = lines.index(f"  {name}:\n")
    while lines[start - 1].startswith("  #"):  # with the comment above it
        start -= 1
    end += 1
    while end < len(lines) and not (lines[end].startswith("  ") and not lines[end].startswith("   ")):
        end += 1  # up to the next stage's comment or name
    block = "".join(lines[start:end])
    text = f.read_text()
    f.write_text(text + ("" if text.endswith("\n") else "\n") + block)


PREPARE_OPTIONS_AT = "--seed ${item.seed} --raw-root data\n"
PREPARE_OPTIONS = '        --on-bad-file ${item.on_bad_file} --labels "${item.labels}"\n'


def ensure_prepare_options(project: Path) -> None:
    """Projects made before `data.on_bad_file` and `data.labels` existed get them added to
    their prepare stage's command (as text, so the file's comments stay)."""
    f = project / "dvc.yaml"
    text = f.read_text()
    if "--on-bad-file" in text:
        return
    if text.count(PREPARE_OPTIONS_AT) != 1:
        raise DataError(
            f"cannot add --on-bad-file and --labels to the prepare stage of {f}",
            hint=f"append `--on-bad-file ${{item.on_bad_file}} --labels \"${{item.labels}}\"` to its cmd (see {TEMPLATE / 'dvc.yaml.in'})",
        )
    f.write_text(text.replace(PREPARE_OPTIONS_AT, PREPARE_OPTIONS_AT + PREPARE_OPTIONS))


@contextlib.contextmanager
def project_lock(project: "Project", timeout: float = 1800):
    """Serialise DVC work between pipeline processes of one project (DVC's own lock fails fast)."""
    lock = project.path("dvc.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise DataError(f"another ganpipe process has held the DVC lock of {project.root} for {timeout:.0f}s") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def prepare_with_dvc(project: "Project", cfg: Any, push: bool = True, progress: bool = False) -> tuple[Path, bool]:
    """Run the prepare stage for one data set; returns (prepared folder, whether DVC re-ran it).
    `progress`: show the DVC commands' progress on stderr as they run."""
    with project_lock(project):
        return _prepare_with_dvc(project, cfg, push, progress)


def _prepare_with_dvc(proj: "Project", cfg: Any, push: bool, progress: bool = False) -> tuple[Path, bool]:
    from ganpipe.data.sources import fetch, resolve

    project = proj.root

    _, user_path = resolve(cfg.source)
    if user_path is not None and not user_path.exists():
        raise DataError(f"data source path not found: {user_path}", hint=f"check data.source ({cfg.source})")
    key = cfg.key
    raw = project / cfg.raw_root
    generated = is_generated(cfg.source)
    builtin_raw = ":" not in cfg.source and not generated  # materialised under data/, tracked by data.dvc
    if builtin_raw and not (raw / cfg.source).exists():
        if (project / "data.dvc").exists():
            dvc(["pull", "data.dvc"], project, check=False, progress=progress)
        if not (raw / cfg.source).exists():
            fetch(cfg.source, raw)
    write_params(project, key, cfg)
    if generated:
        ensure_stage(project, "generate")
    else:
        ensure_prepare_options(project)
        if cfg.labels:
            ensure_stage(project, "prepare-labelled")
    # A generated set depends on its parameters only (in params.yaml, part of the signature).
    watched = [] if generated else [raw] if user_path is None else [user_path]
    if cfg.labels:
        watched.append(Path(cfg.labels).expanduser().resolve())
    state = proj.path("dvc-state", f"{key}.sha256")
    before = _signature(project, key, watched)
    if state.is_file() and state.read_text().strip() == before:
        # Nothing DVC looks at changed since it last added, reproduced and pushed this data
        # set: skip the three DVC processes (several seconds of a cached re-run).
        return project / "prepared" / key, False
    if builtin_raw:
        dvc(["add", cfg.raw_root], project, progress=progress)
    out = dvc(["repro", stage_name(cfg)], project, progress=progress)
    reran = "Running stage" in out.stdout
    if push:
        ensure_remote(proj)
    if push and _push(proj, progress):  # only a complete add + repro + push makes the next run skip DVC
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(_signature(project, key, watched) + "\n")
    return project / "prepared" / key, reran


def _signature(project: Path, key: str, watched: list[Path]) -> str:
    """What DVC's prepare stage depends on, by file stats (size, mtime, ctime and inode: a file
    copied over another with its mtime kept still changes ctime and inode; DVC's own state
    database keys file hashes on such stats): the raw inputs, the prepared outputs, and the
    DVC files and parameters."""
    import hashlib

    h = hashlib.sha256()
    for root in [*watched, project / "prepared" / key]:
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else ([root] if root.exists() else [])
        h.update(f"{root}:{len(files)}\n".encode())
        for f in files:
            st = f.stat()
            h.update(f"{f.relative_to(root) if f != root else f.name}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}\n".encode())
    for name in ("data.dvc", "dvc.yaml", "dvc.lock", "params.yaml"):
        f = project / name
        h.update(f.read_bytes() if f.is_file() else b"-")
    h.update(_project_remote_config(project).encode())
    return h.hexdigest()


def _push(proj: "Project", progress: bool = False) -> bool:
    """`dvc push`, skipped when it already succeeded for the same data.dvc, dvc.lock and remote
    config (a re-run with unchanged inputs has nothing new to push). A failed push (remote
    unreachable) is not recorded, so the next run tries again. True when the data is pushed."""
    import hashlib

    project = proj.root
    h = hashlib.sha256()
    for f in (project / "data.dvc", project / "dvc.lock"):
        h.update(f.read_bytes() if f.is_file() else b"-")
    h.update(_project_remote_config(project).encode())
    digest = h.hexdigest()
    marker = proj.path("dvc-pushed")
    if marker.is_file() and marker.read_text().strip() == digest:
        return True
    if dvc(["push"], project, check=False, progress=progress).returncode == 0:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(digest + "\n")
        return True
    return False
