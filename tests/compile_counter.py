"""Counting XLA compilations in a test (JAX's own monitoring event, no library knob)."""

from __future__ import annotations

import contextlib

import jax
from jax._src import dispatch


@contextlib.contextmanager
def count_compilations():
    """``with count_compilations() as n: ...`` then ``n[0]`` is the number of backend compiles."""
    count = [0]

    def listener(event, duration, **kwargs):
        if event == dispatch.BACKEND_COMPILE_EVENT:
            count[0] += 1

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield count
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
