"""`python -m govnet` runs the CLI."""

from govnet.cli import main

main()
