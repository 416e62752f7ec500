"""Generate the blocking producer (ingest/producer.py) from the asyncio one (ingest/aio.py).

One shell is written by hand, the other is derived by token rules, as httpx and
redis-py do, so the two cannot drift. ``--check`` exits 1 when the committed
file differs from what the rules give (a unit test runs it).

    python scripts/unasync.py          # rewrite ingest/producer.py
    python scripts/unasync.py --check  # fail when it is stale
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "ingest" / "aio.py"
TARGET = ROOT / "ingest" / "producer.py"

DOCSTRING = '''"""The blocking producer, generated from ingest/aio.py: do not edit.

:class:`Producer` checks Redis at construction; ``close()`` (or ``with``)
releases it. Thread-safe: redis-py's client is, and the spool is guarded by a
lock. Edit ``ingest/aio.py`` and run ``python scripts/unasync.py``.
"""'''

# Applied in order; each pattern must match at least once, so a rule that no
# longer applies is noticed instead of silently doing nothing.
RULES: list[tuple[str, str]] = [
    (r"import asyncio\nimport logging\n", "import logging\nimport threading\n"),
    (r"import redis\.asyncio\nimport redis\.exceptions\n", "import redis\n"),
    (r"await asyncio\.to_thread\(([\w.]+)\)", r"\1()"),
    (r"await asyncio\.to_thread\(([\w.]+), ", r"\1("),
    (r"await asyncio\.sleep\(", "time.sleep("),
    (r"asyncio\.Lock\(\)", "threading.Lock()"),
    (r"^(\s*)# sync-only: (.*)$", r"\1\2"),
    (r"\basync with\b", "with"),
    (r"\basync def\b", "def"),
    (r"\bawait ", ""),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    # The redis stubs lack the asyncio client's aclose(); the blocking one has close().
    (r"\.aclose\(\)  # type: ignore\[attr-defined\]", ".close()"),
    (r"\bredis\.asyncio\.Redis\b", "redis.Redis"),
    (r"\basync_redis_client\b", "redis_client"),
    (r"\bcheck_redis_safety_async\b", "check_redis_safety"),
    (r"\bAsyncProducer\b", "Producer"),
    # jobpipe.jobstatus, jobpipe.pipelined and ingest.replicas name their asyncio
    # twins with this suffix.
    (r"\b(lookup|cancel|wait_for|primary_connection|refresh_slots|run_script)_async\b", r"\1"),
]


def generate(source: str) -> str:
    """The blocking shell for the asyncio ``source``."""
    docstring = re.match(r'"""(?:.|\n)*?"""', source)
    if docstring is None:
        raise ValueError("ingest/aio.py must start with its module docstring")
    text = DOCSTRING + source[docstring.end():]
    for pattern, replacement in RULES:
        text, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
        if count == 0:
            raise ValueError(f"unasync rule {pattern!r} matched nothing in ingest/aio.py")
    if "asyncio" in text:
        raise ValueError("unasync left 'asyncio' in the blocking producer; add a rule")
    return text


def main(argv: list[str]) -> int:
    wanted = generate(SOURCE.read_text())
    if "--check" in argv:
        if TARGET.read_text() != wanted:
            print("ingest/producer.py is stale: run python scripts/unasync.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
