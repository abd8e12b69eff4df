"""`python -m services.binding`: the binding service, configured from the environment."""

from __future__ import annotations

from services.binding.server import build
from services.common.server import main

if __name__ == "__main__":
    main("binding", build)
