"""What the augmentation workers' fork server loads before it serves: the worker module.

Only that fork server imports this module (see `runner`); its one side effect is for it alone.
It ignores SIGTERM: a service manager stopping the daemon signals every process of the group,
and the fork server must outlive the daemon's warm stop (its workers, forked from it, report
their exit through it while they finish the annotations in hand). It exits by itself when the
daemon exits.
"""

from __future__ import annotations

import signal

from azaion_training.augment import worker  # noqa: F401 - preloaded, so workers start fast

signal.signal(signal.SIGTERM, signal.SIG_IGN)
