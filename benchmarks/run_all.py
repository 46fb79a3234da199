"""`make bench`: run every benchmark script in turn (each prints its own table), then one
summary table: benchmark, key figure, target, met?

    python benchmarks/run_all.py [--quick] [--json results.json]

Each script ends its output with one machine-readable line,

    RESULT {"benchmark": "<name>", "figure": "<key figure, one line>", "value": <number or null>,
            "target": "<target, in words>", "met": <true, false or null>}

(a JSON object on one line; "met" is null where a benchmark has no pass/fail target;
"skipped": "<reason>" marks a benchmark that could not run here, e.g. no GPU). The runner
streams each script's output as it comes and collects those lines; a script without one
shows up in the summary as "no RESULT line".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULT_PREFIX = "RESULT "

SUITE = [
    ("training throughput (Ray Train vs plain PyTorch)", ["train_throughput.py", "--scaling"], ["train_throughput.py", "--families", "dcgan,toy,cyclegan", "--windows", "4", "--window-s", "2"]),
    ("allocator settings (page faults, images/s)", ["allocator.py"], ["allocator.py", "--families", "dcgan,biggan", "--windows", "6"]),
    ("data path", ["data_path.py"], ["data_path.py", "--quick"]),
    ("prepare at scale (Ray Data, 20k/100k images)", ["prepare_scale.py"], ["prepare_scale.py", "--sizes", "2000,10000", "--skip-dvc"]),
    ("worker memory (rank rows, uint8)", ["train_memory.py"], ["train_memory.py", "--sizes", "40000,20000", "--steps", "2"]),
    ("pipeline overhead", ["pipeline_overhead.py"], ["pipeline_overhead.py", "--modes", "local"]),
    ("progress display cost", ["progress_overhead.py"], ["progress_overhead.py", "--pairs", "2", "--steps", "200"]),
    ("speed flags (amp, channels_last, compile)", ["speed_flags.py"], ["speed_flags.py", "--quick"]),
    ("GPU speed and MFU", ["gpu.py", "--skip-without-cuda"], ["gpu.py", "--skip-without-cuda", "--steps", "20"]),
    ("evaluation speed", ["eval_speed.py"], ["eval_speed.py", "--quick"]),
    ("reliability", ["reliability.py"], ["reliability.py"]),
    ("ASHA vs full runs", ["asha_vs_full.py"], ["asha_vs_full.py", "--steps", "200", "--samples", "4"]),
    ("model quality per family", ["quality.py"], ["quality.py", "--quick"]),
    ("the demo's picture (FCD vs floor)", ["demo_quality.py"], ["demo_quality.py"]),
    ("small data: DiffAugment vs none", ["small_data.py"], ["small_data.py", "--quick", "--seeds", "0"]),
]


def parse_result(line: str) -> dict[str, Any] | None:
    if not line.startswith(RESULT_PREFIX):
        return None
    try:
        out = json.loads(line[len(RESULT_PREFIX) :])
    except json.JSONDecodeError:
        return None
    return out if isinstance(out, dict) else None


def run_script(args: list[str]) -> tuple[int, list[dict[str, Any]]]:
    """Run one script, echoing its output; returns (exit status, its RESULT objects)."""
    env = dict(os.environ)
    # Output goes through a pipe: keep rich tables as wide as this terminal.
    env.setdefault("COLUMNS", str(max(shutil.get_terminal_size((160, 40)).columns, 120)))
    env.setdefault("PYTHONUNBUFFERED", "1")
    proc = subprocess.Popen([sys.executable, str(HERE / args[0]), *args[1:]], cwd=HERE.parent, env=env, stdout=subprocess.PIPE, text=True, bufsize=1)
    results = []
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        r = parse_result(line.strip())
        if r is not None:
            results.append(r)
    return proc.wait(), results


def summary_table(rows: list[tuple[str, int | None, float, list[dict[str, Any]]]]) -> Any:
    from rich.table import Table

    t = Table(title=f"Benchmarks, {time.strftime('%Y-%m-%d %H:%M')}", show_lines=True)
    for c in ("benchmark", "key figure", "target", "met?", "exit, s"):
        t.add_column(c, justify="right" if c == "exit, s" else "left")
    for title, rc, secs, results in rows:
        status = "missing" if rc is None else f"{rc}, {secs:.0f}"
        if not results:
            why = "script missing, skipped" if rc is None else ("no RESULT line (see its table above)" if rc == 0 else "failed (see its output above)")
            t.add_row(title, why, "", "?" if rc is not None else "-", status)
            continue
        for r in results:
            met = r.get("met")
            if r.get("skipped"):
                mark = "[yellow]skipped[/]"
            elif met is True:
                mark = "[green]yes[/]"
            elif met is False:
                mark = "[red]NO[/]"
            else:
                mark = "n/a"
            t.add_row(title, str(r.get("figure", "")), str(r.get("target", "")), mark, status)
    return t


def main() -> None:
    quick = "--quick" in sys.argv
    json_out = None
    if "--json" in sys.argv:
        i = sys.argv.index("--json")
        if i + 1 >= len(sys.argv):
            raise SystemExit("--json needs a file name")
        json_out = Path(sys.argv[i + 1])
    failed = []
    rows: list[tuple[str, int | None, float, list[dict[str, Any]]]] = []
    for title, full, short in SUITE:
        args = short if quick else full
        if not (HERE / args[0]).exists():
            print(f"== {title}: {args[0]} missing, skipped")
            rows.append((title, None, 0.0, []))
            continue
        print(f"\n== {title}: python benchmarks/{' '.join(args)}", flush=True)
        t0 = time.time()
        rc, results = run_script(args)
        secs = time.time() - t0
        print(f"== {title}: exit {rc}, {secs:.0f}s", flush=True)
        rows.append((title, rc, secs, results))
        if rc:
            failed.append(title)

    from rich.console import Console

    print()
    Console(width=None if sys.stdout.isatty() else 160).print(summary_table(rows))
    if json_out is not None:
        json_out.write_text(json.dumps([{"title": t, "exit": rc, "seconds": s, "results": r} for t, rc, s, r in rows], indent=2))
    if failed:
        print("failed:", ", ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
