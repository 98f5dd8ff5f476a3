"""``python -m ringscope``: the same as the ``ringscope`` command."""

from ringscope.app.cli import main

if __name__ == "__main__":
    main()
