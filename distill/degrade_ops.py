"""The building blocks of kdcam's degradations: blurs, noise, rescaling, codecs, and the
combinators that compose them (presets that use them are in ``distill.degrade``).

Every degradation is a callable ``(image, rng) -> image``: ``image`` is float32 HxWx3 BGR
in [0, 1], the output has the same shape and dtype and stays in [0, 1], and all randomness
comes from the ``numpy.random.Generator`` passed in, so one seed always gives the same
bytes. Parameters given as a ``(low, high)`` pair are drawn uniformly per call; a plain
number is used as is.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from engines.errors import KdcamError
from engines.pixels import to_float, to_uint

Range = float | tuple[float, float]

_INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos": cv2.INTER_LANCZOS4,
}


def _draw(value: Range, rng: np.random.Generator) -> float:
    """A number from ``value``: itself, or uniform in ``[low, high]`` for a pair."""
    if isinstance(value, tuple):
        low, high = value
        return float(low) if low == high else float(rng.uniform(low, high))
    return float(value)


def _pick(options: str | Sequence[str], rng: np.random.Generator) -> str:
    """One option: the string itself, or a uniform choice from a sequence of strings."""
    if isinstance(options, str):
        return options
    return options[int(rng.integers(len(options)))]


def _fmt(value: Range) -> str:
    if isinstance(value, tuple):
        return f"{value[0]:g}-{value[1]:g}"
    return f"{value:g}"


def as_float_bgr(image: np.ndarray) -> np.ndarray:
    """``image`` as float32 HxWx3 in [0, 1]: uint8 is scaled by 1/255, floats are clipped.

    Raises KdcamError for anything that is not a 3-channel image.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise KdcamError(
            f"expected a BGR image of shape HxWx3, got shape {image.shape}; convert it to 3 channels first"
        )
    if image.dtype == np.uint8:
        return to_float(image)
    return np.clip(image, 0.0, 1.0).astype(np.float32, copy=False)


def finish(image: np.ndarray) -> np.ndarray:
    return np.clip(image, 0.0, 1.0).astype(np.float32, copy=False)


class Degradation:
    """Base class: a callable ``(image, rng) -> image`` with a short text description."""

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> str:
        """One line that says what this degradation does (used in listings and reports)."""
        return type(self).__name__


# --------------------------------------------------------------------------- primitives


@dataclass
class Identity(Degradation):
    """Leaves the image as it is."""

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return finish(image.copy())

    def describe(self) -> str:
        return "identity"


@dataclass
class Resize(Degradation):
    """Downscale by ``factor``, optionally damage the small image (``inner``), scale back up.

    ``down``/``up`` name OpenCV interpolations ("bicubic", "area", "bilinear", ...); a
    sequence means one is picked at random per call. The output has the input's exact size.
    """

    factor: Range = (1.25, 3.0)
    down: str | Sequence[str] = ("bicubic", "area")
    up: str | Sequence[str] = "bicubic"
    inner: Degradation | None = None

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = image.shape[:2]
        factor = max(1.0, _draw(self.factor, rng))
        down = _INTERPOLATIONS[_pick(self.down, rng)]
        up = _INTERPOLATIONS[_pick(self.up, rng)]
        small_w = max(1, int(round(w / factor)))
        small_h = max(1, int(round(h / factor)))
        small = cv2.resize(image, (small_w, small_h), interpolation=down)
        small = np.clip(small, 0.0, 1.0)
        if self.inner is not None:
            small = self.inner(small, rng)
        return finish(cv2.resize(small, (w, h), interpolation=up))

    def describe(self) -> str:
        down = self.down if isinstance(self.down, str) else "/".join(self.down)
        up = self.up if isinstance(self.up, str) else "/".join(self.up)
        text = f"{down} down x{_fmt(self.factor)}"
        if self.inner is not None:
            text += f", {self.inner.describe()}"
        return text + f", {up} up"


@dataclass
class GaussianBlur(Degradation):
    """Gaussian defocus blur with standard deviation ``sigma`` (pixels)."""

    sigma: Range = (0.6, 2.0)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        sigma = _draw(self.sigma, rng)
        if sigma <= 0:
            return finish(image.copy())
        radius = max(1, int(math.ceil(3.0 * sigma)))
        size = 2 * radius + 1
        return finish(
            cv2.GaussianBlur(image, (size, size), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
        )

    def describe(self) -> str:
        return f"gaussian blur sigma {_fmt(self.sigma)}"


def disk_kernel(radius: float) -> np.ndarray:
    """A normalised pillbox kernel of ``radius`` pixels with an anti-aliased rim."""
    reach = max(1, int(math.ceil(radius)))
    y, x = np.mgrid[-reach : reach + 1, -reach : reach + 1].astype(np.float32)
    dist = np.sqrt(x * x + y * y)
    kernel = np.clip(radius + 0.5 - dist, 0.0, 1.0)
    return (kernel / kernel.sum()).astype(np.float32)


@dataclass
class DiskBlur(Degradation):
    """Out-of-focus (pillbox) blur of ``radius`` pixels, what a real lens's defocus looks like."""

    radius: Range = (1.0, 3.0)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        radius = _draw(self.radius, rng)
        if radius <= 0:
            return finish(image.copy())
        kernel = disk_kernel(radius)
        return finish(cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101))

    def describe(self) -> str:
        return f"disk blur radius {_fmt(self.radius)}"


def motion_kernel(length: float, angle_deg: float) -> np.ndarray:
    """A normalised linear motion kernel: a segment ``length`` pixels long at ``angle_deg``.

    The segment is sampled finely and each sample lands in its nearest pixel, so every
    pixel gets the share of the path that crosses it (a box of ``length`` along the line,
    e.g. ``[1/3, 1/3, 1/3]`` for length 3 at 0 degrees).
    """
    length = max(1.0, float(length))
    reach = int(math.ceil(length / 2.0))
    size = 2 * reach + 1
    kernel = np.zeros((size, size), np.float64)
    theta = math.radians(angle_deg)
    dx, dy = math.cos(theta), -math.sin(theta)  # image y points down
    steps = max(8, int(math.ceil(length * 16)))
    t = -length / 2.0 + (np.arange(steps) + 0.5) * (length / steps)
    xs = np.floor(reach + t * dx + 0.5).astype(int)
    ys = np.floor(reach + t * dy + 0.5).astype(int)
    np.add.at(kernel, (ys, xs), 1.0)
    return (kernel / kernel.sum()).astype(np.float32)


@dataclass
class MotionBlur(Degradation):
    """Small linear motion blur (camera shake, a moving head): ``length`` px at ``angle`` deg."""

    length: Range = (3.0, 9.0)
    angle: Range = (0.0, 180.0)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        length = _draw(self.length, rng)
        angle = _draw(self.angle, rng)
        kernel = motion_kernel(length, angle)
        return finish(cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101))

    def describe(self) -> str:
        return f"motion blur {_fmt(self.length)} px at {_fmt(self.angle)} deg"


# OpenCV's BT.601 luma weights in BGR order.
_LUMA = np.array([0.114, 0.587, 0.299], np.float32)


@dataclass
class Noise(Degradation):
    """Sensor noise: Gaussian read noise plus signal-dependent (Poisson-like) shot noise.

    The per-pixel standard deviation is ``sqrt(read**2 + shot * signal)``, with ``signal``
    the pixel's luma. ``luma_fraction`` is the share of the noise variance that is common
    to the three channels (grey, luma noise); the rest is independent per channel
    (coloured, chroma noise). Webcams after their ISP show mostly luma noise.
    """

    read: Range = (0.004, 0.02)
    shot: Range = (0.0, 0.01)
    luma_fraction: Range = (0.6, 0.9)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        read = _draw(self.read, rng)
        shot = _draw(self.shot, rng)
        luma_fraction = min(1.0, max(0.0, _draw(self.luma_fraction, rng)))
        h, w = image.shape[:2]
        signal = np.maximum(image @ _LUMA, 0.0)[..., None]
        std = np.sqrt(read * read + shot * signal).astype(np.float32)
        common = rng.standard_normal((h, w, 1), dtype=np.float32)
        own = rng.standard_normal((h, w, 3), dtype=np.float32)
        noise = np.float32(math.sqrt(luma_fraction)) * common + np.float32(math.sqrt(1.0 - luma_fraction)) * own
        return finish(image + std * noise)

    def describe(self) -> str:
        return f"noise read {_fmt(self.read)} shot {_fmt(self.shot)} luma {_fmt(self.luma_fraction)}"


@dataclass
class Denoise(Degradation):
    """A camera ISP's noise reduction: an edge-preserving (bilateral) smoothing that wipes out
    fine texture along with the noise. ``strength`` is the range of intensity differences
    it smooths over (in [0, 1] units), ``radius`` its spatial sigma in pixels."""

    strength: Range = (0.02, 0.08)
    radius: Range = (0.8, 2.0)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        strength, radius = _draw(self.strength, rng), _draw(self.radius, rng)
        size = 2 * max(1, int(math.ceil(2.0 * radius))) + 1
        return finish(cv2.bilateralFilter(image, size, strength, radius, borderType=cv2.BORDER_REFLECT_101))

    def describe(self) -> str:
        return f"ISP denoise {_fmt(self.strength)} radius {_fmt(self.radius)}"


@dataclass
class CameraDenoise(Degradation):
    """A dim-light camera's noise reduction, of a kind drawn per call from ``kinds``.

    ``strength`` is the noise level the denoiser is tuned for (sigma in [0, 1] units; a camera
    does not know the true noise of a frame, so it is drawn apart from the noise itself) and
    ``radius`` its spatial reach in pixels:

    * ``bilateral``: edge-preserving (intensity range 3 x ``strength``), as :class:`Denoise`;
    * ``nlmeans``: non-local means on the luma plane (OpenCV's ``fastNlMeansDenoising``, filter
      strength 1.2 x the tuned sigma), what better ISPs run: it flattens texture into patches
      and keeps edges;
    * ``blur``: a light Gaussian (sigma 0.6 x ``radius``), the cheapest ISPs' answer to noise.
    """

    kinds: Sequence[str] = ("bilateral", "nlmeans", "blur")
    strength: Range = (0.01, 0.035)
    radius: Range = (0.8, 1.8)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        kind = _pick(self.kinds, rng)
        strength, radius = _draw(self.strength, rng), _draw(self.radius, rng)
        if kind == "bilateral":
            size = 2 * max(1, int(math.ceil(2.0 * radius))) + 1
            return finish(cv2.bilateralFilter(image, size, 3.0 * strength, radius, borderType=cv2.BORDER_REFLECT_101))
        if kind == "blur":
            sigma = 0.6 * radius
            size = 2 * max(1, int(math.ceil(3.0 * sigma))) + 1
            return finish(
                cv2.GaussianBlur(image, (size, size), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
            )
        if kind == "nlmeans":
            ycc = cv2.cvtColor(to_uint(image), cv2.COLOR_BGR2YCrCb)
            ycc[..., 0] = cv2.fastNlMeansDenoising(
                np.ascontiguousarray(ycc[..., 0]),
                None,
                h=1.2 * 255.0 * strength,
                templateWindowSize=5,
                searchWindowSize=11,
            )
            return finish(to_float(cv2.cvtColor(ycc, cv2.COLOR_YCrCb2BGR)))
        raise ValueError(f"CameraDenoise: unknown kind {kind!r}")

    def describe(self) -> str:
        return f"camera denoise ({'/'.join(self.kinds)}) tuned sigma {_fmt(self.strength)} radius {_fmt(self.radius)}"


@dataclass
class IspSharpen(Degradation):
    """A camera ISP's own sharpening: an unsharp mask on luma, ``y + amount * (y - blur_sigma(y))``.

    Small ``sigma`` with a moderate ``amount`` is the crisp look of a good webcam; a large
    ``sigma`` or ``amount`` leaves bright and dark halos along edges (the overshoot is not
    clipped before the 8-bit output, as in an ISP). Chroma is left alone."""

    sigma: Range = (0.8, 2.0)
    amount: Range = (0.3, 1.2)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        sigma, amount = _draw(self.sigma, rng), _draw(self.amount, rng)
        luma = image @ _LUMA
        size = 2 * max(1, int(math.ceil(3.0 * sigma))) + 1
        soft = cv2.GaussianBlur(luma, (size, size), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
        return finish(image + (np.float32(amount) * (luma - soft))[..., None])

    def describe(self) -> str:
        return f"ISP sharpen sigma {_fmt(self.sigma)} amount {_fmt(self.amount)}"


@dataclass
class JPEG(Degradation):
    """JPEG compression at ``quality`` (OpenCV's encoder, 4:2:0 chroma), then decoded."""

    quality: Range = (20.0, 60.0)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        quality = int(round(_draw(self.quality, rng)))
        ok, data = cv2.imencode(".jpg", to_uint(image), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise KdcamError("OpenCV could not encode a JPEG; reinstall opencv-python")
        decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
        return finish(to_float(decoded))

    def describe(self) -> str:
        return f"jpeg q{_fmt(self.quality)}"


@dataclass
class VideoCodec(Degradation):
    """One frame through a real video codec via OpenCV's FFmpeg VideoWriter, then decoded.

    The default ``mp4v`` is MPEG-4 Part 2, which the opencv-python wheels ship; OpenCV
    picks the bit rate itself (about one bit per pixel for an intra frame), and the frame
    goes through 4:2:0 chroma subsampling. It writes a small temporary file per call.
    """

    fourcc: str = "mp4v"
    container: str = ".mp4"
    fps: float = 30.0

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = image.shape[:2]
        # Codecs want even sizes (macroblocks): pad by edge replication, crop afterwards.
        pad_h, pad_w = (-h) % 16, (-w) % 16
        frame = to_uint(image)
        if pad_h or pad_w:
            frame = cv2.copyMakeBorder(frame, 0, pad_h, 0, pad_w, cv2.BORDER_REPLICATE)
        fd, name = tempfile.mkstemp(prefix="kdcam-codec-", suffix=self.container)
        os.close(fd)
        path = Path(name)
        try:
            writer = cv2.VideoWriter(
                str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*self.fourcc), self.fps, (w + pad_w, h + pad_h)
            )
            if not writer.isOpened():
                raise KdcamError(
                    f"OpenCV cannot write the {self.fourcc!r} video codec here; "
                    "use a JPEG-based preset such as 'stream' instead"
                )
            writer.write(frame)
            writer.release()
            reader = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
            ok, decoded = reader.read()
            reader.release()
        finally:
            path.unlink(missing_ok=True)
        if not ok or decoded is None:
            raise KdcamError(f"OpenCV could not decode its own {self.fourcc!r} video; use the 'stream' preset instead")
        decoded = decoded[:h, :w]
        return finish(to_float(decoded))

    def describe(self) -> str:
        return f"video codec {self.fourcc}"


# --------------------------------------------------------------------------- combinators


@dataclass
class Compose(Degradation):
    """Applies ``steps`` one after another."""

    steps: Sequence[Degradation] = field(default_factory=list)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        for step in self.steps:
            image = step(image, rng)
        return finish(image)

    def describe(self) -> str:
        return " -> ".join(step.describe() for step in self.steps) or "identity"


@dataclass
class RandomChoice(Degradation):
    """Applies one of ``options``, picked with probabilities proportional to ``weights``."""

    options: Sequence[Degradation] = field(default_factory=list)
    weights: Sequence[float] | None = None

    def __post_init__(self) -> None:
        if not self.options:
            raise ValueError("RandomChoice needs at least one option")
        if self.weights is not None and len(self.weights) != len(self.options):
            raise ValueError("RandomChoice: weights and options differ in length")

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.weights is None:
            index = int(rng.integers(len(self.options)))
        else:
            p = np.asarray(self.weights, np.float64)
            index = int(rng.choice(len(self.options), p=p / p.sum()))
        return self.options[index](image, rng)

    def describe(self) -> str:
        if self.weights is None:
            parts = [o.describe() for o in self.options]
        else:
            total = float(sum(self.weights))
            parts = [f"{o.describe()} ({w / total:.0%})" for o, w in zip(self.options, self.weights)]
        return "one of [" + " | ".join(parts) + "]"


@dataclass
class Maybe(Degradation):
    """Applies ``step`` with probability ``p``, else leaves the image as it is."""

    step: Degradation = field(default_factory=Identity)
    p: float = 0.5

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() < self.p:
            return self.step(image, rng)
        return image

    def describe(self) -> str:
        return f"{self.step.describe()} (p={self.p:g})"
