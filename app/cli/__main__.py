"""``python -m ringscope.app.cli``: the ``ringscope`` command."""

from ringscope.app.cli import main

main()
