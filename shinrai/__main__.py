"""``python -m shinrai`` = the ``shinrai`` command."""

from shinrai.cli import main

main()
