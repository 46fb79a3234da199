"""`ganpipe` command line, one module per command group.

Each module adds its commands to the root `app` of `common` when imported; this package imports
them all so `ganpipe.cli:app` is complete.
"""

from __future__ import annotations

# Registration order is the order `ganpipe --help` lists them.
from ganpipe.cli import data, pipeline, train, generate, evaluate, model_registry, prefect  # noqa: F401,I001
from ganpipe.cli.common import app


def main() -> None:
    app()


__all__ = ["app", "main"]
