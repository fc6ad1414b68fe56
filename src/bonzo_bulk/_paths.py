"""Field paths into JSON documents: JMESPath to read (``assigned_user.email``), dotted to write.

Compiled paths are cached: the same few paths are read on every record of a run.

>>> get_path({"a": {"b": [1, 2]}}, "a.b[1]")
2
>>> doc: dict[str, object] = {}
>>> set_path(doc, "data_json.email", "x@y.test")
>>> doc
{'data_json': {'email': 'x@y.test'}}
"""

from __future__ import annotations

import functools
import itertools
import re
from typing import Any

import jmespath
import jmespath.exceptions

from bonzo_bulk.errors import ConfigError


@functools.lru_cache(maxsize=512)
def compile_path(path: str) -> Any:
    """A compiled JMESPath; a path that does not parse is a :class:`ConfigError` naming it."""
    try:
        return jmespath.compile(path)
    except jmespath.exceptions.ParseError as exc:
        raise ConfigError(f"{path!r} is not a valid field path (JMESPath): {exc}", key=path) from exc


def get_path(document: Any, path: str) -> Any:
    """Read a JMESPath ``path`` (e.g. ``assigned_user.email``) out of a JSON document."""
    return compile_path(path).search(document)


_SEGMENT = re.compile(r"^([^.\[\]]+)((?:\[\d+\])*)$")


def set_path(document: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted ``path`` (list indexes allowed: ``data_json.email[0]``), creating objects on the way."""
    steps: list[str | int] = []
    for part in path.split("."):
        match = _SEGMENT.match(part)
        if match is None:
            raise ConfigError(f"{path!r} is not a plain dotted path (name.name[0]...)", key=path)
        steps.append(match.group(1))
        steps.extend(int(i) for i in re.findall(r"\[(\d+)\]", match.group(2)))
    node: Any = document
    for step, following in itertools.pairwise(steps):
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                raise ConfigError(f"{path!r}: no item [{step}] to set in the payload", key=path)
            node = node[step]
            continue
        child = node.get(step)
        if not isinstance(child, dict | list):
            child = [] if isinstance(following, int) else {}
            node[step] = child
        node = child
    last = steps[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise ConfigError(f"{path!r}: no item [{last}] to set in the payload", key=path)
        node[last] = value
    else:
        node[last] = value
