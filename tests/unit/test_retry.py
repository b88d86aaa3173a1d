"""The one retry policy: doubling, capped, spread by jitter."""

from __future__ import annotations

from jobyard.workers.retry import backoff


def test_waits_double_from_the_base_up_to_the_cap():
    waits = [backoff(n, base=1.0, cap=60.0, rand=lambda: 1.0) for n in range(8)]
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_jitter_spreads_each_wait_below_its_step():
    low = backoff(3, base=1.0, cap=60.0, jitter=0.5, rand=lambda: 0.0)
    high = backoff(3, base=1.0, cap=60.0, jitter=0.5, rand=lambda: 1.0)
    assert (low, high) == (4.0, 8.0)
    assert all(4.0 <= backoff(3) <= 8.0 for _ in range(100))


def test_huge_attempt_numbers_stay_at_the_cap():
    assert backoff(10_000, rand=lambda: 1.0) == 60.0
    assert backoff(-3, rand=lambda: 1.0) == 1.0
