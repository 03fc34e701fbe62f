"""`python -m graphrt`: the command line."""

from graphrt.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
