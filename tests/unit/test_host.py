"""The training process's allocator settings (ganpipe.train.host): a training step in a
non-main thread, as Ray Train runs it, stops faulting its buffers in again every step."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ganpipe.train import host

# A small conv net trained in a non-main thread; prints the thread's minor page faults over 30
# steps after 40 warm-up steps. The warm-up is long enough that the heap has reached its size
# (first touches of fresh heap pages are a one-off, not what the settings are about: after 10
# warm-up steps one window held ~1,500 of them, and the next windows 0-1). The settings are
# process-wide and cannot be undone, hence one fresh process per variant.
PROBE = r"""
import resource, threading, torch
from torch import nn
from ganpipe.train.host import tune_allocator
torch.set_num_threads(1)
out = []
def work():
    out.append(tune_allocator())
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 128, 3, stride=2, padding=1),
                        nn.ReLU(), nn.Flatten(), nn.Linear(128 * 8 * 8, 1))
    opt = torch.optim.Adam(net.parameters())
    x = torch.randn(64, 1, 16, 16)
    def step():
        loss = net(x).square().mean(); opt.zero_grad(); loss.backward(); opt.step()
    for _ in range(40): step()
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    for _ in range(30): step()
    out.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)
t = threading.Thread(target=work); t.start(); t.join()
print(out[0], out[1])
"""


def _probe(tuning: str) -> tuple[bool, int]:
    env = dict(os.environ, **{host.ENV: tuning})
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120, check=True).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(host._glibc() is None, reason="mallopt settings are glibc's; this C library has none")
def test_training_thread_stops_faulting_with_the_settings():
    applied_off, faults_default = _probe("0")
    applied_on, faults_tuned = _probe("1")
    assert not applied_off and applied_on
    assert faults_default > 1000, "glibc's defaults no longer fault here: re-measure benchmarks/allocator.py"
    assert faults_tuned < 50, f"{faults_tuned} page faults in 30 steps with the settings ({faults_default} without)"


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
