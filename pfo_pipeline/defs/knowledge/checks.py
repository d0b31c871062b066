"""Knowledge checks: the knowledge space holds no personal data from the ledger."""

import dagster as dg

from pfo_pipeline.defs.resources import LakeResource
from pfo_pipeline.knowledge.pii_scan import scan_knowledge_for_pii


@dg.asset_check(
    asset="financial_overview",
    blocking=True,
    description="No IBAN, account number, counterparty or transaction wording from the ledger "
    "appears anywhere in the knowledge space.",
)
def knowledge_space_has_no_pii(lake: LakeResource) -> dg.AssetCheckResult:
    with lake.get_connection() as conn:
        findings = scan_knowledge_for_pii(conn)
    return dg.AssetCheckResult(
        passed=not findings,
        metadata={
            "findings": len(findings),
            "kinds": sorted({f.kind for f in findings}),
            "entries": sorted({f.entry_id for f in findings})[:20],
        },
    )
