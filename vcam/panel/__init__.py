"""The control panel: a local web page served by the running camera (see ``runner.serve_panel``).

One job a module: ``bounds`` (every limit), ``guard`` (Host, Origin, token and cookie),
``http_protocol`` (uvicorn's h11 with a header deadline), ``preview`` (the JPEG encoder),
``hub`` (status, stats and frames for the open pages; actions through the camera's
``handle``), ``server`` (the Starlette app), ``runner`` (sockets, the uvicorn thread, the
token file's life), ``token_file`` (writing it, finding and opening a running panel),
``demo`` (a stand-in camera: ``python -m vcam.panel.demo``) and ``static/`` (the page:
plain HTML, CSS and JavaScript, nothing fetched from outside).

``serve_panel`` and ``Panel`` are loaded on first use, so `kdcam panel` (which needs only
``find_panel`` / ``open_panel``) never imports the server, OpenCV or numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vcam.panel.errors import PanelError
from vcam.panel.token_file import PanelInfo, find_panel, open_panel, panel_file_for, write_token_file

if TYPE_CHECKING:
    from vcam.panel.runner import Panel, serve_panel

__all__ = ["Panel", "PanelError", "PanelInfo", "find_panel", "open_panel", "panel_file_for", "serve_panel",
           "write_token_file"]


def __getattr__(name: str):
    if name in ("Panel", "serve_panel"):
        from vcam.panel import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'vcam.panel' has no attribute {name!r}")
