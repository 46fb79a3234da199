"""Importers for the formats teams bring, each on files made here, each with a bad input that
must get a clear error: `parquet:PATH`, nested folders labelled by a CSV/Parquet file, and
16-bit PNG/TIFF (scaled, not clipped)."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from ganpipe.config import DataConfig, build_config
from ganpipe.data.loading import load_split
from ganpipe.data.prepare import prepare
from ganpipe.errors import ConfigError, DataError


def _png(rgb: tuple[int, int, int], size=(5, 7), fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, rgb).save(buf, fmt)
    return buf.getvalue()


def _all_rows(out: Path) -> dict[str, np.ndarray]:
    parts = [load_split(out, s) for s in ("train", "val", "test")]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


# -- parquet: ---------------------------------------------------------------------------------

def _hf_table(n: int, names: list[str]) -> pa.Table:
    """Rows as Hugging Face datasets write an Image + ClassLabel data set."""
    images = [{"bytes": _png((10 * i, 0, 0), fmt="PNG" if i % 2 else "JPEG"), "path": f"img{i}.png"} for i in range(n)]
    table = pa.table({"image": pa.array(images, type=pa.struct([("bytes", pa.binary()), ("path", pa.string())])), "label": pa.array([i % len(names) for i in range(n)], pa.int64())})
    meta = {"info": {"features": {"image": {"_type": "Image"}, "label": {"_type": "ClassLabel", "names": names}}}}
    return table.replace_schema_metadata({b"huggingface": json.dumps(meta).encode()})


def test_parquet_hf_struct_with_class_labels(tmp_path):
    folder = tmp_path / "hf"
    folder.mkdir()
    pq.write_table(_hf_table(12, ["cat", "dog", "owl"]), folder / "train-0.parquet", row_group_size=5)
    pq.write_table(_hf_table(6, ["cat", "dog", "owl"]), folder / "train-1.parquet")
    src = f"parquet:{folder}"
    m = prepare(src, tmp_path / "out", DataConfig(source=src, image_size=4, val_fraction=0.2, test_fraction=0.2))
    assert m["class_names"] == ["cat", "dog", "owl"] and m["channels"] == 3 and m["source"] == src
    assert sum(m["counts"].values()) == 18 and m["extra"]["image_column"] == "image"
    rows = _all_rows(tmp_path / "out")
    assert rows["image"].shape == (18, 4, 4, 3)
    # every row decoded to its own colour, with its own label (red = 10 * i, label = i % 3)
    i = np.rint(rows["image"][:, 2, 2, 0] / 10).astype(int)
    assert sorted(i.tolist()) == sorted(list(range(12)) + list(range(6)))
    assert (rows["label"] == i % 3).all()


def test_parquet_plain_binary_with_string_labels_and_bad_rows(tmp_path):
    f = tmp_path / "data.parquet"
    data = [_png((200, 0, 0)), _png((0, 200, 0)), b"not an image", _png((0, 0, 200)), None]
    pq.write_table(pa.table({"id": list(range(5)), "img": pa.array(data, pa.binary()), "class": ["b", "a", "a", "b", "a"]}), f)
    src = f"parquet:{f}"
    with pytest.raises(DataError) as e:  # default: the bad row is named, nothing is written
        prepare(src, tmp_path / "out", DataConfig(source=src, image_size=4, val_fraction=0, test_fraction=0))
    assert f"{f}#row 2" in str(e.value) and not (tmp_path / "out").exists()
    m = prepare(src, tmp_path / "out", DataConfig(source=src, image_size=4, val_fraction=0, test_fraction=0, on_bad_file="skip"))
    assert [s["file"] for s in m["skipped"]] == [f"{f}#row 2", f"{f}#row 4"] and "null" in m["skipped"][1]["reason"]
    assert m["class_names"] == ["a", "b"] and m["counts"]["train"] == 3
    rows = load_split(tmp_path / "out", "train")
    got = {tuple(int(v) > 100 for v in img[1, 1]): int(y) for img, y in zip(rows["image"], rows["label"])}
    assert got == {(True, False, False): 1, (False, True, False): 0, (False, False, True): 1}


@pytest.mark.parametrize(
    "case, expected",
    [("no-image-column", "no column of encoded image bytes"), ("not-parquet", "not a readable Parquet file"),
     ("negative-label", "negative ids"), ("missing", "not found")],
)  # fmt: skip
def test_parquet_bad_input_is_a_clear_error(tmp_path, case, expected):
    f = tmp_path / "d.parquet"
    if case == "no-image-column":
        pq.write_table(pa.table({"pixels": [[1, 2, 3]], "label": [0]}), f)
    elif case == "not-parquet":
        f.write_bytes(b"PAR1 nothing else")
    elif case == "negative-label":
        pq.write_table(pa.table({"image": pa.array([_png((1, 2, 3))], pa.binary()), "label": [-1]}), f)
    src = f"parquet:{f}"
    with pytest.raises(DataError) as e:
        prepare(src, tmp_path / "out", DataConfig(source=src, image_size=4))
    assert expected in str(e.value) and str(f) in str(e.value)
    assert not (tmp_path / "out").exists()


# -- nested folders labelled by a file ---------------------------------------------------------

def _nested(root: Path) -> dict[str, str]:
    files = {"2024/jan/a.png": "sunny", "2024/feb/deep/b.jpg": "rainy", "2025/c.png": "sunny", "d.png": "rainy"}
    for i, rel in enumerate(files):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (9, 6), (40 * i, 0, 0)).save(root / rel)
    return files


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_labels_file_labels_nested_folders(tmp_path, fmt):
    root = tmp_path / "photos"
    files = _nested(root)
    labels = tmp_path / f"labels.{fmt}"
    table = pa.table({"file": list(files), "label": list(files.values())})
    if fmt == "csv":
        labels.write_text("file,label\n" + "".join(f"./{k},{v}\n" for k, v in files.items()))
    else:
        pq.write_table(table, labels)
    src = f"imagefolder:{root}"
    m = prepare(src, tmp_path / "out", DataConfig(source=src, image_size=4, labels=str(labels), val_fraction=0, test_fraction=0))
    assert m["class_names"] == ["rainy", "sunny"] and m["counts"]["train"] == 4 and m["extra"]["labels"] == str(labels)
    rows = load_split(tmp_path / "out", "train")
    got = {int(img[0, 0, 0]) // 40: int(y) for img, y in zip(rows["image"], rows["label"])}
    assert got == {i: ["rainy", "sunny"].index(v) for i, v in enumerate(files.values())}


@pytest.mark.parametrize(
    "content, expected",
    [("file,label\n2024/jan/a.png,sunny\n", "have no row in"), ("name,y\n", "needs a file column"),
     ("file,label\n2024/jan/a.png,sunny\n2024/feb/deep/b.jpg,rainy\n2025/c.png,sunny\nd.png,rainy\nnope.png,x\n", "are not images under")],
)  # fmt: skip
def test_labels_file_bad_input(tmp_path, content, expected):
    root = tmp_path / "photos"
    _nested(root)
    labels = tmp_path / "labels.csv"
    labels.write_text(content)
    src = f"imagefolder:{root}"
    with pytest.raises(DataError) as e:
        prepare(src, tmp_path / "out", DataConfig(source=src, image_size=4, labels=str(labels)))
    assert expected in str(e.value) and not (tmp_path / "out").exists()


def test_labels_need_an_imagefolder_source():
    with pytest.raises(ConfigError) as e:
        build_config({"data": {"source": "digits", "labels": "x.csv"}})
    assert "data.labels" in str(e.value)


# -- 16-bit PNG / TIFF -------------------------------------------------------------------------

def png16(path: Path, a: np.ndarray) -> None:
    """A 16-bit PNG (gray or RGB) written by hand: PIL cannot write 16-bit RGB."""
    h, w = a.shape[:2]
    color = {2: 0, 3: 2}[a.ndim]
    raw = b"".join(b"\x00" + a[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, color, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_16_bit_png_and_tiff_are_scaled_not_clipped(tmp_path):
    import tifffile

    root = tmp_path / "hdr"
    (root / "x").mkdir(parents=True)
    dark = np.full((4, 4), 1000, np.uint16)  # 16-bit values: 1000 -> 4, 40000 -> 156, 65535 -> 255
    mid = np.full((4, 4), 40000, np.uint16)
    png16(root / "x" / "dark.png", dark)
    Image.fromarray(mid).save(root / "x" / "mid.tif")
    png16(root / "x" / "rgb.png", np.stack([np.full((4, 4), v, np.uint16) for v in (65535, 30000, 0)], axis=2))
    tifffile.imwrite(root / "x" / "rgb.tif", np.stack([np.full((4, 4), v, np.uint16) for v in (0, 65535, 20000)], axis=2))
    src = f"imagefolder:{root}"
    m = prepare(src, tmp_path / "out", DataConfig(source=src, image_size=4, val_fraction=0, test_fraction=0))
    rows = load_split(tmp_path / "out", "train")["image"]
    assert m["channels"] == 3 and m["skipped"] == []
    got = sorted(tuple(int(v) for v in img[2, 2]) for img in rows)
    want = sorted([(4, 4, 4), (156, 156, 156), (255, 117, 0), (0, 255, 78)])
    assert all(abs(a - b) <= 1 for g, w in zip(got, want) for a, b in zip(g, w)), got
    # a truncated 16-bit file is a bad file like any other
    (root / "x" / "cut.png").write_bytes((root / "x" / "dark.png").read_bytes()[:40])
    with pytest.raises(DataError) as e:
        prepare(src, tmp_path / "out2", DataConfig(source=src, image_size=4))
    assert "cut.png" in str(e.value)
