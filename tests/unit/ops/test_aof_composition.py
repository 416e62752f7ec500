"""scripts/aof_composition.py: bytes per command and key kind of an AOF, as Redis wrote it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "aof_composition.py"


def _load():  # a script, not a package: loaded by path
    spec = importlib.util.spec_from_file_location("aof_composition", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _resp(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def test_every_byte_of_the_file_is_counted_under_its_command_and_key_kind(tmp_path):
    push = _resp(b"LPUSH", b"ns:{q}:ready:0", b'{"id":"a"}', b'{"id":"b"}')
    copy = _resp(b"lpush", b"ns:{q.s1}:inflight:b1:ns:{q.s1}:ready:1", b'{"id":"a"}')
    mark = _resp(b"HSET", b"ns:{q}:done-ids:0190aabbccd", b"0190aabbccd-1", b"1")
    select = _resp(b"SELECT", b"0")
    path = tmp_path / "appendonly.aof.1.incr.aof"
    path.write_bytes(select + push + copy + mark + push)  # split across reads below
    module = _load()
    module.CHUNK = 7
    sizes = module.composition([path])
    assert sizes == {"SELECT (other key)": len(select), "LPUSH ready": 2 * len(push),
                     "LPUSH inflight": len(copy), "HSET done-ids": len(mark)}
    assert sum(sizes.values()) == path.stat().st_size
