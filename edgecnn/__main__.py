"""``python -m edgecnn`` runs the command-line interface."""

from edgecnn.cli import main

main()
