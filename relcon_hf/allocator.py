# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Keep freed tensor memory in the process on Linux, so CPU steps do not pay page faults for every activation.

PyTorch's CPU tensors come from the C library's `malloc`. glibc serves large blocks (over 128 KiB by default, and
a threshold that adapts up to 32 MiB) with `mmap`, and returns them to the operating system with `munmap` when they
are freed. A training step of the `paper` encoder allocates gigabytes of activations. Each step then maps them
again, and the kernel zeroes every new 4 KiB page. On a 2-core Xeon that was five million page faults per step of
1,344 windows, and the forward pass took 27 s instead of 5 s (`benchmarks/stage2_naive.py`, docs/benchmarks.md).

[`retain_freed_memory`] raises glibc's mmap and trim thresholds with `mallopt`, so freed blocks stay in the heap and
the next step reuses them. The cost is resident memory: the process keeps its largest footprint instead of
returning it between steps. Set `RELCON_HF_RETAIN_FREED_MEMORY=0` to leave `malloc` as it is.
"""

import ctypes
import ctypes.util
import os
import platform

from transformers.utils import logging


logger = logging.get_logger(__name__)

# mallopt parameters from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# mallopt takes a C int, so 2 GiB - 1 is the largest threshold it accepts.
_MAX_THRESHOLD = 2**31 - 1
ENVIRONMENT_VARIABLE = "RELCON_HF_RETAIN_FREED_MEMORY"

_applied: bool | None = None


def retain_freed_memory() -> bool:
    """
    Make glibc keep freed blocks below 2 GiB for reuse instead of unmapping them. Idempotent.

    Does nothing off Linux, on C libraries other than glibc, or when the environment variable
    `RELCON_HF_RETAIN_FREED_MEMORY` is `0`.

    Returns:
        `bool`: whether the thresholds are raised in this process.
    """
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get(ENVIRONMENT_VARIABLE, "1").strip().lower() in ("0", "false", "no", "off"):
        logger.info(f"{ENVIRONMENT_VARIABLE}=0: leaving malloc's thresholds unchanged.")
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success and 0 when it rejects a value.
    if mallopt(_M_MMAP_THRESHOLD, _MAX_THRESHOLD) != 1 or mallopt(_M_TRIM_THRESHOLD, _MAX_THRESHOLD) != 1:
        logger.warning("glibc rejected the malloc thresholds; CPU steps may spend much of their time in page faults.")
        return False
    _applied = True
    logger.info(
        "Raised glibc's mmap and trim thresholds so freed tensor memory is reused (set "
        f"{ENVIRONMENT_VARIABLE}=0 to keep the defaults)."
    )
    return True
