"""RecordContribution and GetContributionRecord (rule A8): the months an employee paid into the
medical insurance, each crediting its allocation to his personal account once."""

from __future__ import annotations

from gongji.account.v1 import account_pb2 as pb
from services.account import contributions
from services.account.base import Context, ServicerBase
from services.account.convert import contribution_pb, record_pb
from services.common import ids
from services.common.clock import beijing_today


class ContributionMethods(ServicerBase):
    async def RecordContribution(
        self, request: pb.RecordContributionRequest, context: Context
    ) -> pb.Contribution:
        pid = self._pid(request.person_id)
        month = contributions.month(request.month, beijing_today(self.clock))
        contributions.amounts(
            request.base_fen, request.employee_fen, request.employer_fen, request.payer
        )
        region = ids.region_code(request.region_code) if request.region_code else ""

        async def run(fp: str, marker: str) -> pb.Contribution:
            # The allocation follows the policy of the province the account is insured in.
            account = await self.store.get(pid)
            basis_points = self.policy.for_region(account.region_code).allocation_basis_points
            recorded = await self.store.contribute(
                pid, month, request.base_fen, request.employee_fen, request.employer_fen,
                request.payer, region, basis_points, fp, marker,
            )  # fmt: skip
            return contribution_pb(recorded)

        return await self.requests.once(
            "RecordContribution", request, pb.Contribution, run, context
        )

    async def GetContributionRecord(
        self, request: pb.GetContributionRecordRequest, context: Context
    ) -> pb.ContributionRecord:
        pid = self._pid(request.person_id)
        account = await self.store.get(pid)  # ACCOUNT_NOT_FOUND for a stranger
        months = await self.store.contributions(pid)
        return record_pb(pid, contributions.summary(months, account.region_code))
