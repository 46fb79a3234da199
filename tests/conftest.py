"""Shared fixtures, and the test tiers.

Built once per session: one Ray instance, one Prefect server, the digits, a ganpipe project
template (git + DVC repo + local remote), a classifier cache and one trained pipeline run.
Per test: a copy of the template as a throwaway project (its own DVC remote and SQLite MLflow
store), handed to the code as a `Project`: no chdir, no environment variables.

Tiers: tests that start Ray, Prefect, DVC or MLflow-server processes, or train for a while,
are marked `integration` here (`pytest_collection_modifyitems`); `make test-fast` runs the
rest (`-m "not integration"`), `make test` runs everything.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# CLI subprocesses outside the `prefect_server` fixture use Prefect's temporary server, not a
# background one that outlives the test.
os.environ.setdefault("GANPIPE_PREFECT_SERVER", "temporary")
os.environ.setdefault("RAY_DEDUP_LOGS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
# Tests name their projects (and so their SQLite stores) explicitly; a developer's tracking
# server or project must not receive test runs, here or in the CLI processes tests start.
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("GANPIPE_PROJECT", None)

REPO = Path(__file__).resolve().parent.parent

# One intra-op thread in the test processes and the processes they start (OMP_NUM_THREADS is
# inherited; set it to override). The suite always shares the cores with something (the other
# lane, Ray's and Prefect's processes), and OpenMP teams that share cores spin against each
# other: on a loaded 2-core machine 60 steps of a tiny DCGAN took 84 s with two threads and
# 9 s with one, and an orthogonal init of a 128 x 1152 matrix 258 ms against 11 ms.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Rich wraps CLI output at the terminal's width, which a pytest-xdist worker does not have:
# one width for every test process, so that assertions on CLI output do not depend on it.
os.environ["COLUMNS"] = "200"
if "torch" in sys.modules:
    sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

# The same examples on every run: a property test that passes in CI passes on a laptop, and a
# failure found once is found again. HYPOTHESIS_PROFILE=default explores afresh on each run.
hypothesis_settings.register_profile("ganpipe", derandomize=True, database=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ganpipe"))


# ---------------------------------------------------------------------------------- tiers

# Using any of these makes a test an integration test.
INTEGRATION_FIXTURES = {"ray_session", "prefect_api", "prefect_server", "project", "project_template", "pipeline_run", "pipeline_project", "s3_server", "s3"}
INTEGRATION_DIRS = {"e2e", "learning"}
# Tests that start such processes themselves (or train for long), by node id prefix.
INTEGRATION_NODES = (
    "tests/reliability/test_node_removal.py::test_removed_node_run_resumes_from_latest_checkpoint",  # a Ray cluster
    "tests/unit/test_local_ray.py::",  # Ray instances in a child process
    "tests/evaluate/test_placement.py::test_a_gpu_node_gets_the_evaluation_and_the_head_does_not",  # a Ray cluster
    "tests/unit/test_prefect_server.py::test_started_once_reused_by_another_process_then_stopped",  # a Prefect server
    "tests/data/test_dvc_fast_path.py::test_a_generated_set_has_its_own_stage_and_leaves_no_file_behind",  # DVC processes
    "tests/data/test_command_progress.py::test_real_dvc_add_shows_its_file_count",  # DVC processes
    "tests/unit/test_grad_sync.py::",  # a 2-process gloo group
    "tests/unit/test_service_errors.py::test_ray_address_of_a_closed_port_ends_train_in_seconds",  # a CLI process that tries Ray
    "tests/evaluate/test_metrics_suite.py::test_inception_metrics_from_a_local_weights_file_match_torchmetrics",  # Inception-v3 on CPU, 14 passes
)


# Lanes: `make test` runs two pytest-xdist workers (`-n 2 --dist loadgroup`). The tests that use
# this process's Ray instance, Prefect server or pipeline run form one group, so one worker
# builds those once; the rest (unit and learning tests, tests that start their own Ray clusters
# or CLI processes) fill the other worker. Most of an integration test is waiting for processes
# to start, and the second lane does its work in those waits.
SESSION_FIXTURES = {"ray_session", "prefect_api", "prefect_server", "pipeline_run", "pipeline_project"}
# Tests that ask for the session's Prefect server but run their own Ray cluster: kept off the
# session lane, which is the longer one.
OWN_CLUSTER_NODES = ("tests/e2e/test_multinode.py::",)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:  # node ids are relative to the repository (pyproject.toml's folder)
        fixtures = set(getattr(item, "fixturenames", ()))
        if SESSION_FIXTURES & fixtures and not item.nodeid.startswith(OWN_CLUSTER_NODES):
            item.add_marker(pytest.mark.xdist_group("session"))
        if (
            INTEGRATION_FIXTURES & fixtures
            or INTEGRATION_DIRS & set(Path(item.nodeid.split("::")[0]).parts)
            or item.get_closest_marker("e2e")
            or item.get_closest_marker("slow")
            or item.nodeid.startswith(INTEGRATION_NODES)
        ):
            item.add_marker(pytest.mark.integration)


_UNGROUPED: set[str] = set()


def pytest_collection_finish(session):
    """The lanes rely on `--dist loadgroup` keeping each group on one worker; when a pytest and
    pytest-xdist pair loses the groups (pytest 9.2 with xdist 3.8: pytest-dev/pytest-xdist#1386),
    every worker would build the session's Ray, Prefect and pipeline run again, silently. The
    grouped tests fail instead (`pytest_runtest_setup`), saying why."""
    if getattr(session.config.option, "loadgroup", False):
        _UNGROUPED.update(i.nodeid for i in session.items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid)


def pytest_runtest_setup(item):
    if item.nodeid in _UNGROUPED:
        pytest.fail(
            f"pytest-xdist lost this test's xdist_group: pytest {pytest.__version__} and this pytest-xdist do not "
            "work together for --dist loadgroup. Fix: `make install` (constraints.txt pins a pair that does), or run without -n.",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _no_tracking_uri_leaks():
    """mlflow's fluent API exports MLFLOW_TRACKING_URI when a library sets its tracking URI;
    `Project.load` gives that variable precedence, so no test may leave one behind."""
    yield
    os.environ.pop("MLFLOW_TRACKING_URI", None)


# ---------------------------------------------------------------------------------- Ray, Prefect


@pytest.fixture(scope="session")
def ray_session():
    import ray

    if not ray.is_initialized():
        from ganpipe.train.local_ray import ensure_ray

        ensure_ray(num_cpus=2, log_to_driver=False, state_api=True)  # the sweep tests need it
    yield ray
    ray.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop_group(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Stop a process started with start_new_session=True, and its children."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory) -> str:
    """The session's Prefect server: `prefect server start` on a free loopback port, with its
    services (the scheduler polls every 3 s, for the schedule test). Its API URL."""
    import httpx

    home = tmp_path_factory.mktemp("prefect-server")
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "3",
        "PREFECT_UI_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    port = free_port()
    with open(home / "server.log", "w") as log:
        cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 180  # a loaded 2-core machine starts it slowly
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop_group(proc, signal.SIGKILL)
            pytest.fail("Prefect server did not start: " + (home / "server.log").read_text()[-2000:])
        time.sleep(0.5)
    yield url
    _stop_group(proc)


@pytest.fixture(scope="session")
def prefect_server(prefect_api, tmp_path_factory):
    """Flows run on the session's Prefect server: those of this process and of its children
    (CLI subprocesses), from the first test that asks to the end of the session."""
    import prefect.settings

    home = tmp_path_factory.mktemp("prefect-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREFECT_HOME", str(home))
        mp.setenv("PREFECT_API_URL", prefect_api)
        updates = {prefect.settings.PREFECT_API_URL: prefect_api, prefect.settings.PREFECT_HOME: str(home)}
        with prefect.settings.temporary_settings(updates=updates):  # this process imported prefect already
            yield prefect_api
            _drain_prefect_workers()


def _drain_prefect_workers() -> None:
    """Send this process's buffered Prefect logs and events while the server still answers
    (else their workers retry a stopped server at exit), as prefect_test_harness does."""
    import inspect

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain() -> None:
        for drained in (APILogWorker.drain_all, EventsWorker.drain_all):
            result = drained()
            if inspect.isawaitable(result):
                await result

    run_coro_as_sync(drain())


# ---------------------------------------------------------------------------------- S3


@dataclass(frozen=True)
class S3Server:
    """An S3-compatible server on 127.0.0.1 (moto's server mode) and the settings every client
    needs to use it. `env` is what a cluster node would have in its environment: give it to
    subprocesses, or set it for one test with the `s3` fixture; the test process's own
    environment is never changed for longer than that."""

    endpoint: str

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": "ganpipe-test",
            "AWS_SECRET_ACCESS_KEY": "ganpipe-test-secret",
            "AWS_DEFAULT_REGION": "us-east-1",
            # boto3 (MLflow, DVC's s3fs) and pyarrow (Ray Train/Tune storage) all read this one.
            "AWS_ENDPOINT_URL": self.endpoint,
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint,
        }

    def client(self):
        import boto3

        e = self.env
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=e["AWS_DEFAULT_REGION"], aws_access_key_id=e["AWS_ACCESS_KEY_ID"], aws_secret_access_key=e["AWS_SECRET_ACCESS_KEY"])

    def bucket(self, name: str) -> str:
        """A new empty bucket; its s3:// URI."""
        self.client().create_bucket(Bucket=name)
        return f"s3://{name}"

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


@pytest.fixture(scope="session")
def s3_server() -> S3Server:
    """moto's S3 server in a thread of the test process, on a free loopback port, for the session."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield S3Server(f"http://{host}:{port}")
    server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch) -> S3Server:
    """The S3 server's settings in this process's environment for one test (restored after)."""
    for k, v in s3_server.env.items():
        monkeypatch.setenv(k, v)
    return s3_server


# ---------------------------------------------------------------------------------- data


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


# ---------------------------------------------------------------------------------- projects


@pytest.fixture(scope="session")
def classifier_cache(tmp_path_factory) -> Path:
    """The evaluation classifiers (keyed by data fingerprint and training steps), trained once
    per session: every project's `.ganpipe/cache/classifiers` links here."""
    return tmp_path_factory.mktemp("classifiers")


@dataclass(frozen=True)
class Template:
    project: Path
    remote: Path  # the DVC remote its .dvc/config.local names
    classifiers: Path


def dvc_remote(cache_home: Path) -> Path:
    """The local DVC remote `init_project` gives a project whose settings have XDG_CACHE_HOME=cache_home."""
    from ganpipe.project import default_dvc_remote

    return Path(default_dvc_remote({"XDG_CACHE_HOME": str(cache_home)}))


def new_project(root: Path, cache_home: Path):
    """A `Project` in `root` made by `init_project` (git + DVC, its DVC remote under
    `cache_home`, SQLite MLflow store in the folder), from explicit settings."""
    from ganpipe.data.dvc import init_project
    from ganpipe.project import Project

    proj = Project.load(root, env={"XDG_CACHE_HOME": str(cache_home)})
    init_project(root, proj)
    return proj


def load_project(root: Path):
    """The `Project` of a folder made by `copy_project` (its DVC remote is in its own config)."""
    from ganpipe.project import Project

    return Project.load(root, env={"XDG_CACHE_HOME": str(root.parent / "cache")})


@pytest.fixture(scope="session")
def project_template(tmp_path_factory, digits_raw, classifier_cache) -> Template:
    """A ganpipe project made by `init_project` (git init, dvc init, dvc.yaml, local remote),
    with the raw digits, once per session; tests get copies (`copy_project`)."""
    root = tmp_path_factory.mktemp("template")
    proj = new_project(root / "proj", root / "cache").root
    shutil.copytree(digits_raw / "digits", proj / "data" / "digits")
    return Template(proj, dvc_remote(root / "cache"), classifier_cache)


def copy_project(template: Template, where: Path) -> Path:
    """A copy of the template at where/proj, as `init_project` would have made it there with
    XDG_CACHE_HOME=where/cache: its DVC remote is where/cache/ganpipe/dvc-remote (DVC's cache,
    .dvc/cache, travels with the copy). Its classifier cache is the session's."""
    proj = where / "proj"
    shutil.copytree(template.project, proj, symlinks=True)
    remote = dvc_remote(where / "cache")
    remote.mkdir(parents=True)
    local = proj / ".dvc" / "config.local"
    text = local.read_text()
    assert text.count(str(template.remote)) == 1, text
    local.write_text(text.replace(str(template.remote), str(remote)))
    cache = proj / ".ganpipe" / "cache"
    cache.mkdir(parents=True)
    (cache / "classifiers").symlink_to(template.classifiers, target_is_directory=True)
    return proj


@pytest.fixture
def project(tmp_path, project_template):
    """A fresh ganpipe `Project` (git + DVC + local remote, raw digits, its own MLflow store)."""
    return load_project(copy_project(project_template, tmp_path))


# ---------------------------------------------------------------------------------- one pipeline run

PIPELINE_CONFIG = REPO / "configs" / "dcgan-digits.yaml"
PIPELINE_TINY = [
    "train.steps=40",
    "train.log_every=10",
    "train.checkpoint_every=20",
    "train.sample_every=20",
    "eval.num_samples=200",
    "eval.classifier_steps=100",
    "model.params.g_width=8",
    "model.params.d_width=8",
]


def set_args(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


@dataclass(frozen=True)
class PipelineRun:
    """The session's pipeline run, and how it got there."""

    project: Any  # ganpipe.project.Project
    remote: Path  # its DVC remote
    killed_run_id: str  # the MLflow run that the killed `ganpipe pipeline run` trained
    summary: dict[str, Any]  # the flow run again in-process, which finished the stages
    cli_log: Path


def _finished_training_run(db: Path) -> str | None:
    """The run tagged ganpipe.train_status=FINISHED, by plain read-only SQL (an MlflowClient
    here could race the other process's schema set-up)."""
    if not db.exists():
        return None
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            row = con.execute("select run_uuid from tags where key = 'ganpipe.train_status' and value = 'FINISHED'").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    return row[0] if row else None


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory, project_template, prefect_server) -> PipelineRun:
    """One real pipeline run on a tiny config (DVC, Ray Train, Prefect, MLflow registry),
    shared by the tests that need a finished, registered run.

    `ganpipe pipeline run` (a CLI process with its own Ray instance) is killed (SIGKILL, its
    whole process group) as soon as its training run is tagged FINISHED, between training and
    evaluation; the same flow run again in this process must find the data unchanged and the
    training finished, and do the evaluation and registration. tests/e2e/test_pipeline.py
    checks both halves."""
    from flows.pipeline import pipeline_flow

    root = tmp_path_factory.mktemp("pipeline")
    proj = copy_project(project_template, root)
    log = root / "cli.log"
    cmd = [sys.executable, "-m", "ganpipe", "--project", str(proj), "pipeline", "run", str(PIPELINE_CONFIG), *set_args(PIPELINE_TINY)]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=root, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    killed = None
    try:
        deadline = time.monotonic() + 600
        while killed is None and proc.poll() is None and time.monotonic() < deadline:
            killed = _finished_training_run(proj / "mlflow.db")
            time.sleep(0.1)
    finally:
        _stop_group(proc, signal.SIGKILL)
    if killed is None:
        pytest.fail(f"`ganpipe pipeline run` did not finish training (exit {proc.returncode}):\n{log.read_text()[-3000:]}")
    summary = pipeline_flow(config_path=str(PIPELINE_CONFIG), overrides=PIPELINE_TINY, project=str(proj))
    return PipelineRun(load_project(proj), dvc_remote(root / "cache"), killed, summary, log)


@pytest.fixture
def pipeline_project(pipeline_run):
    """The shared pipeline run's `Project`."""
    return pipeline_run.project
