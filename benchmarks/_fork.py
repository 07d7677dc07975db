"""One measurement in a forked child, so that the peak memory a benchmark reads is that
measurement's alone and nothing the parent built before it."""

import multiprocessing
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, TypeVar

Result = TypeVar("Result")


class ChildFailed(RuntimeError):
    """The child raised: its exception's class and message."""


def in_child(target: Callable[..., Result], *args: Any, timeout: float, what: str) -> Result:
    """``target(*args)`` in a forked child: its result, or ChildFailed with the child's
    error; RuntimeError naming ``what`` when it takes more than ``timeout`` seconds."""
    from django.db import connections

    connections.close_all()  # a database connection must not be shared across a fork
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_child_main, args=(send, target, *args))
    process.start()
    send.close()
    try:
        if not receive.poll(timeout):
            raise RuntimeError(f"{what} took more than {timeout:.0f} s")
        failed, result = receive.recv()
    finally:
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
    if failed:
        raise ChildFailed(result)
    return result


def _child_main(send: Connection, target: Callable[..., Any], *args: Any) -> None:
    from django.db import connections

    try:
        send.send((False, target(*args)))
    except Exception as exc:  # the parent raises it
        send.send((True, f"{exc.__class__.__name__}: {exc}"))
    finally:
        connections.close_all()
