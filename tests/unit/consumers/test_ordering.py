from consumers.ordering import KeyLines


def test_same_key_waits_and_runs_in_order():
    lines: KeyLines[str] = KeyLines()
    assert lines.admit("k", "a1")
    assert not lines.admit("k", "a2")
    assert not lines.admit("k", "a3")
    assert lines.admit("other", "b1")
    assert lines.admit(None, "free")
    assert lines.release("k") == "a2"
    assert lines.release("k") == "a3"
    assert lines.release("k") is None
    assert lines.admit("k", "a4")  # the key is free again


def test_discard_removes_waiting_items():
    lines: KeyLines[str] = KeyLines()
    lines.admit("k", "x0")
    lines.admit("k", "x1")
    lines.admit("k", "y2")
    assert lines.discard(lambda i: i.startswith("x")) == ["x1"]
    assert lines.waiting == 1
    assert lines.release("k") == "y2"
