"""Rank 0's metric and sample logging from inside a training worker.

Metrics are buffered and sent in batches; if the tracking server goes away mid-run, training
continues, the buffer keeps everything, sending is retried at the next log point, and
whatever is still unsent at the end is written to a local JSONL file and reported.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch

from ganpipe.evaluate.figures import sample_picture

log = logging.getLogger(__name__)


class MlflowSink:
    def __init__(self, tracking_uri: str, run_id: str, spool_dir: str | None = None, max_buffer: int = 100_000):
        import os

        from mlflow.tracking import MlflowClient

        # A tracking server that goes away must not stall training for minutes of retries.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        self.client = MlflowClient(tracking_uri)
        self._skip = 0  # log points to wait before retrying after a failure (exponential back-off)
        self.run_id = run_id
        self.buffer: list = []
        self.max_buffer = max_buffer
        self.spool_dir = Path(spool_dir) if spool_dir else None
        self.failures = 0

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        self.buffer.extend(Metric(k, float(v), ts, step) for k, v in metrics.items())
        if len(self.buffer) > self.max_buffer:  # bound memory: spill the oldest points to disk
            self._spool(self.buffer[: len(self.buffer) - self.max_buffer])
            del self.buffer[: len(self.buffer) - self.max_buffer]
        if self._skip > 0:
            self._skip -= 1
            return
        self._send()

    def _send(self) -> bool:
        while self.buffer:
            chunk = self.buffer[:1000]
            try:
                self.client.log_batch(self.run_id, metrics=chunk, synchronous=True)
            except Exception as e:  # keep training; keep the data
                self.failures += 1
                self._skip = min(2**self.failures, 64)
                log.warning("MLflow log_batch failed (%s); %d metric points buffered", type(e).__name__, len(self.buffer))
                return False
            del self.buffer[: len(chunk)]
        self.failures = 0
        return True

    def log_samples(self, images: torch.Tensor, step: int) -> None:
        try:
            self.client.log_image(self.run_id, sample_picture(images), artifact_file=f"samples/step_{step:07d}.png")
        except Exception as e:
            log.warning("could not log sample grid at step %d: %s", step, e)

    def _spool(self, points: list) -> Path | None:
        if self.spool_dir is None or not points:
            return None
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        p = self.spool_dir / f"unsent-metrics-{self.run_id}.jsonl"
        with open(p, "a") as f:
            for m in points:
                f.write(json.dumps({"key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step}) + "\n")
        return p

    def flush(self) -> None:
        """Send what is buffered; what cannot be sent is written to the spool file and reported."""
        if self._send():
            return
        p = self._spool(self.buffer)
        log.error("%d metric points could not be sent to MLflow; saved to %s", len(self.buffer), p)
        self.unsent_file = p
