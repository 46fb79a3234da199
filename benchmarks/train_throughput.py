"""Orchestration overhead: images/s of the Ray Train loop (1 worker) against a plain PyTorch
loop with the same model, batch and data, per family, in one process on one machine.
Target: ratio >= 0.95 (issue bar).

    python benchmarks/train_throughput.py [--families dcgan,biggan] [--windows 8] [--window-s 3]
                                          [--threads N] [--attribute] [--separate] [--scaling]

The plain loop is what a user would write around the family's own update: build the recipe,
draw random batches from the in-memory split, call `train_step` in a `for` loop; nothing else
but the process's allocator settings (`ganpipe.train.host`), which ganpipe's loop applies
first and which the plain loop gets too, so that the ratio prices orchestration alone
(`benchmarks/allocator.py` prices the settings).
The Ray side is ganpipe's own `train_loop_per_worker` under a TorchTrainer, as `ganpipe train`
runs it.

The headline ratio comes from interleaved windows: one Ray Train run and the plain loop take
turns within the same minute or two (R P, P R, ...; `--window-s` seconds each). While the plain
loop runs, every process of the local Ray instance is stopped (SIGSTOP), so none of Ray's
processes can take CPU from it; while Ray runs, the plain loop waits. Rates of separate runs
minutes apart drift by 20-30% on a shared machine, which swamps a 5% bar; adjacent windows share
the drift, so the median of the per-pair ratios does not. Ray's rate in a window comes from the
worker's own progress log (time, step), skipping the first 0.3 s after it resumes.

`--separate` also runs each side as a whole run of its own (alternating pairs), which shows
what the windows leave out: the whole-run rate with Ray Train's start-up (controller, worker
group: ~20 s before the first step) and each side's share of the machine's CPU in steady state.
Both sides use the same torch thread count (the Ray worker gets them via
train.cpus_per_worker); `--threads 1` on a 2-core machine leaves Ray's processes a core of
their own. ganpipe's local Ray runs its workers at normal priority (Ray's default is nice 15),
so both sides compete for the CPU on equal terms.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from ganpipe.project import Project
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from _common import FAMILIES, bare_recipe, prepared, result_line, timed_steps

SECONDS_PER_RUN = 20.0  # each side trains this long (at --scale 1), so start-up costs are not what is measured


def probe_rate(cfg, data_dir: Path, seconds: float = 1.5) -> float:
    """The plain loop's steps/s over about `seconds`, after a warm-up (an 8-step probe
    underestimated fast families by half: their first steps are the slow ones)."""
    recipe, batches = bare_recipe(cfg, data_dir, torch.device("cpu"))
    secs, _ = timed_steps(recipe, batches, 1, 4, torch.device("cpu"))
    n = max(4, int(4 * seconds / max(secs, 1e-6)))
    secs, _ = timed_steps(recipe, batches, 5, n, torch.device("cpu"))
    return n / secs


def steps_for(cfg, data_dir: Path, seconds: float) -> int:
    """Steps that take about `seconds` in the plain loop."""
    steps = max(20, int(seconds * probe_rate(cfg, data_dir)))
    return steps - steps % 4  # log_every = steps / 4 exactly, so the Ray side's last log interval is the last quarter


def bare_recipe_loop(cfg, data_dir: Path) -> tuple[float, float]:
    """(whole-run, last-quarter) images/s of the family's own update in a plain `for` loop:
    no Ray, no reporting, no checkpoints."""
    cpu = torch.device("cpu")
    recipe, batches = bare_recipe(cfg, data_dir, cpu)
    steps, per = cfg.train.steps, cfg.train.batch_size * cfg.loss.n_critic
    head = 3 * (steps // 4)  # the Ray loop's last log interval starts here (log_every = steps // 4)
    secs_a, _ = timed_steps(recipe, batches, 1, head, cpu) if head else (0.0, None)
    secs_b, _ = timed_steps(recipe, batches, head + 1, steps - head, cpu)
    return steps * per / (secs_a + secs_b), (steps - head) * per / secs_b


def handwritten_dcgan(cfg, data_dir: Path) -> float:
    """What a user would write by hand: DCGAN, non-saturating loss, Adam, random batches."""
    from ganpipe.data.loading import load_tensors
    from ganpipe.models.dcgan import DCGANDiscriminator, DCGANGenerator

    torch.manual_seed(0)
    x = load_tensors(data_dir, "train")["image"]
    p = cfg.model.params
    G = DCGANGenerator(cfg.model.z_dim, x.shape[1], x.shape[-1], p["g_width"])
    D = DCGANDiscriminator(x.shape[1], x.shape[-1], p["d_width"], norm=p["d_norm"])
    og = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    od = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bs, steps = cfg.train.batch_size, cfg.train.steps
    t0 = time.perf_counter()
    for _ in range(steps):
        real = x[torch.randint(0, len(x), (bs,))]
        with torch.no_grad():
            fake = G(torch.randn(bs, cfg.model.z_dim))
        loss_d = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
        od.zero_grad(set_to_none=True)
        loss_d.backward()
        od.step()
        D.requires_grad_(False)
        loss_g = F.softplus(-D(G(torch.randn(bs, cfg.model.z_dim)))).mean()
        og.zero_grad(set_to_none=True)
        loss_g.backward()
        og.step()
        D.requires_grad_(True)
    return steps * bs / (time.perf_counter() - t0)


class CpuShare:
    """Which processes the machine's CPU went to while a block ran, sampled every 0.5 s.

    `share(match)`: the fraction of all cores' time that the processes `match(pid, cmdline)`
    picks got in steady state. Unlike images/s, this does not drift with the host's load: it
    shows how much Ray's own processes took from the training process directly."""

    def __init__(self) -> None:
        import threading

        self.samples: list[tuple[float, dict[int, tuple[float, str]]]] = []
        self.own: list[float] = []  # the sampler thread's own CPU time at each sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "CpuShare":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            snap = {}
            for p in psutil.process_iter(["cmdline", "cpu_times"]):
                try:
                    ct = p.info["cpu_times"]
                    snap[p.pid] = (ct.user + ct.system, " ".join(p.info["cmdline"] or []))
                except (psutil.Error, TypeError):
                    continue
            self.samples.append((time.perf_counter(), snap))
            self.own.append(time.thread_time())
            self._stop.wait(0.5)

    def share(self, match: Callable[[int, str], bool]) -> float | None:
        """Steady state: the second half of the span in which the matching processes kept more
        than half of the training's threads busy (so set-up before and teardown after training are left out)."""
        cores = os.cpu_count() or 1

        me = os.getpid()

        def used(i: int, j: int) -> float:
            a, b = self.samples[i][1], self.samples[j][1]
            total = sum(cpu - a[pid][0] for pid, (cpu, c) in b.items() if pid in a and match(pid, c))
            if me in a and match(me, a[me][1]):
                total -= self.own[j] - self.own[i]  # this sampler is not the training's CPU
            return total

        busy_cores = 0.5 * torch.get_num_threads()  # the training's threads (both sides use the same count)
        busy = [i for i in range(1, len(self.samples)) if used(i - 1, i) > busy_cores * (self.samples[i][0] - self.samples[i - 1][0])]
        if len(busy) < 4:
            return None
        i, j = busy[len(busy) // 2] - 1, busy[-1]
        return used(i, j) / ((self.samples[j][0] - self.samples[i][0]) * cores)


def ray_loop(cfg, data_dir: Path, project: Path) -> tuple[float, float, float, float | None]:
    """(whole-run images/s inside the worker, last-log-interval images/s, wall time of the whole
    fit including Ray Train start-up, the worker's share of the machine in steady state)."""
    from ganpipe.train.driver import fit

    t0 = time.perf_counter()
    with CpuShare() as cpu:
        res = fit(cfg, data_dir, Project.load(project, env={}))
    return float(res.metrics["images_per_s"]), float(res.metrics["images_per_s_window"]), time.perf_counter() - t0, cpu.share(lambda pid, cmd: "RayTrainWorker" in cmd)


def plain_loop(cfg, data_dir: Path) -> tuple[float, float, float | None]:
    """bare_recipe_loop, and this process's share of the machine in steady state."""
    me = os.getpid()
    with CpuShare() as cpu:
        whole, steady = bare_recipe_loop(cfg, data_dir)
    return whole, steady, cpu.share(lambda pid, cmd: pid == me)


class Frozen:
    """SIGSTOP every process of the local Ray instance this process started (its descendants:
    GCS, raylet, agents, Train's actors and worker) for the block, SIGCONT after, whatever happens.

    With Ray frozen, none of its processes can wake up, so a plain loop timed inside the block runs
    on a machine with no trace of Ray on it; Ray's own timers just fire late when it resumes.
    `keep(cmdline)`: processes left running (the Train worker, to time it with the rest of Ray
    stopped)."""

    def __init__(self, keep: Callable[[str], bool] | None = None) -> None:
        self.keep = keep

    def __enter__(self) -> "Frozen":
        import signal

        import psutil

        self.stopped = []
        for p in psutil.Process().children(recursive=True):  # parents first: a stopped raylet starts no new worker
            try:
                if self.keep is not None and self.keep(" ".join(p.cmdline())):
                    continue
                p.send_signal(signal.SIGSTOP)
                self.stopped.append(p)
            except psutil.Error:
                continue
        return self

    def __exit__(self, *exc) -> None:
        import signal

        import psutil

        for p in self.stopped:
            try:
                p.send_signal(signal.SIGCONT)
            except psutil.Error:
                continue


def is_train_worker(cmdline: str) -> bool:
    return "RayTrainWorker" in cmdline


class ProgressLog:
    """`fit(on_step=...)` for the interleaved measurement: rank 0 appends "time step" to a file
    every `every` steps (about ten times a second); the driver reads it to time the windows in
    which Ray ran. Pickled to the worker, so the file opens there, on first use."""

    def __init__(self, path: Path, every: int) -> None:
        self.path, self.every, self._out = str(path), every, None

    def __call__(self, step: int) -> None:
        if step % self.every:
            return
        if self._out is None:
            self._out = open(self.path, "a", buffering=1)
        self._out.write(f"{time.time()} {step}\n")

    def records(self) -> list[tuple[float, int]]:
        out = []
        for line in Path(self.path).read_text().splitlines():
            parts = line.split()
            if len(parts) == 2:
                out.append((float(parts[0]), int(parts[1])))
        return out


def interleaved(cfg, data_dir: Path, project: Path, windows: int, window_s: float, rate: float, attribute: bool = False) -> dict[str, list[float]]:
    """Images/s of the Ray Train loop and of the plain loop in alternating windows of `window_s`
    seconds within one span of time (R P, P R, R P, ...): while one side trains the other does not
    run at all (the plain loop waits; Ray is frozen), so the host's drift, which moves rates by
    20-30% between runs minutes apart, is the same for both sides of each pair.

    `attribute`: a third window per round, the same Ray Train worker with every other process of
    Ray stopped (GCS, raylet, agents, monitors, Train's controller and other actors; the driver
    waits). Its rate against the plain loop is what the worker process itself costs; the rest of
    the gap is Ray's other processes. Rounds rotate the order of the windows.

    `rate`: the plain loop's steps/s (from the probe), to size the Ray run so that it lasts
    through the windows. Returns rates per window kind ("ray", "plain", "alone"), in round order."""
    import threading

    from ganpipe.train import driver

    per = cfg.train.batch_size * cfg.loss.n_critic
    every = max(1, int(rate / 10))
    progress = ProgressLog(project / f"progress-{cfg.train.run_name}.txt", every)
    Path(progress.path).write_text("")
    warm_s = 4.0
    kinds = ["ray", "plain", "alone"] if attribute else ["ray", "plain"]
    ray_kinds = len(kinds) - 1
    steps = int(rate * (warm_s + windows * ray_kinds * (window_s + 0.3)) * 1.6) + 20  # Ray also trains while the driver reads its progress
    steps -= steps % 4
    cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"steps": steps, "log_every": steps, "checkpoint_every": steps, "sample_every": steps})})
    recipe, batches = bare_recipe(cfg, data_dir, torch.device("cpu"))
    done: list = []

    def run_fit() -> None:
        try:
            done.append(driver.fit(cfg, data_dir, Project.load(project, env={}), on_step=progress))
        except BaseException as e:  # re-raised below
            done.append(e)

    fit_thread = threading.Thread(target=run_fit, daemon=True)
    fit_thread.start()

    deadline = time.time() + 300
    while not (recs := progress.records()) or recs[-1][0] - recs[0][0] < warm_s:  # Ray Train started and warmed up
        if done or time.time() > deadline:
            raise RuntimeError(f"the Ray Train run did not start: {done[0] if done else 'no progress in 300 s'}")
        time.sleep(0.2)
    with Frozen():  # the plain loop's own warm-up
        timed_steps(recipe, batches, 1, max(2, int(rate)), torch.device("cpu"))

    step = 1
    settle = 0.3  # after SIGCONT, Ray's processes catch up on timers that fired while frozen

    def plain_window() -> float:
        nonlocal step
        with Frozen():
            t0, n = time.perf_counter(), 0
            while time.perf_counter() - t0 < window_s:
                timed_steps(recipe, batches, step, every, torch.device("cpu"))  # one host sync per chunk
                step += every
                n += every
            return n * per / (time.perf_counter() - t0)

    def ray_window(alone: bool = False) -> float | None:
        with Frozen(keep=is_train_worker) if alone else contextlib.nullcontext():
            t0 = time.time()
            time.sleep(window_s + settle)
            t1 = time.time()
        inside = [r for r in progress.records() if t0 + settle <= r[0] <= t1]
        if len(inside) < 2:
            return None  # the run ended (or stalled) in this window
        (ta, sa), (tb, sb) = inside[0], inside[-1]
        return (sb - sa) * per / (tb - ta)

    measure = {"ray": ray_window, "plain": plain_window, "alone": lambda: ray_window(alone=True)}
    rates: dict[str, list[float]] = {k: [] for k in kinds}
    for i in range(windows):
        order = kinds[i % len(kinds):] + kinds[: i % len(kinds)]
        got = {k: measure[k]() for k in (order if i % 2 == 0 else order[::-1])}
        if any(v is None for v in got.values()):
            break
        for k, v in got.items():
            rates[k].append(v)
    fit_thread.join()
    if isinstance(done[0], BaseException):
        raise done[0]
    return rates


def scaling(work: Path, threads: int, scale: float) -> None:
    """DCGAN images/s with 1 worker x 1 CPU, 1 worker x all CPUs, and N workers x 1 CPU.

    Efficiency = N-worker images/s / (N x the 1-worker-1-CPU images/s): what data parallelism
    over this machine's cores returns, gradient all-reduce (gloo) and contention included."""
    steps = max(10, int(400 * scale))
    results = []
    for workers, cpus in ((1, 1), (1, threads), (threads, 1)):
        cfg, data = prepared(
            FAMILIES["dcgan"],
            work,
            [f"train.steps={steps}", f"train.num_workers={workers}", f"train.cpus_per_worker={cpus}", f"train.log_every={steps // 4}",
             f"train.checkpoint_every={steps}", f"train.sample_every={steps}", f"train.run_name=scale-{workers}x{cpus}"],
        )
        ips, _, wall, _ = ray_loop(cfg, data, work)
        results.append((workers, cpus, ips, wall))
        print(f"scaling {workers} worker(s) x {cpus} CPU: {ips:.0f} img/s", flush=True)
    base = results[0][2]
    t = Table(title=f"Data-parallel scaling, dcgan-digits, batch {cfg.train.batch_size} per worker, {steps} steps, {time.strftime('%Y-%m-%d')}")
    for c in ("workers", "CPUs each", "img/s (all workers)", "speed-up vs 1x1", "efficiency", "fit wall s"):
        t.add_column(c, justify="right")
    for w, c, ips, wall in results:
        t.add_row(str(w), str(c), f"{ips:.0f}", f"{ips / base:.2f}", f"{ips / base / (w * c):.2f}", f"{wall:.1f}")
    Console().print(t)
    eff = results[-1][2] / base / threads
    result_line("scaling", f"{threads} workers x 1 CPU: {results[-1][2] / base:.2f}x of 1 worker (efficiency {eff:.2f})", "reported (no bar on CPU)", None, efficiency=eff)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--windows", type=int, default=8, help="interleaved Ray/plain window pairs per family (the headline ratio)")
    ap.add_argument("--window-s", type=float, default=3.0, help="seconds per window")
    ap.add_argument("--attribute", action="store_true", help="a third window per round: the Train worker with the rest of Ray stopped (where the gap comes from)")
    ap.add_argument("--separate", action="store_true", help="also run each side as a whole separate run (start-up included, CPU shares)")
    ap.add_argument("--scale", type=float, default=1.0, help="--separate: multiply every family's step count")
    ap.add_argument("--pairs", type=int, default=3, help="--separate: plain/Ray run pairs per family (alternating order); ratios are medians over pairs")
    ap.add_argument("--scaling", action="store_true", help="also measure 1 vs N workers")
    ap.add_argument("--threads", type=int, default=0, help="torch threads on both sides (Ray: train.cpus_per_worker); default all cores."
                    " Fewer than the cores leaves Ray's own processes a core of their own, as on a machine with more cores than the training uses")
    args = ap.parse_args()
    threads = args.threads or os.cpu_count() or 2
    torch.set_num_threads(threads)
    from ganpipe.train.local_ray import ensure_ray
    from ganpipe.train.host import tune_allocator

    tune_allocator()  # the plain loop gets the process settings that ganpipe's loop applies

    ensure_ray(num_cpus=max(threads, os.cpu_count() or 2), log_to_driver=False)
    rows, separate_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.scaling:
            scaling(work, threads, args.scale)
        for fam in [f for f in args.families.split(",") if f]:
            base = ["train.num_workers=1", f"train.cpus_per_worker={threads}", "eval.every=0"]
            cfg, data = prepared(FAMILIES[fam], work, [*base, f"train.run_name=bench-{fam}-interleaved"])
            rate = probe_rate(cfg, data)
            rates = interleaved(cfg, data, work, args.windows, args.window_s, rate, attribute=args.attribute)
            ratios = [r / p for r, p in zip(rates["ray"], rates["plain"])]
            q = statistics.quantiles(ratios, n=4) if len(ratios) >= 2 else [ratios[0]] * 3
            alone = [a / p for a, p in zip(rates.get("alone", []), rates["plain"])]
            rows.append((fam, cfg.train.batch_size, statistics.median(rates["plain"]), statistics.median(rates["ray"]), statistics.median(ratios), q[0], q[2], len(ratios),
                         statistics.median(alone) if alone else None))
            print(f"{fam}: windows " + " ".join(f"{k} {[round(r) for r in v]}" for k, v in rates.items()) + f" ratios {[round(r, 2) for r in ratios]}", flush=True)
            if args.separate:
                separate_rows.append(separate(fam, cfg, data, work, threads, args.scale, args.pairs))
    t = Table(title=f"Training throughput, Ray Train (1 worker) vs plain loop, interleaved {args.window_s:g}-s windows, {threads} CPU threads, {time.strftime('%Y-%m-%d')}")
    cols = ["family", "batch", "plain img/s", "Ray Train img/s", "ratio (median of pairs)", "pair ratios, quartiles", "pairs"]
    if args.attribute:
        cols.append("Train worker alone / plain (rest of Ray stopped)")
    for c in cols:
        t.add_column(c, justify="right")
    for fam, bs, plain, rip, ratio, q1, q3, n, alone in rows:
        t.add_row(fam, str(bs), f"{plain:.0f}", f"{rip:.0f}", f"{ratio:.3f}", f"{q1:.2f}-{q3:.2f}", str(n), *([f"{alone:.3f}"] if args.attribute else []))
    Console(width=180).print(t)
    if separate_rows:
        separate_table(separate_rows, threads, args.pairs)
    ratios = {r[0]: r[4] for r in rows}
    result_line(
        "train_throughput",
        "Ray Train / plain loop, interleaved windows (median of pairs): " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()),
        ">= 0.95 per family",
        min(ratios.values()) >= 0.95,
        ratios=ratios,
        quartiles={r[0]: [r[5], r[6]] for r in rows},
        **({"worker_alone": {r[0]: r[8] for r in rows}} if args.attribute else {}),
        **({"separate_runs": {r[0]: {"steady": r[5], "whole": r[6], "cpu_share": r[10]} for r in separate_rows}} if separate_rows else {}),
    )


def separate(fam: str, cfg, data: Path, work: Path, threads: int, scale: float, pairs_n: int) -> tuple:
    """Each side as a whole run of its own (alternating A B, B A, ...): the whole-run rate (start-up
    included) and each side's share of the CPU, which the interleaved windows do not show."""
    steps = steps_for(cfg, data, SECONDS_PER_RUN * scale)
    cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"steps": steps, "log_every": max(steps // 4, 1), "checkpoint_every": steps, "sample_every": steps})})
    pairs = []  # (plain whole, plain steady, ray whole, ray steady, fit wall, plain share, ray share)
    for rep in range(pairs_n):
        ray_cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"run_name": f"bench-{fam}-{rep}"})})
        if rep % 2 == 0:
            plain = plain_loop(cfg, data)
            ray = ray_loop(ray_cfg, data, work)
        else:
            ray = ray_loop(ray_cfg, data, work)
            plain = plain_loop(cfg, data)
        pairs.append((plain[0], plain[1], ray[0], ray[1], ray[2], plain[2], ray[3]))
        print(f"{fam} separate pair {rep}: plain {plain[0]:.0f} (steady {plain[1]:.0f}) img/s, Ray Train {ray[0]:.0f} (steady {ray[1]:.0f}) img/s;"
              f" CPU share plain {_pct(plain[2])}, Ray worker {_pct(ray[3])}", flush=True)
    hand = handwritten_dcgan(cfg, data) if fam == "dcgan" else None
    steady = statistics.median(p[3] / p[1] for p in pairs)
    whole = statistics.median(p[2] / p[0] for p in pairs)
    shares = [(p[5], p[6]) for p in pairs if p[5] and p[6]]
    share = (statistics.median(a for a, _ in shares), statistics.median(b for _, b in shares)) if shares else (None, None)
    return (fam, steps, cfg.train.batch_size, statistics.median(p[1] for p in pairs), statistics.median(p[3] for p in pairs), steady, whole,
            min(p[4] for p in pairs), hand, statistics.median(p[0] for p in pairs), share, [round(p[3] / p[1], 2) for p in pairs])


def separate_table(rows: list[tuple], threads: int, pairs_n: int) -> None:
    t = Table(title=f"Separate runs: Ray Train (1 worker) vs plain loop, {threads} CPU threads, {pairs_n} pairs, {time.strftime('%Y-%m-%d')}")
    for c in ("family", "steps", "batch", "plain img/s (steady)", "Ray Train img/s (steady)", "ratio, steady", "per pair", "ratio, whole run",
              "CPU share plain / Ray worker", "fit wall s (incl. start-up)"):
        t.add_column(c, justify="right")
    for fam, steps, bs, plain, rip, steady, whole, wall, hand, _, share, per_pair in rows:
        t.add_row(fam, str(steps), str(bs), f"{plain:.0f}", f"{rip:.0f}", f"{steady:.3f}", " ".join(f"{r:.2f}" for r in per_pair), f"{whole:.3f}",
                  f"{_pct(share[0])} / {_pct(share[1])}", f"{wall:.1f}")
    Console(width=180).print(t)
    for fam, *_, hand, plain_whole, _share, _pp in rows:
        if hand:
            Console().print(f"dcgan hand-written loop (no recipe): {hand:.0f} img/s; recipe in a plain loop: {plain_whole:.0f} img/s (ratio {plain_whole / hand:.3f})")


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"

if __name__ == "__main__":
    main()
