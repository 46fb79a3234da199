"""The training process's allocator settings (ganpipe.train.host): applied once per process,
in effect afterwards, and chosen by the driver for its Ray Train workers.

What they are for (a training thread that stops faulting its buffers in again every step) is
measured, not asserted: page-fault counts depend on the host's kernel and C library.
`benchmarks/allocator.py` prints them beside the images/s they buy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ganpipe.train import host

# In a fresh process (the settings are process-wide and cannot be undone): whether they were
# applied, and how many new mmapped blocks an 8 MiB allocation made. glibc serves a block above
# its mmap threshold with an mmap of its own (a fresh mapping each time: what faults every step);
# by default the threshold starts at 128 KiB and rises only as such blocks are freed (none this
# large in this small process); with the settings it is pinned at 32 MiB and the block comes
# from the heap.
PROBE = r"""
import ctypes, threading
from ganpipe.train.host import _glibc, tune_allocator

class Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = _glibc()
libc.mallinfo2.restype = Mallinfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
out = []
def work():  # where Ray Train runs the training function: a thread other than the main one
    out.append(tune_allocator())
    before = libc.mallinfo2().hblks
    p = libc.malloc(8 * 2**20)
    out.append(libc.mallinfo2().hblks - before)
    libc.free(p)
t = threading.Thread(target=work); t.start(); t.join()
print(*out)
"""


def _probe(tuning: str) -> tuple[bool, int]:
    env = dict(os.environ, **{host.ENV: tuning})
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120, check=True).stdout.split()
    return out[0] == "True", int(out[1])


def _has_mallinfo2() -> bool:
    libc = host._glibc()
    return libc is not None and hasattr(libc, "mallinfo2")


@pytest.mark.skipif(not _has_mallinfo2(), reason="mallopt settings are glibc's (>= 2.33 for mallinfo2)")
def test_settings_are_in_effect_in_a_training_thread():
    applied, new_mmaps = _probe("1")
    assert applied and new_mmaps == 0
    applied, new_mmaps = _probe("0")
    assert not applied and new_mmaps == 1


def test_settings_apply_once_per_process(monkeypatch):
    monkeypatch.setattr(host, "_applied", None)
    monkeypatch.setenv(host.ENV, "0")
    assert host.tune_allocator() is False
    monkeypatch.setenv(host.ENV, "1")
    assert host.tune_allocator() is False  # decided once: the first call wins


def test_driver_choice_overrides_the_worker_environment(monkeypatch):
    """On a cluster the worker's environment is not the driver's: the driver's choice wins."""
    monkeypatch.setattr(host, "_applied", None)
    monkeypatch.setenv(host.ENV, "1")
    assert host.wanted()
    assert host.tune_allocator(enabled=False) is False


@pytest.mark.parametrize("tuning", ["0", "1"])
def test_the_driver_hands_its_choice_to_the_workers(tuning, monkeypatch, tmp_path):
    """`fit` passes the driver's choice in the workers' config (`train_loop_per_worker` applies
    it); the trainer is replaced here by one that records what it was given."""
    from ganpipe.config import load_config
    from ganpipe.project import Project
    from ganpipe.train import driver, local_ray

    given = {}

    class Recorder:
        def __init__(self, fn, train_loop_config, **kwargs):
            given.update(train_loop_config)

        def fit(self):
            raise RuntimeError("recorded")

    monkeypatch.setenv(host.ENV, tuning)
    monkeypatch.setattr(local_ray, "ensure_ray", lambda *a, **k: None)
    monkeypatch.setattr(driver, "resolve_device", lambda cfg: driver.DeviceChoice(False, "test"))
    monkeypatch.setattr(local_ray, "trainer_class", lambda: Recorder)
    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / "dcgan-digits.yaml", [])
    with pytest.raises(Exception, match="recorded"):
        driver.fit(cfg, tmp_path, Project.load(tmp_path, env={}))
    assert given["malloc_tuning"] is (tuning == "1")
