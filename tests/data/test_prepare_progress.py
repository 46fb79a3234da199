"""Preparation progress off a terminal: plain lines with images/s and the time left, and the
skipped files counted; nothing when disabled."""

from __future__ import annotations

import io

import ganpipe.data.progress as progress
from ganpipe.tracking.lineage import lineage_tags


def test_plain_lines_show_rate_eta_and_skipped(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)
    out = io.StringIO()
    bar = progress.PrepareProgress(1000, "prepare pets", stream=out)
    now[0] = 2.0
    bar.advance(200)  # first chunk at t=2: 100 images/s overall
    now[0] = 6.0
    bar.advance(400, skipped=3)  # 400 more in 4 s after the first chunk: 100 images/s, 400 left -> 0:04
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("prepare pets: 200/1000 images (20%), 100 images/s")
    assert lines[1] == "prepare pets: 600/1000 images (60%), 100 images/s, ETA 0:04, 3 skipped"


def test_disabled_progress_writes_nothing():
    out = io.StringIO()
    bar = progress.PrepareProgress(10, "x", enabled=False, stream=out)
    bar.advance(10, skipped=1)
    bar.close()
    assert out.getvalue() == "" and bar.skipped == 1


def test_skipped_files_are_counted_on_the_run(tmp_path):
    tags = lineage_tags(tmp_path, {"fingerprint": "f", "source": "s", "skipped": [{"file": "a", "reason": "r"}, {"file": "b", "reason": "r"}]})
    assert tags["data.skipped_files"] == "2" and lineage_tags(tmp_path, {})["data.skipped_files"] == "0"
