"""The engine protocol, and the frame handling every engine shares.

``Engine`` is the whole public surface: one BGR uint8 frame in, one sharpened BGR uint8
frame out, with a ``strength`` blend. ``FrameEngine`` implements it once: input checks,
padding to the model's grid, buffers allocated once per frame size. Runtimes differ in
where the per-frame graph runs:

* ``DeltaEngine`` (the CPU runtimes): OpenCV makes the grey plane, the runtime runs the
  network and returns the sharpening delta as two uint8 planes, and OpenCV adds it with
  saturation (``engines.model.graphs.DeltaGraph``);
* ``engines.cuda_base.CudaFrameEngine`` (the GPU runtimes): the whole frame graph runs on
  the device, one upload and one download per frame (``engines.model.graphs.FrameGraph``).
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from engines.errors import KdcamError
from engines.foundation.values import parse_strength



@runtime_checkable
class Engine(Protocol):
    #: registry name, e.g. "onnxruntime"
    name: str

    def sharpen(self, frame: np.ndarray, *, strength: float = 1.0, out: np.ndarray | None = None) -> np.ndarray:
        """Sharpen one HxWx3 BGR uint8 frame (any H, W >= 1).

        ``strength`` blends between the input (0.0) and the full model (1.0); values up to
        2.0 extrapolate. The result is written into ``out`` when given (HxWx3 uint8,
        C-contiguous), else into a buffer the engine owns and reuses: that array is
        overwritten by the next call, so copy it (or pass ``out``) to keep it.
        """
        ...

    def describe(self) -> str:
        """One line: runtime, device, precision."""
        ...

    def close(self) -> None:
        """Release runtime resources. Idempotent."""
        ...



class FrameEngine:
    """Base class of every engine.

    Subclasses implement ``_process(frame, strength, out)`` on C-contiguous frames whose
    sides are multiples of the model's grid; this class pads other sizes (reflect,
    bottom and right, as the training code does) and crops back. Buffers are allocated
    when the frame size changes, never per frame.
    """

    name = ""

    def __init__(self, *, multiple: int) -> None:
        self._multiple = multiple
        self._size: tuple[int, int] | None = None

    def _process(self, frame: np.ndarray, strength: float, out: np.ndarray) -> None:
        raise NotImplementedError

    def _allocate(self, height: int, width: int) -> None:
        """Called once per grid-aligned frame size, before ``_process`` sees it."""

    def _resize(self, h: int, w: int) -> None:
        m = self._multiple
        self._pad = ((-h) % m, (-w) % m)
        ph, pw = self._pad
        self._padded_in = np.empty((h + ph, w + pw, 3), np.uint8) if ph or pw else None
        self._padded_out = np.empty((h + ph, w + pw, 3), np.uint8) if ph or pw else None
        self._out = np.empty((h, w, 3), np.uint8)
        # Reflect like torch's "reflect" (no edge repeat); replicate where a side is too
        # short to reflect.
        self._border = cv2.BORDER_REFLECT_101 if min(h, w) > max(ph, pw) else cv2.BORDER_REPLICATE
        self._allocate(h + ph, w + pw)
        self._size = (h, w)

    def sharpen(self, frame: np.ndarray, *, strength: float = 1.0, out: np.ndarray | None = None) -> np.ndarray:
        if not (isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3):
            got = (
                f"{frame.dtype} array of shape {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
            )
            raise KdcamError(f"engine input must be an HxWx3 uint8 BGR frame, got {got}")
        strength = parse_strength(strength, what="strength")
        h, w = frame.shape[:2]
        if self._size != (h, w):
            self._resize(h, w)
        result = self._out if out is None else out
        if out is not None and (out.shape != frame.shape or out.dtype != np.uint8 or not out.flags.c_contiguous):
            raise KdcamError(f"out buffer must be a contiguous {frame.shape} uint8 array, got {out.dtype} {out.shape}")
        if self._padded_in is not None:
            ph, pw = self._pad
            cv2.copyMakeBorder(frame, 0, ph, 0, pw, self._border, dst=self._padded_in)
            self._process(self._padded_in, strength, self._padded_out)
            np.copyto(result, self._padded_out[:h, :w])
        else:
            self._process(frame if frame.flags.c_contiguous else np.ascontiguousarray(frame), strength, result)
        return result

    def describe(self) -> str:
        return self.name

    def close(self) -> None:
        self._size = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class DeltaEngine(FrameEngine):
    """A CPU engine that runs the delta graph (see ``engines.model.graphs.DeltaGraph``).

    Per frame: grey conversion (luma students), the network, then ``frame + pos - neg``
    with OpenCV's saturating uint8 add and subtract. Subclasses implement
    ``_infer(planes, strength, pos, neg)``, writing into the two given buffers.
    """

    def __init__(self, *, multiple: int, luma: bool) -> None:
        super().__init__(multiple=multiple)
        self._luma = luma
        #: called with each frame's ``convert=`` and ``network=`` CPU seconds (a benchmark's profile), or None
        self.profile = None

    def _infer(self, planes: np.ndarray, strength: float, pos: np.ndarray, neg: np.ndarray) -> None:
        raise NotImplementedError

    def _allocate(self, height: int, width: int) -> None:
        plane = (height, width) if self._luma else (height, width, 3)
        self._pos, self._neg = np.empty(plane, np.uint8), np.empty(plane, np.uint8)
        if self._luma:
            self._grey = np.empty((height, width), np.uint8)
            self._pos3 = np.empty((height, width, 3), np.uint8)
            self._neg3 = np.empty((height, width, 3), np.uint8)

    def _process(self, frame: np.ndarray, strength: float, out: np.ndarray) -> None:
        clock = time.thread_time
        t0 = clock()
        planes = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY, dst=self._grey) if self._luma else frame
        t1 = clock()
        self._infer(planes, strength, self._pos, self._neg)
        t2 = clock()
        if self._luma:
            pos = cv2.cvtColor(self._pos, cv2.COLOR_GRAY2BGR, dst=self._pos3)
            neg = cv2.cvtColor(self._neg, cv2.COLOR_GRAY2BGR, dst=self._neg3)
        else:
            pos, neg = self._pos, self._neg
        cv2.add(frame, pos, dst=out)
        cv2.subtract(out, neg, dst=out)
        if self.profile is not None:
            self.profile(convert=t1 - t0 + clock() - t2, network=t2 - t1)
