"""``python -m ircbot``: the same as the ``ircbot`` command."""

from ircbot.cli import main

main()
