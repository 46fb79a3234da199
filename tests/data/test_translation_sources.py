"""Translation data: the `aligned:` and `unaligned:` importers on small local folders (including
corrupt files and missing/empty folders) and the built-in `colorize` and `textures` sets."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganpipe.config import DataConfig
from ganpipe.data.loading import load_manifest, load_tensors
from ganpipe.data.prepare import prepare
from ganpipe.data.sources import IMPORTERS, SOURCES, fetch, read_source
from ganpipe.errors import DataError

RED, BLUE, GREEN = (220, 20, 20), (20, 20, 220), (20, 200, 20)


def _save(path: Path, size, color, mode="RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)
    return path


def _side_by_side(path: Path, h: int, left, right) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", (2 * h, h), left)
    im.paste(Image.new("RGB", (h, h), right), (h, 0))
    im.save(path)
    return path


def _cfg(source: str, size: int = 8, **kw) -> DataConfig:
    return DataConfig(source=source, image_size=size, **kw)


def test_registered_kinds():
    assert SOURCES.get("colorize").kind == "paired" and SOURCES.get("textures").kind == "unpaired"
    assert IMPORTERS.get("aligned").kind == "paired" and IMPORTERS.get("unaligned").kind == "unpaired"


# -- aligned ---------------------------------------------------------------------------------

def test_aligned_splits_each_image_into_input_and_target(tmp_path):
    root = tmp_path / "facades"
    for i in range(4):
        _side_by_side(root / "train" / f"{i}.jpg", 40, RED, BLUE)
    _side_by_side(root / "val" / "v.png", 64, RED, BLUE)  # sub-folders are merged, sizes may differ
    src = f"aligned:{root}"
    ex = read_source(src, _cfg(src))
    assert ex.kind == "paired" and len(ex) == 5
    a, b = ex.arrays["image"], ex.arrays["target"]
    assert a.shape == b.shape == (5, 8, 8, 3)
    assert np.abs(a.astype(int) - RED).max() < 25 and np.abs(b.astype(int) - BLUE).max() < 25  # left = A, right = B

    out = tmp_path / "prepared"
    m = prepare(src, out, _cfg(src, val_fraction=0.2, test_fraction=0.0))
    assert m["kind"] == "paired" and m["channels"] == 3 and set(m["schema"]) == {"image", "target"}
    t = load_tensors(out, "train")
    assert t["image"].shape[1:] == t["target"].shape[1:] == (3, 8, 8)


def test_aligned_grayscale_stays_one_channel(tmp_path):
    root = tmp_path / "gray"
    for i in range(2):
        im = Image.new("L", (20, 10), 30)
        im.paste(Image.new("L", (10, 10), 200), (10, 0))
        root.mkdir(exist_ok=True)
        im.save(root / f"{i}.png")
    ex = read_source(f"aligned:{root}", _cfg(f"aligned:{root}"))
    assert ex.arrays["image"].shape == (2, 8, 8, 1)
    assert ex.arrays["image"].max() < 60 and ex.arrays["target"].min() > 170


def test_aligned_names_every_corrupt_file(tmp_path):
    root = tmp_path / "pairs"
    _side_by_side(root / "good.png", 16, RED, BLUE)
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (root / "truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 20)
    with pytest.raises(DataError) as e:
        read_source(f"aligned:{root}", _cfg(f"aligned:{root}"))
    msg = str(e.value)
    assert "2 unreadable or corrupt" in msg and "broken.png" in msg and "truncated.jpg" in msg and "good.png" not in msg


@pytest.mark.parametrize("case", ["missing", "empty", "file"])
def test_aligned_missing_or_empty_folder(tmp_path, case):
    root = tmp_path / "nothing"
    if case == "empty":
        root.mkdir()
        (root / "readme.txt").write_text("no images here")
    elif case == "file":
        root.write_text("a file, not a folder")
    with pytest.raises(DataError) as e:
        read_source(f"aligned:{root}", _cfg(f"aligned:{root}"))
    assert str(root) in str(e.value)


# -- unaligned -------------------------------------------------------------------------------

def test_unaligned_reads_both_domains_to_equal_length(tmp_path):
    root = tmp_path / "apple2orange"
    for i in range(3):
        _save(root / "trainA" / f"a{i}.png", (20, 16), RED)
    _save(root / "testA" / "a_test.png", (16, 16), RED)  # merged into the A pool
    for i in range(6):
        _save(root / "trainB" / f"b{i}.jpg", (12, 12), GREEN)
    src = f"unaligned:{root}"
    ex = read_source(src, _cfg(src))
    assert ex.kind == "unpaired" and ex.extra == {"files_a": 4, "files_b": 6}
    a, b = ex.arrays["image"], ex.arrays["image_b"]
    assert a.shape == b.shape == (6, 8, 8, 3)  # the smaller domain is repeated
    assert np.abs(a.astype(int) - RED).max() < 25 and np.abs(b.astype(int) - GREEN).max() < 25
    m = prepare(src, tmp_path / "out", _cfg(src, val_fraction=0.0, test_fraction=0.0))
    assert m["kind"] == "unpaired" and set(m["schema"]) == {"image", "image_b"}


def test_unaligned_grayscale_and_colour_mix_gives_three_channels(tmp_path):
    root = tmp_path / "mix"
    _save(root / "trainA" / "a.png", (8, 8), 100, mode="L")
    _save(root / "trainB" / "b.png", (8, 8), BLUE)
    ex = read_source(f"unaligned:{root}", _cfg(f"unaligned:{root}"))
    assert ex.arrays["image"].shape == (1, 8, 8, 3)
    ex1 = read_source(f"unaligned:{root}", _cfg(f"unaligned:{root}", channels=1))
    assert ex1.arrays["image_b"].shape == (1, 8, 8, 1)


@pytest.mark.parametrize(
    "layout, fragment",
    [
        ({"trainA": 2}, "trainB"),  # trainB missing
        ({"trainB": 2}, "trainA"),  # trainA missing
        ({"trainA": 2, "trainB": 0}, "no images for domain B"),  # trainB empty
        ({"trainA": 0, "trainB": 1, "testA": 0}, "no images for domain A"),
    ],
)
def test_unaligned_missing_or_empty_domain(tmp_path, layout, fragment):
    root = tmp_path / "u"
    root.mkdir()
    for folder, n in layout.items():
        (root / folder).mkdir()
        for i in range(n):
            _save(root / folder / f"{i}.png", (8, 8), RED)
    with pytest.raises(DataError, match=fragment):
        read_source(f"unaligned:{root}", _cfg(f"unaligned:{root}"))


def test_unaligned_missing_root_and_corrupt_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_source(f"unaligned:{tmp_path / 'nope'}", _cfg("unaligned:x"))
    root = tmp_path / "u"
    _save(root / "trainA" / "a.png", (8, 8), RED)
    (root / "trainB").mkdir(parents=True)
    (root / "trainB" / "bad.png").write_bytes(b"garbage")
    with pytest.raises(DataError) as e:
        read_source(f"unaligned:{root}", _cfg(f"unaligned:{root}"))
    assert "bad.png" in str(e.value) and "corrupt" in str(e.value)


# -- built-in sets ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw")
    fetch("colorize", root)
    fetch("textures", root)
    return root


def test_materialized_raw_files(raw):
    photos = sorted(p.name for p in (raw / "colorize").iterdir())
    assert len(photos) >= 6 and "astronaut.png" in photos
    assert all(max(Image.open(raw / "colorize" / p).size) <= 512 for p in photos)
    assert [p.name for p in (raw / "textures" / "trainA").iterdir()] == ["grass.png"]
    with Image.open(raw / "textures" / "trainB" / "gravel.png") as im:
        assert (im.size, im.mode) == ((512, 512), "L")


def test_colorize_gray_input_rgb_target_deterministic(raw):
    cfg = _cfg("colorize", raw_root=str(raw))
    ex = read_source("colorize", cfg)
    a, b = ex.arrays["image"], ex.arrays["target"]
    assert ex.kind == "paired" and len(ex) >= 2000 and a.shape == b.shape == (len(ex), 8, 8, 3)
    assert (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all()  # gray replicated
    luma = np.asarray(Image.fromarray(b[0]).convert("L"))
    assert np.array_equal(a[0, ..., 0], luma)
    assert (np.abs(b[..., 0].astype(int) - b[..., 2]) > 30).mean() > 0.2  # targets are really colourful
    again = read_source("colorize", cfg)
    assert np.array_equal(again.arrays["target"], b)  # seeded crops
    other = read_source("colorize", _cfg("colorize", raw_root=str(raw), seed=1))
    assert not np.array_equal(other.arrays["target"], b)


def test_colorize_refuses_one_channel_and_missing_raw(raw, tmp_path):
    with pytest.raises(DataError, match="colour"):
        read_source("colorize", _cfg("colorize", raw_root=str(raw), channels=1))
    with pytest.raises(DataError, match="ganpipe data fetch colorize"):
        read_source("colorize", _cfg("colorize", raw_root=str(tmp_path / "empty")))


def test_textures_two_domains_of_crops(raw, tmp_path):
    cfg = _cfg("textures", size=16, raw_root=str(raw))
    ex = read_source("textures", cfg)
    a, b = ex.arrays["image"], ex.arrays["image_b"]
    assert ex.kind == "unpaired" and a.shape == b.shape == (len(ex), 16, 16, 1) and len(ex) >= 1000
    assert abs(float(a.mean()) - float(b.mean())) > 1 or abs(float(a.std()) - float(b.std())) > 1  # different textures
    m = prepare("textures", tmp_path / "tex", cfg)
    assert m["kind"] == "unpaired" and m["channels"] == 1 and sum(m["counts"].values()) == len(ex)
    assert load_manifest(tmp_path / "tex")["extra"]["domains"] == {"A": "grass", "B": "gravel"}
