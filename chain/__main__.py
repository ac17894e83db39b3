"""``python -m chain`` is the ``chain`` command."""

from chain.cli import main

main()
