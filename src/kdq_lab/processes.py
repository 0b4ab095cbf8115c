"""Calls in spawned worker processes, a few at a time, with results in submission order; signals held back."""

from __future__ import annotations

import multiprocessing
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")


def map_in_processes(
    function: Callable[..., T],
    arguments: Sequence[tuple[Any, ...]],
    workers: int,
    on_result: Callable[[int, T], T] | None = None,
) -> list[T]:
    """``function(*args)`` for every tuple of ``arguments``, in up to ``workers`` spawned processes.

    Every call is submitted at once. ``on_result(i, result)`` runs here as each result arrives,
    in submission order, and returns the result to keep. An error or Ctrl-C, here or in a
    worker, terminates the pool; the pool is joined in every case.
    """
    if not arguments:
        return []
    pool = multiprocessing.get_context("spawn").Pool(processes=max(1, min(workers, len(arguments))))
    try:
        handles = [pool.apply_async(function, args) for args in arguments]
        results = []
        for i, handle in enumerate(handles):
            result = handle.get()
            results.append(on_result(i, result) if on_result is not None else result)
        pool.close()
        return results
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back until the block is done, then deliver the first one.

    For steps that must not be cut in half (replacing a stored copy). Only the main thread
    handles signals in Python; elsewhere the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}  # fmt: skip
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:
            signal.raise_signal(caught[0])
