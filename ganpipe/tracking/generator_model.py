"""The MLflow pyfunc model of a trained generator, logged as "models from code" (no pickle).

Input: a one-row DataFrame with `n` and `seed`, and optionally `labels` (list of class ids,
cycled to n), `truncation` (float), `direction` (AtoB|BtoA for translators) and `inputs`
(list of flattened C*H*W float images in [-1, 1] for image-to-image models).
Output: float32 array N x C x H x W in [-1, 1], or N x 2 points for 2-D models.
The artifacts are the exported generator (`generator.pt`, tensors only) and `spec.json`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
import torch
from mlflow.models import set_model

MAX_SAMPLES = 100_000


def _present(row: pd.Series, col: str) -> bool:
    if col not in row.index:
        return False
    v = row[col]
    if v is None:
        return False
    if isinstance(v, float) and np.isnan(v):
        return False
    return True


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
        if _present(row, "labels"):
            kwargs["labels"] = torch.as_tensor(list(row["labels"]), dtype=torch.long)
        if _present(row, "truncation"):
            kwargs["truncation"] = float(row["truncation"])
        if _present(row, "direction"):
            kwargs["direction"] = str(row["direction"])
        if _present(row, "inputs"):
            s = self.sampler.spec
            arr = np.asarray(list(row["inputs"]), dtype=np.float32)
            kwargs["inputs"] = torch.from_numpy(arr.reshape(-1, s["channels"], s["image_size"], s["image_size"]))
        seed = int(row["seed"]) if _present(row, "seed") else 0
        return self.sampler.generate(n, seed=seed, **kwargs).numpy().astype(np.float32)


set_model(GeneratorModel())
