"""The one way a YAML file becomes a model, and the one way its mistakes are told.

Every YAML file bonzo-bulk reads (the config, a learned contract, an integration's manifest and
``contract.yaml``, a sandbox fault profile, a load or stress scenario) is read by :func:`read_yaml`,
strictly (a key given twice is refused, not silently overwritten), and checked by :func:`validate`.
A mistake is a :class:`~bonzo_bulk.errors.ConfigError` (exit 2) of one form: the file, the key, the
line when it is known (or the flag the value came from), the bad value, and the fix::

    config file 'c.yaml' does not exist; pass --config with the path of a YAML config (...)
    c.yaml: key 'stages' is given twice (line 5, first at line 2); keep one of them
    c.yaml: 'test_recrods' (line 4): unknown key; did you mean 'test_records'?
    bad.yaml: 'primary.fields[0]' (line 2): ...; run `bonzo-bulk calibrate` to write a fresh contract file

>>> load_yaml("stages: 5\\nstages: 6\\n")
Traceback (most recent call last):
bonzo_bulk.config.files.DuplicateKeyError: key 'stages' is given twice (line 2, first at line 1); keep one of them
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from bonzo_bulk.errors import ConfigError
from bonzo_bulk.secrets import redact

M = TypeVar("M", bound=BaseModel)

Loc = Sequence[str | int]
"""Where a value sits in a document: keys and list indexes, outermost first."""


@dataclass(frozen=True)
class YamlFile:
    """A parsed YAML file: its data, and its node tree (which knows the line of every key)."""

    path: Path
    data: dict[str, Any]
    root: yaml.Node | None

    @property
    def source(self) -> str:
        return str(self.path)

    def validate(self, model: type[M], *, key: str | None = None, fix: str = "") -> M:
        """The file's data as ``model`` (see :func:`validate`)."""
        return validate(model, self.data, source=self.source, root=self.root, key=key, fix=fix)


def read_yaml(
    path: Path, *, what: str, key: str | None = None, missing_fix: str = "check the path", shape: str = "keys"
) -> YamlFile:
    """Read one YAML file whose top level is a mapping (an empty file is ``{}``).

    ``what`` names the file in messages ("config file", "fault profile"), ``key`` is the option that named
    it (the :class:`ConfigError`'s key for a file that cannot be read), ``missing_fix`` what to do when it
    does not exist, and ``shape`` the keys a mapping of this kind holds (said when the top level is not one).
    """
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{what} {source!r} does not exist; {missing_fix}", key=key) from exc
    except OSError as exc:
        raise ConfigError(f"{what} {source!r} cannot be read ({exc.strerror}); check the path", key=key) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what} {source!r} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            "save it as UTF-8",
            key=key,
        ) from exc
    try:
        root = yaml.compose(text)
        data = load_yaml(text)
    except DuplicateKeyError as exc:
        raise ConfigError(str(exc), key=exc.key, source=source) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{what} is not valid YAML{line}: {problem}", key=key, source=source) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"the top level must be a mapping of {shape}", key=key, source=source)
    return YamlFile(path, data, root)


class DuplicateKeyError(yaml.YAMLError):
    """A mapping in the YAML names the same key twice (YAML would silently keep the last)."""

    def __init__(self, key: str, line: int, first_line: int) -> None:
        self.key = key
        super().__init__(f"key {key!r} is given twice (line {line}, first at line {first_line}); keep one of them")


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping instead of keeping the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = self.construct_object(key_node, deep=deep)
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise DuplicateKeyError(str(key), line, seen[key])
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """Parse YAML safely, refusing duplicate keys (:class:`DuplicateKeyError`)."""
    loader = _StrictLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def line_of(root: yaml.Node | None, loc: Loc) -> int | None:
    """The line of the deepest YAML node found along ``loc``, or None."""
    node = root
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((kv for kv in node.value if kv[0].value == part), None)
            if match is None:
                break
            line = match[0].start_mark.line + 1
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def key_name(loc: Loc) -> str:
    """``stages[1].rate`` for ``("stages", 1, "rate")``."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def validate(
    model: type[M],
    data: Any,
    *,
    source: str | None,
    root: yaml.Node | None = None,
    origins: Mapping[tuple[str, ...], str] | None = None,
    key: str | None = None,
    fix: str = "",
    tags: Collection[str] = (),
) -> M:
    """``data`` as ``model``, or a :class:`ConfigError` naming every bad key (see :func:`validation_error`)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(
            exc, model, source=source, root=root, origins=origins, key=key, fix=fix, tags=tags
        ) from exc


def validation_error(
    exc: ValidationError,
    model: type[BaseModel],
    *,
    source: str | None,
    root: yaml.Node | None = None,
    origins: Mapping[tuple[str, ...], str] | None = None,
    key: str | None = None,
    fix: str = "",
    tags: Collection[str] = (),
) -> ConfigError:
    """Pydantic's errors as one :class:`ConfigError` (see :func:`describe`), then ``fix``; its key is ``key``
    when the file as a whole is named by one (``contract.file``), else the first bad key."""
    message, first_key = describe(exc, model, root=root, origins=origins, tags=tags)
    return ConfigError(message + (f"; {fix}" if fix else ""), key=key or first_key, source=source)


def describe(
    exc: ValidationError,
    model: type[BaseModel],
    *,
    root: yaml.Node | None = None,
    origins: Mapping[tuple[str, ...], str] | None = None,
    tags: Collection[str] = (),
) -> tuple[str, str]:
    """Pydantic's errors as one message and the first bad key: each key, where it is (its line in ``root``,
    or the flag or variable ``origins`` says it came from), the bad value and what is wrong.

    An unknown key comes first (a misspelt key also shows up as the real one missing). ``tags`` are the
    values of a discriminated union's tag, which pydantic adds to the path.
    """
    problems = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    lines = []
    first_key = ""
    for error in problems:
        loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and (p.startswith("function-") or p in tags)))
        name = key_name(loc) or "(top level)"
        first_key = first_key or name
        lines.append(_problem(error, loc, name, model, root, origins or {}))
    return "; ".join(lines), first_key


def _problem(
    error: Any,
    loc: tuple[str | int, ...],
    name: str,
    model: type[BaseModel],
    root: yaml.Node | None,
    origins: Mapping[tuple[str, ...], str],
) -> str:
    """One bad key: ``'key' (line N): <value> is not valid: <why>``."""
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        known = known_keys(model, loc[:-1])
        hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
        message = "unknown key"
        if hint or known:
            message += f"; did you mean {hint[0]!r}?" if hint else f"; known keys: {', '.join(known)}"
    elif error["type"] == "missing":
        message = "required key is missing"
    elif "input" in error and error["type"] != "model_type" and not isinstance(error["input"], dict):
        message = f"{redact(repr(error['input']))} is not valid: {message}"
    if not loc:
        return message
    origin = origins.get(tuple(str(p) for p in loc))
    line = line_of(root, loc)
    where = f" (from {origin})" if origin else (f" (line {line})" if line else "")
    return f"'{name}'{where}: {message}"


def known_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys a mapping at ``loc`` inside ``model`` may hold (for a did-you-mean hint); [] when unknown."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        info = getattr(current, "model_fields", {}).get(part)
        if info is None:
            return []
        annotation = info.annotation
        args = getattr(annotation, "__args__", ())
        current = next((a for a in (annotation, *args) if hasattr(a, "model_fields")), None)
        if current is None:
            return []
    return [info.alias or name for name, info in getattr(current, "model_fields", {}).items()]
