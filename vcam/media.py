"""What a file is (image or video), and the video container/codec to write it back with."""

from __future__ import annotations

from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".avi", ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv"}

# Codec OpenCV's bundled FFmpeg writes for each container; MJPG keeps .avi near-lossless.
_FOURCC = {".avi": "MJPG", ".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v"}


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def video_output_path(path: Path) -> Path:
    """Containers OpenCV cannot write (webm, wmv, ...) are written as .mp4 under the same stem."""
    return path if path.suffix.lower() in _FOURCC else path.with_suffix(".mp4")


def fourcc_for(path: Path) -> str:
    return _FOURCC.get(path.suffix.lower(), "mp4v")
