"""``bonzo-bulk init`` and ``bonzo-bulk integrations``: start an integration folder, list what is installed.

An integration is files only (see :mod:`bonzo_bulk.plan.integration`). ``init`` copies an existing one
(Monitorbase by default) into ``<dir>/integrations/<name>/`` with the names changed, and writes a
config that runs it, so the first run works before anything is edited::

    bonzo-bulk init --integration acme --from zillow
    bonzo-bulk run --config acme_test_config.yaml
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from bonzo_bulk._paths import get_path
from bonzo_bulk.errors import ConfigError
from bonzo_bulk.plan.integration import LOCAL_DIR, Integration, installed, load_integration, search_dirs

CONFIG_TEMPLATE = Path("tests/configs/test_config_template.yaml")
"""A project's own config template, used by ``init`` when it exists in the working directory."""

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_PAYLOAD_RULE = re.compile(r'(?m)^  - field: .*\n    expected: "payload:([^"]+)".*\n(?:    \S.*\n)*')
"""A ``validation_rules`` item of the config template expecting a ``payload:<path>`` value, with its indented keys."""

_MINIMAL_CONFIG = """\
# Bulk integration test for {display} (scaffolded by `bonzo-bulk init` from {origin}).
# Secrets are {{ENV_VAR}} placeholders: put the values in the environment or in .env, never here.
# Without TEST_HOOK_URL and SUPERUSER_API_KEY every command runs against the local sandbox.
test_name: "{display} Integration Test"
webhook_url: "{{TEST_HOOK_URL}}"
superuser_webhook_url: "{{SUPERUSER_WEBHOOK_URL}}"
superuser_api_key: "{{SUPERUSER_API_KEY}}"
integration_type: "{name}"      # found in ./integrations/{name}/ (working directory or next to this file)
test_records: 21
processing_delay: 30

# Test loan officers: stand-ins on a reserved test domain. For a live run, list real Bonzo test users.
# external_id is the id a lead source (HubSpot, ...) knows each user by: owner kind foreign_id needs it.
test_users:
  - name: "TestUser1"
    email: "test.user1@lender.test"
    user_id: 65013
    team_id: 12779
    external_id: "owner-501"
  - name: "TestUser2"
    email: "test.user2@lender.test"
    user_id: 27227
    team_id: 12211
    external_id: "owner-502"
  - name: "TestUser3"
    email: "test.user3@lender.test"
    user_id: 29194
    team_id: 12896
    external_id: "owner-503"
{webhook}
test_data_settings:
  last_name_pattern: "{display_word}"

# Records sent broken on purpose, and how the integration must handle them.
invalid_records:
  - kind: no_contact
    expect: reject
"""


@dataclass(frozen=True, slots=True)
class Scaffolded:
    """What ``init`` wrote, and what to check before the first run."""

    folder: Path
    config: Path
    files: tuple[Path, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class IntegrationRow:
    """One line of ``bonzo-bulk integrations``."""

    name: str
    origin: str
    encoding: str
    owner: str
    variants: str
    hook_type: str
    folder: str
    note: str = ""


def scaffold(name: str, *, base: Path, origin: str = "monitorbase") -> Scaffolded:
    """Copy integration ``origin`` to ``<base>/integrations/<name>/`` renamed, and write ``<name>_test_config.yaml``.

    The copy keeps posting to the origin's hook type, so it runs against the sandbox at once.
    """
    if not _NAME.match(name):
        raise ConfigError(f"--integration {name!r}: use lower-case letters, digits and '_' (e.g. 'acme_leads')")
    source = load_integration(origin, search=search_dirs(base))
    folder = base / LOCAL_DIR / name
    config = base / f"{name}_test_config.yaml"
    for path in (folder, config):
        if path.exists():
            raise ConfigError(f"{path} already exists; pick another name or move it away first")
    files = _copy_folder(source, folder, name)
    config.write_text(_config_text(source, name), encoding="utf-8")
    notes = []
    routing = source.manifest.owner.routing
    if routing is not None and routing.kind == "fixed":
        notes.append(
            f"the manifest routes every lead to user_id {routing.user_id}: make it one of the config's test_users"
        )
    if source.manifest.owner.kind == "foreign_id":
        notes.append("the owner is a foreign id: give every test user an 'external_id:' in the config")
    return Scaffolded(folder=folder, config=config, files=(*files, config), notes=tuple(notes))


def _copy_folder(source: Integration, folder: Path, name: str) -> list[Path]:
    """Copy the origin's files, then rename it in the manifest (comments kept) and head MAPPING.md."""
    shutil.copytree(source.folder, folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    manifest_file = folder / "manifest.yaml"
    display = name.replace("_", " ").title()
    text = manifest_file.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^name: .*$", f"name: {name}", text, count=1)
    text = re.sub(r"(?m)^display_name: .*$", f"display_name: {display}", text, count=1)
    text = re.sub(r"(?m)^source: .*$", f"source: {name}", text, count=1)
    hook_line = f"hook_type: {source.manifest.target_hook_type}"
    if re.search(r"(?m)^hook_type: ", text):
        text = re.sub(r"(?m)^hook_type: .*$", hook_line, text, count=1)
    else:
        text = re.sub(r"(?m)^(source: .*)$", rf"\1\n{hook_line}    # the Bonzo hook type it posts to", text, count=1)
    manifest_file.write_text(text, encoding="utf-8")
    mapping = folder / "MAPPING.md"
    previous = mapping.read_text(encoding="utf-8") if mapping.is_file() else ""
    mapping.write_text(
        f"# {display} → Bonzo mapping\n\n"
        f"Scaffolded from `{source.name}`: edit the template(s), `manifest.yaml` and this table to match "
        f"{display}'s payload.\n\n" + previous.split("\n", 1)[-1].lstrip("\n"),
        encoding="utf-8",
    )
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _config_text(source: Integration, name: str) -> str:
    """The project's config template with ``integration_type`` set, else a minimal commented config."""
    display = name.replace("_", " ").title()
    if CONFIG_TEMPLATE.is_file():
        text = CONFIG_TEMPLATE.read_text(encoding="utf-8")
        # The template's own payload files belong to its integration; the new folder brings its own.
        text = re.sub(r"(?m)^(superuser_)?payload_template:.*\n(?:[ \t]+#.*\n)*", "", text)
        found = re.search(r'(?m)^integration_type:\s*"?([a-z][a-z0-9_]*)"?', text)
        if found is None:
            return f'integration_type: "{name}"\n' + text
        old = found.group(1)
        text = re.sub(r"(?m)^integration_type:.*$", f'integration_type: "{name}"', text, count=1)
        text = text.replace(f'"{old}"', f'"{name}"')
        text = _PAYLOAD_RULE.sub(lambda rule: rule.group(0) if _holds(source, rule.group(1)) else "", text)
        return re.sub(r"(?m)^(\s*last_name_pattern:\s*).*$", rf'\g<1>"{display.replace(" ", "")}"', text)
    routing = source.manifest.owner.routing
    webhook = ""
    if routing is not None and routing.kind == "round_robin":
        webhook = "\nwebhook_settings:\n  concurrent_requests: 1  # round-robin routing: records must arrive in order\n"
    return _MINIMAL_CONFIG.format(
        name=name, display=display, display_word=display.replace(" ", ""), origin=source.name, webhook=webhook
    )


def _holds(source: Integration, path: str) -> bool:
    """Whether a template of ``source`` (which the new integration copies) fills ``path``: a config template's
    ``payload:`` rule written for another integration is left out, as a run would refuse it."""
    return any(get_path(variant.template, path) is not None for variant in source.variants)


def integration_rows(base: Path) -> list[IntegrationRow]:
    """Every installed integration: ``<base>/integrations/`` and ``./integrations/`` first, then built-ins."""
    rows = []
    for found in installed(search_dirs(base)):
        if found.integration is None:
            rows.append(
                IntegrationRow(found.name, found.origin, "?", "?", "", "", str(found.folder), found.error or "")
            )
            continue
        manifest = found.integration.manifest
        owner: str = manifest.owner.kind
        if manifest.owner.routing is not None:
            owner += f" → {manifest.owner.routing.kind}"
        elif manifest.owner.path:
            owner += f" ({manifest.owner.path})"
        rows.append(
            IntegrationRow(
                name=found.name,
                origin=found.origin,
                encoding=manifest.encoding + (f" <{manifest.root}>" if manifest.root else ""),
                owner=owner,
                variants=", ".join(v.value for v in manifest.variants),
                hook_type=manifest.target_hook_type,
                folder=str(found.folder),
                note=found.error or "",
            )
        )
    return rows
