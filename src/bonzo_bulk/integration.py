"""Integrations as folders: a manifest, a payload template and a mapping note — no code.

An integration folder holds ``manifest.yaml`` (encoding, owner, borrower paths, the mapping
contract payload path -> prospect field), the template it names, and ``MAPPING.md``. The built-in
ones live in ``bonzo_bulk/integrations/``; a folder of the same layout elsewhere works the same way.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jmespath
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bonzo_bulk.errors import ConfigError
from bonzo_bulk.templates import load_template

BUILTIN_DIR = Path(__file__).parent / "integrations"

Transform = Literal["none", "lower", "phone", "strip", "tags"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldMapping(_Model):
    """One line of the mapping contract: where a payload value lands on the prospect."""

    source: str = Field(alias="from")
    to: str
    transform: Transform = "none"


class OwnerSpec(_Model):
    """How the payload names the lead's owner."""

    kind: Literal["email", "user_id", "foreign_id", "none"]
    path: str | None = None


class BorrowerPaths(_Model):
    """Where the borrower's identity sits in the payload (used for invalid-record cases)."""

    first_name: str
    last_name: str | None = None
    email: str | None = None
    phone: list[str] = Field(default_factory=list)

    @field_validator("phone", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class Manifest(_Model):
    """The manifest of one integration folder."""

    name: str
    display_name: str
    source: str
    encoding: Literal["json"] = "json"
    template: str
    control: str | None = None
    owner: OwnerSpec
    borrower: BorrowerPaths
    mapping: list[FieldMapping]


@dataclass(frozen=True, slots=True)
class Integration:
    """A loaded integration: its manifest, folder and parsed template."""

    manifest: Manifest
    folder: Path
    template: Any

    @property
    def name(self) -> str:
        return self.manifest.name


def builtin_names() -> list[str]:
    """Names of the integrations shipped with bonzo-bulk."""
    return sorted(p.parent.name for p in BUILTIN_DIR.glob("*/manifest.yaml"))


def load_integration(name_or_folder: str | Path) -> Integration:
    """Load an integration by built-in name or by folder path."""
    folder = Path(name_or_folder)
    if not (folder / "manifest.yaml").is_file():
        folder = BUILTIN_DIR / str(name_or_folder)
    return _load(folder.resolve())


@functools.lru_cache(maxsize=32)
def _load(folder: Path) -> Integration:
    manifest_file = folder / "manifest.yaml"
    if not manifest_file.is_file():
        known = ", ".join(builtin_names())
        raise ConfigError(
            f"integration {folder.name!r} is not known: no {manifest_file}; built-in integrations: {known}",
            key="integration_type",
        )
    try:
        raw = yaml.safe_load(manifest_file.read_text(encoding="utf-8"))
        manifest = Manifest.model_validate(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{manifest_file}: not valid YAML: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{manifest_file}: '{where}': {first['msg']}", key=where) from exc
    for item in manifest.mapping:
        _compile_path(item.source)
        _compile_path(item.to)
    return Integration(manifest=manifest, folder=folder, template=load_template(folder / manifest.template))


@functools.lru_cache(maxsize=512)
def _compile_path(path: str) -> Any:
    try:
        return jmespath.compile(path)
    except jmespath.exceptions.ParseError as exc:
        raise ConfigError(f"{path!r} is not a valid field path (JMESPath): {exc}", key=path) from exc


def get_path(document: Any, path: str) -> Any:
    """Read a JMESPath ``path`` (e.g. ``assigned_user.email``) out of a JSON document."""
    return _compile_path(path).search(document)


def set_path(document: dict[str, Any], path: str, value: Any) -> None:
    """Set a plain dotted ``path`` in a nested dict, creating objects on the way."""
    parts = path.split(".")
    node = document
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def expected_fields(manifest: Manifest, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The prospect field values the mapping contract promises for ``payload`` (normalised)."""
    from bonzo_bulk.normalize import normalize

    expected: dict[str, Any] = {}
    for item in manifest.mapping:
        value = get_path(payload, item.source)
        if value is None or value == "" or value == []:
            continue
        normalized = normalize(value, item.transform)
        if normalized is not None:
            expected[item.to] = normalized
    return expected
