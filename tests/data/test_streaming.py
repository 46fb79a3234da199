"""`train.loader: stream`: batches read through Ray Data match the prepared split, epoch after
epoch, and a Ray Train run trains from them."""

from __future__ import annotations

import torch

from conftest import REPO
from ganpipe.project import Project
from ganpipe.data.loading import load_tensors
from ganpipe.data.streaming import StreamBatcher, parquet_dataset


def _rows(x: torch.Tensor) -> set[bytes]:
    return {bytes(r.numpy().tobytes()) for r in x.reshape(len(x), -1)}


def test_each_epoch_is_one_shuffled_pass_over_the_split(ray_session, digits8):
    train = load_tensors(digits8, "train")
    n, bs = len(train["image"]), 64
    per_epoch = n // bs  # drop_last: the remainder is left out of each epoch
    b = StreamBatcher(parquet_dataset(digits8), digits8, bs, seed=0, device=torch.device("cpu"))
    try:
        epochs = []
        for _ in range(2):
            batches = [b() for _ in range(per_epoch)]
            assert all(x["image"].shape == (bs, *train["image"].shape[1:]) and x["image"].dtype == torch.float32 for x in batches)
            images = torch.cat([x["image"] for x in batches])
            assert len(_rows(images)) == per_epoch * bs  # no row twice within an epoch
            assert _rows(images) <= _rows(train["image"])  # decoded exactly as the in-memory path decodes
            epochs.append(torch.cat([x["label"] for x in batches]))
        assert b.epoch == 1
        assert not torch.equal(epochs[0], epochs[1])  # a fresh shuffle each epoch
        assert float(images.min()) >= -1.0 and float(images.max()) <= 1.0
    finally:
        b.close()


def test_a_ray_train_run_trains_from_the_stream(ray_session, digits8, tmp_path):
    from ganpipe.config import load_config
    from ganpipe.train.driver import fit

    cfg = load_config(
        REPO / "configs/dcgan-digits.yaml",
        ["train.loader=stream", "train.steps=30", "train.batch_size=32", "train.log_every=10", "train.checkpoint_every=30",
         "train.sample_every=30", "data.image_size=8", "model.params.g_width=8", "model.params.d_width=8", "train.run_name=stream-test"],
    )
    res = fit(cfg, digits8, Project.load(tmp_path, env={}))
    assert res.metrics["step"] == 30 and res.metrics["images_per_s"] > 0
    assert (res.checkpoint / "meta.json").is_file()
