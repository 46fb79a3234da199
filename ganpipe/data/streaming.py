"""Training batches streamed from the Parquet shards through Ray Data (`train.loader: stream`).

For splits larger than a worker's memory: rows are read batch by batch, kept as stored (images
uint8) until they reach the device and converted there as the in-memory `Batcher` converts them, each epoch one pass over the worker's shard with a seeded local
shuffle buffer. A background thread keeps decoded batches ready and opens the next epoch as
soon as the current one is read, so Ray Data's start-up of each epoch (a few seconds on 2
cores) overlaps training instead of stalling it.
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path
from typing import Any

import torch

from ganpipe.data.loading import load_manifest, table_to_numpy, to_model_inputs
from ganpipe.errors import DataError

def arrow_collate(schema: dict[str, Any]) -> Any:
    """Ray Data collate: an Arrow batch of prepared rows -> tensors as stored (images uint8
    N x H x W x C; `to_model_inputs` converts them on the device).

    An `ArrowBatchCollateFn` receives the batch as a pyarrow.Table, so image bytes are viewed
    straight from the Arrow buffers (a plain callable would get numpy object arrays of bytes);
    each column is copied once out of them, as the batch outlives the Arrow table.
    """
    from ray.data.collate_fn import ArrowBatchCollateFn

    class DecodeArrow(ArrowBatchCollateFn):
        def __call__(self, batch: Any) -> dict[str, torch.Tensor]:
            return {k: torch.from_numpy(v.copy()) for k, v in table_to_numpy(batch, schema).items()}

    return DecodeArrow()


def parquet_dataset(data_dir: str | Path, split: str = "train") -> Any:
    """A Ray Data dataset over one split's shards (read lazily, by Ray Data's workers)."""
    import ray.data

    files = sorted(str(p) for p in Path(data_dir).glob(f"{split}-*.parquet"))
    if not files:
        raise DataError(f"no '{split}' shards in {data_dir}", hint="prepare the data again")
    return ray.data.read_parquet(files)


class StreamBatcher:
    """`NextBatch` over a Ray Data dataset or a Ray Train dataset shard, endless over epochs."""

    def __init__(self, dataset: Any, data_dir: str | Path, batch_size: int, seed: int, device: torch.device, prefetch: int = 16):
        m = load_manifest(data_dir)
        self.rows = int(m["counts"]["train"])
        self.dataset, self.bs, self.seed, self.device = dataset, batch_size, seed, device
        self.collate = arrow_collate(m["schema"])
        self.shuffle_rows = min(16 * batch_size, max(self.rows, 1))
        self.epoch = 0
        if self.rows < 200 * batch_size:
            logging.getLogger("ganpipe").warning(
                "train.loader=stream on a %d-row split: each epoch is shorter than Ray Data's start-up of a pass, "
                "so streaming is slower than the training step here; train.loader=memory suits a split that fits in memory",
                self.rows,
            )
        self._q: queue.Queue[Any] = queue.Queue(maxsize=prefetch)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="ganpipe-stream", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            epoch = 0
            while not self._stop.is_set():
                got = 0
                for batch in self.dataset.iter_torch_batches(
                    batch_size=self.bs,
                    collate_fn=self.collate,
                    drop_last=True,
                    local_shuffle_buffer_size=self.shuffle_rows,
                    local_shuffle_seed=self.seed + epoch,
                    prefetch_batches=2,
                ):
                    got += 1
                    if not self._put((epoch, batch)):
                        return
                if got == 0:
                    raise DataError(
                        f"the streamed training shard has fewer than batch_size={self.bs} rows",
                        hint="lower train.batch_size or use train.loader=memory",
                    )
                epoch += 1
        except BaseException as e:  # noqa: BLE001 - handed to the training thread, which raises it
            self._put(e)

    def __call__(self) -> dict[str, torch.Tensor]:
        while True:
            try:
                item = self._q.get(timeout=1.0)
                break
            except queue.Empty:
                if self._stop.is_set() or not self._thread.is_alive():
                    raise DataError("the streaming reader has stopped", hint="see the error logged before this one") from None
        if isinstance(item, BaseException):
            self.close()
            if isinstance(item, DataError):
                raise item
            raise DataError(f"streaming the training data failed: {type(item).__name__}: {item}") from item
        self.epoch, batch = item
        return to_model_inputs({k: v.to(self.device, non_blocking=True) for k, v in batch.items()})

    def close(self, timeout: float = 10.0) -> None:
        """Stop the reader thread (it exits at its next batch, or at once when the queue is full)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
