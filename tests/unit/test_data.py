"""Data preparation: built-in digits, user image folders, and bad input."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganpipe.config import DataConfig
from ganpipe.data.loading import load_manifest, load_split, load_tensors
from ganpipe.data.prepare import prepare
from ganpipe.errors import DataError


def test_digits_prepared_splits_and_manifest(digits_prepared):
    m = load_manifest(digits_prepared)
    assert m["counts"] == {"train": 1441, "val": 174, "test": 182}  # split by a hash of each file's path
    assert (m["image_size"], m["channels"], m["num_classes"], m["kind"], m["split"]) == (16, 1, 10, "images", "hash")
    assert len(m["fingerprint"]) == 64 and m["skipped"] == []
    tr = load_split(digits_prepared, "train")
    assert tr["image"].shape == (1441, 16, 16, 1) and tr["image"].dtype == np.uint8
    assert set(np.unique(tr["label"])) == set(range(10))  # every class in every split
    assert set(np.unique(load_split(digits_prepared, "test")["label"])) == set(range(10))
    t = load_tensors(digits_prepared, "val")["image"]
    assert t.shape == (174, 1, 16, 16) and t.min() >= -1 and t.max() <= 1 and t.std() > 0.3


def test_prepare_is_deterministic(tmp_path, digits_raw):
    cfg = DataConfig(raw_root=str(digits_raw))
    a = prepare("digits", tmp_path / "a", cfg)
    b = prepare("digits", tmp_path / "b", cfg)
    assert a["fingerprint"] == b["fingerprint"]
    c = prepare("digits", tmp_path / "c", cfg.model_copy(update={"seed": 1}))
    assert c["fingerprint"] != a["fingerprint"]


def test_fingerprint_from_the_writers_digests_matches_the_files(tmp_path, digits_raw):
    """Tasks hash their shards as they write them; the fingerprint must be the one a reader
    recomputes from the published files, and change when one shard's bytes change."""
    from ganpipe.data.shards import fingerprint_dir

    out = tmp_path / "a"
    m = prepare("digits", out, DataConfig(raw_root=str(digits_raw)))
    assert fingerprint_dir(out) == m["fingerprint"]
    shard = sorted(out.glob("val-*.parquet"))[0]
    shard.write_bytes(shard.read_bytes() + b"\0")
    assert fingerprint_dir(out) != m["fingerprint"]


def _img(path: Path, mode: str, size, color=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "P":
        im = Image.new("RGB", size, (color, 10, 200)).convert("P")
    else:
        im = Image.new(mode, size, color if mode in ("L",) else (color,) * len(mode))
    im.save(path)


def test_imagefolder_mixed_modes_sizes_and_names(tmp_path):
    root = tmp_path / "my pets"
    _img(root / "cät" / "a b.png", "L", (40, 30))
    _img(root / "cät" / "rgba.png", "RGBA", (100, 100))
    _img(root / "dog" / "pal.png", "P", (20, 64))
    _img(root / "dog" / "big.jpg", "RGB", (300, 200))
    (root / "dog" / "notes.txt").write_text("not an image, ignored by extension")
    out = tmp_path / "out"
    m = prepare(f"imagefolder:{root}", out, DataConfig(source=f"imagefolder:{root}", image_size=8, val_fraction=0.0, test_fraction=0.0))
    assert m["channels"] == 3 and m["class_names"] == ["cät", "dog"] and m["counts"]["train"] == 4
    imgs = load_split(out, "train")["image"]
    assert imgs.shape == (4, 8, 8, 3)


def test_corrupt_image_is_named_and_nothing_is_written(tmp_path):
    root = tmp_path / "imgs"
    _img(root / "a" / "ok.png", "L", (16, 16))
    (root / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (root / "a" / "truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 20)
    out = tmp_path / "out"
    with pytest.raises(DataError) as e:
        prepare(f"imagefolder:{root}", out, DataConfig(source=f"imagefolder:{root}", image_size=8))
    assert "broken.png" in str(e.value) and "truncated.jpg" in str(e.value) and "2 unreadable" in str(e.value)
    assert not out.exists()
    assert not any(p.name.startswith(".out.tmp") for p in tmp_path.iterdir())  # no half-written shards


def test_failed_prepare_keeps_the_previous_good_output(tmp_path):
    root = tmp_path / "imgs"
    _img(root / "a" / "ok.png", "L", (16, 16))
    _img(root / "a" / "ok2.png", "L", (16, 16))
    out = tmp_path / "out"
    cfg = DataConfig(source=f"imagefolder:{root}", image_size=8, val_fraction=0.0, test_fraction=0.0)
    first = prepare(f"imagefolder:{root}", out, cfg)
    (root / "a" / "bad.png").write_bytes(b"garbage")
    with pytest.raises(DataError):
        prepare(f"imagefolder:{root}", out, cfg)
    assert json.loads((out / "manifest.json").read_text())["fingerprint"] == first["fingerprint"]


@pytest.mark.parametrize("case", ["missing", "empty", "empty-class", "file"])
def test_missing_or_empty_inputs(tmp_path, case):
    root = tmp_path / "imgs"
    if case == "empty":
        root.mkdir()
    elif case == "empty-class":
        _img(root / "a" / "x.png", "L", (8, 8))
        (root / "b").mkdir()
    elif case == "file":
        root.write_text("x")
    with pytest.raises(DataError) as e:
        prepare(f"imagefolder:{root}", tmp_path / "out", DataConfig(source=f"imagefolder:{root}"))
    assert str(root) in str(e.value) or "b" in str(e.value)
    assert not (tmp_path / "out").exists()


def test_builtin_raw_missing_says_how_to_fetch(tmp_path):
    with pytest.raises(DataError) as e:
        prepare("digits", tmp_path / "out", DataConfig(raw_root=str(tmp_path / "nothing")))
    assert "ganpipe data fetch digits" in e.value.hint


def test_symlink_loop_does_not_hang(tmp_path):
    root = tmp_path / "imgs"
    _img(root / "a" / "x.png", "L", (8, 8))
    _img(root / "a" / "y.png", "L", (8, 8))
    (root / "a" / "loop").symlink_to(root / "a", target_is_directory=True)
    m = prepare(f"imagefolder:{root}", tmp_path / "out", DataConfig(source=f"imagefolder:{root}", val_fraction=0, test_fraction=0))
    assert m["counts"]["train"] == 2
