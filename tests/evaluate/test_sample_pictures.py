"""Samples become a picture for every output kind: image grids, and scatter plots for the 2-D
toy family (logged to MLflow at each sample point and at evaluation)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from ganpipe.evaluate.figures import image_grid, sample_picture
from ganpipe.gans.toy import PREVIEW_POINTS, ToySampler
from ganpipe.models.toy import ToyGenerator


def test_points_become_a_scatter_plot_and_images_a_grid():
    pts = torch.randn(500, 2)
    pic = sample_picture(pts, real=torch.randn(200, 2) * 3)
    assert pic.dtype == np.uint8 and pic.ndim == 3 and pic.shape[2] == 3 and min(pic.shape[:2]) > 200
    blue = (pic[..., 2].astype(int) - pic[..., 0].astype(int)) > 60  # generated points are drawn in blue
    assert blue.sum() > 100
    imgs = torch.rand(4, 1, 8, 8) * 2 - 1
    assert np.array_equal(sample_picture(imgs), image_grid(imgs))
    with pytest.raises(ValueError, match="N x 2 points"):
        sample_picture(torch.zeros(3, 5))


def test_toy_preview_is_many_points():
    s = ToySampler({"family": "toy", "z_dim": 2, "params": {}}, ToyGenerator(2, 8, 1))
    assert s.preview(64, seed=0).shape == (PREVIEW_POINTS, 2)


def test_sink_logs_a_toy_sample_scatter_to_mlflow(tmp_path, caplog):
    from mlflow.tracking import MlflowClient

    from ganpipe.tracking.sink import MlflowSink

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("toy", artifact_location=str(tmp_path / "artifacts"))
    run = client.create_run(exp)
    sink = MlflowSink(uri, run.info.run_id)
    with caplog.at_level(logging.WARNING):
        sink.log_samples(torch.randn(PREVIEW_POINTS, 2), 100)
    assert "could not log sample grid" not in caplog.text
    assert [a.path for a in client.list_artifacts(run.info.run_id, "samples")] == ["samples/step_0000100.png"]
