"""Bad input, as a new user gives it: every case is one line, a known exit code, and nothing lost.

Each row of ``CASES`` names the command (with ``{files}`` standing for a folder of prepared
inputs), the exit code, a phrase of the one ``kdcam: error:`` line (or of stderr), and what
must hold on disk afterwards: the inputs unchanged, no partial files, the outputs that must
(not) exist. The commands run in-process through the CLI's ``main()`` (the same path as the
``kdcam`` script); the ones that need a real process (signals) are at the end.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
from live_fixtures import run_kdcam

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "samples" / "vtest_clip.avi"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """Inputs of every kind of trouble, made once."""
    root = tmp_path_factory.mktemp("files")
    rng = np.random.default_rng(0)
    for sub in ("a", "b"):
        (root / sub).mkdir()
        cv2.imwrite(str(root / sub / "pic.png"), rng.integers(0, 256, (40, 60, 3), dtype=np.uint8))
    cv2.imwrite(str(root / "photo.jpg"), rng.integers(0, 256, (40, 60, 3), dtype=np.uint8))
    cv2.imwrite(str(root / "photo.png"), rng.integers(0, 256, (40, 60, 3), dtype=np.uint8))
    (root / "noext").write_bytes((root / "photo.jpg").read_bytes())
    cv2.imwrite(str(root / "deep.png"), rng.integers(0, 65536, (33, 47, 3)).astype(np.uint16))
    cv2.imwrite(str(root / "good.png"), rng.integers(0, 256, (33, 47, 3), dtype=np.uint8))
    (root / "trunc.png").write_bytes((root / "good.png").read_bytes()[:200])
    (root / "trunc.jpg").write_bytes((root / "photo.jpg").read_bytes()[:300])
    (root / "empty.png").write_bytes(b"")
    (root / "text.png").write_bytes(b"this is not an image at all")
    (root / "folder.png").mkdir()
    (root / "corrupt.avi").write_bytes(CLIP.read_bytes()[:10240])
    _odd_video(root / "odd.avi")
    cv2.imwrite(str(root / "float.tiff"), rng.random((20, 30, 3)).astype(np.float32))
    os.mkfifo(root / "pipe.png")
    _animated(root / "pages.tiff", rng)
    (root / "binary.toml").write_bytes(bytes(range(256)))
    (root / "fps-true.toml").write_text("fps = true\n")
    (root / "conf-dir").mkdir()
    (root / "out-busy" / "photo.png").mkdir(parents=True)  # a folder where an output goes
    (root / "rec-dir.mp4").mkdir()
    (root / "source.avi").write_bytes(CLIP.read_bytes())
    (root / "source-link.avi").symlink_to(root / "source.avi")
    import pickle

    (root / "pickled.safetensors").write_bytes(pickle.dumps({"params": {"w": [1.0]}}))
    return root


def _animated(path: Path, rng) -> None:
    """A three-page TIFF (what an animated GIF, APNG or WebP also is to OpenCV: several frames)."""
    assert cv2.imwritemulti(str(path), [rng.integers(0, 256, (30, 40, 3), dtype=np.uint8) for _ in range(3)])


def _odd_video(path: Path) -> None:
    """A 641x481 Motion-JPEG video (OpenCV's writer cannot make odd sizes; PyAV can)."""
    av = pytest.importorskip("av", reason="PyAV (the test extra) writes the odd-sized video")
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=10)
        stream.width, stream.height, stream.pix_fmt = 641, 481, "yuvj444p"
        for i in range(5):
            image = np.full((481, 641, 3), 20 * i, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    code: int
    phrase: str  # in the error line (or stderr for code 0)
    exists: tuple[str, ...] = ()  # relative to {files}: must exist afterwards
    absent: tuple[str, ...] = ()  # must not exist afterwards
    errors: int = 1  # how many `kdcam: error:` lines
    extra: dict = field(default_factory=dict)


V = str(CLIP)
CASES = {
    # data loss
    "two inputs, one output name": Case(
        ("sharpen", "{files}/a/pic.png", "{files}/b/pic.png", "--output", "{files}/o1"),
        1,
        "a/pic.png and {files}/b/pic.png would both be written to",
        absent=("o1/pic.png",),
    ),
    "a jpg and a png of one stem": Case(
        ("sharpen", "{files}/photo.jpg", "{files}/photo.png", "--output", "{files}/o2"),
        1,
        "would both be written to {files}/o2/photo.png",
        absent=("o2/photo.png",),
    ),
    "an output that overwrites an input": Case(
        ("sharpen", "{files}/good.png", "--output", "{files}"), 1, "good.png would be overwritten"
    ),
    "recording to a folder": Case(
        ("start", "--device", V, "--no-vcam", "--max-frames", "5", "--output", "{files}/rec-dir.mp4"),
        1,
        "rec-dir.mp4: it is a folder",
        exists=("rec-dir.mp4",),
    ),
    "recording over the video being played": Case(
        ("start", "--device", "{files}/source.avi", "--no-vcam", "--max-frames", "2", "--output", "{files}/source.avi"),
        1,
        "is the video being played",
    ),
    "recording over it through a link": Case(
        (
            "start",
            "--device",
            "{files}/source-link.avi",
            "--no-vcam",
            "--max-frames",
            "2",
            "--output",
            "{files}/source.avi",
        ),
        1,
        "the recording would replace it",
    ),
    "a damaged video": Case(
        ("sharpen", "{files}/corrupt.avi", "--output", "{files}/o3", "--engine", "onnxruntime"),
        1,
        "decoded only 1 of the 300 frames",
        absent=("o3/corrupt.avi",),
    ),
    "a damaged video, partial kept": Case(
        ("sharpen", "{files}/corrupt.avi", "--output", "{files}/o4", "--engine", "onnxruntime", "--partial"),
        1,
        "kept those 1 frames",
        exists=("o4/corrupt.avi",),
    ),
    # output that would silently differ from the input
    "a multi-page image": Case(
        ("sharpen", "{files}/pages.tiff", "--output", "{files}/o11"),
        1,
        "an animated or multi-page TIFF (3 frames)",
        absent=("o11/pages.png",),
    ),
    "an odd-sized video": Case(
        ("sharpen", "{files}/odd.avi", "--output", "{files}/o5"),
        1,
        "is 641x481, and video files can only",
        absent=("o5/odd.avi",),
    ),
    "an odd-sized source, no --size": Case(
        ("start", "--device", "{files}/odd.avi", "--no-vcam", "--max-frames", "2"),
        1,
        "is 641x481, and a camera's sides must be even",
    ),
    "an odd --size": Case(
        ("start", "--device", "{files}/odd.avi", "--no-vcam", "--max-frames", "2", "--size", "641x481"),
        1,
        "width and height must be even",
    ),
    # one line, never a traceback
    "--output under a file": Case(
        ("sharpen", "{files}/good.png", "--output", "/etc/passwd/x"), 1, "/etc/passwd is a file"
    ),
    "--output in /proc": Case(
        ("sharpen", "{files}/good.png", "--output", "/proc/kdcamtest"), 1, "cannot create the output folder"
    ),
    "a folder where the output goes": Case(
        ("sharpen", "{files}/photo.png", "{files}/good.png", "--output", "{files}/out-busy", "--engine", "onnxruntime"),
        1,
        "a folder of that name is in the way",
        exists=("out-busy/good.png",),
    ),
    "recording under a file": Case(
        ("start", "--device", V, "--no-vcam", "--max-frames", "2", "--output", "/etc/passwd/x.mp4"),
        1,
        "/etc/passwd is a file",
    ),
    "recording in /proc": Case(
        ("start", "--device", V, "--no-vcam", "--max-frames", "2", "--output", "/proc/kdcam.mp4"),
        1,
        "cannot write the recording /proc/kdcam.mp4",
    ),
    "a binary config file": Case(("start", "--config", "{files}/binary.toml"), 1, "is not text"),
    "a config folder": Case(("start", "--config", "{files}/conf-dir"), 1, "is a folder"),
    "fps = true": Case(
        ("start", "--config", "{files}/fps-true.toml", "--device", V, "--no-vcam", "--max-frames", "2"),
        1,
        "'fps' must be an integer or a number",
    ),
    "a bench report that cannot be written": Case(
        ("bench", "--sizes", "64x64", "--engine", "onnxruntime", "--no-srcnn", "--json", "/etc/passwd/bench.json"),
        1,
        "/etc/passwd is a file",
        extra={"stdout": ""},
    ),  # refused before the bench ran
    "evaluation results that cannot be written": Case(
        ("distill", "evaluate", "--data", "{files}/a", "--out", "/etc/passwd/ev"),
        1,
        "cannot write the results /etc/passwd/ev/results.json",
    ),
    "a training run under a file": Case(
        ("distill", "train", "--data", "{files}/a", "--out", "/etc/passwd/tr", "--steps", "1"),
        1,
        "cannot write the training run /etc/passwd/tr/",
    ),
    "a teacher run under a file": Case(
        ("distill", "fit-teacher", "--data", "{files}/a", "--out", "/etc/passwd/ft", "--steps", "1"),
        1,
        "cannot write the training run /etc/passwd/ft/",
    ),
    "a crop bigger than any photo": Case(
        ("distill", "train", "--data", "{files}/a", "--out", "{files}/tr", "--steps", "1", "--crop", "100000"),
        1,
        "crop must be 8 to 2048 pixels",
        absent=("tr/student.safetensors",),
    ),
    "a negative bench duration": Case(
        ("bench", "--pipeline", "--source", V, "--seconds", "-1"), 1, "bad --seconds -1.0"
    ),
    "a negative /dev/video number": Case(("setup", "--video-nr", "-3"), 1, "bad --video-nr -3"),
    "a camera name v4l2loopback cannot take": Case(("setup", "--camera-name", "a,b"), 1, "cannot take ','"),
    # every read failure says which it is, and one bad item does not stop the others
    "five read failures": Case(
        (
            "sharpen",
            "{files}/missing.png",
            "{files}/folder.png",
            "{files}/empty.png",
            "{files}/trunc.png",
            "{files}/text.png",
            "{files}/trunc.jpg",
            "{files}/pipe.png",
            "{files}/float.tiff",
            "{files}/good.png",
            "--output",
            "{files}/o6",
            "--engine",
            "onnxruntime",
        ),
        1,
        "no such file",
        errors=8,
        exists=("o6/good.png",),
        extra={
            "phrases": (
                "is a folder",
                "is empty (0 bytes)",
                "PNG file is cut short",
                "not an image, and not a video",
                "JPEG file is cut short",
                "pipe.png: not a regular file",
                "float.tiff: a TIFF of float32 samples",
                "8 of 9 inputs failed",
            )
        },
    ),
    "bad inputs are found before the engine loads": Case(
        ("sharpen", "{files}/missing.png", "--output", "{files}/o7", "--model", "{files}/text.png"),
        1,
        "no such file",
        extra={"not": "not a kdcam student"},
    ),
    # handled well before: kept so
    "a pickled model": Case(
        ("sharpen", "{files}/good.png", "--output", "{files}/o8", "--model", "{files}/pickled.safetensors"),
        1,
        "not a kdcam student checkpoint",
        absent=("o8/good.png",),
    ),
    "an empty --model": Case(
        ("sharpen", "{files}/good.png", "--output", "{files}/o10", "--model", ""),
        1,
        "empty --model",
        absent=("o10/good.png",),
    ),
    "an unknown engine": Case(
        ("sharpen", "{files}/good.png", "--output", "{files}/o9", "--engine", "vulkan"), 1, "unknown engine 'vulkan'"
    ),
    "a missing video": Case(
        ("start", "--device", "{files}/nope.mp4", "--no-vcam", "--max-frames", "2"), 1, "no camera or video file"
    ),
    "a still image as the camera": Case(
        ("start", "--device", "{files}/good.png", "--no-vcam", "--max-frames", "2"), 1, "is a still image, not a video"
    ),
    "an empty video": Case(
        ("start", "--device", "{files}/empty.png", "--no-vcam", "--max-frames", "2"), 1, "cannot read video file"
    ),
}


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name, files, capsys, monkeypatch, tmp_path):
    case = CASES[name]
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    before = _snapshot(files)
    args = [a.replace("{files}", str(files)) for a in case.args]
    code, out, err = run_kdcam(args, capsys, monkeypatch)
    assert code == case.code, err
    lines = [line for line in err.splitlines() if line.startswith("kdcam: error:")]
    assert len(lines) == case.errors, err
    assert "Traceback" not in err
    assert case.phrase.replace("{files}", str(files)) in err, err
    for phrase in case.extra.get("phrases", ()):
        assert phrase in err, (phrase, err)
    if "not" in case.extra:
        assert case.extra["not"] not in err, err
    if "stdout" in case.extra:
        assert out == case.extra["stdout"], out
    after = _snapshot(files)
    assert {k: v for k, v in after.items() if k in before} == before, "an input changed"
    assert not [k for k in after if ".partial-" in k or ".probe-" in k], "a partial file was left"
    for rel in case.exists:
        assert (files / rel).exists(), rel
    for rel in case.absent:
        assert not (files / rel).exists(), rel


def test_images_come_out_as_png_with_their_bit_depth(files, capsys, monkeypatch, tmp_path):
    out = tmp_path / "out"
    code, _, err = run_kdcam(
        [
            "sharpen",
            str(files / "deep.png"),
            str(files / "photo.jpg"),
            str(files / "noext"),
            "--output",
            str(out),
            "--engine",
            "onnxruntime",
            "--strength",
            "2",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["deep.png", "noext.png", "photo.png"]  # lossless PNG, never JPEG
    deep_in = cv2.imread(str(files / "deep.png"), cv2.IMREAD_UNCHANGED)
    deep_out = cv2.imread(str(out / "deep.png"), cv2.IMREAD_UNCHANGED)
    assert deep_out.dtype == np.uint16 and deep_out.shape == deep_in.shape
    changed = deep_out != deep_in
    assert changed.any()
    # the 16-bit values keep their low bits where the network's (8-bit) correction is zero
    assert np.array_equal(deep_out[~changed] % 257, deep_in[~changed] % 257)
    assert "PNG, lossless, 16-bit colour" in err


def test_a_slow_encoder_drops_recorded_frames_but_never_slows_the_call(tmp_path, monkeypatch):
    """Encoding is off the sender's thread: a recorder ten times too slow costs recorded frames
    (counted), never sent ones; a normal one records every sent frame (the session's real pace)."""
    from live_fixtures import InvertEngine, NumberedSource

    from vcam.media import video_writer
    from vcam.live.settings import LiveSettings
    from vcam.live.session import run_live

    def run(delay: float) -> dict:
        write = video_writer.VideoWriter.write

        def slow_write(self, frame):
            time.sleep(delay)
            write(self, frame)

        monkeypatch.setattr(video_writer.VideoWriter, "write", slow_write)
        settings = LiveSettings(
            device="numbered", fps=30, vcam=False, duration=2.0, output=tmp_path / f"rec{delay}.avi"
        )
        return run_live(
            settings=settings,
            engine=InvertEngine(),
            report_every=None,
            log=lambda _line: None,
            factory=lambda: NumberedSource(shape=(48, 64, 3), fps=30),
        )

    normal = run(0.0)
    assert normal["recorded"] == normal["sent"] and normal["recorded_dropped"] == 0
    assert normal["recorded_seconds"] == pytest.approx(normal["seconds"], abs=0.2)
    slow = run(0.3)
    # the call keeps its rate: the sender never waits for the encoder, it drops what the encoder cannot take
    assert slow["recorded_dropped"] > 0 and slow["recorded"] + slow["recorded_dropped"] == slow["sent"]
    cap = cv2.VideoCapture(str(tmp_path / "rec0.3.avi"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == slow["recorded"]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_stopped_sharpen_leaves_no_partial_file(files, tmp_path, signum):
    """``kdcam sharpen`` of a video stopped by a signal: no hidden half-written file, 128 + signal."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "vcam.cli", "sharpen", str(CLIP), "--output", str(out), "--engine", "onnxruntime"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not list(out.glob(".*.partial-*")) and time.monotonic() < deadline:  # the video is being written
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, err[-2000:]
    assert re.search(rf"stopped by {signal.Signals(signum).name}", err), err[-2000:]
    assert list(out.iterdir()) == [], "nothing half-written is left"


def test_a_failed_final_rename_keeps_the_recording_under_a_printed_name(tmp_path):
    """Something took the recording's name while the session ran: the file is kept, and said where."""
    from engines.atomic import atomic_path
    from engines.errors import KdcamError

    target = tmp_path / "rec.mp4"
    with pytest.raises(KdcamError, match=r"cannot put the recording at .*rec\.mp4 \(.*\); it is kept as (\S+)") as err:
        with atomic_path(target, what="recording", keep_on_failure=True) as tmp:
            tmp.write_bytes(b"a whole session")
            target.mkdir()  # the destination turned into a folder meanwhile
    kept = Path(re.search(r"it is kept as (\S+)", str(err.value)).group(1))
    assert kept.read_bytes() == b"a whole session" and not list(tmp_path.glob(".*partial*"))


def test_setup_quotes_the_camera_name_for_the_shell(capsys, monkeypatch):
    import shlex

    code, out, _ = run_kdcam(["setup", "--os", "linux", "--camera-name", "Bob's $HOME cam"], capsys, monkeypatch)
    assert code == 0
    line = next(line for line in out.splitlines() if "sudo modprobe v4l2loopback" in line and "-r" not in line)
    assert "card_label=Bob's $HOME cam" in shlex.split(line.strip())


def _noise_video(path: Path, frames: int = 40) -> None:
    """Frames of noise, which compress badly: a few MB of Motion JPEG."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    rng = np.random.default_rng(1)
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))
    writer.release()


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE (a stand-in for a full disk) is POSIX")
@pytest.mark.parametrize("command", ["sharpen", "start"])
def test_a_full_disk_is_an_error_not_a_cut_off_file(tmp_path, command):
    """OpenCV's video writer reports no write errors: with no room left (here a 1 MB file
    size limit, which fails writes the way a full disk does) the result must be an error,
    never a short file reported as complete. A recording keeps what was written."""
    import resource

    source = tmp_path / "noise.avi"
    _noise_video(source)
    out = tmp_path / "out"
    if command == "sharpen":
        args = ["sharpen", str(source), "--output", str(out)]
    else:
        args = ["start", "--device", str(source), "--no-vcam", "--fps", "10", "--output", str(out / "rec.mkv")]

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-big write fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    proc = subprocess.run(
        [sys.executable, "-m", "vcam.cli", *args, "--engine", "onnxruntime"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_file_size,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert re.search(r"kdcam: error: only \d+ of the 40 frames of \S+ reached the disk", proc.stderr), proc.stderr[
        -2000:
    ]
    left = sorted(p.name for p in out.iterdir()) if out.exists() else []
    if command == "sharpen":
        assert left == [], "no cut-off video is left"
    else:
        assert len(left) == 1 and re.fullmatch(r"rec\.kept-[\d-]+\.mkv", left[0]), left
        assert "what was written is kept as" in proc.stderr


def test_no_room_on_the_disk_is_one_line_not_a_traceback(capsys, monkeypatch):
    """A write that finds the disk full (a checkpoint, a report) is the machine's state, not a bug."""
    import errno

    import typer

    from engines.foundation.cli import run_cli

    app = typer.Typer()

    @app.command()
    def save() -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "runs/x/.student.safetensors.partial-1")

    monkeypatch.setattr(sys, "argv", ["kdcam"])
    with pytest.raises(SystemExit) as exit_info:
        run_cli(app)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err == (
        "kdcam: error: cannot write runs/x/.student.safetensors.partial-1 (No space left on device); "
        "free some space and run it again\n"
    )


def test_what_a_killed_run_left_is_kept_for_a_recording_and_removed_for_a_remade_file(tmp_path, capsys, monkeypatch):
    """SIGKILL or a power cut runs no clean-up: the next run finds the hidden temporary file.
    A recording cannot be made again, so it is renamed to a visible name and said; a
    sharpened image is made again, so its half is removed. A file still being written (touched
    within the last minute) is left alone."""
    import os

    from engines.atomic import recover_partials

    old = time.time() - 3600
    recording = tmp_path / ".call.mp4.partial-abc123.mp4"
    recording.write_bytes(b"an hour of a call")
    os.utime(recording, (old, old))
    live = tmp_path / ".call.mp4.partial-def456.mp4"
    live.write_bytes(b"being written now")
    kept = recover_partials(tmp_path / "call.mp4", keep=True)
    assert len(kept) == 1 and kept[0].read_bytes() == b"an hour of a call"
    assert re.fullmatch(r"call\.kept-\d{8}-\d{6}\.mp4", kept[0].name) and live.exists() and not recording.exists()

    image = tmp_path / "in.png"
    cv2.imwrite(str(image), np.zeros((16, 16, 3), np.uint8))
    half = tmp_path / "out" / ".in.png.partial-xyz.png"
    half.parent.mkdir()
    half.write_bytes(b"half a png")
    os.utime(half, (old, old))
    code, _, err = run_kdcam(
        ["sharpen", str(image), "--output", str(tmp_path / "out"), "--engine", "onnxruntime"], capsys, monkeypatch
    )
    assert code == 0, err
    assert "removed .in.png.partial-xyz.png, half of in.png left by a killed run" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["in.png"]


@pytest.mark.parametrize("suffix", [".mp4", ".m4v", ".mov", ".avi", ".mkv"])
def test_the_written_video_check_passes_every_complete_video(tmp_path, suffix):
    """The check that catches a full disk never fails a whole video: every container kdcam
    writes, one frame or many, at rates that are not whole numbers."""
    from vcam.media.video_writer import VideoWriter

    for fps, frames in ((29.97, 1), (23.976, 2), (59.94, 301), (7.5, 40)):
        path = tmp_path / f"v{frames}{suffix}"
        with VideoWriter(path, width=64, height=48, fps=fps) as writer:
            for i in range(frames):
                writer.write(np.full((48, 64, 3), i * 37 % 256, np.uint8))
        cap = cv2.VideoCapture(str(path))
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == frames, (fps, frames)


def test_a_phone_jpeg_comes_out_the_way_viewers_show_it(tmp_path, capsys, monkeypatch):
    """A JPEG whose EXIF orientation says "rotate 90 degrees clockwise" is written upright: the
    PNG has no EXIF, so writing the stored pixels would show the photo on its side."""
    from PIL import Image

    stored = np.full((30, 60, 3), 40, np.uint8)
    stored[:, :10] = 220  # a bright left edge, which is the top once turned upright
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    image.save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    code, _, err = run_kdcam(
        [
            "sharpen",
            str(tmp_path / "phone.jpg"),
            "--output",
            str(tmp_path / "out"),
            "--engine",
            "onnxruntime",
            "--strength",
            "0",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    out = cv2.imread(str(tmp_path / "out" / "phone.png"), cv2.IMREAD_UNCHANGED)
    assert out.shape == (60, 30, 3)
    assert out[:10].mean() > 180 and out[15:].mean() < 80
