"""The allocator settings of `ganpipe.train.host.tune_allocator`, on and off: page faults per
step and images/s of each family's update, run where Ray Train runs it (a thread other than
the main one).

    python benchmarks/allocator.py [--families dcgan,pix2pix] [--windows 16] [--window-s 1.5] [--threads N]

Two long-running child processes train the same recipe from the same seed, one with glibc's
defaults (GANPIPE_MALLOC_TUNING=0) and one with ganpipe's settings. They take turns: while
one runs for a window the other is stopped (SIGSTOP), in alternating order, so the host's
drift is shared by each pair. Images/s per window come from each child's progress log; page
faults are counted over the same windows: the whole child's (minor faults, /proc/PID/stat) and
its training thread's alone (RUSAGE_THREAD, logged by the thread after every step), which is
what the settings are about (torch's intra-op threads fault on their own account). The
headline is the median of the per-pair ratios, with quartiles. Fault counts depend on the
host's kernel and C library: they are measured here, not asserted by the test suite.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import FAMILIES, REPO, bare_recipe, prepared, result_line, timed_steps

VARIANTS = {"glibc defaults": "0", "ganpipe settings": "1"}


def child(config: str, work: Path, progress: Path, threads: int) -> None:
    """Train for ever in a non-main thread, appending "time step thread_faults" to `progress`
    after every step (the thread's minor page faults so far)."""
    import torch

    from ganpipe.train.host import tune_allocator

    torch.set_num_threads(threads)
    cfg, data = prepared(config, work, ["eval.every=0"])
    cpu = torch.device("cpu")

    def loop() -> None:
        tune_allocator()  # as the training loop does first; a no-op with GANPIPE_MALLOC_TUNING=0
        recipe, batches = bare_recipe(cfg, data, cpu)
        with open(progress, "a", buffering=1) as out:
            step = 1
            while True:
                timed_steps(recipe, batches, step, 1, cpu)
                out.write(f"{time.time()} {step} {resource.getrusage(resource.RUSAGE_THREAD).ru_minflt}\n")
                step += 1

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    t.join()


def records(path: Path) -> list[tuple[float, int, int]]:
    """(time, step, training thread's minor faults so far) per complete line."""
    out = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:
            out.append((float(parts[0]), int(parts[1]), int(parts[2])))
    return out


def minor_faults(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[7])  # field 10: minflt


def compare(fam: str, work: Path, windows: int, window_s: float, threads: int) -> dict:
    """Interleaved windows of the two variants; per-variant rates, faults per step and ratios."""
    config = FAMILIES[fam]
    prepared(config, work, ["eval.every=0"])  # prepare once, before the children race for it
    procs = {}
    for name, flag in VARIANTS.items():
        log = work / f"progress-{fam}-{flag}.txt"
        log.write_text("")
        env = dict(os.environ, GANPIPE_MALLOC_TUNING=flag)
        cmd = [sys.executable, __file__, "--child", config, str(work), str(log), str(threads)]
        procs[name] = (subprocess.Popen(cmd, env=env, cwd=REPO, stderr=subprocess.DEVNULL), log)
    try:
        deadline = time.time() + 300
        while not all(len(records(log)) >= 10 for _, log in procs.values()):  # built and warmed up
            if time.time() > deadline or any(p.poll() is not None for p, _ in procs.values()):
                raise RuntimeError(f"{fam}: a child did not start training")
            time.sleep(0.3)
        for p, _ in procs.values():
            p.send_signal(signal.SIGSTOP)
        rates: dict[str, list[float]] = {n: [] for n in procs}
        faults: dict[str, list[float]] = {n: [] for n in procs}
        thread_faults: dict[str, list[float]] = {n: [] for n in procs}
        names = list(procs)
        for w in range(windows):
            for name in names if w % 2 == 0 else names[::-1]:
                p, log = procs[name]
                p.send_signal(signal.SIGCONT)
                t0 = time.time()
                time.sleep(0.3)  # skip the resume
                f0 = minor_faults(p.pid)
                time.sleep(window_s)
                f1 = minor_faults(p.pid)
                p.send_signal(signal.SIGSTOP)
                inside = [r for r in records(log) if t0 + 0.3 <= r[0] <= time.time()]
                if len(inside) < 2:
                    raise RuntimeError(f"{fam}: fewer than 2 steps in a {window_s}-s window; raise --window-s")
                (ta, sa, ra), (tb, sb, rb) = inside[0], inside[-1]
                rates[name].append((sb - sa) / (tb - ta))
                faults[name].append((f1 - f0) / max(sb - sa, 1))
                thread_faults[name].append((rb - ra) / max(sb - sa, 1))
    finally:
        for p, _ in procs.values():
            p.send_signal(signal.SIGCONT)
            p.kill()
            p.wait()
    base, tuned = names
    ratios = [b / a for a, b in zip(rates[base], rates[tuned])]
    q = statistics.quantiles(ratios, n=4)
    return {
        "family": fam,
        "faults_default": statistics.median(faults[base]),
        "faults_tuned": statistics.median(faults[tuned]),
        "thread_faults_default": statistics.median(thread_faults[base]),
        "thread_faults_tuned": statistics.median(thread_faults[tuned]),
        "steps_default": statistics.median(rates[base]),
        "steps_tuned": statistics.median(rates[tuned]),
        "ratio": statistics.median(ratios),
        "q1": q[0],
        "q3": q[2],
        "pairs": len(ratios),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", default="dcgan,cgan,biggan,toy,pix2pix,cyclegan")
    ap.add_argument("--windows", type=int, default=16, help="window pairs per family")
    ap.add_argument("--window-s", type=float, default=1.5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads per child (default: all cores)")
    ap.add_argument("--child", nargs=4, metavar=("CONFIG", "WORK", "PROGRESS", "THREADS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        config, work, progress, threads = args.child
        child(config, Path(work), Path(progress), int(threads))
        return
    from rich.console import Console
    from rich.table import Table

    threads = args.threads or os.cpu_count() or 2
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for fam in [f for f in args.families.split(",") if f]:
            row = compare(fam, Path(tmp), args.windows, args.window_s, threads)
            rows.append(row)
            print(
                f"{fam}: faults/step {row['faults_default']:.0f} -> {row['faults_tuned']:.0f} "
                f"(training thread {row['thread_faults_default']:.0f} -> {row['thread_faults_tuned']:.0f}), images/s ratio {row['ratio']:.3f}",
                flush=True,
            )
    t = Table(title=f"glibc allocator settings, training in a non-main thread, {threads} threads, {args.windows} window pairs of {args.window_s:g} s, {time.strftime('%Y-%m-%d')}")
    columns = (
        "family", "page faults/step, defaults", "page faults/step, ganpipe", "training thread's, defaults", "training thread's, ganpipe",
        "steps/s, defaults", "steps/s, ganpipe", "images/s ratio (median of pairs)", "quartiles",
    )  # fmt: skip
    for c in columns:
        t.add_column(c, justify="right")
    for r in rows:
        t.add_row(
            r["family"], f"{r['faults_default']:.0f}", f"{r['faults_tuned']:.0f}", f"{r['thread_faults_default']:.0f}", f"{r['thread_faults_tuned']:.0f}",
            f"{r['steps_default']:.1f}", f"{r['steps_tuned']:.1f}", f"{r['ratio']:.3f}", f"{r['q1']:.2f}-{r['q3']:.2f}",
        )  # fmt: skip
    Console(width=180).print(t)
    gmean = statistics.geometric_mean(r["ratio"] for r in rows)
    result_line(
        "allocator",
        "images/s with ganpipe's allocator settings / glibc defaults: " + ", ".join(f"{r['family']} {r['ratio']:.2f}" for r in rows)
        + f" (geometric mean {gmean:.3f}); page faults per step with the settings <= {max(r['faults_tuned'] for r in rows):.1f}",
        "page faults per step <= 1 with the settings, images/s not lower across the families (geometric mean >= 1.0)",
        gmean >= 1.0 and all(r["faults_tuned"] <= 1 for r in rows),
        value=gmean,
        ratios={r["family"]: r["ratio"] for r in rows},
        faults={r["family"]: [r["faults_default"], r["faults_tuned"]] for r in rows},
        thread_faults={r["family"]: [r["thread_faults_default"], r["thread_faults_tuned"]] for r in rows},
    )

if __name__ == "__main__":
    main()
