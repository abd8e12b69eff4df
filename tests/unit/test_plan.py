"""The waterfall (S2-S4) as golden cases and properties."""

from hypothesis import given
from hypothesis import strategies as st

from services.settlement.plan import FAMILY_AID, OWN_ACCOUNT, Share, Source, waterfall


def test_the_changsha_family_own_account_then_payers_in_order_then_cash():  # rule S2
    plan = waterfall(
        30_000,
        [Source("me", OWN_ACCOUNT, 5_000), Source("father", FAMILY_AID, 20_000),
         Source("mother", FAMILY_AID, 20_000)],
    )  # fmt: skip
    assert plan.shares == (
        Share("me", OWN_ACCOUNT, 5_000), Share("father", FAMILY_AID, 20_000),
        Share("mother", FAMILY_AID, 5_000),
    )  # fmt: skip
    assert (plan.acct_pay_fen, plan.acct_mulaid_pay_fen, plan.cash_pay_fen) == (5_000, 25_000, 0)


def test_the_second_payer_pays_when_the_first_is_empty():  # rule S4
    plan = waterfall(1_000, [Source("first", FAMILY_AID, 0), Source("second", FAMILY_AID, 400)])
    assert plan.shares == (Share("second", FAMILY_AID, 400),)
    assert plan.cash_pay_fen == 600


def test_nothing_to_pay_takes_nothing():  # rule S7
    assert waterfall(0, [Source("me", OWN_ACCOUNT, 100)]).shares == ()


sources = st.lists(
    st.builds(Source, st.text(min_size=1, max_size=3), st.sampled_from([OWN_ACCOUNT, FAMILY_AID]),
              st.integers(-10, 10**12)),
    max_size=12,
)  # fmt: skip


@given(st.integers(0, 10**12), sources)
def test_shares_never_exceed_balances_or_the_burden_and_sum_exactly(burden, given_sources):
    plan = waterfall(burden, given_sources)  # rules S2, S7
    assert plan.acct_pay_fen + plan.acct_mulaid_pay_fen + plan.cash_pay_fen == burden
    assert 0 <= plan.cash_pay_fen <= burden
    for share, source in zip(plan.shares, [s for s in given_sources if s.available_fen > 0],
                             strict=False):  # fmt: skip
        assert 0 < share.amount_fen <= source.available_fen
        assert share.person_id == source.person_id


@given(st.integers(0, 10**9), sources)
def test_a_later_source_pays_only_when_every_earlier_one_is_exhausted(burden, given_sources):
    plan = waterfall(burden, given_sources)  # rule S2 (order)
    paying = [s for s in given_sources if s.available_fen > 0]
    for i, share in enumerate(plan.shares[:-1]):
        assert share.amount_fen == paying[i].available_fen  # all but the last pay in full
    if plan.cash_pay_fen:
        assert sum(s.available_fen for s in paying) < burden
