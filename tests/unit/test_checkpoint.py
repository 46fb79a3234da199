import json

import pytest
import torch

from ganpipe.errors import CheckpointError
from ganpipe.train.checkpoint import load_export, load_state, save_checkpoint, verify


def _save(folder):
    return save_checkpoint(
        folder,
        step=42,
        recipe_state={"modules": {"G": {"w": torch.ones(3)}}, "optimizers": {}, "extra": {}},
        export=({"family": "dcgan", "z_dim": 4}, {"w": torch.arange(3.0)}),
        config={"name": "x"},
    )


def test_round_trip(tmp_path):
    ck = _save(tmp_path / "ck")
    assert verify(ck)["step"] == 42
    st = load_state(ck)
    assert st["step"] == 42 and torch.equal(st["recipe"]["modules"]["G"]["w"], torch.ones(3))
    spec, gen = load_export(ck)
    assert spec["family"] == "dcgan" and torch.equal(gen["w"], torch.arange(3.0))
    assert not list(ck.glob("*.partial"))


def test_tampered_file_fails_verification(tmp_path):
    ck = _save(tmp_path / "ck")
    torch.save({"w": torch.zeros(3)}, ck / "generator.pt")
    with pytest.raises(CheckpointError, match="sha256"):
        load_export(ck)


def test_incomplete_checkpoint_is_refused(tmp_path):
    ck = _save(tmp_path / "ck")
    (ck / "meta.json").unlink()
    with pytest.raises(CheckpointError, match="incomplete"):
        load_state(ck)


def test_pickled_code_is_not_executed(tmp_path):
    ck = _save(tmp_path / "ck")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"step": 1, "x": Evil()}, ck / "state.pt")
    meta = json.loads((ck / "meta.json").read_text())
    import hashlib

    meta["sha256"]["state.pt"] = hashlib.sha256((ck / "state.pt").read_bytes()).hexdigest()
    (ck / "meta.json").write_text(json.dumps(meta))  # digests match: only weights_only protects now
    with pytest.raises(Exception) as e:
        load_state(ck)
    assert "weights_only" in str(e.value) or "Unsupported" in str(e.value) or "global" in str(e.value).lower()
