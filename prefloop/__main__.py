"""``python -m prefloop``: the ``prefloop`` command line."""

from prefloop.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
