"""The ``[redis]`` settings table of docs/operations.md names every field, with its default."""

from __future__ import annotations

import re
from dataclasses import MISSING, fields
from pathlib import Path

from jobpipe.settings import RedisSettings

ROOT = Path(__file__).resolve().parents[3]


def documented_rows() -> dict[str, str]:
    """Setting name -> default cell, from the table under "## Redis settings"."""
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text.split("## Redis settings", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        for name in re.findall(r"`([a-z_]+)`", cells[0]):
            rows[name] = cells[1].strip("`")
    return rows


def test_every_redis_setting_is_documented_and_nothing_else() -> None:
    assert set(documented_rows()) == {f.name for f in fields(RedisSettings)}


def test_documented_defaults_are_the_code_defaults() -> None:
    rows = documented_rows()
    for f in fields(RedisSettings):
        default = f.default
        assert default is not MISSING
        shown = "unset" if default is None else str(default).lower() if isinstance(
            default, bool) else str(default)
        assert rows[f.name] == shown, f.name
