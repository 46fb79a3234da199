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


@pytest.fixture
def project(tmp_path, monkeypatch, digits_raw) -> Path:
    """A fresh ganpipe project (git + DVC + local remote) as cwd, with its own MLflow store."""
    from ganpipe.data.dvc import init_project

    proj = tmp_path / "proj"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    init_project(proj)
    shutil.copytree(digits_raw / "digits", proj / "data" / "digits")
    monkeypatch.chdir(proj)
    monkeypatch.setenv("GANPIPE_PROJECT", str(proj))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return proj
