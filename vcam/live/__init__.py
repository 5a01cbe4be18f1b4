"""The live session of ``kdcam start``: settings, capture, the stages, the sender, stats.

``session`` opens and closes one session (``run_live``); ``readiness`` decides it may
write files; ``settings`` + ``config_file`` are its options; ``sources`` (cameras, files),
``capture`` (the newest-frame capture thread), ``mailbox`` (the one-slot mailbox between
stages), ``stage`` (the stage thread), ``pipeline`` (the stages), ``sender`` (the paced
sender), ``recording``, ``stats``, ``engine_switch`` and ``model_choice`` (``--model auto``)
run it; ``controls/`` is what a user changes while it runs.
"""
