"""Options that several ``kdcam`` commands share, declared once (type, help, default).

Their help and defaults are those of ``kdcam start``'s settings (``vcam.live.settings``);
each value is checked by its one parser (``engines.foundation.values``).
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from engines.foundation.options import help_of, shown_default
from engines.foundation.values import AUTO, DEFAULT_STRENGTH
from vcam.live.settings import LiveSettings

Strength = Annotated[
    Optional[float], typer.Option(help=help_of(LiveSettings, "strength"), show_default=shown_default(DEFAULT_STRENGTH))
]
Engine = Annotated[Optional[str], typer.Option(help=help_of(LiveSettings, "engine"), show_default=AUTO)]
Model = Annotated[Optional[str], typer.Option(help=help_of(LiveSettings, "model"), show_default=AUTO)]
