"""How the daemons stop: the first SIGTERM or SIGINT finishes the work in hand, a second stops at
once, and SIGUSR1 writes every thread's stack to stderr (for a daemon that seems stuck).

Used by the queue consumer (on its event loop) and the augmenter (plain signal handlers)::

    with shutdown_signals(first=consumer.stop, second=task.cancel, loop=loop):
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import logging
import signal
import sys
from collections.abc import Callable, Iterator

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
"""The signals that ask a daemon to stop."""


def raise_interrupt() -> None:
    """The usual "stop at once" of a synchronous daemon: `KeyboardInterrupt` in the main thread."""
    raise KeyboardInterrupt


@contextlib.contextmanager
def shutdown_signals(
    *,
    first: Callable[[], None],
    second: Callable[[], None] = raise_interrupt,
    loop: asyncio.AbstractEventLoop | None = None,
) -> Iterator[None]:
    """Installs the stop signals' handlers (and the SIGUSR1 stack dump) for the block.

    Args:
        first: called on the first stop signal: stop taking new work, finish what is in hand.
        second: called on every later one: stop at once.
        loop: the running event loop of an asyncio daemon (handlers run on it); ``None`` for
            plain handlers in the main thread.
    """
    received: list[int] = []

    def on_signal(signum: int, _frame: object = None) -> None:
        name = signal.Signals(signum).name
        received.append(signum)
        if len(received) == 1:
            logger.info("%s received: finishing the work in hand", name)
            first()
        else:
            logger.warning("second %s: stopping now", name)
            second()

    if loop is not None:
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, on_signal, signum)
    previous = {} if loop is not None else {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    dumping = _dump_stacks_on_sigusr1()
    try:
        yield
    finally:
        if dumping:
            faulthandler.unregister(signal.SIGUSR1)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if loop is not None:
            for signum in STOP_SIGNALS:
                loop.remove_signal_handler(signum)


def _dump_stacks_on_sigusr1() -> bool:
    """SIGUSR1 writes every thread's stack to stderr (POSIX only); True when registered."""
    stderr = sys.__stderr__
    if not hasattr(signal, "SIGUSR1") or stderr is None:
        return False
    try:
        faulthandler.register(signal.SIGUSR1, file=stderr, all_threads=True)
    except (ValueError, OSError, AttributeError):  # stderr without a file descriptor
        return False
    return True
