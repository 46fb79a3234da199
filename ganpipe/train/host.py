"""Process-level settings for a training process: how glibc's allocator keeps freed memory.

Why: a GAN step allocates and frees the same activation buffers every step. glibc's malloc
serves buffers above its mmap threshold (128 KiB, raised only as big blocks are freed) with
fresh mmaps, and hands the top of a heap back to the kernel once it exceeds the trim
threshold; either way the next step faults the same pages in again, zero-filled. In a thread
other than the main one (Ray Train runs the training function in one) the allocator uses a
per-thread arena whose heaps are trimmed or unmapped as they empty. Measured on a 2-core CPU
machine (`benchmarks/allocator.py`): 5k-18k page faults a second in DCGAN training by default,
none with the settings below, and more images a second.

The settings pin what glibc's own dynamic rule converges to: the largest mmap threshold it
would pick (32 MiB on 64-bit), and a trim threshold large enough that freed memory stays
mapped for the next step. The process keeps its high-water mark of heap memory, which the next
step reaches again anyway. Other C libraries (musl, macOS) are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

ENV = "GANPIPE_MALLOC_TUNING"  # "0": leave the C library's defaults alone

# mallopt(3) parameter numbers (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 32 * 2**20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
TRIM_THRESHOLD = 2**30
TOP_PAD = 64 * 2**20

_applied: bool | None = None


def wanted() -> bool:
    """This process's choice (GANPIPE_MALLOC_TUNING), which the driver hands to its workers."""
    return os.environ.get(ENV, "1") != "0"


def tune_allocator(enabled: bool | None = None) -> bool:
    """Apply the settings once per process; True when they are in effect (glibc, not opted out).

    `enabled`: the driver's choice on a cluster, whose workers do not see its environment
    (None: this process's own). Safe to call from any thread and more than once: the settings
    are process-wide and the first call decides."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if not (wanted() if enabled is None else enabled):
        return False
    libc = _glibc()
    if libc is None:
        return False
    ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    ok = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
    ok = libc.mallopt(M_TOP_PAD, TOP_PAD) == 1 and ok
    _applied = ok
    return ok


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # only glibc has it: mallopt's numbers are glibc's
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        return libc
    except (OSError, AttributeError):
        return None


def set_backend_flags(cudnn_benchmark: bool, tf32: bool) -> None:
    """cuDNN autotuning and TF32 for float32 matmuls and convolutions (`train.cudnn_benchmark`,
    `train.tf32`), process-wide. The worker calls it when it trains on CUDA; the flags are plain
    settings, so this runs (and is tested) anywhere. TF32 keeps float32's range with a 10-bit
    mantissa in tensor-core matmuls: about the precision bf16 autocast already accepts, and much
    faster on Ampere and newer.

    Set through `set_float32_matmul_precision` and `cudnn.allow_tf32`, which keep torch's newer
    per-backend `fp32_precision` view consistent: setting only `matmul.fp32_precision` makes
    `torch.get_float32_matmul_precision()` (which inductor calls) raise in torch 2.13."""
    import torch

    torch.backends.cudnn.benchmark = cudnn_benchmark
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    torch.backends.cudnn.allow_tf32 = tf32
