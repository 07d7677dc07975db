"""Running a benchmark in a fresh interpreter (its name starts with _, so the runner does
not take it for a benchmark)."""

import multiprocessing
from collections.abc import Callable


def in_fresh_interpreter(name: str, target: Callable[[], None]) -> None:
    """``target`` in a new Python process: `python -m benchmarks` runs every benchmark in
    one process, and Django reads its settings from the environment only once, so a
    benchmark after another could not set its own."""
    child = multiprocessing.get_context("spawn").Process(target=target)
    child.start()
    child.join()
    if child.exitcode:
        raise SystemExit(f"{name}: the benchmark failed (exit code {child.exitcode})")
