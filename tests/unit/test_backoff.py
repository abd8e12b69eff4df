"""The pauses every retry loop takes (services.common.backoff)."""

from services.common.backoff import Backoff


def test_pauses_double_up_to_the_ceiling_and_start_again_after_a_reset():
    plain = Backoff(0.1, 0.5, jitter=False)
    assert [plain.pause() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    plain.reset()
    assert plain.pause() == 0.1


def test_a_jittered_pause_stays_within_half_and_one_and_a_half_of_its_value():
    for _ in range(200):
        jittered = Backoff(0.2, 0.2)
        assert 0.1 <= jittered.pause() <= 0.3
