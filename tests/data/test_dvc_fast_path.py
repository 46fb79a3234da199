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

    dvcmod.ensure_generate_stage(tmp_path)
    dvcmod.ensure_generate_stage(tmp_path)  # once only
    stages = yaml.safe_load((tmp_path / "dvc.yaml").read_text())["stages"]
    assert stages["generate"]["do"]["params"] == ["generated.${key}"] and stages["prepare"]["do"]["cmd"] == "x"
