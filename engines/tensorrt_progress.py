"""Progress bars for TensorRT's builder phases (``kdcam build-engine``)."""

from __future__ import annotations

import sys
import threading


class PhaseBars:
    """Progress bars for TensorRT's builder phases (pure Python, driven by the monitor).

    Uses rich when it is importable, else tqdm, else plain lines. Nested phases are
    indented and removed when they finish; top-level phases stay.
    """

    def __init__(self, *, file=None, backend: str | None = None) -> None:
        self._file = file or sys.stderr
        self._lock = threading.Lock()
        self._tasks: dict[str, tuple[object, int]] = {}  # phase -> (bar/task, depth)
        self._backend = backend or self._pick_backend()
        self._progress = None

    @staticmethod
    def _pick_backend() -> str:
        for name in ("rich", "tqdm"):
            try:
                __import__(name)
                return name
            except ImportError:
                continue
        return "plain"

    def start(self, phase: str, parent: str | None, steps: int) -> None:
        with self._lock:
            depth = self._tasks[parent][1] + 1 if parent in self._tasks else 0
            label = "  " * depth + str(phase)
            if self._backend == "rich":
                if self._progress is None:
                    from rich.console import Console
                    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

                    self._progress = Progress(
                        TextColumn("{task.description}"),
                        BarColumn(),
                        MofNCompleteColumn(),
                        TimeElapsedColumn(),
                        console=Console(file=self._file),
                    )
                    self._progress.start()
                bar = self._progress.add_task(label, total=max(int(steps), 1))
            elif self._backend == "tqdm":
                from tqdm import tqdm

                bar = tqdm(total=max(int(steps), 1), desc=label, position=depth, leave=depth == 0, file=self._file)
            else:
                print(f"kdcam: {label} ({steps} steps)", file=self._file)
                bar = None
            self._tasks[phase] = (bar, depth)

    def step(self, phase: str, step: int) -> None:
        with self._lock:
            bar, _ = self._tasks.get(phase, (None, 0))
            if bar is None:
                return
            if self._backend == "rich":
                self._progress.update(bar, completed=int(step) + 1)
            else:
                bar.n = int(step) + 1
                bar.refresh()

    def finish(self, phase: str) -> None:
        with self._lock:
            bar, depth = self._tasks.pop(phase, (None, 0))
            if bar is None:
                return
            if self._backend == "rich":
                task = next(t for t in self._progress.tasks if t.id == bar)
                self._progress.update(bar, completed=task.total)
                if depth:
                    self._progress.remove_task(bar)
            else:
                bar.n = bar.total
                bar.close()

    def close(self) -> None:
        with self._lock:
            for bar, _ in self._tasks.values():
                if self._backend == "tqdm" and bar is not None:
                    bar.close()
            self._tasks.clear()
            if self._progress is not None:
                self._progress.stop()
                self._progress = None


def make_progress_monitor(trt, bars: PhaseBars):
    """A ``trt.IProgressMonitor`` that drives ``bars``.

    TensorRT calls it from its own threads; it must not raise, and returning False from
    ``step_complete`` would cancel the build. Python API reference:
    https://docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/infer/Core/ProgressMonitor.html
    """

    class KdcamProgressMonitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.cancelled = False

        def phase_start(self, phase_name, parent_phase, num_steps) -> None:
            try:
                bars.start(phase_name, parent_phase, num_steps)
            except Exception:
                pass

        def step_complete(self, phase_name, step) -> bool:
            try:
                bars.step(phase_name, step)
            except Exception:
                pass
            return not self.cancelled

        def phase_finish(self, phase_name) -> None:
            try:
                bars.finish(phase_name)
            except Exception:
                pass

    return KdcamProgressMonitor()
