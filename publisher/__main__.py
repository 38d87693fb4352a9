"""``python -m publisher``: the same command line as ``publisher``."""

from publisher.cli import main

main()
