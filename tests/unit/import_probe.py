"""Import each named module alone, each in a forked child of a process that has imported none
of them yet; prints one JSON object: {module: {"error": str | None, "own": [...]}}, where
"own" lists the modules of the same packages that the import loaded.

The parent first imports the third-party modules that the probed modules import at their top
level, so each child only runs the package's own imports (fast). That cannot hide an import
cycle: a cycle needs two modules that import each other, and third-party code never imports
ours. Usage: a JSON object {module name: source file} on stdin.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import select
import signal
import sys
import time
import traceback
from pathlib import Path

OWN: set[str] = set()  # top-level packages of the probed modules (never preloaded)
CHILD_TIMEOUT_S = 120


def top_level_imports(path: Path) -> set[str]:
    """Third-party modules (and possible submodules) a file imports when it is imported."""
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, (ast.If, ast.Try)):
                if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                    continue
                visit(node.body)
                visit(getattr(node, "orelse", []))
                for h in getattr(node, "handlers", []):
                    visit(h.body)

    visit(ast.parse(path.read_text()).body)
    return {m for m in found if m.split(".")[0] not in OWN and m != "__future__"}


def preload(files: list[Path]) -> None:
    libs = set().union(*(top_level_imports(f) for f in files))
    for lib in sorted(libs):
        try:  # `from x import y`: y may be a submodule or just a name; missing ones fail in the child
            importlib.import_module(lib)
        except Exception:
            pass
    leaked = [m for m in sys.modules if m.split(".")[0] in OWN]
    assert not leaked, f"preloading imported our own modules: {leaked}"


def spawn(name: str) -> tuple[int, int]:
    """Fork a child that imports `name` alone and writes its report to a pipe: (pid, read end)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: import one module, report, exit without cleanup
        os.close(r)
        try:
            importlib.import_module(name)
            out = {"error": None, "own": sorted(m for m in sys.modules if m.split(".")[0] in OWN)}
        except BaseException:
            out = {"error": traceback.format_exc(limit=-8), "own": []}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    return pid, r


def probe_all(names: list[str], jobs: int) -> dict[str, dict]:
    """Reports for all names, `jobs` children at a time; a hung child is killed after a timeout."""
    todo, running, out = list(names), {}, {}
    while todo or running:
        while todo and len(running) < jobs:
            name = todo.pop(0)
            pid, r = spawn(name)
            running[r] = (name, pid, [], time.monotonic() + CHILD_TIMEOUT_S)
        ready, _, _ = select.select(list(running), [], [], 1.0)
        for r in ready:
            chunk = os.read(r, 1 << 16)
            if chunk:
                running[r][2].append(chunk)
                continue
            name, pid, chunks, _ = running.pop(r)
            os.close(r)
            _, status = os.waitpid(pid, 0)
            data = b"".join(chunks)
            out[name] = json.loads(data) if data else {"error": f"the child died (wait status {status})", "own": []}
        for r, (name, pid, _, deadline) in list(running.items()):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                os.close(r)
                del running[r]
                out[name] = {"error": f"import did not finish within {CHILD_TIMEOUT_S} s", "own": []}
    return out


def main(modules: dict[str, str]) -> None:
    OWN.update(name.split(".")[0] for name in modules)
    preload([Path(f) for f in modules.values()])
    print(json.dumps(probe_all(list(modules), jobs=os.cpu_count() or 1)))


if __name__ == "__main__":
    main(json.loads(sys.stdin.read()))
