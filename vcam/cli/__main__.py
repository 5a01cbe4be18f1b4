"""``python -m vcam.cli``: the ``kdcam`` command."""

from vcam.cli import main

main()
