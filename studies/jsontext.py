"""JSON and TOML text read from files: every malformed text raises the parser's own error.

Python's parsers are recursive, so a text nested a few thousand levels deep (``[[[[…``), which no
file of ours holds but a damaged or hostile one may, raises ``RecursionError`` instead of a
decode error, and escapes every ``except ValueError`` of the readers as a traceback. These two
functions turn it into the decode error (a ``ValueError``), so that a record, a spec, a trials
file or an HDF5 attribute nested too deeply is reported and handled like any other damaged one.
"""
from __future__ import annotations

import json
import tomllib
from typing import Any

__all__ = ["loads_json", "loads_toml"]

_TOO_DEEP = "nested too deeply to parse (more levels than Python's recursion limit)"


def loads_json(text: str | bytes) -> Any:
    """``json.loads(text)``; raises ``json.JSONDecodeError`` for any malformed text."""
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError(_TOO_DEEP, text if isinstance(text, str) else "", 0) from None


def loads_toml(text: str) -> dict[str, Any]:
    """``tomllib.loads(text)``; raises ``tomllib.TOMLDecodeError`` for any malformed text."""
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise tomllib.TOMLDecodeError(_TOO_DEEP) from None
