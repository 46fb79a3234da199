"""The MLflow model for a trained generator: a pyfunc that returns samples.

Input: a one-row DataFrame with `n` and `seed` (and optional `labels`, a list of class ids,
and `truncation`). Output: float32 array N x C x H x W in [-1, 1] (or N x 2 points).
The artifacts are the exported generator (`generator.pt`, tensors only) and its `spec.json`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

import mlflow.pyfunc

MAX_SAMPLES = 100_000


class GeneratorModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        from ganpipe.gans.base import sampler_from_export

        spec = json.loads(Path(context.artifacts["spec"]).read_text())
        state = torch.load(context.artifacts["generator"], map_location="cpu", weights_only=True)
        self.sampler = sampler_from_export(spec, state, "cuda" if torch.cuda.is_available() else "cpu")

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> np.ndarray:
        row = model_input.iloc[0]
        n = int(row["n"])
        if not 1 <= n <= MAX_SAMPLES:
            raise ValueError(f"n={n} is out of range 1..{MAX_SAMPLES}")
        kwargs: dict[str, Any] = {}
        if "labels" in model_input.columns and row["labels"] is not None:
            kwargs["labels"] = torch.as_tensor(list(row["labels"]), dtype=torch.long)
        if "truncation" in model_input.columns and row["truncation"] is not None:
            kwargs["truncation"] = float(row["truncation"])
        return self.sampler.generate(n, seed=int(row.get("seed", 0)), **kwargs).numpy().astype(np.float32)


def log_generator(run_id: str, checkpoint_dir: str | Path, name: str = "generator") -> str:
    """Log the checkpoint's exported generator as an MLflow model under `run_id`; returns its URI."""
    from mlflow.models import infer_signature

    from ganpipe.tracking.store import tracking_uri
    from ganpipe.train.checkpoint import verify

    ck = Path(checkpoint_dir)
    verify(ck)
    spec = json.loads((ck / "spec.json").read_text())
    example_in = pd.DataFrame({"n": [2], "seed": [0]})
    shape = (2, 2) if spec.get("output_kind") == "points" else (2, spec["channels"], spec["image_size"], spec["image_size"])
    signature = infer_signature(example_in, np.zeros(shape, dtype=np.float32))
    mlflow.set_tracking_uri(tracking_uri())
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=GeneratorModel(),
            artifacts={"generator": str(ck / "generator.pt"), "spec": str(ck / "spec.json")},
            signature=signature,
            pip_requirements=["ganpipe", "torch", "numpy", "pandas"],
        )
    return info.model_uri


def load_sampler(model_uri: str) -> Any:
    """The `Sampler` behind a registered model URI such as models:/NAME@champion."""
    from ganpipe.errors import GanpipeError
    from ganpipe.tracking.store import mask, tracking_uri

    mlflow.set_tracking_uri(tracking_uri())
    try:
        model = mlflow.pyfunc.load_model(model_uri)
    except Exception as e:
        raise GanpipeError(f"cannot load model {model_uri!r} from {mask(tracking_uri())}: {str(e)[:200]}", hint="check the name/alias with `ganpipe registry list`") from None
    return model.unwrap_python_model().sampler
