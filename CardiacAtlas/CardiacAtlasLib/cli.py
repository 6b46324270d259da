"""``cardiac-atlas``: LV model fitting and shape atlas (commands arrive with the atlas issue)."""

from __future__ import annotations

import argparse
import sys

from . import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cardiac-atlas", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"cardiac-atlas {__version__}")
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
