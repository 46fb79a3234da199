"""The prepare stage skips its DVC processes when nothing DVC reads has changed, and runs
them again (re-preparing the data) as soon as something has."""

from __future__ import annotations

import numpy as np
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
