"""Checkpoints on object storage (moto's S3 server): the newest one that verifies is found and
copied here, a half-uploaded or tampered newer one is skipped, and copies are cached."""

from __future__ import annotations

from pathlib import Path

import torch

from ganpipe.train.checkpoint import newest_verified, save_checkpoint


def _upload(s3, bucket: str, prefix: str, folder: Path, skip: tuple[str, ...] = ()) -> None:
    for f in sorted(folder.iterdir()):
        if f.name not in skip:
            s3.client().put_object(Bucket=bucket, Key=f"{prefix}/{f.name}", Body=f.read_bytes())


def _checkpoint(tmp: Path, step: int) -> Path:
    return save_checkpoint(
        tmp / f"local-{step}", step=step, recipe_state={"w": torch.full((3,), float(step))},
        export=({"family": "toy"}, {"w": torch.zeros(2)}), config={"name": "t"},
    )  # fmt: skip


def test_newest_verified_on_s3_skips_incomplete_and_tampered(s3, tmp_path):
    from ganpipe.errors import CheckpointError
    from ganpipe.train.storage import local_copy, newest_verified_remote

    uri = s3.bucket("ckpt-test") + "/runs/r1"
    for step in (10, 20, 30, 40):
        _upload(s3, "ckpt-test", f"runs/r1/checkpoint_{step:03d}", _checkpoint(tmp_path, step), skip=("meta.json",) if step == 40 else ())
    # step 40: no meta.json (upload cut short); step 30: a file changed after its digest
    s3.client().put_object(Bucket="ckpt-test", Key="runs/r1/checkpoint_030/state.pt", Body=b"tampered")
    found, step = newest_verified(uri)
    assert step == 20 and torch.load(found / "state.pt", weights_only=True)["recipe"]["w"].tolist() == [20.0] * 3
    assert newest_verified(s3.bucket("empty-test") + "/runs/none") is None
    # What rank 0 sends the other ranks, each on its own node: the URI, not its local copy.
    assert newest_verified_remote(uri)[1:] == (20, f"{uri}/checkpoint_020")

    cache = tmp_path / "cache"
    first = local_copy(f"{uri}/checkpoint_010", cache)
    assert first.parent == cache / "checkpoints" and (first / "meta.json").is_file()
    s3.client().delete_object(Bucket="ckpt-test", Key="runs/r1/checkpoint_010/state.pt")
    assert local_copy(f"{uri}/checkpoint_010", cache) == first  # from the cache, not the bucket
    try:
        local_copy(f"{uri}/checkpoint_030", cache)
    except CheckpointError as e:
        assert "could not fetch checkpoint" in str(e) and e.hint
    else:
        raise AssertionError("a tampered checkpoint was copied")
    assert sorted(p.name for p in (cache / "checkpoints").iterdir()) == [first.name]  # nothing half-copied left
