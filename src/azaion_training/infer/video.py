"""Reading sampled video frames, running an engine over them, and writing frames, all overlapped.

Three threads share the work, joined by bounded queues so that memory stays flat however long
the video is:

    reader thread   grab every frame, retrieve (decode to BGR) only every ``every``-th, cut it
                    into pieces (the whole frame letterboxed, or its tiles) and pack the pieces
                    of one or more frames into full engine inputs (`Packer`)  -> queue (2 batches)
    calling thread  ``engine.run``, then each piece's `postprocess` and the merge of a frame's
                    pieces (`Assembler`); yields a `FrameResult` per sampled frame
    writer thread   whatever the caller hands to a `BackgroundWriter` (drawing, encoding, showing)
                                                                        <- queue (8 items)

Still frames take the same path (`azaion_training.infer.frames`). Frame ``i`` is sampled when
``i % every == 0``; its time is the container's timestamp of that frame (so a variable frame
rate is timed right), or ``i * 1000 / fps`` ms where the container has none. The last batch is
flushed even when it is short: for an engine with a fixed batch it is padded with zero images and
their results are dropped. A video that ends before the frame count its container declares is
reported as incomplete (`VideoDetection.complete`).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Generic, TypeVar

import av
import cv2
import numpy as np

from azaion_training.errors import AzaionError, MediaError
from azaion_training.fs import atomic_move
from azaion_training.infer.engine import Engine
from azaion_training.infer.frames import Assembler, Batch, Packer
from azaion_training.infer.postprocess import Detections
from azaion_training.infer.tiles import OFF, TilePlan

logger = logging.getLogger(__name__)

_POLL_S = 0.1
T = TypeVar("T")


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video (``frame_count`` may be an estimate)."""

    width: int
    height: int
    fps: float
    frame_count: int


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its index in the video, its time and its pixels (``(h, w, 3)`` BGR)."""

    index: int
    time_ms: float
    image: np.ndarray


@dataclass(frozen=True)
class FrameResult:
    """A sampled frame and its detections (in the frame's pixels)."""

    frame: Frame
    detections: Detections


def open_video(path: Path) -> tuple[cv2.VideoCapture, VideoInfo]:
    """Opens a video for reading.

    Raises:
        MediaError: the file is missing, or OpenCV cannot open it as a video.
    """
    if Path(path).is_dir():
        raise MediaError(f"video {path} is a folder, not a video file")
    if not Path(path).is_file():
        raise MediaError(f"video {path} does not exist")
    capture = cv2.VideoCapture(str(path))
    info = VideoInfo(
        width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        fps=float(capture.get(cv2.CAP_PROP_FPS)),
        frame_count=max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0),
    )
    if not capture.isOpened() or info.width <= 0 or info.height <= 0:
        capture.release()
        raise MediaError(f"{path}: not a video OpenCV can decode (corrupt or unsupported format)")
    return capture, info


class FrameSampler:
    """Every ``every``-th frame of an open video; the frames between are grabbed, not retrieved.

    ``grab`` only advances the demuxer and decoder; the colour conversion and copy to a BGR array
    (``retrieve``) happen for sampled frames alone. `frames_read` counts every grabbed frame. A
    frame's time is its timestamp in the container (OpenCV's ``CAP_PROP_POS_MSEC`` right after
    its ``grab``); ``index * 1000 / fps`` only where the container gives none.
    """

    def __init__(self, capture: cv2.VideoCapture, *, every: int, fps: float) -> None:
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        self._capture = capture
        self._every = every
        self._fps = fps
        self.frames_read = 0

    def __iter__(self) -> Iterator[Frame]:
        while self._capture.grab():
            index = self.frames_read
            self.frames_read += 1
            if index % self._every:
                continue
            time_ms = self._time_ms(index)
            ok, image = self._capture.retrieve()
            if not ok or image is None:
                logger.warning("frame %d does not decode; skipped", index)
                continue
            yield Frame(index=index, time_ms=time_ms, image=image)

    def _time_ms(self, index: int) -> float:
        stamp = float(self._capture.get(cv2.CAP_PROP_POS_MSEC))
        if index > 0 and stamp <= 0 and self._fps > 0:  # a stream without timestamps
            return index * 1000.0 / self._fps
        return max(stamp, 0.0)


@dataclass(frozen=True)
class _Batch:
    batch: Batch[Frame]
    frames_read: int


@dataclass(frozen=True)
class _End:
    frames_read: int
    error: BaseException | None = None


class VideoDetection:
    """Runs an engine over the sampled frames of a video; iterate it for `FrameResult` values.

    Use it as a context manager: entering opens the video and starts the reader thread, leaving
    stops and joins it (also on errors and early exits).

    Args:
        source: the video file.
        engine: a loaded `Engine`; a fixed engine batch overrides ``batch``.
        every: sample every ``every``-th frame.
        batch: pieces (frames or tiles) per engine call when the engine takes any batch size.
        conf, iou: thresholds of `postprocess`.
        tiles: how frames are cut into engine inputs; whole frames by default.
        queue_size: engine inputs prepared ahead by the reader thread.

    Raises:
        MediaError: on entering, when the video cannot be opened or decodes to nothing.
    """

    def __init__(
        self,
        source: Path,
        engine: Engine,
        *,
        every: int,
        batch: int,
        conf: float,
        iou: float,
        tiles: TilePlan = OFF,
        queue_size: int = 2,
    ) -> None:
        self.source = Path(source)
        self._engine = engine
        self._every = every
        self.tiles = tiles
        self._packer: Packer[Frame] = Packer(engine, tiles, batch)
        self._assembler: Assembler[Frame] = Assembler(tiles, conf=conf, iou=iou)
        self.batch = self._packer.size
        self._queue: queue.Queue[_Batch | _End] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._capture: cv2.VideoCapture | None = None
        self._info: VideoInfo | None = None
        self.frames_read = 0
        self.frames_inferred = 0
        self.engine_calls = 0

    @property
    def info(self) -> VideoInfo:
        """The video's size, frame rate and frame count (once entered)."""
        if self._info is None:
            raise RuntimeError("use VideoDetection inside a with block")
        return self._info

    @property
    def complete(self) -> bool:
        """False when the video ended before the frame count its container declares."""
        declared = self.info.frame_count
        return declared <= 0 or self.frames_read >= declared

    @property
    def tile_size(self) -> tuple[int, int]:
        """``(h, w)`` of the pieces the video's frames are cut into (the frame size: whole)."""
        frame_hw = (self.info.height, self.info.width)
        return self.tiles.tile_size(frame_hw, self._engine.input_size)

    def __enter__(self) -> VideoDetection:
        self._capture, self._info = open_video(self.source)
        sampler = FrameSampler(self._capture, every=self._every, fps=self._info.fps)
        self._thread = threading.Thread(
            target=self._read, args=(sampler,), name="video-reader", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:  # unblock a reader waiting on a full queue
                self._queue.get_nowait()
        if self._thread is not None:
            self._thread.join()
        if self._capture is not None:
            self._capture.release()

    def __iter__(self) -> Iterator[FrameResult]:
        if self._thread is None:
            raise RuntimeError("use VideoDetection inside a with block")
        while True:
            item = self._queue.get()
            if isinstance(item, _End):
                self.frames_read = item.frames_read
                if item.error is not None:
                    raise item.error
                if self.frames_read == 0:
                    raise MediaError(f"{self.source}: no frame decodes (corrupt or empty video)")
                return
            rows = self._engine.run(item.batch.input)
            self.engine_calls += 1
            self.frames_read = item.frames_read
            for frame, detections in self._assembler.take(item.batch, rows):
                self.frames_inferred += 1
                yield FrameResult(frame=frame, detections=detections)

    def _read(self, sampler: FrameSampler) -> None:
        error: BaseException | None = None
        try:
            for frame in sampler:
                if self._stop.is_set():
                    return
                for batch in self._packer.add(frame, frame.image):
                    self._put(_Batch(batch=batch, frames_read=sampler.frames_read))
            for batch in self._packer.flush():
                self._put(_Batch(batch=batch, frames_read=sampler.frames_read))
        except AzaionError as exc:
            error = exc
        except Exception as exc:  # OpenCV raises cv2.error, numpy ValueError...
            error = MediaError(
                f"{self.source}: reading failed at frame {sampler.frames_read}: {exc}"
            )
            error.__cause__ = exc
        finally:
            self._put(_End(frames_read=sampler.frames_read, error=error))

    def _put(self, item: _Batch | _End) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue


class BackgroundWriter(Generic[T]):
    """Calls ``handle(item)`` for each `put` item on a thread of its own, behind a bounded queue.

    `put` blocks while ``queue_size`` items wait. An error in ``handle`` stops the thread and is
    raised again by the next `put` or by `close`. ``finish``, if given, runs last on the thread
    (for resources bound to it, such as a window). Use it as a context manager; leaving it drains
    the queue and joins the thread (on an error in the ``with`` body, without draining).
    """

    def __init__(
        self,
        handle: Callable[[T], None],
        *,
        finish: Callable[[], None] | None = None,
        queue_size: int = 8,
        name: str = "writer",
    ) -> None:
        self._handle = handle
        self._finish = finish
        self._queue: queue.Queue[tuple[T] | None] = queue.Queue(maxsize=queue_size)
        self._error: BaseException | None = None
        self._abort = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> BackgroundWriter[T]:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is not None:
            self._abort.set()
        self.close(raise_error=exc is None)

    def put(self, item: T) -> None:
        """Queues one item (blocks while the queue is full)."""
        while True:
            self._raise_error()
            try:
                self._queue.put((item,), timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def close(self, *, raise_error: bool = True) -> None:
        """Handles what is queued, stops the thread and joins it."""
        while self._thread.is_alive():
            try:
                self._queue.put(None, timeout=_POLL_S)
                break
            except queue.Full:
                continue
        self._thread.join()
        if raise_error:
            self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            while True:
                entry = self._queue.get()
                if entry is None or self._abort.is_set():
                    return
                self._handle(entry[0])
        except BaseException as exc:
            self._error = exc
            with contextlib.suppress(queue.Empty):
                while True:  # unblock a producer waiting on a full queue
                    self._queue.get_nowait()
        finally:
            if self._finish is not None:
                self._finish()


class VideoFile:
    """An MP4 (MPEG-4 part 2) written atomically: frames go to a dot-named file that is renamed
    on success.

    It is encoded with PyAV (FFmpeg), which keeps any frame size: OpenCV's writer rounds odd
    sizes down to even ones (a 1921x1081 video became 1920x1080).

    Args:
        path: the ``.mp4`` to write; its folder is created.
        fps: frame rate of the file.
        size_wh: ``(width, height)`` of every frame.

    Raises:
        MediaError: the encoder cannot be opened, or a frame has the wrong size.
    """

    CODEC = "mpeg4"

    def __init__(self, path: Path, *, fps: float, size_wh: tuple[int, int]) -> None:
        self.path = Path(path)
        self._temporary = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        self._fps = fps
        self._size_wh = size_wh
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None

    def __enter__(self) -> VideoFile:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._container = av.open(str(self._temporary), mode="w", format="mp4")
            stream = self._container.add_stream(
                self.CODEC, rate=Fraction(self._fps).limit_denominator(1001)
            )
            stream.width, stream.height = self._size_wh
            stream.pix_fmt = "yuv420p"
            stream.bit_rate = max(self._size_wh[0] * self._size_wh[1] * 4, 400_000)
            stream.codec_context.open()
            self._stream = stream
        except (av.FFmpegError, ValueError) as exc:
            self._abandon()
            raise MediaError(f"cannot write video {self.path}: {exc}") from exc
        return self

    def write(self, image: np.ndarray) -> None:
        """Appends one ``(h, w, 3)`` BGR frame."""
        if self._container is None or self._stream is None:
            raise RuntimeError("use VideoFile inside a with block")
        if (image.shape[1], image.shape[0]) != self._size_wh:
            raise MediaError(
                f"frame is {image.shape[1]}x{image.shape[0]}, video is {self._size_wh}"
            )
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        self._mux(self._stream.encode(frame))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is not None:
            self._abandon()
            return
        try:
            if self._stream is not None:
                self._mux(self._stream.encode(None))
            if self._container is not None:
                self._container.close()
        except av.FFmpegError as error:
            self._abandon()
            raise MediaError(f"cannot write video {self.path}: {error}") from error
        atomic_move(self._temporary, self.path)

    def _mux(self, packets: list[av.Packet]) -> None:
        assert self._container is not None
        try:
            self._container.mux(packets)
        except av.FFmpegError as exc:
            raise MediaError(f"cannot write video {self.path}: {exc}") from exc

    def _abandon(self) -> None:
        if self._container is not None:
            with contextlib.suppress(av.FFmpegError):
                self._container.close()
        self._container = self._stream = None
        self._temporary.unlink(missing_ok=True)


class PreviewWindow:
    """A live OpenCV window for ``--show``; it turns itself off, with one warning, where OpenCV
    raises instead of opening a window (a build without GUI support).

    Call `show` and `close` from one thread (OpenCV's GUI is not thread-safe). Check for a display
    before making one: OpenCV's Qt build aborts the process where there is none.
    """

    def __init__(self, title: str) -> None:
        self._title = title
        self._state: bool | None = None  # None: not tried yet; False: no window possible

    def show(self, image: np.ndarray) -> None:
        """Shows one ``(h, w, 3)`` BGR frame."""
        if self._state is False:
            return
        try:
            if self._state is None:
                cv2.namedWindow(self._title, cv2.WINDOW_NORMAL)
                self._state = True
            cv2.imshow(self._title, image)
            cv2.waitKey(1)
        except cv2.error as exc:
            self._state = False
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            logger.warning(
                "cannot open a window to show the video (%s); going on without it", reason
            )

    def close(self) -> None:
        if self._state:
            with contextlib.suppress(cv2.error):
                cv2.destroyWindow(self._title)
                cv2.waitKey(1)
        self._state = None
