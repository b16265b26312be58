"""The node's newest-frame hand-off and counters, with real threads."""
from __future__ import annotations

import threading
import time

import pytest

from lanenet_ros.node.stats import Mailbox, NodeStats


def test_a_new_item_replaces_the_one_not_yet_taken():
    box = Mailbox()
    assert box.put("frame 1") is False
    assert box.put("frame 2") is True  # frame 1 replaced
    assert box.take(timeout=0.1) == "frame 2"
    assert box.take(timeout=0.05) is None  # nothing left: no backlog


def test_a_slow_worker_always_gets_the_newest_frame():
    box, seen = Mailbox(), []

    def worker():
        while (item := box.take()) is not None:
            seen.append(item)
            time.sleep(0.01)  # slower than the camera below

    thread = threading.Thread(target=worker)
    thread.start()
    dropped = 0
    for i in range(200):  # a 2 kHz camera
        dropped += box.put(i)
        time.sleep(0.0005)
    time.sleep(0.05)
    box.close()
    thread.join(timeout=2)
    assert not thread.is_alive()
    assert seen[-1] == 199 and seen == sorted(seen)  # in order, the last one always processed
    assert dropped + len(seen) == 200 and dropped > 100


def test_close_wakes_a_waiting_worker():
    box = Mailbox()
    result = []
    thread = threading.Thread(target=lambda: result.append(box.take()))
    thread.start()
    time.sleep(0.05)
    box.close()
    thread.join(timeout=2)
    assert result == [None] and box.put("late") is False and box.take(0.01) is None


def test_periods_report_rates_and_mean_stage_times():
    stats = NodeStats()
    stats.count("received", 10)
    stats.count("replaced", 4)
    stats.count("lost", 10)
    stats.frame_done({"infer": 0.020, "decode": 0.004})
    stats.frame_done({"infer": 0.030, "decode": 0.006})
    time.sleep(0.05)
    period = stats.roll()
    assert (period.received, period.processed, period.replaced, period.lost) == (10, 2, 4, 10)
    assert period.lost_share == 0.5
    assert period.stage_ms == pytest.approx({"infer": 25.0, "decode": 5.0})
    assert 0 < period.input_rate <= 10 / 0.05 and period.output_rate == pytest.approx(period.input_rate / 5)
    assert stats.roll().processed == 0 and stats.totals["processed"] == 2


def test_a_waiting_put_hands_every_item_over_in_order_and_blocks_the_faster_side():
    box, seen = Mailbox(), []

    def second_stage():
        while (item := box.take()) is not None:
            time.sleep(0.005)  # slower than the first stage below
            seen.append(item)

    thread = threading.Thread(target=second_stage)
    thread.start()
    start = time.perf_counter()
    for i in range(40):
        assert box.put(i, wait=True) is False  # never replaces
    elapsed = time.perf_counter() - start
    while len(seen) < 40 and thread.is_alive():
        time.sleep(0.01)
    box.close()
    thread.join(timeout=2)
    assert seen == list(range(40))
    assert elapsed >= 38 * 0.005  # the first stage waited for the second: at most one item between them


def test_close_releases_a_waiting_put():
    box = Mailbox()
    box.put("waiting")
    thread = threading.Thread(target=lambda: box.put("blocked", wait=True))
    thread.start()
    time.sleep(0.05)
    assert thread.is_alive()
    box.close()
    thread.join(timeout=2)
    assert not thread.is_alive()
