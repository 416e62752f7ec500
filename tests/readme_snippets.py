"""The README's quickstart blocks, as the README has them.

A fenced block preceded by ``<!-- quickstart:KIND [NAME] -->`` is one step:
``file NAME`` (write the block to NAME), ``stack`` (start Redis and Kafka: the
test's own services stand in), ``run`` (each line is a command that must
succeed; an argument ``ID`` stands for the job id the quickstart printed first)
or ``serve`` (each line starts a long-running process; a trailing ``&``
backgrounds it in a shell).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

KINDS = ("file", "stack", "run", "serve")
_BLOCK = re.compile(r"<!-- quickstart:(\w+)(?: (\S+))? -->\n```\w*\n(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class Step:
    kind: str
    name: str | None
    text: str

    def lines(self) -> list[str]:
        """The commands of a ``run`` or ``serve`` step, one per non-blank line."""
        return [line for line in self.text.splitlines() if line.strip()]


def quickstart_steps(readme: Path) -> list[Step]:
    """Every marked block of ``readme``, in order.

    Raises:
        ValueError: a marker of an unknown kind, or a file step without a name.
    """
    steps = []
    for match in _BLOCK.finditer(readme.read_text()):
        kind, name, text = match.groups()
        if kind not in KINDS or (kind == "file") != (name is not None):
            raise ValueError(f"README: bad quickstart marker {match.group(0).splitlines()[0]}")
        steps.append(Step(kind, name, text))
    return steps
