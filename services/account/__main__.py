"""`python -m services.account`: the account service, configured from the environment."""

from __future__ import annotations

import asyncio
import sys

from services.account.server import build
from services.common import logs
from services.common.config import ConfigError, Settings
from services.common.policy import PolicyError
from services.common.server import serve


def main() -> None:
    try:
        settings = Settings.from_env("account")
    except ConfigError as e:
        sys.exit(f"account: {e}")
    logs.setup(settings.log_level)
    try:
        asyncio.run(serve(settings, build))
    except PolicyError as e:
        sys.exit(f"account: {e}")


if __name__ == "__main__":
    main()
