"""`gongji` / `python -m services.cli`: run and operate the stack."""

from __future__ import annotations

import argparse
import pathlib
import sys

from services.cli import launcher
from services.common import logs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gongji", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start Redis (embedded unless GONGJI_REDIS_URL) and services")
    run.add_argument("--var", default="var", help="data folder of the embedded Redis (var/)")
    run.add_argument(
        "--services", default=",".join(launcher.SERVICES), help="comma-separated services to start"
    )
    args = parser.parse_args(argv)
    logs.setup()
    if args.command == "run":
        services = tuple(s for s in args.services.split(",") if s)
        unknown = set(services) - set(launcher.SERVICES)
        if unknown:
            parser.error(f"unknown services: {', '.join(sorted(unknown))}")
        sys.exit(launcher.run(pathlib.Path(args.var), services))


if __name__ == "__main__":
    main()
