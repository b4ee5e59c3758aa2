"""What the augmentation workers' fork server loads before it serves: the worker module.

The fork server imports this module (see `runner`), and for it alone the module ignores SIGTERM:
a service manager stopping the daemon signals every process of the group, and the fork server
must outlive the daemon's warm stop (its workers, forked from it, report their exit through it
while they finish the annotations in hand). It exits by itself when the daemon exits. Any other
importer (a test run collecting every module, a tool) keeps its signals as they are.
"""

from __future__ import annotations

import signal
import sys

from azaion_training.augment import worker  # noqa: F401 - preloaded, so workers start fast


def _imported_by_the_fork_server() -> bool:
    """Whether ``multiprocessing.forkserver.main`` is importing this module (its preload)."""
    forkserver = sys.modules.get("multiprocessing.forkserver")
    if forkserver is None:
        return False
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is forkserver.main.__code__:
            return True
        frame = frame.f_back
    return False


if _imported_by_the_fork_server():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
