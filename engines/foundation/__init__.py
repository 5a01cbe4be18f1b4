"""The foundation both sides stand on: general helpers that are not inference.

The CLI runner and typer option builders (``cli``, ``options``), stop signals
(``signals``), the benchmark timer (``timing``), the per-user cache folder
(``cache_dir``), lazy package exports (``lazy``), whether a package is installed
(``installed``) and the checks of the values a user sets (``values``: strength, frame
size, fps). Nothing here imports kdcam code but the
one exception type, ``engines.errors.KdcamError``.
"""
