"""Logging and loading generators as MLflow models (see generator_model.py for the model)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import mlflow

MAX_SAMPLES = 100_000
MODEL_CODE = Path(__file__).with_name("generator_model.py")


def log_generator(store: Any, run_id: str, checkpoint_dir: str | Path, name: str = "generator") -> str:
    """Log the checkpoint's exported generator as an MLflow model under `run_id`; returns its URI."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, Schema, TensorSpec
    from mlflow.types.schema import Array

    from ganpipe.train.checkpoint import verify

    ck = Path(checkpoint_dir)
    verify(ck)
    spec = json.loads((ck / "spec.json").read_text())
    shape = (-1, 2) if spec.get("output_kind") == "points" else (-1, spec["channels"], spec["image_size"], spec["image_size"])
    cols = [
        ColSpec("long", "n"),
        ColSpec("long", "seed", required=False),
        ColSpec(Array(DataType.long), "labels", required=False),
        ColSpec("double", "truncation", required=False),
        ColSpec("string", "direction", required=False),
        ColSpec(Array(DataType.double), "inputs", required=False),
    ]
    signature = ModelSignature(inputs=Schema(cols), outputs=Schema([TensorSpec(np.dtype(np.float32), shape)]))
    example = {"n": [2], "seed": [0]}
    from ganpipe.gans.base import SAMPLERS

    if SAMPLERS.get(spec["family"]).needs_inputs:  # translators need an input image
        size = int(spec.get("in_channels", spec.get("channels", 1))) * int(spec["image_size"]) ** 2
        example["inputs"] = [[0.0] * size]
    with store.active(), mlflow.start_run(run_id=run_id), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=str(MODEL_CODE),
            artifacts={"generator": str(ck / "generator.pt"), "spec": str(ck / "spec.json")},
            signature=signature,
            input_example=pd.DataFrame(example),
            pip_requirements=["ganpipe", "torch", "numpy", "pandas"],
        )
    return info.model_uri


def load_sampler(store: Any, model_uri: str) -> Any:
    """The `Sampler` behind a model URI such as models:/NAME@champion."""
    from ganpipe.errors import GanpipeError
    from ganpipe.tracking.store import mask

    try:
        with store.active():
            model = mlflow.pyfunc.load_model(model_uri)
    except Exception as e:
        raise GanpipeError(f"cannot load model {model_uri!r} from {mask(store.uri)}: {mask(str(e))[:200]}", hint="check the name and alias with `ganpipe registry list`") from None
    return model.unwrap_python_model().sampler
