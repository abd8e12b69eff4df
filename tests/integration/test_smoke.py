from gongji.account.v1 import account_pb2 as pb
from tests.integration.accounts import get, hold, open_account
from tests.integration.accounts import rid


async def test_open_credit_hold_commit(account):
    pid = await open_account(account, 10_000)
    h = await hold(account, pid, 3_000)
    a = await get(account, pid)
    assert (a.balance_fen, a.held_fen, a.available_fen) == (10_000, 3_000, 7_000)
    r = await account.CommitHolds(
        pb.CommitHoldsRequest(
            holds=[pb.HoldRef(hold_id=h.hold_id, person_id=pid)], request_id=rid()
        )
    )
    assert r.entries[0].amount_fen == -3_000
    a = await get(account, pid)
    assert (a.balance_fen, a.held_fen) == (7_000, 0)
