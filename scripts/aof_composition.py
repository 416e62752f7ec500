"""What Redis's append-only file holds: bytes by command and kind of key.

    .venv/bin/python scripts/aof_composition.py --jobs N APPENDONLYDIR/*.incr.aof

Reads incremental AOF files (RESP commands, parsed by hiredis), sums the bytes
of each command by its name and the kind of its first key (the part after the
queue's hash tag, ids left out: ``ready``, ``inflight``, ``done-ids``...), and
divides by ``--jobs``, the jobs the files cover (a load test's ``produced``
while no rewrite ran, or one whole run on a Redis that did not rewrite during
it). Figures in docs/benchmarks.md ("What the AOF holds per job").
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

import hiredis

CHUNK = 1 << 20
# ns:{q}:inflight:<bridge>:... -> inflight; ns:{q.s1}:done-ids:0190... -> done-ids
_KIND = re.compile(rb"\}:([A-Za-z_-]+)")


def _encoded_len(command: list[bytes]) -> int:
    """The bytes of ``command`` in RESP, as the AOF stores it."""
    return len(f"*{len(command)}\r\n") + sum(len(f"${len(a)}\r\n") + len(a) + 2 for a in command)


def _kind(command: list[bytes]) -> str:
    name = command[0].decode().upper()
    if len(command) < 2:
        return name
    match = _KIND.search(command[1])
    return f"{name} {match.group(1).decode() if match else '(other key)'}"


def composition(paths: list[Path]) -> Counter[str]:
    """Bytes per ``"COMMAND key-kind"`` over ``paths``."""
    sizes: Counter[str] = Counter()
    for path in paths:
        reader = hiredis.Reader()
        with path.open("rb") as file:
            while chunk := file.read(CHUNK):
                reader.feed(chunk)
                while (command := reader.gets()) is not False:
                    sizes[_kind(command)] += _encoded_len(command)
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, required=True, help="jobs the files cover")
    parser.add_argument("paths", type=Path, nargs="+")
    options = parser.parse_args()
    sizes = composition(options.paths)
    total = sum(sizes.values())
    print(f"{total:,} bytes, {total / options.jobs:,.0f} per job over {options.jobs:,} jobs")
    for kind, size in sizes.most_common():
        if size / total >= 0.001:
            print(f"  {kind:<28} {size / options.jobs:>7,.1f} B/job  {size / total:6.1%}")


if __name__ == "__main__":
    main()
