"""The ``forewarn`` command: the top floor, imported by nobody. Each module adds a group of
subcommands; the demo lives in ``cli.demo``."""
