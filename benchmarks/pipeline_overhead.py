"""What the pipeline costs on top of the work it orchestrates: the wall time of a real
`ganpipe pipeline run` (tiny config) minus the time spent inside the training loop and in
computing the evaluation metrics; then the same command again with unchanged inputs, every
stage cached. Target: the cached run takes < 15% of the first run's wall time.

    python benchmarks/pipeline_overhead.py [--config configs/dcgan-digits.yaml] [--steps 40]
        [--modes temporary,server] [--keep]

Modes: `local` is the default set-up (no PREFECT_API_URL: ganpipe starts one Prefect server in
the background on first use and every later run reuses it); `temporary` is Prefect's own
default (GANPIPE_PREFECT_SERVER=temporary: a temporary server inside every run); `server`
points PREFECT_API_URL at a `prefect server start` the benchmark runs (how scheduled runs and
teams use it). Each mode gets a fresh project (git + DVC, SQLite MLflow store, local DVC
remote, its own Prefect home) under a temporary folder, and runs the CLI in a subprocess on a
private local Ray instance (RAY_ADDRESS=local, so it never joins another Ray cluster on the
machine). A warm-up comes first (timed, shown for reference): a bare flow run (`temporary`,
`server`) or `ganpipe prefect start` (`local`); it creates Prefect's database, so neither run
pays for the migrations.
The training loop's time is the worker's `time.train_s` metric and the metric computation is
`time.evaluate_compute_s`, both read back from the MLflow run; stage times come from the run
summary (`ganpipe pipeline run --summary-json`). The headline (the `RESULT {json}` last line,
for benchmarks/run_all.py) is the `local` mode.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
TARGET = 0.15


def tiny(steps: int) -> list[str]:
    return [
        f"train.steps={steps}",
        f"train.log_every={max(steps // 4, 1)}",
        f"train.checkpoint_every={max(steps // 2, 1)}",
        f"train.sample_every={max(steps // 2, 1)}",
        "eval.num_samples=200",
        "eval.classifier_steps=150",
        "model.params.g_width=8",
        "model.params.d_width=8",
    ]


def env_for(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    for k in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL"):
        env.pop(k, None)
    env.update(
        {
            "RAY_ADDRESS": "local",
            "XDG_CACHE_HOME": str(tmp / "cache"),
            "PREFECT_HOME": str(tmp / "prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",  # a fresh database on a busy machine
            "GANPIPE_PROJECT": str(tmp / "proj"),
            "TQDM_DISABLE": "1",
            "RAY_DEDUP_LOGS": "1",
        }
    )
    return env


def timed_call(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> float:
    t0 = time.perf_counter()
    with open(log, "w") as f:
        rc = subprocess.call(cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT)
    secs = time.perf_counter() - t0
    if rc:
        sys.stdout.write(log.read_text()[-6000:])
        raise SystemExit(f"{' '.join(cmd[:5])} ... failed with exit {rc} (log above)")
    return secs


def run_metrics(proj: Path, run_id: str) -> dict[str, float]:
    from mlflow.tracking import MlflowClient

    return dict(MlflowClient(f"sqlite:///{proj / 'mlflow.db'}").get_run(run_id).data.metrics)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_prefect_server(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    """`prefect server start` on a free port; returns (process, API URL) once /api/health answers."""
    import urllib.request

    port = free_port()
    exe = str(Path(sys.executable).parent / "prefect")
    f = open(log, "w")
    proc = subprocess.Popen([exe, "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"], env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"prefect server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit("prefect server did not answer within 300 s")


def measure(root: Path, config: str, steps: int, mode: str) -> dict[str, Any]:
    """Two `ganpipe pipeline run`s of the same tiny config in a fresh project under `root`."""
    root.mkdir(parents=True)
    env = env_for(root)
    env["GANPIPE_PREFECT_SERVER"] = "temporary" if mode == "temporary" else "local"
    proj = root / "proj"
    py = sys.executable
    subprocess.run([py, "-m", "ganpipe", "init", str(proj)], cwd=root, env=env, check=True, capture_output=True)
    srv = None
    if mode == "server":
        srv, url = start_prefect_server(env, root / "prefect-server.log")
        env["PREFECT_API_URL"] = url
    try:
        if mode == "local":
            # Once per machine: ganpipe's background server (later runs find it running).
            bare = timed_call([py, "-m", "ganpipe", "prefect", "start"], root, env, root / "warmup.log")
        else:
            # A bare flow first: creates Prefect's database (so neither run pays the migrations) and
            # shows the fixed cost of a flow run in a fresh process in this mode.
            bare = timed_call([py, "-c", "from prefect import flow\nflow(lambda: 1, name='warm-up')()"], root, env, root / "warmup.log")
        walls, summaries = [], []
        for i in (1, 2):
            out = root / f"summary-{i}.json"
            cmd = [py, "-m", "ganpipe", "pipeline", "run", config, "--summary-json", str(out)]
            for s in tiny(steps):
                cmd += ["--set", s]
            walls.append(timed_call(cmd, proj, env, root / f"run-{i}.log"))
            summaries.append(json.loads(out.read_text()))
    finally:
        if srv is not None:
            srv.terminate()
            try:
                srv.wait(timeout=30)
            except subprocess.TimeoutExpired:
                srv.kill()
        if mode == "local":
            subprocess.run([py, "-m", "ganpipe", "prefect", "stop"], cwd=root, env=env, capture_output=True)
    s1, s2 = summaries
    assert s2["run_id"] == s1["run_id"] and s2["reused"] == {"train": True, "evaluate": True}, "second run was not fully cached"
    assert not s2["data"]["reran"], "DVC re-ran the prepare stage on the second run"
    m = run_metrics(proj, s1["run_id"])
    return {
        "bare": bare,
        "walls": walls,
        "summaries": summaries,
        "loop_s": float(m.get("time.train_s", s1["timing"]["train_loop_s"])),
        "compute_s": float(m.get("time.evaluate_compute_s", s1["timing"]["evaluate_compute_s"])),
    }


def stage_rows(s: dict[str, Any], wall: float) -> list[tuple[str, float]]:
    tm = s["timing"]
    stages = tm["prepare_s"] + tm["train_s"] + tm["evaluate_s"] + tm["register_s"]
    return [
        ("prepare stage (DVC add, repro, push)", tm["prepare_s"]),
        ("train stage outside the loop (MLflow, Ray start, TorchTrainer, checkpoints)", tm["train_s"] - tm["train_loop_s"]),
        ("evaluate stage outside the metrics (samples, cards, model logging)", tm["evaluate_s"] - tm["evaluate_compute_s"]),
        ("register stage (registry, gate, cards)", tm["register_s"]),
        ("process start, imports, Prefect flow and server around the stages", wall - stages),
    ]


MODES = {
    "local": "no PREFECT_API_URL: ganpipe's background local server, reused by every run (the default, `make demo`)",
    "temporary": "GANPIPE_PREFECT_SERVER=temporary: Prefect's temporary server inside every run",
    "server": "PREFECT_API_URL set to a running `prefect server start` (scheduled runs, teams)",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/dcgan-digits.yaml")
    ap.add_argument("--steps", type=int, default=40, help="training steps of the tiny config")
    ap.add_argument("--modes", default="local,temporary,server", help="comma-separated: local (the default set-up), temporary, server (see above)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary projects and logs")
    args = ap.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise SystemExit(f"unknown mode(s) {bad}; choose from {', '.join(MODES)}")
    config = str((REPO / args.config).resolve())
    tmp = Path(tempfile.mkdtemp(prefix="ganpipe-overhead-"))
    results = {m: measure(tmp / m, config, args.steps, m) for m in modes}

    t = Table(title=f"Pipeline overhead: `ganpipe pipeline run {args.config}` ({args.steps} steps, tiny nets), {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}")
    t.add_column("part", justify="left")
    t.add_column("seconds", justify="right")
    t.add_column("% of first run", justify="right")
    figures = {}
    for mode, r in results.items():
        w1, w2 = r["walls"]
        s1, s2 = r["summaries"]
        overhead = w1 - r["loop_s"] - r["compute_s"]
        ratio = w2 / w1
        figures[mode] = (w1, overhead, w2, ratio)
        t.add_section()
        t.add_row(f"[bold]{mode}[/]: {MODES[mode]}", "", "")
        warm = "`ganpipe prefect start` (once per machine, for reference)" if mode == "local" else "bare Prefect flow in a fresh process (fixed cost, for reference)"
        t.add_row(f"  {warm}", f"{r['bare']:.1f}", f"{100 * r['bare'] / w1:.0f}%")
        t.add_row("  [bold]first run, wall[/]", f"{w1:.1f}", "100%")
        t.add_row("    inside the training loop (MLflow metric time.train_s)", f"{r['loop_s']:.1f}", f"{100 * r['loop_s'] / w1:.0f}%")
        t.add_row("    computing the evaluation metrics (time.evaluate_compute_s)", f"{r['compute_s']:.1f}", f"{100 * r['compute_s'] / w1:.0f}%")
        t.add_row("    [bold]overhead = wall - loop - metrics[/]", f"{overhead:.1f}", f"{100 * overhead / w1:.0f}%")
        for name, v in stage_rows(s1, w1):
            t.add_row("      " + name, f"{v:.1f}", f"{100 * v / w1:.0f}%")
        style = "green" if ratio < TARGET else "red"
        t.add_row("  [bold]second run, unchanged inputs (all stages cached), wall[/]", f"{w2:.1f}", f"[{style}]{100 * ratio:.0f}%[/]")
        for name, v in stage_rows(s2, w2):
            t.add_row("      " + name, f"{v:.1f}", f"{100 * v / w1:.0f}%")
    console = Console(width=None if sys.stdout.isatty() else 150)
    console.print(t)
    for mode, (w1, overhead, w2, ratio) in figures.items():
        console.print(f"{mode}: cached re-run / first run = {ratio:.2f} (target < {TARGET:.2f}): {'met' if ratio < TARGET else 'NOT met'}")
    if args.keep:
        console.print(f"projects and logs kept in {tmp}")
    else:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    head = "local" if "local" in figures else modes[0]
    w1, overhead, w2, ratio = figures[head]
    extra = "; ".join(f"{m}: {100 * f[3]:.0f}%" for m, f in figures.items() if m != head)
    print(
        "RESULT "
        + json.dumps(
            {
                "benchmark": "pipeline_overhead",
                "figure": f"{head} Prefect server: first run {w1:.0f} s (overhead {overhead:.0f} s = {100 * overhead / w1:.0f}%), "
                f"cached re-run {w2:.0f} s = {100 * ratio:.0f}% of it" + (f" (other Prefect set-ups: {extra})" if extra else ""),
                "value": round(ratio, 3),
                "target": f"cached re-run < {100 * TARGET:.0f}% of the first",
                "met": ratio < TARGET,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
