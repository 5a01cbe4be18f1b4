"""Record the sent stream to a video file, off the sender's thread.

``Recording`` owns the file: it is written under a temporary name beside the target
(``engines.atomic.atomic_path``, checked before the session starts) and renamed into
place when the session ends, so the file only ever appears complete and playable; if
that rename fails, the recording is kept under a printed name instead of being lost.

Encoding runs on its own thread: the sender hands over each frame it sent (one per
output tick, repeats included, so the file plays at the session's real pace) by copying
it into one of a few preallocated slots. When the encoder has fallen so far behind that
every slot is still waiting, that frame is dropped from the file and counted, rather than
slowing the call.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from pathlib import Path

import numpy as np

from engines.atomic import atomic_path
from engines.errors import KdcamError
from vcam.live.readiness import ReadyToWrite
from vcam.media.video_writer import VideoWriter, codec_for

#: frames the encoder may lag behind the sender before frames are dropped from the file
DEPTH = 12



class Recording:
    """The session's recording: ``offer(frame)`` from the sender, encoding on its own thread.

    Use as a context manager around the session; leaving it finishes the encoding and puts
    the file in place (or keeps it under a printed name if that fails).
    """

    def __init__(self, path: Path, *, ready: ReadyToWrite, shape: tuple[int, int, int], fps: float,
                 depth: int = DEPTH) -> None:
        """``ready``: the session passed every check (``vcam.live.readiness``), so a file may now be written."""
        if not isinstance(ready, ReadyToWrite):
            raise TypeError("Recording needs the ReadyToWrite of a session that passed its checks")
        self.path = Path(path)
        self.fps = fps
        self.dropped = 0  # frames the sender offered while every slot was still waiting (sender thread)
        self._shape = shape
        self._slots = [np.empty(shape, np.uint8) for _ in range(depth)]
        self._free: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._full: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        for i in range(depth):
            self._free.put(i)
        self._stack: contextlib.ExitStack | None = None
        self._writer: VideoWriter | None = None
        self._thread = threading.Thread(target=self._encode, name="kdcam-record", daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> Recording:
        codec_for(self.path)
        height, width = self._shape[:2]
        with contextlib.ExitStack() as stack:  # a writer that does not open removes the temporary file
            tmp = stack.enter_context(atomic_path(self.path, what="recording", keep_on_failure=lambda: self.frames > 0))
            self._writer = stack.enter_context(
                VideoWriter(tmp, width=width, height=height, fps=self.fps, name=self.path)
            )
            self._stack = stack.pop_all()
        self._thread.start()
        return self

    def offer(self, frame: np.ndarray) -> None:
        """Hand one sent frame to the encoder (a copy into a free slot), or count it dropped."""
        try:
            index = self._free.get_nowait()
        except queue.Empty:
            self.dropped += 1
            return
        np.copyto(self._slots[index], frame)
        self._full.put(index)

    def _encode(self) -> None:
        try:
            while (index := self._full.get()) is not None:
                self._writer.write(self._slots[index])
                self._free.put(index)
        except BaseException as err:  # noqa: BLE001 - handed to the main thread at the end
            self.error = err

    @property
    def frames(self) -> int:
        return self._writer.frames if self._writer is not None else 0

    def __exit__(self, *exc_info) -> None:
        self._full.put(None)  # after every frame already offered
        self._thread.join()
        # no error: finalize the file and rename it into place; an error: the target stays as it was, and what
        # was recorded (if anything) is kept under a visible name
        self._stack.__exit__(*exc_info)
        if self.error is not None:
            raise KdcamError(f"recording to {self.path} failed: {self.error}")

    def summary(self) -> dict:
        return {
            "recorded": self.frames,
            "recorded_dropped": self.dropped,
            "recorded_seconds": self.frames / self.fps,
            "recording": str(self.path),
        }
