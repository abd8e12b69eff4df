import dataclasses

import orjson

from services.settlement.bill import Bill, PremiumOrder

BILL = Bill("H43010500001", "M1", "430102199001011234", 1, "", 3_000, 2_000, 1_000, True, True,
            "2026-06-01")  # fmt: skip


def test_a_bill_is_kept_without_its_field_names_and_read_back_whole():
    kept = BILL.details()
    assert kept.startswith(b'["H43010500001"') and b"institution_id" not in kept
    assert Bill.from_details(kept) == BILL


def test_a_record_made_with_field_names_is_still_read():
    named = orjson.dumps(dataclasses.asdict(BILL))
    assert Bill.from_details(named) == BILL
    order = PremiumOrder("430102196001011234", "430102201001011234", 2027, 40_000)
    assert PremiumOrder.from_details(orjson.dumps(dataclasses.asdict(order))) == order
