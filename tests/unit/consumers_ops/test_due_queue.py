"""The in-memory waiting room of the retry relay."""

from __future__ import annotations

from consumers.retry.tiers import DueQueue


def test_items_leave_when_due_earliest_first_whatever_order_they_came_in():
    q: DueQueue[str] = DueQueue()
    q.push(300, ("t", 0), 10, "late")
    q.push(100, ("t", 0), 10, "early")
    q.push(200, ("t", 1), 10, "middle")
    assert q.next_due_ms() == 100
    assert q.pop_due(99) == []
    assert q.pop_due(250) == ["early", "middle"]
    assert q.held_bytes == 10
    assert q.pop_due(300) == ["late"]
    assert q.next_due_ms() is None
    assert q.held_bytes == 0


def test_ties_leave_in_the_order_they_were_read():
    q: DueQueue[int] = DueQueue()
    for i in range(50):
        q.push(100, ("t", 0), 1, i)
    assert q.pop_due(100) == list(range(50))


def test_dropping_a_revoked_partition_forgets_its_items_and_their_bytes():
    q: DueQueue[str] = DueQueue()
    q.push(100, ("t", 0), 5, "a")
    q.push(50, ("t", 1), 7, "b")
    q.push(70, ("u", 0), 11, "c")
    q.drop({("t", 1), ("u", 0)})
    assert len(q) == 1
    assert q.held_bytes == 5
    assert q.pop_due(1000) == ["a"]
