"""``python -m mfaflow``: the same as the ``mfaflow`` command."""

from ._cli import main

if __name__ == "__main__":
    main()
