"""``python -m chain`` is the ``chain`` command."""

from chain.entry import main

main()
