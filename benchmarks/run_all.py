"""`make bench`: run every benchmark script in turn (each prints its own table).

    python benchmarks/run_all.py [--quick]
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

SUITE = [
    ("training throughput (Ray Train vs plain PyTorch)", ["train_throughput.py"], ["train_throughput.py", "--steps", "300", "--repeats", "1"]),
    ("data path", ["data_path.py"], ["data_path.py", "--quick"]),
    ("evaluation speed", ["eval_speed.py"], ["eval_speed.py", "--quick"]),
    ("reliability", ["reliability.py"], ["reliability.py"]),
    ("ASHA vs full runs", ["asha_vs_full.py"], ["asha_vs_full.py", "--steps", "200", "--samples", "4"]),
    ("model quality per family", ["quality.py"], ["quality.py", "--quick"]),
]


def main() -> None:
    quick = "--quick" in sys.argv
    failed = []
    for title, full, short in SUITE:
        args = short if quick else full
        if not (HERE / args[0]).exists():
            print(f"== {title}: {args[0]} missing, skipped")
            continue
        print(f"\n== {title}: python benchmarks/{' '.join(args)}", flush=True)
        t0 = time.time()
        rc = subprocess.call([sys.executable, str(HERE / args[0]), *args[1:]], cwd=HERE.parent)
        print(f"== {title}: exit {rc}, {time.time() - t0:.0f}s", flush=True)
        if rc:
            failed.append(title)
    if failed:
        print("failed:", ", ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
