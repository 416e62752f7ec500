"""``python -m jobpipe`` runs the CLI."""

from jobpipe.cli import main

main()
