"""The augmentation pass and the daemon loop around it.

A pass (`Augmenter.run_pass`) plans the work (`plan.plan_pass`), removes stale samples, and
hands each annotation to do to a pool of worker processes (`worker.make_samples`); finished
annotations are flushed to disk and recorded in the state in batches. Rejected annotations are
moved to ``data-corrupted/`` (`corrupted.quarantine`). Each pass ends with one summary line.

The queue consumer moves, edits and deletes annotations while a pass runs, and a source may be
hostile. So:

- before a source is handed out, its image's size is read from the header and checked against
  ``max_image_megapixels`` (an image bomb is quarantined without being decoded);
- when its samples are done, the source's stamp is checked again: if the queue changed or removed
  it meanwhile, the samples are discarded, and an edited source is made again in the same pass;
- a worker killed by the kernel (out of memory) breaks the pool: the pool is restarted, and the
  sources that were in hand are made one at a time, each in a pool of its own, so the one that
  kills its worker again is found and quarantined with the reason; the pass goes on;
- a label that cannot be read (EACCES, EIO) is an I/O failure, not a corrupt label: it is read
  once more, reported and retried at the next pass, never quarantined.

Stopping: the caller passes a `threading.Event` (the CLI sets it on SIGTERM/SIGINT through
`stop_on_signals`). Once it is set, no new annotation is handed out, the annotations in hand are
finished and recorded, and the pass returns; the daemon loop then ends. Every output is written
atomically, so a stop never leaves a partial sample visible.

Only one augmenter may work on a tree (or on one shard of it) at a time: `Augmenter` holds an
exclusive lock on ``data-processed/.augment.lock`` (``.augment.I-of-N.lock`` for shard I/N, with
its own state ``.augment-state.I-of-N.sqlite``) while it is open. Every augmenter also holds a
shared lock on ``.augment.shards-N.lock``, and refuses to start while an augmenter with another
shard count works on the tree (two layouts would make and remove the same files).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Generator, Iterator, KeysView, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import forkserver
from pathlib import Path

from tqdm import tqdm

from azaion_training.augment.pipeline import PIPELINE_VERSION, BoxDrops, BoxRules
from azaion_training.augment.plan import (
    Plan,
    Shard,
    Source,
    output_image_names,
    output_label_names,
    plan_pass,
    rescan,
)
from azaion_training.augment.state import STATE_FILE, Stamp, StateStore, recipe
from azaion_training.augment.worker import (
    Outcome,
    SampleJob,
    SampleResult,
    init_worker,
    make_samples,
)
from azaion_training.config import AugmentSettings
from azaion_training.corrupted import quarantine
from azaion_training.errors import (
    AzaionError,
    ConfigError,
    LabelError,
    MediaError,
    StorageError,
)
from azaion_training.fs import DataTree, sync_folders
from azaion_training.imageheader import check_pixels, image_size
from azaion_training.images import ToRGB
from azaion_training.labels import read_label
from azaion_training.locks import RoleLock, hold, is_held
from azaion_training.shutdown import shutdown_signals

logger = logging.getLogger(__name__)

LOCK_FILE = ".augment.lock"
_LAYOUT_LOCK = ".augment.shards-{count}.lock"
COMMIT_INTERVAL_S = 2.0
"""Longest time finished annotations wait before they are flushed and recorded."""
_POLL_S = 0.2


@dataclass(frozen=True)
class PassSummary:
    """The counts of one pass.

    ``sources`` counts usable annotations (made + unchanged + not reached before a stop);
    ``samples`` counts image/label pairs written.
    """

    sources: int
    made: int
    unchanged: int
    samples: int
    removed: int
    corrupted: int
    incomplete: int
    skipped: int
    failed: int
    seconds: float
    stopped: bool = False
    dropped: BoxDrops = field(default_factory=BoxDrops)
    """Boxes the variants dropped (SPEC 6): outside the image, or too thin."""

    @property
    def images_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        """The one summary line of the pass."""
        ending = ", stopped early" if self.stopped else ""
        return (
            f"augment pass: {self.sources} sources ({self.made} made, {self.unchanged} "
            f"unchanged), {self.samples} samples, {self.removed} stale removed, "
            f"{self.corrupted} corrupted, {self.incomplete} incomplete, {self.skipped} skipped, "
            f"{self.failed} failed, {self.seconds:.1f} s, {self.images_per_s:.1f} images/s; "
            f"variants dropped {self.dropped.outside} boxes mostly outside the image, "
            f"{self.dropped.thin} too thin{ending}"
        )


class Augmenter:
    """Makes the samples of a data tree; holds the tree's augment lock while open.

    Example:
        >>> with Augmenter(tree, settings.augment) as augmenter:  # doctest: +SKIP
        ...     print(augmenter.run_pass().line())

    Args:
        tree: the data tree.
        settings: the ``augment`` settings.
        shard: make only this shard's annotations (`azaion_training.augment.plan.Shard`).

    Raises:
        ConfigError: the source folder does not exist, or augmenters with another shard count
            work on the tree.
        BusyError: another augmenter holds the lock (of this shard); its PID is named.
        UnsafePathError: a lock file is a symbolic link (nothing is created at its target).
    """

    def __init__(
        self,
        tree: DataTree,
        settings: AugmentSettings,
        *,
        shard: Shard = Shard(),  # noqa: B008 - frozen
        to_rgb: ToRGB | None = None,
    ) -> None:
        if not tree.data.images.is_dir() or not tree.data.labels.is_dir():
            raise ConfigError(
                f"source folder {tree.data.path} has no images/ and labels/ "
                "(check AZAION_ROOT_DIR and AZAION_DATA_DIR)"
            )
        self.tree = tree
        self.settings = settings
        self.shard = shard
        self.to_rgb = to_rgb or ToRGB()
        tree.data_processed.create()
        tree.data_corrupted.create()
        self._locks = _shard_locks(tree.data_processed.path, shard)
        try:
            self._state = StateStore(tree.data_processed.path / _shard_file(STATE_FILE, shard))
        except BaseException:
            _release(self._locks)
            raise
        self._recipe = recipe(
            version=PIPELINE_VERSION,
            variants=settings.variants,
            box_rules=box_rules(settings),
            jpeg_quality=settings.jpeg_quality,
            to_rgb=self.to_rgb,
        )
        self._context = _context()
        self._pending: list[tuple[str, Stamp]] = []
        self._last_flush = time.monotonic()
        self._queue: deque[Source] = deque()
        self.redone = 0
        """Sources made again because the queue changed them while they were being made."""

    @property
    def workers(self) -> int:
        """Worker processes: the setting, else the CPUs this process may use."""
        return self.settings.workers or _cpu_count()

    def run_pass(
        self, *, stop: threading.Event | None = None, progress: bool | None = None
    ) -> PassSummary:
        """One pass over the source folder (see the module); returns its summary.

        Args:
            stop: once set, the pass finishes the annotations in hand and returns.
            progress: show a progress bar; ``None`` shows it only on a terminal.

        Raises:
            StorageError: the tree or the state cannot be written (disk full, I/O error): the
                pass stopped; what was made and recorded stays, the rest is made next pass.
        """
        try:
            return self._pass(stop=stop, progress=progress)
        except OSError as exc:
            self._pending = []  # not durable: made again next pass
            where = f" ({exc.filename})" if exc.filename else ""
            raise StorageError(f"{exc.strerror or exc}{where}") from exc

    def _pass(self, *, stop: threading.Event | None, progress: bool | None) -> PassSummary:
        started = time.perf_counter()
        stop = stop or threading.Event()
        stamps = self._state.load()
        plan = plan_pass(
            self.tree.data,
            self.tree.data_processed,
            stamps,
            recipe=self._recipe,
            variants=self.settings.variants,
            shard=self.shard,
        )
        for name, reason in plan.skipped.items():
            logger.warning("skipping annotation %s: %s", name, reason)
        for name, (reason, image, label) in plan.unsafe.items():
            self._set_aside(name, reason, image, label)
        removed = self._remove_stale(plan, recorded=stamps.keys())
        counts = {outcome: 0 for outcome in Outcome}
        samples, dropped = 0, BoxDrops()
        for source, result in self._make(plan.todo, stop=stop, progress=progress):
            outcome = self._settle(source, result)
            if outcome is None:
                continue
            counts[outcome] += 1
            if outcome is Outcome.MADE:
                samples += result.samples
                dropped.add(result.dropped)
        self._flush()
        summary = PassSummary(
            sources=len(plan.sources) - counts[Outcome.CORRUPTED] - counts[Outcome.VANISHED],
            made=counts[Outcome.MADE],
            unchanged=plan.unchanged,
            samples=samples,
            removed=removed,
            corrupted=counts[Outcome.CORRUPTED] + len(plan.unsafe),
            incomplete=len(plan.incomplete),
            skipped=len(plan.skipped),
            failed=counts[Outcome.FAILED],
            seconds=time.perf_counter() - started,
            stopped=stop.is_set(),
            dropped=dropped,
        )
        logger.info("%s", summary.line())
        return summary

    def run_forever(self, *, stop: threading.Event, progress: bool | None = None) -> None:
        """Runs a pass every ``interval_s`` seconds until ``stop`` is set.

        A pass that fails (an unreadable folder, a full disk) is logged and tried again at the
        next interval; the daemon does not exit for it.
        """
        while not stop.is_set():
            try:
                self.run_pass(stop=stop, progress=progress)
            except AzaionError as exc:
                logger.error(
                    "augment pass stopped: %s; next try in %.0f s", exc, self.settings.interval_s
                )
            _sleep(self.settings.interval_s, stop=stop)
        logger.info("augment daemon stopped")

    def close(self) -> None:
        """Records what is pending and releases the lock."""
        self._flush()
        self._state.close()
        _release(self._locks)

    def __enter__(self) -> Augmenter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _make(
        self, todo: Sequence[Source], *, stop: threading.Event, progress: bool | None
    ) -> Iterator[tuple[Source, SampleResult]]:
        """Runs the annotations of ``todo`` (and those `_settle` sends back) on a pool of
        workers; yields each with its result. A pool broken by a killed worker is replaced,
        and the sources it held are made one at a time (see the module)."""
        self._queue = deque(todo)
        suspects: deque[Source] = deque()
        with tqdm(
            total=len(todo),
            unit="annotation",
            desc="augment",
            disable=None if progress is None else not progress,
        ) as bar:
            while (self._queue or suspects) and not stop.is_set():
                if suspects:
                    source = suspects.popleft()
                    bar.update()
                    yield source, self._alone(source)
                    continue
                suspects.extend((yield from self._pool(stop=stop, bar=bar)))
                if suspects:
                    logger.error(
                        "a worker process died; making the %d annotations it may have held "
                        "one at a time",
                        len(suspects),
                    )
        if stop.is_set():
            left = len(self._queue) + len(suspects)
            logger.info("stopped: %d annotations left for the next pass", left)

    def _pool(
        self, *, stop: threading.Event, bar: tqdm
    ) -> Generator[tuple[Source, SampleResult], None, list[Source]]:
        """Feeds ``self._queue`` to one pool; returns the sources in hand if the pool broke."""
        workers = max(1, min(self.workers, len(self._queue)))
        pending: dict[Future[SampleResult], Source] = {}
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=self._context, initializer=init_worker
        ) as pool:
            while True:
                while not stop.is_set() and len(pending) < 2 * workers and self._queue:
                    source = self._queue.popleft()
                    refused = self._check_image(source)
                    if refused is not None:
                        bar.update()
                        yield source, refused
                        continue
                    pending[pool.submit(make_samples, self._job(source))] = source
                if not pending:
                    return []
                done, _ = wait(pending, timeout=_POLL_S, return_when=FIRST_COMPLETED)
                if any(isinstance(f.exception(), BrokenProcessPool) for f in done):
                    broken = []
                    for future, source in pending.items():
                        if future.done() and future.exception() is None:
                            bar.update()
                            yield source, future.result()
                        else:
                            broken.append(source)
                    return broken
                for future in done:
                    source = pending.pop(future)
                    bar.update()
                    yield source, _result(future, source)

    def _alone(self, source: Source) -> SampleResult:
        """Makes one source in a pool of its own; a worker that dies quarantines the source."""
        with ProcessPoolExecutor(
            max_workers=1, mp_context=self._context, initializer=init_worker
        ) as pool:
            future = pool.submit(make_samples, self._job(source))
            wait([future])
            if isinstance(future.exception(), BrokenProcessPool):
                return SampleResult(
                    source.name,
                    Outcome.CORRUPTED,
                    reason="its worker process was killed (out of memory or a signal) while "
                    "making its samples",
                )
            return _result(future, source)

    def _check_image(self, source: Source) -> SampleResult | None:
        """A result for a source whose image header is too large or unreadable, else None."""
        try:
            size = image_size(source.image)
        except MediaError:
            return SampleResult(source.name, Outcome.CORRUPTED, reason="image does not decode")
        except FileNotFoundError as exc:
            return SampleResult(source.name, Outcome.VANISHED, reason=str(exc))
        except OSError as exc:
            return SampleResult(source.name, Outcome.FAILED, reason=f"cannot read image: {exc}")
        try:
            check_pixels(size, max_megapixels=self.settings.max_image_megapixels)
        except MediaError as exc:
            return SampleResult(source.name, Outcome.CORRUPTED, reason=str(exc))
        return None

    def _job(self, source: Source) -> SampleJob:
        return SampleJob(
            name=source.name,
            image=source.image,
            label=source.label,
            output=self.tree.data_processed,
            variants=self.settings.variants,
            rules=box_rules(self.settings),
            jpeg_quality=self.settings.jpeg_quality,
            to_rgb=self.to_rgb,
        )

    def _settle(self, source: Source, result: SampleResult) -> Outcome | None:
        """Acts on one result in the main process: record it, redo it, or reject the annotation;
        returns the outcome to count (``None`` for a source sent back to be made again)."""
        if result.outcome is Outcome.MADE:
            if not _still(source):
                return self._discard(source)
            self._pending.append((source.name, source.stamp))
            if time.monotonic() - self._last_flush >= COMMIT_INTERVAL_S:
                self._flush()
        elif result.outcome is Outcome.CORRUPTED:
            unreadable = _unreadable_label(source) if result.reason.startswith("invalid") else None
            if unreadable is not None:
                logger.error("annotation %s: %s; tried again next pass", source.name, unreadable)
                return Outcome.FAILED
            self._reject(source, result.reason)
        elif result.outcome is Outcome.FAILED:
            logger.error("annotation %s: %s", source.name, result.reason)
        else:
            logger.info("annotation %s vanished while in the queue: %s", source.name, result.reason)
        return result.outcome

    def _discard(self, source: Source) -> Outcome | None:
        """The source changed while its samples were made: they go, and it is made again if it
        is still a complete source."""
        self._remove_samples(source)
        fresh = rescan(source)
        if fresh is None:
            logger.info("annotation %s left while being made; its samples removed", source.name)
            return Outcome.VANISHED
        logger.info("annotation %s changed while being made; making it again", source.name)
        self.redone += 1
        self._queue.append(fresh)
        return None

    def _reject(self, source: Source, reason: str) -> None:
        if not _still(source):
            logger.info("annotation %s changed while being checked; retrying later", source.name)
            return
        logger.warning("annotation %s rejected: %s", source.name, reason)
        quarantine(
            self.tree.data_corrupted,
            name=source.name,
            image=source.image,
            label=source.label,
            reason=reason,
            component="azaion-augment",
        )
        self._remove_samples(source)
        self._state.forget([source.name])
        self._state.commit()

    def _set_aside(self, name: str, reason: str, image: Path | None, label: Path | None) -> None:
        """Quarantines a source with a symbolic link or special file, never reading it."""
        with contextlib.suppress(FileNotFoundError):
            quarantine(
                self.tree.data_corrupted,
                name=name,
                image=image,
                label=label,
                reason=reason,
                component="azaion-augment",
            )
            logger.warning("rejected annotation %s: %s", name, reason)

    def _remove_samples(self, source: Source) -> None:
        output, variants = self.tree.data_processed, self.settings.variants
        for name in output_image_names(source.name, source.extension, variants=variants):
            (output.images / name).unlink(missing_ok=True)
        for name in output_label_names(source.name, variants=variants):
            (output.labels / name).unlink(missing_ok=True)

    def _flush(self) -> None:
        """Makes the finished samples durable, then records their stamps (in that order)."""
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        sync_folders((self.tree.data_processed.images, self.tree.data_processed.labels))
        self._state.record(self._pending)
        self._state.commit()
        self._pending = []

    def _remove_stale(self, plan: Plan, *, recorded: KeysView[str]) -> int:
        """Deletes the stale files of ``plan`` and forgets the sources that are gone."""
        for path in plan.stale:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._state.forget(recorded - plan.sources.keys())
        self._state.commit()
        if plan.stale:
            logger.info("removed %d stale samples", len(plan.stale))
        return len(plan.stale)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event that the first SIGTERM or SIGINT sets, for the block (main thread only).

    Whoever loops checks it and winds down (a warm stop); a second signal raises
    `KeyboardInterrupt` (stop at once); SIGUSR1 dumps every thread's stack
    (`azaion_training.shutdown`).
    """
    stop = threading.Event()
    with shutdown_signals(first=stop.set):
        yield stop


def augment_tree(
    tree: DataTree,
    settings: AugmentSettings,
    *,
    once: bool,
    stop: threading.Event,
    progress: bool | None = None,
    shard: Shard = Shard(),  # noqa: B008 - frozen
    to_rgb: ToRGB | None = None,
) -> PassSummary | None:
    """Runs one pass (``once``) or the daemon loop on ``tree`` (on its ``shard`` only);
    ``to_rgb`` is how images become the model's input (the ``images`` settings).

    Returns:
        The summary of the pass with ``once``; ``None`` after the loop is stopped.
    """
    with Augmenter(tree, settings, shard=shard, to_rgb=to_rgb) as augmenter:
        if once:
            return augmenter.run_pass(stop=stop, progress=progress)
        augmenter.run_forever(stop=stop, progress=progress)
        return None


def _result(future: Future[SampleResult], source: Source) -> SampleResult:
    """The worker's result; an error it raised (an I/O error reading the image) is a failure
    of this source, tried again next pass."""
    try:
        return future.result()
    except BrokenProcessPool:
        raise
    except FileNotFoundError as exc:
        return SampleResult(source.name, Outcome.VANISHED, reason=str(exc))
    except Exception as exc:
        logger.debug("annotation %s failed in its worker", source.name, exc_info=True)
        return SampleResult(source.name, Outcome.FAILED, reason=f"{type(exc).__name__}: {exc}")


def _unreadable_label(source: Source) -> str | None:
    """Why the label of ``source`` cannot be read (an I/O error, read twice), or None when it
    reads (then the worker's "invalid label" stands, unless this read finds it valid)."""
    try:
        read_label(source.label)
    except LabelError as exc:
        cause = exc.__cause__
        if isinstance(cause, OSError) and not isinstance(cause, FileNotFoundError):
            return f"cannot read its label ({errno.errorcode.get(cause.errno or 0, '?')}): {cause}"
        return None
    return "its label could not be read a moment ago, now it reads"


def _still(source: Source) -> bool:
    """True when the source's files are still those that were planned."""
    try:
        image, label = source.image.stat(), source.label.stat()
    except FileNotFoundError:
        return False
    stamp = source.stamp
    return (image.st_mtime_ns, image.st_size, label.st_mtime_ns, label.st_size) == (
        stamp.image_mtime_ns,
        stamp.image_size,
        stamp.label_mtime_ns,
        stamp.label_size,
    )


def _shard_file(name: str, shard: Shard) -> str:
    """``name`` for the whole tree; ``.augment-state.I-of-N.sqlite`` style for a shard."""
    if shard.whole:
        return name
    stem, dot, extension = name.rpartition(".")
    return f"{stem}.{shard.label}{dot}{extension}"


def _shard_locks(folder: Path, shard: Shard) -> list[RoleLock]:
    """The shard's own exclusive lock, then a shared lock on its shard count's layout lock;
    refuses while a layout with another count is held (checked after taking ours, so two that
    start together with different counts both refuse rather than both run). Both through
    `locks.hold`: a planted link is refused, never followed."""
    held = [hold(folder / _shard_file(LOCK_FILE, shard), role=_role(shard))]
    try:
        layout = folder / _LAYOUT_LOCK.format(count=shard.count)
        held.append(hold(layout, role="azaion-augment", shared=True))
        for other in sorted(folder.glob(_LAYOUT_LOCK.format(count="*"))):
            if other != layout and is_held(other):
                raise ConfigError(
                    f"azaion-augment with another shard count works on this tree ({other} is "
                    f"held); every shard of a tree must use the same N in --shard I/N"
                )
    except BaseException:
        _release(held)
        raise
    return held


def _role(shard: Shard) -> str:
    return (
        "azaion-augment" if shard.whole else f"azaion-augment of shard {shard.index}/{shard.count}"
    )


def _release(locks: Sequence[RoleLock]) -> None:
    for lock in reversed(locks):
        lock.release()


def _context() -> multiprocessing.context.BaseContext:
    """The start method of the workers: a fork server where there is one, else spawn.

    Plain fork is unsafe here: a child forked from a process whose OpenCV thread pool has run
    hangs in its first parallel OpenCV call. The fork server is a fresh process that imports the
    worker module once and forks every worker from there; it is started now, so its imports
    overlap with the planning of the first pass, and it serves every later pass.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["azaion_training.augment._forkserver"])
    forkserver.ensure_running()
    return context


def _cpu_count() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _sleep(seconds: float, *, stop: threading.Event) -> None:
    """Sleeps until ``seconds`` pass or ``stop`` is set (polling: safe with signal handlers)."""
    deadline = time.monotonic() + seconds
    while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(_POLL_S, left))


def box_rules(settings: AugmentSettings) -> BoxRules:
    """The box rules of SPEC 6 from the ``augment`` settings."""
    return BoxRules(
        min_visible_fraction=settings.min_visible_fraction, min_box_px=settings.min_box_px
    )
