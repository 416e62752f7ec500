"""The published wire contract, docs/envelope.schema.json, as the tests check it.

Envelopes are parsed with the standard library's ``json`` (not orjson, which the
code uses) and checked with ``jsonschema``, as a producer in another language
would check them. Kafka records are checked in the form the schema describes:
key and header values as UTF-8 text, the value parsed as JSON.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from jsonschema import Draft202012Validator

from tests.services import ROOT

SCHEMA_PATH = ROOT / "docs" / "envelope.schema.json"
DOC_PATH = ROOT / "docs" / "envelope.md"
# An example in envelope.md is a ```json block right after <!-- schema: DEFINITION -->.
_EXAMPLE = re.compile(r"<!-- schema: (\w+) -->\s*```json\n(.*?)```", re.DOTALL)


@functools.cache
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return loaded


@functools.cache
def validator(definition: str = "envelope") -> Draft202012Validator:
    """A validator of one definition of the schema (``envelope``, ``kafka_dlq_record`` ...)."""
    published = schema()
    if definition not in published["$defs"]:
        raise KeyError(f"no definition {definition!r} in {SCHEMA_PATH.name}")
    # The published document with its root pointed at one definition: every
    # "#/$defs/..." inside still resolves within it.
    return Draft202012Validator({**published, "$ref": f"#/$defs/{definition}"})


def problems(instance: Any, definition: str = "envelope") -> list[str]:
    """Every way ``instance`` breaks ``definition``, one line each (empty: it follows)."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in validator(definition).iter_errors(instance)]


def record_view(key: bytes | None, headers: Any, value: bytes | None) -> dict[str, Any]:
    """A Kafka record in the schema's form (``headers`` as confluent gives them)."""
    text = value.decode() if value else ""
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = text  # a DLQ record of input that was never JSON
    return {"key": key.decode() if key is not None else None,
            "headers": {name: bytes(v or b"").decode() for name, v in headers or []},
            "value": parsed}


def doc_examples() -> list[tuple[str, Any]]:
    """``(definition, example)`` of every example in envelope.md."""
    return [(name, json.loads(body)) for name, body in _EXAMPLE.findall(DOC_PATH.read_text())]
