"""``python -m crmlink`` runs the command line."""

from crmlink.cli import main

main()
