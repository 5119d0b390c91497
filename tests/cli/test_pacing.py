"""``rotate`` over several installations keeps RotateSecret under Secrets Manager's quota of 50
requests a second: the pacer hands out turns, on a virtual clock here."""

from __future__ import annotations

import itertools
import threading

from ses_smtp_rotator.cli.pacing import ROTATE_SECRET_QUOTA, ROTATE_SECRET_RATE, RatePacer


def turns_taken(threads: int, calls_each: int) -> list[float]:
    """The moments at which ``threads`` threads' calls got their turn, the clock standing at 0
    (each waits exactly as long as the pacer tells it to)."""
    turns: list[float] = []
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            turns.append(seconds)

    pacer = RatePacer(ROTATE_SECRET_RATE, clock=lambda: 0.0, sleep=sleep)

    def caller() -> None:
        for _ in range(calls_each):
            pacer.wait()

    workers = [threading.Thread(target=caller) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sorted([0.0, *turns])  # the very first call waits for nothing


def test_many_callers_at_once_get_turns_one_interval_apart():
    turns = turns_taken(threads=8, calls_each=25)

    assert len(turns) == 200
    gaps = [later - earlier for earlier, later in itertools.pairwise(turns)]
    assert min(gaps) > 0.9 / ROTATE_SECRET_RATE


def test_no_second_holds_more_than_the_rate_nor_the_quota():
    turns = turns_taken(threads=16, calls_each=10)

    window = 1.0 - 1e-9  # one second, clear of the float rounding of the turns at its ends
    busiest = max(sum(start <= turn < start + window for turn in turns) for start in turns)
    assert busiest == ROTATE_SECRET_RATE
    assert busiest < ROTATE_SECRET_QUOTA


def test_a_caller_after_a_quiet_while_does_not_wait():
    waited: list[float] = []
    now = [0.0]
    pacer = RatePacer(ROTATE_SECRET_RATE, clock=lambda: now[0], sleep=waited.append)

    pacer.wait()
    now[0] = 5.0
    pacer.wait()

    assert waited == []
