"""`gongji audit`: a read-only pass over the Redis of record that checks the system's
invariants (README "The audit"), numbered as the report numbers them:

1. every account: balance = the sum of its ledger entries, balance >= 0, its ledger numbered,
   indexed and chained;
2. every payment record (the settlement journal: a settlement's or a premium's payment at the
   account service): its legs add up with its bill, each has exactly one debit entry on its
   payer's ledger and, once cancelled, exactly one refund; no debit names a payment that does
   not list it;
3. nothing in flight for good: no request claim without a lease or past the recovery window,
   no payment still being made past it, no payment's account lock past its lease and it;
4. bindings: within the binder's policy limit, their record and indexes agree, each active one
   has its grant and each active grant its binding, and the account service pays in the order
   the binding service keeps.

    report = await audit(redis_url, progress=lambda kind, n: ..., recovery_after_ms=30_000)
    print(render(report)); exit(0 if report.ok else 1)

Layout: scan*.py read (SCAN, pipelines, never a write), checks/ judge (pure), run.py drives.
"""

from services.audit.model import RULES, Violation
from services.audit.run import Report, audit, render

__all__ = ["RULES", "Report", "Violation", "audit", "render"]
