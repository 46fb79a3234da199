"""Shared fixtures: one Ray instance and one Prefect test server per session, and throwaway
ganpipe projects (git + DVC repo, SQLite MLflow store) per test."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# CLI subprocesses in tests use Prefect's temporary server, not a background one that outlives the test.
os.environ.setdefault("GANPIPE_PREFECT_SERVER", "temporary")
os.environ.setdefault("RAY_DEDUP_LOGS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
# Projects name their own SQLite store; a developer's tracking server must not receive test runs
# (also in the CLI subprocesses tests start).
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("GANPIPE_PROJECT", None)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def ray_session():
    import ray

    if not ray.is_initialized():
        from ganpipe.train.local_ray import ensure_ray

        ensure_ray(num_cpus=2, log_to_driver=False, state_api=True)  # the sweep tests need it
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-home")
    os.environ["PREFECT_HOME"] = str(home)
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture(scope="session")
def digits_raw(tmp_path_factory) -> Path:
    """The digits materialised once per session (copied into projects that need them)."""
    from ganpipe.data.sources import fetch

    root = tmp_path_factory.mktemp("raw")
    fetch("digits", root)
    return root


@pytest.fixture(scope="session")
def digits_prepared(tmp_path_factory, digits_raw) -> Path:
    from ganpipe.config import DataConfig
    from ganpipe.data.prepare import prepare

    out = tmp_path_factory.mktemp("prepared") / "digits"
    prepare("digits", out, DataConfig(raw_root=str(digits_raw)))
    return out


@pytest.fixture(scope="session")
def digits8(tmp_path_factory, digits_raw) -> Path:
    """The digits at 8 x 8: small enough for learning tests of every image family."""
    from ganpipe.config import DataConfig
    from ganpipe.data.prepare import prepare

    out = tmp_path_factory.mktemp("prepared") / "digits8"
    prepare("digits", out, DataConfig(raw_root=str(digits_raw), image_size=8))
    return out


@pytest.fixture
def one_thread():
    """Tiny nets: intra-op threads only add synchronisation (and stall on busy CPUs).
    Modules opt in with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def new_project(root: Path, cache: Path):
    """A `Project` in `root` (git + DVC + a DVC remote under `cache`, SQLite MLflow store in
    the folder), built from explicit settings: no chdir, no environment."""
    from ganpipe.data.dvc import init_project
    from ganpipe.project import Project

    proj = Project.load(root, env={"XDG_CACHE_HOME": str(cache)})
    init_project(root, proj)
    return proj


@pytest.fixture
def project(tmp_path, digits_raw):
    """A fresh ganpipe project with the digits as raw data."""
    proj = new_project(tmp_path / "proj", tmp_path / "cache")
    shutil.copytree(digits_raw / "digits", proj.root / "data" / "digits")
    return proj
