"""Preparation of file-backed sources: hash split, bad files, and Ray tasks that write the
same bytes as the in-process run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ganpipe.data.shards as shards
from ganpipe.config import DataConfig, PipelineConfig
from ganpipe.data.loading import load_split
from ganpipe.data.prepare import prepare, prepare_with_report
from ganpipe.data.splits import hash_split
from ganpipe.errors import DataError


def _folder(root: Path, n: int, start: int = 0, classes: int = 2) -> dict[int, str]:
    """n distinct solid-colour 6x6 images: image i has red value i (so shards tell which file a
    row came from). Returns {red value: path relative to root}."""
    out = {}
    for i in range(start, start + n):
        rel = f"c{i % classes}/img{i:03d}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (6, 6), (i, 7, 9)).save(root / rel)
        out[i] = rel
    return out


def _split_of_rows(out: Path) -> dict[int, str]:
    """{red value: split} read back from the prepared shards."""
    found = {}
    for split in ("train", "val", "test"):
        for img in load_split(out, split)["image"]:
            found[int(img[0, 0, 0])] = split
    return found


def _cfg(root: Path, **kw) -> DataConfig:
    return DataConfig(**{"source": f"imagefolder:{root}", "image_size": 4, "val_fraction": 0.2, "test_fraction": 0.2, **kw})


@pytest.fixture
def small_shards(monkeypatch):
    """Shards of 8 rows, so a tiny folder is planned as several chunks."""
    monkeypatch.setattr(shards, "MIN_SHARD_ROWS", 8)
    monkeypatch.setattr(shards, "SHARD_BYTES", 8 * 4 * 4 * 3)


def test_an_image_keeps_its_split_when_the_folder_grows(tmp_path, small_shards):
    root = tmp_path / "imgs"
    first = _folder(root, 60)
    m1 = prepare(f"imagefolder:{root}", tmp_path / "a", _cfg(root), executor="local")
    before = _split_of_rows(tmp_path / "a")
    assert len(before) == 60 and set(before.values()) == {"train", "val", "test"}
    assert before == {i: hash_split(rel, 0, 0.2, 0.2) for i, rel in first.items()}
    _folder(root, 40, start=60)
    m2 = prepare(f"imagefolder:{root}", tmp_path / "b", _cfg(root), executor="local")
    after = _split_of_rows(tmp_path / "b")
    assert len(after) == 100 and {i: after[i] for i in before} == before  # no image moved
    assert sum(m2["counts"].values()) == 100 and m2["fingerprint"] != m1["fingerprint"]
    m3 = prepare(f"imagefolder:{root}", tmp_path / "c", _cfg(root, seed=1), executor="local")
    assert _split_of_rows(tmp_path / "c") != after and m3["split_seed"] == 1


def test_skip_lists_each_bad_file_and_error_publishes_nothing(tmp_path, small_shards):
    root = tmp_path / "imgs"
    _folder(root, 20)
    (root / "c0" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (root / "c1" / "truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 20)
    out = tmp_path / "out"
    with pytest.raises(DataError) as e:
        prepare(f"imagefolder:{root}", out, _cfg(root), executor="local")
    assert "broken.png" in str(e.value) and "on_bad_file=skip" in e.value.hint
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["imgs"]  # nothing staged is left
    m, report = prepare_with_report(f"imagefolder:{root}", out, _cfg(root, on_bad_file="skip"), executor="local")
    assert [Path(s["file"]).name for s in m["skipped"]] == ["broken.png", "truncated.jpg"]
    assert all(s["reason"] for s in m["skipped"]) and m["on_bad_file"] == "skip"
    assert sum(m["counts"].values()) == 20 and report.examples == 22 and len(report.skipped) == 2
    assert json.loads((out / "manifest.json").read_text()) == m


def test_on_bad_file_is_typed_and_left_out_of_the_run_hash():
    with pytest.raises(Exception) as e:
        DataConfig(on_bad_file="ignore")
    assert "on_bad_file" in str(e.value)
    base = PipelineConfig()
    assert PipelineConfig(data={"on_bad_file": "error"}).fingerprint() == base.fingerprint()
    assert PipelineConfig(data={"on_bad_file": "skip"}).fingerprint() != base.fingerprint()


def test_ray_tasks_write_the_same_bytes_as_one_process(tmp_path, small_shards, ray_session):
    root = tmp_path / "imgs"
    _folder(root, 40, classes=3)
    (root / "c1" / "bad.png").write_bytes(b"garbage")
    cfg = _cfg(root, on_bad_file="skip")
    local, _ = prepare_with_report(cfg.source, tmp_path / "local", cfg, executor="local")
    ray_m, report = prepare_with_report(cfg.source, tmp_path / "ray", cfg, executor="ray")
    assert report.executor == "ray" and report.chunks == 6 and report.task_peak_rss_kb > 0
    assert ray_m == local  # fingerprint, counts, skipped list
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == sorted(p.name for p in (tmp_path / "local").iterdir())
    # error mode on Ray: the bad file is named, nothing is published, nothing staged is left
    with pytest.raises(DataError) as e:
        prepare(cfg.source, tmp_path / "err", _cfg(root), executor="ray")
    assert "bad.png" in str(e.value)
    assert not (tmp_path / "err").exists() and not list(tmp_path.glob(".err.tmp-*"))
    tr = load_split(tmp_path / "ray", "train")
    assert tr["image"].shape[1:] == (4, 4, 3) and np.unique(tr["label"]).tolist() == [0, 1, 2]
