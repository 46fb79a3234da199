"""What the driver's progress display costs training: images/s of the demo config
(configs/dcgan-digits.yaml, a few hundred steps) through `driver.fit` with the display on and
off, runs interleaved (on, off, off, on, ...) in one process and one Ray instance, so the
host's drift moves both sides alike. Images/s is the loop's own figure (rank 0's meter, from
the first step to the last: Ray's start-up is left out). The display is the live (terminal)
one, rendering into a buffer; rank 0 sends it a line at each log point.

    .venv/bin/python benchmarks/progress_overhead.py [--pairs 3] [--steps 300] [--log-every 50]
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

from _common import prepared, result_line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--log-every", type=int, default=50, help="the demo config's interval; lower it to stress the channel")
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    from ganpipe import logs
    from ganpipe.project import Project
    from ganpipe.train.driver import fit
    from ganpipe.train.local_ray import ensure_ray
    from ganpipe.train.progress import LiveView

    logs.configure()  # as the CLI does: the libraries' INFO lines off
    work = Path(tempfile.mkdtemp(prefix="ganpipe-progress-bench-"))
    sets = [f"train.steps={args.steps}", f"train.log_every={args.log_every}", f"train.checkpoint_every={args.steps}", f"train.sample_every={args.steps}"]
    cfg, data = prepared("configs/dcgan-digits.yaml", work, sets)
    project = Project.load(work, env={})
    ensure_ray()
    rows: list[tuple[int, str, float, float, int]] = []
    order = [(i, on) for i in range(args.pairs) for on in ((True, False) if i % 2 == 0 else (False, True))]
    for i, on in order:
        run_cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"run_name": f"progress-{i}-{'on' if on else 'off'}"})})
        view = LiveView(run_cfg.run_name, console=Console(file=io.StringIO(), force_terminal=True, width=120)) if on else None
        t0 = time.perf_counter()
        res = fit(run_cfg, data, project, view=view)
        shown = view._last["step"] if view is not None and view._last else 0
        rows.append((i, "on" if on else "off", float(res.metrics["images_per_s"]), time.perf_counter() - t0, shown))
        print(f"pair {i} display {'on ' if on else 'off'}: {rows[-1][2]:.0f} images/s ({rows[-1][3]:.0f} s wall){f', last step shown {shown}' if on else ''}", flush=True)

    t = Table("pair", "display", "images/s (loop)", "wall s", "last step shown", title=f"progress display cost: dcgan-digits, {args.steps} steps, log every {args.log_every}")
    for i, kind, ips, wall, shown in rows:
        t.add_row(str(i), kind, f"{ips:.0f}", f"{wall:.0f}", str(shown) if kind == "on" else "-")
    ratios = []
    for i in range(args.pairs):
        on = next(r[2] for r in rows if r[0] == i and r[1] == "on")
        off = next(r[2] for r in rows if r[0] == i and r[1] == "off")
        ratios.append(on / off)
    med = statistics.median(ratios)
    Console().print(t)
    print(f"on/off per pair: {', '.join(f'{r:.3f}' for r in ratios)}; median {med:.3f} (target >= 0.98)")
    result_line("progress_overhead", f"images/s with the progress display / without, median of {args.pairs} interleaved pairs = {med:.3f}", ">= 0.98", med >= 0.98, value=round(med, 4))


if __name__ == "__main__":
    main()
