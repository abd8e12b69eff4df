"""`gongji audit`: a read-only pass over the Redis of record that checks the system's
invariants: 1 every account's books, 2 every payment, 3 nothing in flight for good, 4 bindings.
Each check's invariant is `model.RULES`; the invariants in full are docs/ARCHITECTURE.md
("Invariants"), numbered as the report numbers them.

    report = await audit(redis_url, progress=lambda kind, n: ..., recovery_after_ms=30_000)
    print(render(report)); exit(0 if report.ok else 1)

Layout: scan*.py read (SCAN, pipelines, never a write), checks/ judge (pure), run.py drives.
"""

from services.audit.model import RULES, Violation
from services.audit.run import Report, audit, render

__all__ = ["RULES", "Report", "Violation", "audit", "render"]
