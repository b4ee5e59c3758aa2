"""The annotation stream consumer: RabbitMQ stream in, data tree out (SPEC 5).

`AnnotationConsumer.handle` is the whole life of one stream entry: decode, route and apply, or
reject with a reason, then advance the position. `AnnotationConsumer.run` feeds it from the
stream through ``rstream`` and keeps going for months:

- it resumes after the last committed offset (``offset.yaml``), and after a lost connection
  from the last applied one;
- it never skips silently (SPEC 5.5). It subscribes at the stored offset itself and checks the
  message delivered there: written at another time than the one recorded, it belongs to another
  stream under the same name (deleted and re-created); none delivered within
  ``position_check_s`` means the position is past the stream's end. Either stops it with
  `PositionError` (exit 1), one line naming the choice of `Start` (``azaion-queue --from
  first|last|OFFSET``): it never follows a re-created stream on its own, since the data tree
  may already hold the new stream's first messages under the old offsets. Offsets that retention
  deleted before they were consumed (the first delivered offset is past the next expected one)
  are logged with the lost range and counted (`ConsumeStats.lost`), and consuming goes on;
- a lost connection (RabbitMQ restarted, network gone, stream deleted) is noticed through the
  client's close callback or a periodic probe, and it reconnects with exponential backoff
  (``reconnect_initial_s`` doubling up to ``reconnect_max_s``);
- `AnnotationConsumer.stop` (SIGTERM/SIGINT through `run_until_signalled`) finishes the message
  in hand, commits the position and returns;
- it is the only consumer of its root (`locks`): a second one exits at once naming the first;
- bad input never stops it: anything that goes wrong with one message (it does not decode, breaks
  a limit, names a file the file system refuses, or trips a bug) rejects that message with a
  reason. Only a failure of the data tree itself (disk full, I/O error, permissions) stops it,
  as a `QueueError` (exit 1), and then the position is never saved past a message whose files
  were not confirmed durable: a failed flush is not retried (see `durability`).

Messages are applied one at a time on the event loop, in stream order. What needs no file system
is done ahead, as entries arrive, over a bounded window held in arrival order (`_Ahead`):
decoding, the label rules and the image header on the event loop, and the image decode, the
largest part, on ``CHECK_WORKERS`` threads (``cv2`` releases the GIL while it decodes; pure
Python there would only fight the apply step for the GIL). The apply step takes entries from the
window's head, so the files, the catalogue and the position change exactly as without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from rstream import AMQPMessage, Consumer, ConsumerOffsetSpecification, MessageContext, OffsetType
from rstream import exceptions as rstream_errors
from rstream.recovery import BackOffRecoveryStrategy

from azaion_training.config import QueueSettings
from azaion_training.errors import MessageError, QueueError
from azaion_training.fs import DataTree
from azaion_training.locks import hold
from azaion_training.queue.catalogue import Catalogue
from azaion_training.queue.connection import connection_arguments
from azaion_training.queue.durability import WriteBatch
from azaion_training.queue.handlers import AnnotationRouter, Checked
from azaion_training.queue.messages import Annotation
from azaion_training.queue.offsets import FROM_CHOICES, Checkpointer, Position
from azaion_training.queue.rejects import RejectedFolder, one_line
from azaion_training.queue.wire import DecodeLimits, decode_message
from azaion_training.samples import DEFAULT_VARIANTS
from azaion_training.shutdown import shutdown_signals

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 30.0
"""How often a running consumer logs its counts."""

CHECK_WORKERS = 2
"""Threads that decode and check entries ahead of the in-order apply step."""

AHEAD_ENTRIES = 32
"""Most entries received and not yet applied (and at most ``max_body_bytes`` held by them,
decoded messages included)."""

_DETECTION_BYTES = 512
"""What one decoded detection is counted as in the window's byte budget (Python objects)."""

_REQUEST_TIMEOUT_S = 15.0
_FATAL_SERVER_ERRORS = (
    rstream_errors.AuthenticationFailure,
    rstream_errors.SASLAuthenticationFailureLoopback,
    rstream_errors.VirtualHostAccessFailure,
    rstream_errors.AccessRefused,
)
_CONNECTION_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    ConnectionError,
    rstream_errors.ServerError,
    rstream_errors.ClientError,
)


Start = Literal["first", "last"] | int
"""Where to start instead of the stored position: the stream's first message, only messages
published from now on, or a given offset (``azaion-queue --from``)."""


class PositionError(QueueError):
    """The stored position does not fit the stream (another stream, or past its end)."""


@dataclass
class ConsumeStats:
    """Counts of one run of the consumer."""

    applied: int = 0
    rejected: int = 0
    pruned: int = 0
    duplicates: int = 0
    missing: int = 0
    lost: int = 0
    connections: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def summary(self, position: int | None) -> str:
        """One readable line of counts."""
        handled = self.applied + self.rejected
        rate = handled / self.seconds if self.seconds > 0 else 0.0
        return (
            f"{self.applied} applied, {self.rejected} rejected ({self.pruned} old rejections "
            f"pruned from queue-rejected/), {self.duplicates} duplicate "
            f"deliveries skipped, {self.missing} names not found, {self.connections} connections, "
            f"{self.seconds:.1f} s ({rate:.0f} messages/s), position {position}"
            + (f", {self.lost} messages lost to the stream's retention" if self.lost else "")
        )


class AnnotationConsumer:
    """Consumes the annotation stream into a data tree.

    Args:
        settings: the ``queue`` settings (server, stream, commit batching, backoff).
        tree: the data tree; its folders are created.
        variants: augmented variants per annotation (to drop stale samples).
        start: where to start instead of the stored position (see `Start`).
    """

    def __init__(
        self,
        settings: QueueSettings,
        tree: DataTree,
        *,
        variants: int = DEFAULT_VARIANTS,
        start: Start | None = None,
    ) -> None:
        self.settings = settings
        self.tree = tree.create()
        self.writes = WriteBatch()
        self.router = AnnotationRouter(
            tree,
            self.writes,
            variants=variants,
            max_image_megapixels=settings.max_image_megapixels,
        )
        self.limits = DecodeLimits.of(settings)
        self.rejected = RejectedFolder(
            tree,
            self.writes,
            max_count=settings.rejected_max_count,
            max_bytes=settings.rejected_max_bytes,
        )
        self._pruned_before = self.rejected.pruned
        self.catalogue = Catalogue.for_tree(self.tree)
        self.writes.join(self.catalogue.commit)
        self.checkpoint = Checkpointer(
            tree.offset_file,
            stream=settings.stream,
            writes=self.writes,
            start=_start_position(start),
            every=settings.commit_every,
            interval_s=settings.commit_interval_s,
        )
        self.start = start
        self._expected = start if isinstance(start, int) else (0 if start is None else None)
        """The offset expected first when nothing was applied (``None``: unknown)."""
        self._chosen = isinstance(start, int)
        """The position is the operator's ``--from OFFSET`` and no message was applied yet."""
        self._check_at: int | None = None
        """The offset whose message must arrive (and match) before anything is applied."""
        self.stats = ConsumeStats()
        self._stop = asyncio.Event()
        self._failure: Exception | None = None
        self._pool: Executor | None = None

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """Asks the consumer to stop after the message in hand (safe to call more than once)."""
        if not self._stop.is_set():
            logger.info("stopping: finishing the message in hand, then saving the position")
        self._stop.set()

    def check(self, raw: bytes) -> Checked:
        """Decodes one stream entry and checks all that needs no file system (thread-safe).

        Raises:
            MessageError: the entry does not decode or breaks a rule (`AnnotationRouter.check`).
        """
        return self.router.check(decode_message(raw, self.limits))

    def stage(self, raw: bytes) -> tuple[Checked | Callable[[], Checked], int]:
        """`check` in two parts: all but the image decode now, and the call that finishes it
        (for a thread pool), or the result itself when nothing is left to decode; with about
        how many bytes the decoded message holds (a gzip body can be many times ``raw``)."""
        try:
            checked = self.router.check(decode_message(raw, self.limits), decode=False)
        except Exception as exc:  # raised again, in order, when the entry is applied
            return functools.partial(_raise, exc), 0
        message = checked.message
        held = len(checked.label) + sum(map(len, checked.names))
        if isinstance(message, Annotation):
            held += len(message.detections) * _DETECTION_BYTES
            if message.image is not None:
                finish = functools.partial(self.router.check_decodes, checked)
                return finish, held + len(message.image)
        return checked, held

    def handle(
        self,
        raw: bytes,
        offset: int,
        checked: Callable[[], Checked] | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Applies (or rejects) one stream entry and advances the position.

        A message at or before the last applied offset is a duplicate delivery and is skipped.

        Anything raised for this message other than an `OSError` of the tree rejects it.

        Args:
            raw: the entry's bytes.
            offset: its stream offset.
            checked: `check` of ``raw`` done ahead (a future's ``result``); by default it runs
                here.
            timestamp: the broker's chunk timestamp of the entry (recorded with the position).

        Raises:
            OSError: the data tree cannot be written; the position stays before this message.
        """
        applied = self.checkpoint.applied
        if applied is not None and offset <= applied:
            self.stats.duplicates += 1
            return
        expected = self._expected if applied is None else applied + 1
        if expected is not None and offset > expected:
            self._lost(expected, offset - 1)
        try:
            ready = self.check(raw) if checked is None else checked()
            message = ready.message
            self.catalogue.check_order(message)
            result = self.router.apply(ready)
        except MessageError as exc:
            self._reject(raw, offset, str(exc))
        except OSError:
            raise
        except Exception as exc:  # a bug must not stop the stream; the message is kept whole
            logger.exception("offset %d: unexpected error while applying", offset)
            self._reject(raw, offset, f"unexpected {type(exc).__name__}: {exc}")
        else:
            self.catalogue.record(message, offset=offset, missing=result.missing)
            self.stats.applied += 1
            self.stats.missing += len(result.missing)
            logger.debug(
                "offset %d: %s %d name(s), %d change(s)",
                offset,
                result.status.wire_name,
                len(result.names),
                result.changes,
            )
        self.checkpoint.advance(offset, timestamp)
        self._chosen = False

    def _lost(self, first: int, last: int) -> None:
        self.stats.lost += last - first + 1
        logger.error(
            "offsets %d-%d of stream %r were deleted by its retention before they were consumed: "
            "%d message(s) lost (raise the stream's max-length or max-age)",
            first,
            last,
            self.settings.stream,
            last - first + 1,
        )

    def _reject(self, raw: bytes, offset: int, reason: str) -> None:
        self.rejected.reject(offset=offset, raw=raw, reason=reason)
        self.stats.rejected += 1
        self.stats.pruned = self.rejected.pruned - self._pruned_before
        logger.warning("offset %d rejected: %s", offset, one_line(reason))

    async def run(self) -> ConsumeStats:
        """Consumes until `stop`; reconnects with backoff whenever the connection is lost.

        Raises:
            QueueError: the credentials were refused, or the data tree cannot be written.
            BusyError: another consumer runs on this root (it is left alone).
        """
        with hold(self.tree.lock_file("queue"), role="azaion-queue"):
            return await self._run()

    async def _run(self) -> ConsumeStats:
        backoff = self.settings.reconnect_initial_s
        logger.info(
            "consuming stream %r at %s:%d into %s, resuming after offset %s",
            self.settings.stream,
            self.settings.host,
            self.settings.port,
            self.tree.root,
            self.checkpoint.committed,
        )
        try:
            with ThreadPoolExecutor(CHECK_WORKERS, thread_name_prefix="queue-check") as pool:
                self._pool = pool
                await self._consume(backoff)
        finally:
            self._pool = None
            self._commit()
            logger.info("stopped: %s", self.stats.summary(self.checkpoint.committed))
        if isinstance(self._failure, QueueError):
            raise self._failure
        if self._failure is not None:
            raise QueueError(f"cannot write the data tree: {self._failure}") from self._failure
        return self.stats

    async def _consume(self, backoff: float) -> None:
        """Sessions until stopped or failed, with backoff between them."""
        while not self._stop.is_set():
            if await self._session():
                backoff = self.settings.reconnect_initial_s
            if self._stop.is_set() or self._failure is not None:
                break
            logger.warning("reconnecting in %.1f s", backoff)
            await self._sleep(backoff)
            backoff = min(backoff * 2, self.settings.reconnect_max_s)

    async def _session(self) -> bool:
        """One connection: subscribe and consume until stopped or lost; True if it subscribed."""
        lost = asyncio.Event()

        async def on_close(info: object) -> None:
            logger.warning("connection lost: %s", getattr(info, "reason", info))
            lost.set()

        consumer = Consumer(
            **connection_arguments(self.settings, name="azaion-queue"),
            heartbeat=self.settings.heartbeat_s,
            on_close_handler=on_close,
            recovery_strategy=BackOffRecoveryStrategy(False),  # we reconnect ourselves
        )
        assert self._pool is not None, "sessions run inside run()"
        ahead = _Ahead(
            self.stage, self._pool, entries=AHEAD_ENTRIES, max_bytes=self.settings.max_body_bytes
        )
        applier = asyncio.create_task(self._apply_ahead(ahead, lost))
        subscribed = False
        try:
            await asyncio.wait_for(self._subscribe(consumer, ahead, lost), _REQUEST_TIMEOUT_S)
            subscribed = True
            self.stats.connections += 1
            await self._watch(consumer, lost)
        except _FATAL_SERVER_ERRORS as exc:
            raise QueueError(f"RabbitMQ refused the connection: {type(exc).__name__}") from exc
        except rstream_errors.StreamDoesNotExist:
            logger.warning("stream %r does not exist (yet)", self.settings.stream)
        except _CONNECTION_ERRORS as exc:
            logger.warning(
                "cannot reach RabbitMQ at %s:%d: %s",
                self.settings.host,
                self.settings.port,
                one_line(f"{type(exc).__name__} {exc}"),
            )
        finally:
            applier.cancel()  # between two messages: `handle` never awaits
            ahead.close()  # what was not applied stays after the position
            with contextlib.suppress(asyncio.CancelledError):
                await applier
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.close(), _REQUEST_TIMEOUT_S)
        return subscribed

    async def _apply_ahead(self, ahead: _Ahead, lost: asyncio.Event) -> None:
        """Applies the entries checked ahead, in stream order, until stopped, lost or failed."""
        while not (self._stop.is_set() or lost.is_set()):
            raw, offset, checked, timestamp = await ahead.get()
            if self._stop.is_set() or lost.is_set():
                return  # not applied, so the position stays before it
            try:
                self.handle(raw, offset, checked.result, timestamp)
            except OSError as exc:
                logger.error("offset %d: cannot write the data tree: %s", offset, exc)
                self._fail(exc)
            except Exception as exc:  # outside one message's handling: the tree or a bug
                logger.exception("offset %d: cannot apply", offset)
                self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        self._failure = exc
        self._stop.set()

    async def _subscribe(self, consumer: Consumer, ahead: _Ahead, lost: asyncio.Event) -> None:
        await consumer.start()
        applied = self.checkpoint.applied
        if applied is None:
            kind = OffsetType.NEXT if self.start == "last" else OffsetType.FIRST
            offset = ConsumerOffsetSpecification(kind, None)
        elif self._chosen:  # chosen by the operator, nothing applied since: nothing to check
            offset = ConsumerOffsetSpecification(OffsetType.OFFSET, applied + 1)
        else:  # at the applied message itself, to check that it is still there
            self._check_at = applied
            offset = ConsumerOffsetSpecification(OffsetType.OFFSET, applied)

        async def on_message(raw: bytes | AMQPMessage, context: MessageContext) -> None:
            if self._stop.is_set() or lost.is_set():
                return  # not applied, so the position stays before it
            if self._check_at is not None and not self._position_fits(context):
                return
            applied = self.checkpoint.applied
            if applied is not None and context.offset <= applied:
                self.stats.duplicates += 1  # a duplicate delivery, not worth checking
                return
            await ahead.put(bytes(raw), context.offset, context.timestamp)

        await consumer.subscribe(self.settings.stream, on_message, offset_specification=offset)
        logger.info(
            "subscribed to %r from %s",
            self.settings.stream,
            f"offset {applied + 1}"
            if applied is not None
            else ("its end (new messages only)" if self.start == "last" else "its first message"),
        )

    def _position_fits(self, context: MessageContext) -> bool:
        """Checks the first entry delivered at the applied offset (see the module)."""
        at, self._check_at = self._check_at, None
        recorded = self.checkpoint.timestamp
        if context.offset == at and recorded is not None and context.timestamp != recorded:
            self._fail(
                PositionError(
                    f"stream {self.settings.stream!r} is not the one {self.tree.offset_file} was "
                    f"written for: its message at offset {at} was written at "
                    f"{_when(context.timestamp)}, not {_when(recorded)} (the stream was deleted "
                    f"and re-created); nothing was applied from it: restart with {FROM_CHOICES}"
                )
            )
            return False
        logger.info("position checked: offset %s is in stream %r", at, self.settings.stream)
        return True

    def _check_timed_out(self) -> None:
        applied = self.checkpoint.applied
        self._fail(
            PositionError(
                f"position {applied} ({self.tree.offset_file}) is past the end of stream "
                f"{self.settings.stream!r}: no message at offset {applied} within "
                f"{self.settings.position_check_s:.0f} s (the stream was deleted and re-created, "
                f"or emptied); nothing was applied from it: restart with {FROM_CHOICES}"
            )
        )

    async def _watch(self, consumer: Consumer, lost: asyncio.Event) -> None:
        """Commits on time, logs progress and probes the connection until stopped or lost."""
        tick = min(self.settings.commit_interval_s, self.settings.probe_interval_s, 1.0)
        last_probe = last_progress = subscribed = time.monotonic()
        seen = self.stats.applied + self.stats.rejected
        while not (self._stop.is_set() or lost.is_set()):
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(_first_of(self._stop, lost), tick)
            if not self._commit(due_only=True):
                return
            now = time.monotonic()
            if self._check_at is not None and now - subscribed >= self.settings.position_check_s:
                self._check_timed_out()
                return
            handled = self.stats.applied + self.stats.rejected
            if handled != seen:
                seen, last_probe = handled, now
            elif now - last_probe >= self.settings.probe_interval_s:
                last_probe = now
                await self._probe(consumer, lost)
            if now - last_progress >= PROGRESS_INTERVAL_S:
                last_progress = now
                logger.info("progress: %s", self.stats.summary(self.checkpoint.committed))

    def _commit(self, *, due_only: bool = False) -> bool:
        """Commits the position (when due, with ``due_only``); False when the tree failed.

        A commit's `OSError` is a failure of the data tree, never of the connection: it stops
        the consumer (exit 1), and the position stays where it was (see `durability`).
        """
        if self._failure is not None:
            return False
        try:
            if due_only:
                self.checkpoint.commit_if_due()
            else:
                self.checkpoint.commit()
        except OSError as exc:
            logger.error("cannot make the data tree durable: %s", exc)
            self._fail(exc)
            return False
        return True

    async def _probe(self, consumer: Consumer, lost: asyncio.Event) -> None:
        try:
            exists = await asyncio.wait_for(
                consumer.stream_exists(self.settings.stream), _REQUEST_TIMEOUT_S
            )
        except Exception as exc:  # any failure of the probe means the connection is unusable
            logger.warning("connection probe failed: %s", one_line(f"{type(exc).__name__} {exc}"))
            lost.set()
            return
        if not exists:
            logger.warning("stream %r is gone", self.settings.stream)
            lost.set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)


class _Ahead:
    """Stream entries checked ahead (`AnnotationConsumer.stage`; what is left on a thread
    pool), handed out in arrival order.

    Bounded: at most ``entries`` entries wait, holding at most ``max_bytes`` with their decoded
    messages (one always fits);
    `put` waits for room, which holds the stream client back. One producer (the stream
    client's callback) and one consumer (the apply step), both on the event loop.
    """

    def __init__(
        self,
        stage: Callable[[bytes], tuple[Checked | Callable[[], Checked], int]],
        pool: Executor,
        *,
        entries: int,
        max_bytes: int,
    ) -> None:
        self._stage, self._pool = stage, pool
        self._entries, self._max_bytes = entries, max_bytes
        self._waiting: deque[tuple[bytes, int, int | None, Future[Checked], int]] = deque()
        self._bytes = 0
        self._room, self._ready = asyncio.Event(), asyncio.Event()
        self._closed = False

    def _full(self, size: int) -> bool:
        return bool(self._waiting) and (
            len(self._waiting) >= self._entries or self._bytes + size > self._max_bytes
        )

    async def put(self, raw: bytes, offset: int, timestamp: int | None = None) -> None:
        """Starts checking ``raw`` once there is room (dropped, unapplied, after `close`)."""
        while self._full(len(raw)) and not self._closed:
            self._room.clear()
            await self._room.wait()
        if self._closed:
            return
        work, held = self._stage(raw)
        if isinstance(work, Checked):
            future: Future[Checked] = Future()
            future.set_result(work)
        else:
            future = self._pool.submit(work)
        size = len(raw) + held
        self._waiting.append((raw, offset, timestamp, future, size))
        self._bytes += size
        self._ready.set()

    async def get(self) -> tuple[bytes, int, Future[Checked], int | None]:
        """The oldest entry, once its check has finished (its ``result`` may raise).

        The loop is woken by a finished check only when it waits for one: behind a backlog the
        head's check is usually done already."""
        while not self._waiting:
            self._ready.clear()
            await self._ready.wait()
        raw, offset, timestamp, future, size = self._waiting[0]
        if not future.done():
            waiter = asyncio.wrap_future(future)
            await asyncio.wait([waiter])
            if not waiter.cancelled():
                waiter.exception()  # read here; `future.result` raises it again when applied
        self._waiting.popleft()
        self._bytes -= size
        self._room.set()
        return raw, offset, future, timestamp

    def close(self) -> None:
        """Drops every waiting entry and wakes a waiting `put`."""
        self._closed = True
        for *_, future, _ in self._waiting:
            future.cancel()  # a check already running finishes, unread
        self._waiting.clear()
        self._bytes = 0
        self._room.set()


def _start_position(start: Start | None) -> Position | None:
    """The `Checkpointer` start of a `Start`: before the first message, or before OFFSET."""
    if start is None:
        return None
    if isinstance(start, int):
        return Position(start - 1) if start > 0 else Position(-1)
    return Position(-1)


def _when(timestamp_ms: int) -> str:
    moment = dt.datetime.fromtimestamp(timestamp_ms / 1000, tz=dt.timezone.utc)
    return moment.isoformat(timespec="milliseconds")


def _raise(exc: Exception) -> Checked:
    raise exc


async def _first_of(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def run_until_signalled(consumer: AnnotationConsumer) -> ConsumeStats:
    """Runs the consumer on a new event loop; SIGTERM or SIGINT stop it warmly (`stop`).

    A second signal cancels the run; the position on disk is still consistent. SIGUSR1 dumps
    every thread's stack (`azaion_training.shutdown`).
    """

    async def main() -> ConsumeStats:
        task = asyncio.current_task()
        assert task is not None
        with shutdown_signals(first=consumer.stop, second=task.cancel, loop=task.get_loop()):
            return await consumer.run()

    return asyncio.run(main())
