"""`python -m services.account`: the account service, configured from the environment."""

from __future__ import annotations

from services.account.server import build
from services.common.server import main

if __name__ == "__main__":
    main("account", build)
