"""Property-based fuzzing of the two places users feed ganpipe arbitrary input.

1. The config loader (YAML files, nested dicts, `--set` overrides): every input is either a
   valid config or a `GanpipeError` (one clear line); no KeyError, TypeError, pydantic
   ValidationError, ... leaks out. Accepted configs survive the round trips that resume relies
   on (checkpoints carry `to_dict()`, runs save `resolved.yaml`).
2. The image importers (`imagefolder:`, `aligned:`, `unaligned:`): folders of valid images in
   every PIL mode, random bytes, truncated and bit-flipped PNG/JPEG files, odd file names
   (unicode, spaces). Each import either succeeds, having read every image file, or raises a
   `GanpipeError` that names the bad files (and never a good one); the output folder is either
   complete or untouched.

Each regression the fuzzing found is pinned with @example.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import string
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ganpipe.config import DataConfig, PipelineConfig, build_config, load_config, parse_overrides, save_config
from ganpipe.errors import ConfigError, DataError, GanpipeError

# Modest by default (the suite runs on 2 cores); GANPIPE_FUZZ_EXAMPLES=2000 for a deeper hunt.
EXAMPLES = int(os.environ.get("GANPIPE_FUZZ_EXAMPLES", "0")) or None
FUZZ = settings(deadline=None, max_examples=EXAMPLES or 60, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# -- 1. configs --------------------------------------------------------------------------------

SECTION_FIELDS = {
    name: sorted(f.annotation.model_fields)
    for name, f in PipelineConfig.model_fields.items()
    if isinstance(f.annotation, type) and hasattr(f.annotation, "model_fields")
}
KNOWN_KEYS = sorted({k for fields in SECTION_FIELDS.values() for k in fields} | set(SECTION_FIELDS) | {"name", "params", "g_width", "d_norm"})
NAMES = ["dcgan", "cgan", "toy", "biggan", "pix2pix", "hinge", "wgan-gp", "fcd", "pr", "auto", "digits", "ring8", "imagefolder:/nope", "batch", "spectral"]

text = st.text(max_size=12)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    text,
    st.sampled_from(NAMES),
    st.integers(min_value=0, max_value=300),
)
keys = st.one_of(st.sampled_from(KNOWN_KEYS), text, st.integers(-3, 3))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)), max_leaves=8)


@st.composite
def raw_configs(draw) -> dict:
    """Mostly-plausible nested dicts: known sections with known or unknown keys, odd values."""
    raw: dict = {}
    for section in draw(st.lists(st.sampled_from([*SECTION_FIELDS, "name"]) | text, max_size=4, unique=True)):
        if section in SECTION_FIELDS and draw(st.booleans()):
            fields = SECTION_FIELDS[section]
            raw[section] = draw(st.dictionaries(st.sampled_from(fields) | keys, values, max_size=3))
        else:
            raw[section] = draw(values)
    return raw


yaml_snippets = st.sampled_from(
    ["", "~", "null", "1e3", ".inf", "-.inf", ".nan", "0x10", "2020-13-45", "2001-02-30 10:00:00", "!!float abc", "!!int x",
     "!!binary AAAA", "!!python/object:os.system x", "&a [*a]", "{a: 1, a: 2}", "[" * 300, "{", "'", "- a\n- b", "? [a]\n: 1",
     "true", "yes", "[1, 2]", "{g_width: 8}", "hinge", "dcgan", "[fcd, nope]", "\x00", "\ufeff1", "é"]
)
override_keys = st.lists(st.sampled_from(KNOWN_KEYS) | st.text(alphabet=string.ascii_letters + "._ =", max_size=6), min_size=1, max_size=4).map(".".join)
overrides = st.lists(
    st.one_of(st.builds(lambda k, v: f"{k}={v}", override_keys, yaml_snippets | text), text),
    max_size=4,
)


def _accepted_config_is_usable(cfg: PipelineConfig, tmp: Path) -> None:
    """What the pipeline does with an accepted config must not fail either."""
    d = cfg.to_dict()
    json.dumps(d, allow_nan=False)  # finite, JSON-safe (fingerprints, MLflow params)
    assert cfg.run_name and cfg.model_name and cfg.experiment and cfg.data.key
    again = build_config(d)  # what a resumed worker does with the checkpoint's config
    assert again.to_dict() == d and again.run_name == cfg.run_name
    p = save_config(cfg, tmp / "resolved.yaml")
    assert load_config(p).to_dict() == d
    # Names that become folders and MLflow filter strings stay one safe path component.
    for name in (cfg.run_name, cfg.data.key):
        assert "/" not in name and ".." != name and "'" not in name


@FUZZ
@given(raw=raw_configs())
@example(raw={"optim": {"lr_g": float("inf")}})  # was accepted: an infinite learning rate
@example(raw={"model": {"family": "biggan", "params": {"ortho_reg": float("inf")}}})  # same, in family params
@example(raw={"train": {"run_name": "../../elsewhere"}})  # was accepted: a run folder outside storage
@example(raw={"data": {"name": "it's"}})  # was accepted: breaks MLflow filter strings and folder names
@example(raw={"eval": {"metrics": ["fcd", "nope"]}})  # was accepted: failed only after training
def test_any_nested_dict_is_a_config_or_a_clear_error(raw, tmp_path_factory):
    try:
        cfg = build_config(raw)
    except GanpipeError as e:
        assert isinstance(e, ConfigError) and e.message.strip()
        return
    _accepted_config_is_usable(cfg, tmp_path_factory.mktemp("cfg"))


@FUZZ
@given(items=overrides, file_body=st.one_of(st.none(), raw_configs().map(yaml.safe_dump), yaml_snippets, text, st.binary(max_size=40)))
@example(items=["train.steps=2020-13-45"], file_body=None)  # ValueError from PyYAML's date constructor
@example(items=["train.steps=" + "[" * 3000], file_body=None)  # RecursionError
@example(items=["optim.lr_g=!!float abc"], file_body=None)  # ValueError from !!float
@example(items=[], file_body=b"\xff\xfe garbage")  # UnicodeDecodeError reading the file
@example(items=[], file_body="train:\n  steps: 2020-13-45\n")  # ValueError inside the file
def test_any_file_and_overrides_are_a_config_or_a_clear_error(items, file_body, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cfgfile")
    path = None
    if file_body is not None:
        path = tmp / "c.yaml"
        path.write_bytes(file_body if isinstance(file_body, bytes) else file_body.encode("utf-8", "surrogatepass"))
    try:
        parsed = parse_overrides(items)
        assert isinstance(parsed, dict)
        cfg = load_config(path, items)
    except GanpipeError as e:
        assert isinstance(e, ConfigError) and e.message.strip()
        assert len(e.message) < 4000  # one readable error, not a dump of the input
        return
    _accepted_config_is_usable(cfg, tmp)


# -- 2. image importers ------------------------------------------------------------------------

MODES = ["1", "L", "P", "RGB", "RGBA", "LA", "PA", "CMYK", "YCbCr", "I", "I;16", "F", "RGBX", "HSV", "LAB"]
FORMATS = {"PNG": ".png", "JPEG": ".jpg", "BMP": ".bmp", "GIF": ".gif", "TIFF": ".tif", "WEBP": ".webp"}
name_chars = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\")
file_stems = st.text(name_chars, min_size=1, max_size=10).filter(lambda s: not s.startswith(".") and s.strip(".") != "")


def _encode(mode: str, w: int, h: int, fmt: str, seed: int) -> bytes | None:
    """A real image file PIL writes (None when PIL cannot write that mode in that format)."""
    from PIL import Image

    rgb = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    try:
        im = Image.fromarray(rgb)
        if mode == "I;16":
            im = Image.fromarray(rgb[..., 0].astype(np.uint16) * 250)
        elif mode in ("I", "F"):
            im = Image.fromarray(rgb[..., 0].astype(np.int32) * 250).convert(mode)
        elif mode != "RGB":
            im = im.convert(mode)
        buf = io.BytesIO()
        im.save(buf, fmt)
        return buf.getvalue()
    except (OSError, ValueError, KeyError, TypeError):
        return None


@st.composite
def image_files(draw) -> tuple[str, bytes, bool, tuple[int, int]]:
    """(file name, bytes, known_good, (w, h)): a valid image, or random/truncated/flipped bytes."""
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    w, h = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    mode = draw(st.sampled_from(MODES))
    data = _encode(mode, w, h, fmt, draw(st.integers(0, 2**16)))
    if data is None:
        fmt, data = "PNG", _encode("RGB", w, h, "PNG", 0)
    kind = draw(st.sampled_from(["good", "good", "random", "truncated", "flipped"]))
    good = kind == "good"
    if kind == "random":
        data = draw(st.binary(max_size=64))
    elif kind == "truncated":
        data = data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    elif kind == "flipped":
        b = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(b) - 1))
            b[i] ^= draw(st.integers(1, 255))
        data = bytes(b)
    ext = FORMATS[fmt]
    ext = draw(st.sampled_from([ext, ext.upper()]))
    return draw(file_stems) + ext, data, good, (w, h)


def _write(folder: Path, files: list[tuple[str, bytes, bool, tuple[int, int]]], written: dict[Path, tuple[bool, tuple[int, int]]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data, good, size in files:
        p = folder / name
        if p.exists():  # a name drawn twice, or a file named like a sub-folder
            continue
        p.write_bytes(data)
        written[p] = (good, size)


@st.composite
def import_trees(draw):
    """(importer, {file: (known_good, size)}): a folder laid out for one of the importers."""
    importer = draw(st.sampled_from(["imagefolder", "aligned", "unaligned"]))
    files = st.lists(image_files(), min_size=1, max_size=4)
    groups = draw(st.lists(st.tuples(file_stems, files), min_size=importer == "unaligned", max_size=3, unique_by=lambda t: t[0]))
    loose = draw(st.lists(image_files(), max_size=3)) if importer != "unaligned" else []
    return importer, groups, loose, draw(st.booleans())


@pytest.fixture(scope="module")
def previous_output(tmp_path_factory) -> Path:
    """A complete prepared folder, to check that a failed import leaves it untouched."""
    from PIL import Image

    from ganpipe.data.prepare import prepare

    root = tmp_path_factory.mktemp("prev")
    for i in range(4):
        (root / "src" / "a").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (6, 6), (i * 40, 0, 0)).save(root / "src" / "a" / f"{i}.png")
    out = root / "out"
    prepare(f"imagefolder:{root / 'src'}", out, DataConfig(source=f"imagefolder:{root / 'src'}", image_size=4))
    return out


@settings(deadline=None, max_examples=EXAMPLES or 45, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(tree=import_trees(), size=st.sampled_from([4, 8]), channels=st.sampled_from([None, 1, 3]))
@example(  # an image next to class folders was silently left out of the data set
    tree=("imagefolder", [("cls", [("a.png", b"", True, (4, 4))])], [("loose.png", b"", True, (4, 4))], False), size=4, channels=None
)
def test_any_image_folder_imports_or_names_the_bad_files(tree, size, channels, tmp_path_factory, previous_output):
    from ganpipe.data.prepare import prepare

    importer, groups, loose, keep_previous = tree
    tmp = tmp_path_factory.mktemp("imp")
    root = tmp / "in put é"
    written: dict[Path, tuple[bool, tuple[int, int]]] = {}
    root.mkdir(parents=True)
    for i, (stem, files) in enumerate(groups):  # class folders / sub-folders / domains
        _write(root / (("trainA", "trainB", "testA")[i] if importer == "unaligned" else stem), [_fill(f) for f in files], written)
    _write(root, [_fill(f) for f in loose], written)
    out_parent = tmp / "prepared"
    out_parent.mkdir()
    out = out_parent / "set"
    if keep_previous:
        shutil.copytree(previous_output, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()} if out.exists() else None
    source = f"{importer}:{root}"
    cfg = DataConfig(source=source, image_size=size, channels=channels)
    try:
        manifest = prepare(source, out, cfg)
    except GanpipeError as e:
        assert isinstance(e, DataError), e
        msg = str(e)
        assert str(root) in msg  # names the folder or the files in it
        named = {p for p in written if str(p) in msg}
        if "unreadable or corrupt" in msg:
            assert named, msg
            good = {p for p, (ok, (w, _)) in written.items() if ok and (importer != "aligned" or w >= 2)}
            assert not named & good, f"good files named as bad: {named & good}"
        # Nothing half-written: the previous output is intact (or there is none) and no temp folders.
        assert sorted(x.name for x in out_parent.iterdir()) == (["set"] if before is not None else [])
        if before is not None:
            assert {p.name: p.read_bytes() for p in out.iterdir()} == before
        return
    assert (out / "manifest.json").is_file() and sorted(x.name for x in out_parent.iterdir()) == ["set"]
    assert json.loads((out / "manifest.json").read_text()) == manifest
    n_files = sum(1 for _ in written)
    if importer == "unaligned":
        assert manifest["extra"]["files_a"] + manifest["extra"]["files_b"] == n_files
    else:
        assert manifest["extra"]["files"] == n_files  # every image file was read, none skipped


def _fill(f: tuple[str, bytes, bool, tuple[int, int]]) -> tuple[str, bytes, bool, tuple[int, int]]:
    """Explicit examples give b"" for 'a good image of this size'."""
    name, data, good, (w, h) = f
    if data == b"" and good:
        data = _encode("RGB", w, h, "PNG", 0)
    return name, data, good, (w, h)
