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

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bonzo_bulk._paths import compile_path, get_path
from bonzo_bulk.config.contract import Transform
from bonzo_bulk.config.files import read_yaml
from bonzo_bulk.errors import ConfigError, TemplateError
from bonzo_bulk.models import User
from bonzo_bulk.plan.encodings import Encoding, content_type
from bonzo_bulk.plan.templates import load_template

BUILTIN_DIR = Path(__file__).parents[1] / "integrations"

OwnerKind = Literal["email", "user_id", "foreign_id", "none"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldMapping(_Model):
    """One line of the mapping contract: where a payload value lands on the prospect."""

    source: str = Field(alias="from")
    to: str
    how: Transform = Field(default="none", alias="transform")
    documented: bool = Field(
        default=True,
        description="false where Bonzo documents no such mapping (custom fields, extras): checked only when "
        "declared in the config's contract or learned by `bonzo-bulk calibrate`",
    )

    @property
    def transform(self) -> str:
        """How the stored value is normalised before comparing (a ``notes`` count compares as is)."""
        return "none" if self.how == "notes" else self.how


class Routing(_Model):
    """Who gets a lead whose payload names no owner: one fixed user, or round robin over the test users."""

    kind: Literal["fixed", "round_robin"]
    user_id: int | None = Field(default=None, gt=0, description="the owner, for kind: fixed")

    @model_validator(mode="after")
    def _fixed_has_user(self) -> Routing:
        if self.kind == "fixed" and self.user_id is None:
            raise ValueError("routing kind 'fixed' needs 'user_id:' (the Bonzo user id of one test user)")
        if self.kind == "round_robin" and self.user_id is not None:
            raise ValueError("routing kind 'round_robin' takes no 'user_id:'; it cycles over the test users")
        return self


class OwnerSpec(_Model):
    """How the payload names the lead's owner (or, for ``none``, the routing that picks one)."""

    kind: OwnerKind
    path: str | None = None
    routing: Routing | None = None

    @model_validator(mode="after")
    def _consistent(self) -> OwnerSpec:
        if self.kind == "none":
            if self.routing is None:
                raise ValueError(
                    "owner kind 'none' needs 'routing:' ({kind: fixed, user_id: N} or {kind: round_robin})"
                )
            if self.path is not None:
                raise ValueError("owner kind 'none' takes no 'path:'; the payload names no owner")
        else:
            if self.path is None:
                raise ValueError(f"owner kind {self.kind!r} needs 'path:' (where the payload names the owner)")
            if self.routing is not None:
                raise ValueError(f"owner kind {self.kind!r} takes no 'routing:'; the payload names the owner")
        return self


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


class Variant(_Model):
    """One payload variant: the discriminator value it carries and its template file."""

    value: str
    template: str


class Manifest(_Model):
    """The manifest of one integration folder."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    display_name: str
    source: str
    hook_type: str | None = Field(default=None, description="the Bonzo hook type it posts to; default: name")
    encoding: Encoding = "json"
    root: str | None = Field(default=None, description="XML: the root element")
    json_field: str | None = Field(default=None, description="form: the field that carries a JSON string")
    template: str | None = None
    discriminator: str | None = Field(default=None, description="payload path whose value names the variant")
    variants: list[Variant] = Field(default_factory=list)
    control: str | None = None
    owner: OwnerSpec
    borrower: BorrowerPaths
    mapping: list[FieldMapping]

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        if (self.template is None) == (not self.variants):
            raise ValueError("give either 'template:' (one payload) or 'variants:' (one template per variant)")
        if self.variants and self.discriminator is None:
            raise ValueError("'variants:' need 'discriminator:', the payload path whose value names the variant")
        values = [v.value for v in self.variants]
        if len(set(values)) != len(values):
            raise ValueError(f"variant values must differ; got {values}")
        if (self.encoding == "xml") != (self.root is not None):
            raise ValueError("'root:' (the XML root element) is needed with encoding 'xml' and only there")
        if self.json_field is not None and self.encoding != "form":
            raise ValueError("'json_field:' only applies to encoding 'form'")
        return self

    @property
    def target_hook_type(self) -> str:
        """The hook type the payload is posted to (``hook_type:``, else the integration's name)."""
        return self.hook_type or self.name

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` of every body this integration sends."""
        return content_type(self.encoding)


@dataclass(frozen=True, slots=True)
class LoadedVariant:
    """A parsed variant template; ``value`` is None for an integration without variants."""

    value: str | None
    template: Any


@dataclass(frozen=True, slots=True)
class Integration:
    """A loaded integration: its manifest, folder and parsed templates (``template`` is the first)."""

    manifest: Manifest
    folder: Path
    variants: tuple[LoadedVariant, ...]

    @property
    def template(self) -> Any:
        """The first (often only) variant's template."""
        return self.variants[0].template

    @property
    def name(self) -> str:
        return self.manifest.name


LOCAL_DIR = "integrations"
"""Folder name, in the working directory or next to a config file, that holds the users' own integrations."""


@dataclass(frozen=True, slots=True)
class Installed:
    """An integration folder found on disk: where it is, and its manifest (or why it does not load)."""

    name: str
    folder: Path
    origin: Literal["built-in", "local"]
    integration: Integration | None
    error: str | None = None


def builtin_names() -> list[str]:
    """Names of the integrations shipped with bonzo-bulk."""
    return sorted(p.parent.name for p in BUILTIN_DIR.glob("*/manifest.yaml"))


def search_dirs(*bases: Path) -> list[Path]:
    """Where local integrations are looked for: ``integrations/`` under each base (working dir first)."""
    found: list[Path] = []
    for base in (Path.cwd(), *bases):
        candidate = (base / LOCAL_DIR).resolve()
        if candidate not in found:
            found.append(candidate)
    return found


def load_integration(name_or_folder: str | Path, *, search: tuple[Path, ...] | list[Path] = ()) -> Integration:
    """Load an integration by folder path, else by name: a folder ``<dir>/<name>`` in ``search``, else a built-in.

    >>> load_integration("monitorbase").manifest.owner.kind
    'email'
    """
    folder = Path(name_or_folder)
    if not (folder / "manifest.yaml").is_file():
        name = str(name_or_folder)
        local = [d / name for d in search if (d / name / "manifest.yaml").is_file()]
        folder = local[0] if local else BUILTIN_DIR / name
        if not (folder / "manifest.yaml").is_file():
            known = ", ".join(builtin_names())
            looked = "".join(f", {d}/" for d in search)
            raise ConfigError(
                f"integration {name!r} is not known: no {name}/manifest.yaml in the built-ins ({known}){looked}; "
                f"check 'integration_type', or scaffold it with `bonzo-bulk init --integration {name}`",
                key="integration_type",
            )
    return _load(folder.resolve())


def installed(search: tuple[Path, ...] | list[Path] = ()) -> list[Installed]:
    """Every integration a run can name: local folders first (they win over a built-in of the same name)."""
    rows: list[Installed] = []
    seen: set[str] = set()
    places: list[tuple[Path, Literal["built-in", "local"]]] = [
        *((d, "local") for d in search),
        (BUILTIN_DIR, "built-in"),
    ]
    for directory, origin in places:
        for manifest_file in sorted(directory.glob("*/manifest.yaml")):
            folder = manifest_file.parent
            try:
                rows.append(Installed(folder.name, folder, origin, _load(folder.resolve())))
            except ConfigError as exc:
                rows.append(Installed(folder.name, folder, origin, None, str(exc)))
            if folder.name in seen:
                rows[-1] = Installed(folder.name, folder, origin, rows[-1].integration, "shadowed by a local folder")
            seen.add(folder.name)
    return rows


@functools.lru_cache(maxsize=64)
def _load(folder: Path) -> Integration:
    manifest_file = folder / "manifest.yaml"
    document = read_yaml(
        manifest_file, what="integration manifest", key="integration_type", shape="'name', 'owner', ..."
    )
    manifest = document.validate(Manifest, fix="see docs/integrations.md for the manifest's keys")
    paths = [manifest.owner.path, manifest.discriminator, *(m.source for m in manifest.mapping)]
    for path in [*paths, *(m.to for m in manifest.mapping)]:
        if path is not None:
            compile_path(path)
    if manifest.template is not None:
        variants: tuple[LoadedVariant, ...] = (LoadedVariant(None, _template(folder, manifest, manifest.template)),)
    else:
        variants = tuple(LoadedVariant(v.value, _template(folder, manifest, v.template)) for v in manifest.variants)
        for variant in variants:
            assert manifest.discriminator is not None
            carried = get_path(variant.template, manifest.discriminator)
            if carried != variant.value:
                raise ConfigError(
                    f"{manifest_file}: variant {variant.value!r}: its template must set "
                    f"{manifest.discriminator!r} to {variant.value!r} (found {carried!r})",
                    key="variants",
                )
    return Integration(manifest=manifest, folder=folder, variants=variants)


def _template(folder: Path, manifest: Manifest, file: str) -> Any:
    """Parse one template file of the folder; an XML template's root must be the manifest's ``root``."""
    path = folder / file
    if path.suffix.lower() == ".xml":
        from bonzo_bulk.plan.encodings import xml_to_tree

        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise TemplateError(f"template {str(path)!r} cannot be read ({exc.strerror})", key="template") from exc
        root, tree = xml_to_tree(text, source=f"template {str(path)!r}")
        if manifest.encoding != "xml" or root != manifest.root:
            raise TemplateError(
                f"template {str(path)!r}: root element <{root}> needs encoding 'xml' and root '{root}' in the manifest",
                key="root",
            )
        return tree
    return load_template(path)


def count_notes(value: Any) -> int:
    """How many notes a value makes: a non-empty text is one, a list or object one per non-empty item.

    >>> count_notes(["a", "", {"value": "b"}])
    2
    """
    if isinstance(value, Mapping):
        return sum(count_notes(v) for v in value.values())
    if isinstance(value, list):
        return sum(1 for v in value if count_notes(v))
    return int(value is not None and str(value).strip() != "")


def owner_value(manifest: Manifest, user: User) -> Any:
    """What the payload's owner field holds when ``user`` owns the lead (None when the payload names no owner).

    >>> owner_value(load_integration("monitorbase").manifest, User("A", "a@b.test", 7, 1))
    'a@b.test'
    """
    kind = manifest.owner.kind
    if kind == "email":
        return user.email
    if kind == "user_id":
        return user.user_id
    if kind == "foreign_id":
        return user.external_id
    return None
