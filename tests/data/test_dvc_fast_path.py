"""The prepare stage skips its DVC processes when nothing DVC reads has changed, and runs
them again (re-preparing the data) as soon as something has; generated sets too, without
leaving files in the project."""

from __future__ import annotations

import json
import shutil

import numpy as np
import yaml
from PIL import Image

from ganpipe.config import DataConfig
from ganpipe.data import dvc as dvcmod
from ganpipe.data.loading import load_split


def test_unchanged_inputs_skip_dvc_and_a_changed_image_reruns_it(project, monkeypatch):
    cfg = DataConfig()
    path, reran = dvcmod.prepare_with_dvc(project, cfg)
    assert reran and (path / "manifest.json").is_file()
    first_manifest = (path / "manifest.json").read_text()

    calls: list[list[str]] = []
    real = dvcmod.dvc

    def counting(args, cwd, **kw):
        calls.append(args)
        return real(args, cwd, **kw)

    monkeypatch.setattr(dvcmod, "dvc", counting)
    path2, reran2 = dvcmod.prepare_with_dvc(project, cfg)
    assert (path2, reran2) == (path, False)
    assert calls == []  # no DVC process at all for an unchanged data set

    # One raw image changes: DVC must see it (add, repro re-prepares, push).
    img = sorted((project.root / "data" / "digits").rglob("*.png"))[0]
    a = np.asarray(Image.open(img)).copy()
    a[0, 0] = 255 - a[0, 0]
    Image.fromarray(a).save(img)
    _, reran3 = dvcmod.prepare_with_dvc(project, cfg)
    assert reran3 is True
    assert [c[0] for c in calls][:2] == ["add", "repro"]
    assert (path / "manifest.json").read_text() != first_manifest  # the fingerprint moved

    # A changed parameter (here: the image size) is a change too.
    calls.clear()
    _, reran4 = dvcmod.prepare_with_dvc(project, cfg.model_copy(update={"image_size": 8}))
    assert reran4 is True and any(c[0] == "repro" for c in calls)


def _untracked(project) -> set[str]:
    out = dvcmod.git(["status", "--porcelain", "--untracked-files=all"], project).stdout
    return {line[3:] for line in out.splitlines() if line.startswith("??")}


def test_a_generated_set_has_its_own_stage_and_leaves_no_file_behind(tmp_path):
    """ring8 has no raw files: its stage generate@ring8 depends on its parameters alone, so DVC
    still skips it when they are unchanged and nothing is written into the project to watch."""
    from conftest import new_project

    settings = new_project(tmp_path / "proj", tmp_path / "cache")
    project = settings.root
    scaffold = _untracked(project)
    cfg = DataConfig(source="ring8")
    path, reran = dvcmod.prepare_with_dvc(settings, cfg)
    assert reran and (path / "manifest.json").is_file()
    fingerprint = json.loads((path / "manifest.json").read_text())["fingerprint"]
    # Only what DVC itself writes for any stage: its lock file and the ignore entry for the output.
    assert _untracked(project) - scaffold == {"dvc.lock", "prepared/.gitignore"}
    assert not (project / "ganpipe-generated").exists()
    assert "generate@ring8" in yaml.safe_load((project / "dvc.lock").read_text())["stages"]

    _, reran2 = dvcmod.prepare_with_dvc(settings, cfg)  # the fast path: no DVC process
    assert reran2 is False
    shutil.rmtree(settings.path("dvc-state"))
    _, reran3 = dvcmod.prepare_with_dvc(settings, cfg)  # DVC itself sees nothing changed
    assert reran3 is False
    assert json.loads((path / "manifest.json").read_text())["fingerprint"] == fingerprint

    _, reran4 = dvcmod.prepare_with_dvc(settings, cfg.model_copy(update={"seed": 1}))
    assert reran4 is True
    assert json.loads((path / "manifest.json").read_text())["fingerprint"] != fingerprint
    assert _untracked(project) - scaffold == {"dvc.lock", "prepared/.gitignore"}


def test_params_move_a_key_between_sections_and_old_projects_get_the_stage(tmp_path):
    (tmp_path / "dvc.yaml").write_text("stages:\n  prepare:\n    foreach: ${datasets}\n    do:\n      cmd: x\n")
    (tmp_path / "params.yaml").write_text("datasets:\n  ring8: {raw: ganpipe-generated, source: ring8}\n")
    dvcmod.write_params(tmp_path, "ring8", DataConfig(source="ring8"))
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    assert params["datasets"] == {} and "raw" not in params["generated"]["ring8"]
    dvcmod.write_params(tmp_path, "ring8", DataConfig(source="digits", name="ring8"))
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    assert params["generated"] == {} and params["datasets"]["ring8"]["raw"] == "data/digits"

    dvcmod.ensure_stage(tmp_path, "generate")
    dvcmod.ensure_stage(tmp_path, "generate")  # once only
    stages = yaml.safe_load((tmp_path / "dvc.yaml").read_text())["stages"]
    assert stages["generate"]["do"]["params"] == ["generated.${key}"] and stages["prepare"]["do"]["cmd"] == "x"
    assert "prepare-labelled" not in stages  # one stage's block, not the template's tail
    dvcmod.ensure_stage(tmp_path, "prepare-labelled")
    stages = yaml.safe_load((tmp_path / "dvc.yaml").read_text())["stages"]
    assert stages["prepare-labelled"]["do"]["deps"] == ["${item.raw}", "${item.labels}"] and set(stages) == {"prepare", "generate", "prepare-labelled"}


def test_a_labels_file_outside_the_folder_is_a_dvc_dependency(tmp_path):
    """Relabelling images in a labels file that lives beside (not inside) the image folder
    re-prepares the data set: DVC tracks the file's hash in dvc.lock, not just the fast path."""
    from conftest import new_project

    settings = new_project(tmp_path / "proj", tmp_path / "cache")
    photos = tmp_path / "photos"
    names = ["a.png", "sub/b.png", "sub/deep/c.png", "d.png"]
    for i, rel in enumerate(names):
        (photos / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (6, 6), (50 * i, 0, 0)).save(photos / rel)
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\n" + "".join(f"{n},{'cat' if i < 2 else 'dog'}\n" for i, n in enumerate(names)))
    cfg = DataConfig(source=f"imagefolder:{photos}", name="photos", image_size=4, labels=str(labels), val_fraction=0, test_fraction=0)

    path, reran = dvcmod.prepare_with_dvc(settings, cfg)
    lock = yaml.safe_load((settings.root / "dvc.lock").read_text())["stages"]
    deps = {d["path"] for d in lock["prepare-labelled@photos"]["deps"]}
    assert reran and deps == {str(photos), str(labels)}
    assert sorted(load_split(path, "train")["label"].tolist()) == [0, 0, 1, 1]

    labels.write_text("file,label\n" + "".join(f"{n},{'cat' if i < 3 else 'dog'}\n" for i, n in enumerate(names)))
    shutil.rmtree(settings.path("dvc-state"))  # DVC alone must see the change, not only the fast path
    _, reran2 = dvcmod.prepare_with_dvc(settings, cfg)
    assert reran2 is True
    assert sorted(load_split(path, "train")["label"].tolist()) == [0, 0, 0, 1]  # c.png is a cat now
