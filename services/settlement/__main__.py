"""`python -m services.settlement`: the settlement service, configured from the environment."""

from __future__ import annotations

from services.common.server import main
from services.settlement.server import build

if __name__ == "__main__":
    main("settlement", build)
