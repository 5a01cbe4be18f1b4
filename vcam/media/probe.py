"""What an input file is (image or video, by its content, not its name), what is wrong with
it when it cannot be read, and where ``kdcam sharpen`` writes its result.

Images come out as lossless PNG under the input's stem (8 or 16 bits, grey, colour or
with alpha, as the input was). Videos keep their container where OpenCV can write it,
else become ``.mp4``; the codec follows the container (``vcam.media.video_writer.CODECS``).

An image or video frame over ``MAX_PIXELS`` (``kdcam sharpen --max-pixels``) is refused from
the size its header declares, before a pixel is decoded: a tiny file can declare a frame of
gigabytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engines.atomic import why
from engines.errors import KdcamError
from engines.foundation.values import DEFAULT_FPS
from vcam.media.video_writer import CODECS, check_video_size, describe_codec

#: the largest image or video frame ``kdcam sharpen`` decodes by default (``--max-pixels`` raises it)
MAX_PIXELS = 50_000_000

#: leading bytes -> image format (what OpenCV reads as an image)
_IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"BM", "BMP"), (b"II*\x00", "TIFF"),
                (b"MM\x00*", "TIFF"), (b"GIF8", "GIF"))


@dataclass(frozen=True)
class Job:
    """One input and where its result goes."""

    src: Path
    dst: Path
    kind: str  # "image" | "video"
    detail: str  # what it is, for the log line
    frames: int = 0  # frames the video container announces (0: unknown)


def _image_format(head: bytes, path: Path | None = None) -> str | None:
    """The image format of a file starting with ``head`` (None: not an image OpenCV reads)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    found = next((name for magic, name in _IMAGE_MAGIC if head.startswith(magic)), None)
    if found is None and path is not None and cv2.haveImageReader(str(path)):  # PNM, EXR, JPEG 2000, ...
        return "image"
    return found


def _cut_short(data: bytes, fmt: str) -> bool:
    """A PNG without its closing IEND chunk, or a JPEG whose end-of-image marker is missing."""
    if fmt == "PNG":
        return b"IEND" not in data[-16:]
    if fmt == "JPEG":
        return data.rfind(b"\xff\xd9") < len(data) - 4096 or data.rfind(b"\xff\xd9") < 2
    return False


def check_pixels(width: int, height: int, *, limit: int, what: str) -> None:
    """A one-line KdcamError when a ``width`` x ``height`` frame is over ``limit`` pixels."""
    if width * height > limit:
        raise KdcamError(f"{what}: {width}x{height} is {width * height:,} pixels, over the limit of {limit:,}; "
                         "pass a larger --max-pixels if this machine has the memory for it")


def declared_size(path: Path) -> tuple[int, int] | None:
    """The (width, height) that an image file's header declares, read without decoding a
    pixel (Pillow's lazy open: PNG IHDR, JPEG SOF, BMP, TIFF, GIF, WebP, PNM, ...); None for
    a format Pillow does not know (OpenCV's decoder then applies its own limit)."""
    from PIL import Image

    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # our bound, not Pillow's bomb check
    try:
        with Image.open(path) as image:
            return image.size
    except Exception:  # any header Pillow cannot parse: OpenCV judges the file next
        return None
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def read_image(path: Path, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """The image as OpenCV decodes it unchanged (8 or 16 bits, 1, 3 or 4 channels; a JPEG
    turned upright by its EXIF orientation, as viewers show it), or a one-line KdcamError
    that says which of the usual failures it is. An image whose header declares more than
    ``max_pixels`` is refused before it is decoded."""
    _check_file(path)
    size = declared_size(path)
    if size is not None:
        check_pixels(*size, limit=max_pixels, what=str(path))
    data = _read_bytes(path)
    fmt = _image_format(data[:16], path)
    if fmt is None:
        raise KdcamError(f"{path}: not an image or video OpenCV can read (unknown format)")
    if _cut_short(data, fmt):
        raise KdcamError(f"{path}: the {fmt} file is cut short (truncated); copy or export it again")
    # IMREAD_UNCHANGED keeps depth, channels and alpha but ignores the EXIF orientation, so a
    # phone's JPEG would come out on its side; a JPEG has no alpha, so it is read upright.
    flags = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR if fmt == "JPEG" else cv2.IMREAD_UNCHANGED
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as err:  # e.g. a size over OpenCV's own limit, in a format Pillow does not read
        reason = " ".join(str(err).split())[-160:]
        raise KdcamError(f"{path}: a damaged or unsupported {fmt} file (OpenCV cannot decode it: {reason})") from None
    if image is None or image.size == 0:
        raise KdcamError(f"{path}: a damaged or unsupported {fmt} file (OpenCV cannot decode it)")
    check_pixels(image.shape[1], image.shape[0], limit=max_pixels, what=str(path))
    if image.dtype not in (np.uint8, np.uint16):
        raise KdcamError(
            f"{path}: a {fmt} of {image.dtype} samples; kdcam sharpens 8- and 16-bit images: convert it first"
        )
    frames = _frame_count(path)
    if frames > 1:  # OpenCV decodes the first only: the others would be lost without a word
        raise KdcamError(
            f"{path}: an animated or multi-page {fmt} ({frames} frames); kdcam sharpens still images "
            f"and videos: make it a video first (e.g. ffmpeg -i {path.name} {path.stem}.mkv)"
        )
    return image


def _frame_count(path: Path) -> int:
    """How many frames or pages an image file holds (GIF, APNG, WebP, TIFF can hold several)."""
    try:
        return int(cv2.imcount(str(path)))
    except cv2.error:
        return 1


def _check_file(path: Path) -> None:
    if not path.exists():
        raise KdcamError(f"{path}: no such file")
    if path.is_dir():
        raise KdcamError(f"{path}: is a folder, not an image or video; pass the files in it")
    if not path.is_file():
        raise KdcamError(f"{path}: not a regular file (a device, pipe or socket); pass an image or video file")
    try:
        size = path.stat().st_size
    except OSError as err:
        raise KdcamError(f"{path}: cannot be read ({why(err)})") from None
    if size == 0:
        raise KdcamError(f"{path}: the file is empty (0 bytes)")


def _read_bytes(path: Path, limit: int = -1) -> bytes:
    _check_file(path)
    try:
        with open(path, "rb") as f:
            return f.read(limit)
    except OSError as err:
        raise KdcamError(f"{path}: cannot be read ({why(err)})") from None


def video_output_name(src: Path) -> str:
    """Containers OpenCV cannot write (webm, wmv, ...) are written as .mp4 under the same stem."""
    return src.name if src.suffix.lower() in CODECS else src.stem + ".mp4"


def _probe_video(path: Path, out_dir: Path, *, max_pixels: int = MAX_PIXELS) -> Job:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if cap.isOpened():  # the frame size the container declares, checked before a frame is decoded
            check_pixels(
                int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                limit=max_pixels,
                what=str(path),
            )
        ok, frame = cap.read() if cap.isOpened() else (False, None)
        if not ok or frame is None:
            raise KdcamError(
                f"{path}: not an image, and not a video OpenCV can decode (damaged, or an unsupported codec)"
            )
        height, width = frame.shape[:2]
        check_pixels(width, height, limit=max_pixels, what=str(path))
        fps = cap.get(cv2.CAP_PROP_FPS) or DEFAULT_FPS
        frames = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
    finally:
        cap.release()
    check_video_size(width, height, what=str(path))
    dst = out_dir / video_output_name(path)
    detail = f"{describe_codec(dst)}, {width}x{height} @ {fps:g} fps"
    return Job(src=path, dst=dst, kind="video", detail=detail, frames=frames)


def probe(path: Path, out_dir: Path, *, max_pixels: int = MAX_PIXELS) -> Job:
    """What ``path`` is and where its result goes; a one-line KdcamError when it cannot be
    sharpened (among them: an image or video frame over ``max_pixels``)."""
    if _image_format(_read_bytes(path, 16), path) is None:
        return _probe_video(path, out_dir, max_pixels=max_pixels)
    image = read_image(path, max_pixels=max_pixels)
    depth = "16-bit" if image.dtype == np.uint16 else "8-bit"
    layout = "grey" if image.ndim == 2 else {3: "colour", 4: "colour + alpha"}.get(image.shape[2], "colour")
    return Job(
        src=path,
        dst=out_dir / (path.stem + ".png"),
        kind="image",
        detail=f"PNG, lossless, {depth} {layout}, {image.shape[1]}x{image.shape[0]}",
    )
