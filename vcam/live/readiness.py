"""The one place a live session decides that it may write files: after every check passed.

A refused ``kdcam start`` (another instance is running, the runtime folder is not private,
the camera is missing, the model or the engine cannot be built) must leave every existing
file as it was. So a writer that creates or replaces a user's file (the recording) takes a
``ReadyToWrite`` as an argument, and only ``ready_to_write`` makes one, from what the checks
produced: the instance lock (the bound control socket), the opened source and the built
engine. Code that forgets a check cannot get a ``ReadyToWrite`` without naming it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReadyToWrite:
    """Proof that a session passed every check; pass it to the writers."""

    lock: object  # the entered ControlServer: no other kdcam start publishes this camera
    source: object  # the opened camera or file
    engine: object  # the built and warmed-up engine


def ready_to_write(*, lock: object, source: object, engine: object) -> ReadyToWrite:
    """A ``ReadyToWrite`` once the lock is held, the source open and the engine built."""
    missing = [name for name, value in (("lock", lock), ("source", source), ("engine", engine)) if value is None]
    if missing:
        raise RuntimeError(f"not ready to write: no {', '.join(missing)} yet")  # a bug in the caller, not a user error
    return ReadyToWrite(lock=lock, source=source, engine=engine)
