"""ganpipe: a GAN factory (DVC data -> Ray Train -> MLflow evaluation/registry, chained by Prefect)."""

__version__ = "0.1.0"
