"""Write a run's :class:`~jobpipe.settings.Settings` as a ``jobpipe.toml``.

The processes a load test starts (``jobpipe bridge``, ``jobpipe worker``, the
producers) read it through ``JOBPIPE_CONFIG``, so they all see the run's own
namespace and queues on top of whatever the user configured. Pure.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from jobpipe.settings import NONE, Settings


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _key(name: str) -> str:
    return name if name.replace("_", "").replace("-", "").isalnum() else _value(name)


def _table(header: str, obj: Any, skip: tuple[str, ...] = ()) -> list[str]:
    lines = [f"[{header}]"]
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.name in skip or (value is None and f.default is None):
            continue  # left out, it reads back as its default: None
        lines.append(f"{_key(f.name)} = {_value(NONE if value is None else value)}")
    return lines


def settings_to_toml(settings: Settings) -> str:
    """The whole settings tree as TOML that :func:`load_settings` reads back."""
    lines = [f"namespace = {_value(settings.namespace)}", ""]
    for section in ("redis", "kafka", "bridge", "worker", "ingest"):
        lines += _table(section, getattr(settings, section))
        lines.append("")
    for name, spec in settings.topology.queues.items():
        lines += _table(f"queues.{_key(name)}", spec, skip=("name",))
        lines.append("")
    return "\n".join(lines)
