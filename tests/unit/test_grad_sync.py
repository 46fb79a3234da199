"""Data-parallel gradient averaging on two gloo processes (no Ray): the bucketed, overlapped
all-reduce equals the flat one for every family and penalty, and the full batch on one
process where that is exact; BatchNorm running statistics are averaged over the ranks;
train.sync_bn converts BatchNorm layers (and is refused where SyncBatchNorm cannot run)."""

from __future__ import annotations

import json
import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

import dist_sync_worker as worker  # a sibling module: pytest puts this folder on sys.path, spawned workers inherit it

pytestmark = pytest.mark.usefixtures("one_thread")
TOL = 1e-5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("grad-sync") / "report.json"
    mp.spawn(worker.main, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    rep = json.loads(out.read_text())
    for section, rows in rep.items():  # the tables, for the record (pytest -s shows them)
        print(f"\n{section}")
        for row in rows:
            print("  " + "  ".join(f"{k}={v:.2e}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    return rep


def test_bucketed_equals_flat_for_every_family_and_penalty(report):
    rows = report["cases"]
    assert {r["family"] for r in rows} == {"dcgan", "cgan", "biggan", "pix2pix", "cyclegan", "toy"}
    for r in rows:
        assert r["backwards"] >= 2, r  # at least one D and one G backward were synchronised
        for key in ("bucketed-256B grads", "bucketed-256B params", "bucketed-25MB grads", "bucketed-25MB params"):
            assert r[key] <= TOL, (r["family"], r["loss"], key, r[key])
        assert r["ranks agree"] == 0.0, r  # every rank took the same step
        for started, buckets in (map(int, b.split("/")) for b in r["buckets started in backward"].split("; ")):
            assert buckets > 1 and started >= 1, r  # all-reduces overlapped the backward


def test_distributed_step_equals_the_full_batch_where_exact(report):
    toy = [r for r in report["cases"] if r["family"] == "toy"]
    assert {r["loss"] for r in toy} == {"default", "wgan-gp", "r1"}
    for r in toy:
        assert r["vs full batch"] <= TOL, r
    for r in report["patterns"]:  # several forwards, double backward, two backwards, an unused layer
        assert r["vs full batch"] <= TOL, r
        assert r["hooks left"] == 0 and r["unused grad"] == 0.0, r


def test_batchnorm_statistics_become_the_ranks_mean(report):
    averaged = [r for r in report["bn"] if "vs mean" in r]
    assert {r["family"] for r in averaged} == {"dcgan", "biggan", "pix2pix"}
    for r in averaged:
        assert r["bn layers"] > 0 and r["ranks differed"] > 0, r
        assert r["vs mean"] <= 1e-6, r
    (cpu,) = [r for r in report["bn"] if "sync_bn on cpu" in r]
    assert "needs GPU workers" in cpu["sync_bn on cpu"]


def test_one_process_is_a_plain_backward():
    from ganpipe.gans.base import GradSync

    net = worker.Net()
    sync = GradSync()
    assert sync.world == 1
    sync.backward(net(torch.randn(2, 1, 4, 4)).sum(), net)
    assert net.unused.weight.grad is None  # nothing was reduced or zero-filled
    assert not any(getattr(p, "_post_accumulate_grad_hooks", None) for p in net.parameters())


def test_sync_bn_converts_batchnorm_and_keeps_the_state_dict():
    import ganpipe.gans  # noqa: F401
    from ganpipe.gans import FAMILIES

    plain = FAMILIES.get("dcgan")(worker.config("dcgan", []), worker.info("dcgan"), torch.device("cpu"))
    conv = FAMILIES.get("dcgan")(worker.config("dcgan", ["train.sync_bn=true"]), worker.info("dcgan"), torch.device("cpu"))
    converted = 0
    for name in ("G", "D"):
        a, b = plain.modules()[name], conv.modules()[name]
        n = sum(type(m) is nn.BatchNorm2d for m in a.modules())
        assert sum(isinstance(m, nn.SyncBatchNorm) for m in b.modules()) == n
        assert not any(type(m) is nn.BatchNorm2d for m in b.modules())
        assert list(a.state_dict()) == list(b.state_dict())  # checkpoints and exports unchanged
        converted += n
    assert converted > 0
    data = iter(worker.batches("dcgan", 0))
    conv.train_step(lambda: next(data), 1)  # one process: SyncBatchNorm is plain BatchNorm
    spec, state = conv.export()
    assert conv.sampler_cls.from_export(spec, state).generate(2).shape == (2, 1, 8, 8)
