"""``python -m cli``: the ``forewarn`` command."""

from cli.main import main

main()
