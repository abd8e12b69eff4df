"""The settlement rules (S1-S13, A2), the watch (A10) and the Changsha and Xianyang families
again, this time through three real service processes (fixtures in this folder's conftest)."""

from tests.integration.test_settlement import (  # noqa: F401 - collected here as well
    test_a2_a_resident_child_s_premium_paid_whole_from_one_account,
    test_s1_the_credential_must_be_the_patient_s_own,
    test_s3_declining_the_account_or_family_aid,
    test_s4_a_suspended_payer_is_skipped,
    test_s5_a_suspended_patient_cannot_settle,
    test_s6_pre_settlement_moves_nothing,
    test_s7_amounts_must_add_up_and_never_be_negative,
    test_s8_a_repeated_bill_debits_once_and_other_content_is_refused,
    test_s9_cancel_refunds_every_payer_once_even_after_unbinding,
    test_s10_reversal_cancels_a_settlement_or_tombstones_its_key,
    test_s13_a_payer_lists_what_relatives_spent_from_his_account,
    test_the_changsha_family_pays_own_then_payers_in_order_then_cash,
    test_xianyang_the_second_payer_pays_when_the_first_is_spent,
)
from tests.integration.test_watch import (  # noqa: F401 - collected here as well
    test_a10_a_binder_sees_his_own_and_his_relatives_payments_refunds_and_premiums,
    test_a10_a_cursor_resumes_right_after_its_event,
)
