"""Shared test settings."""

import gc
import os
import sys
import threading

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("fast", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("slow", max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))


_LOADER_THREADS = {"_thread_loop", "_feed"}  # Paddle's loader thread, multiprocessing's queue feeder


@pytest.fixture(autouse=True)
def _settle_paddle_loader_threads():
    # Paddle's DataLoader leaves a `_thread_loop` thread that still frees tensors after the
    # loop ends. A DataLoader forked meanwhile (the next test) inherits Paddle's allocator
    # lock held, and its worker deadlocks on the first tensor it frees (seen: a worker's
    # QueueFeederThread in StatAllocator::FreeImpl). Let those threads finish between tests.
    yield
    if "paddle" not in sys.modules:
        return
    gc.collect()
    for t in threading.enumerate():
        target = getattr(t, "_target", None)
        if t is not threading.current_thread() and getattr(target, "__name__", "") in _LOADER_THREADS:
            t.join(timeout=30)
