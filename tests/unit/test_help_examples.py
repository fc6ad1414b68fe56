"""Every example in a command's --help, and every ``bonzo-bulk`` command in README.md and docs/*.md, parses with
that command's real options and names files that exist (a --help example writes RUN_ID, never a made-up id that
no store holds); the docs' commands that only read (integrations, contract, records) are run as written.

Every command of the docs and the --help examples also runs as written (issue 24), in two lanes:

* the default lane (``uv run pytest``): each distinct command line once, where it is first written, but the ones
  that send load, wait for workers, start a server, or wait out a deadline or a drill (``SLOW``): under a minute;
* the ``docs_commands`` lane, deselected by default (``addopts = -m "not docs_commands"``) because it takes minutes
  (load and stress send for seconds each, a master waits for its workers, servers start and stop):
  ``uv run pytest -m docs_commands tests/unit/test_help_examples.py`` runs every command, in the docs' order.

Each lane has its own sandbox and working directories and runs, before a case, only the cases of its own lane
written before it in the same doc: neither lane depends on the other having run."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import typer
import yaml
from load.test_load_history import kinds_store
from typer.testing import CliRunner

from bonzo_bulk.cli import app
from bonzo_bulk.config.schema import ProcessingDelayModel
from bonzo_bulk.sandbox.process import SandboxProcess
from bonzo_bulk.sandbox.state import SandboxOptions

ROOT = Path(__file__).resolve().parents[2]
MADE_UP_RUN_ID = re.compile(r"\b\d{8}[_-]\d{6}[_-][0-9a-f]{4}\b")
ENV_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")
COMMAND_LINE = re.compile(r"(^|&& |\| )([A-Z_][A-Z0-9_]*=\S+ )*(uv run )?bonzo-bulk [a-z]")


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command of the app (typer's own click: groups are told by their ``commands``)."""
    yield path, command
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))


ROOT_COMMAND = typer.main.get_command(app)
EXAMPLES = [
    (" ".join(path), line.strip())
    for path, command in _commands(ROOT_COMMAND)
    for line in (command.help or "").splitlines()
    if line.strip().startswith("bonzo-bulk ")
]


def _invocations(example: str) -> Iterator[list[str]]:
    """The ``bonzo-bulk`` argument lists of one example line (``a && b``, comments, redirections, ``uv run`` and
    ``NAME=value`` environment prefixes dropped)."""
    words = shlex.split(example, comments=True)
    command: list[str] = []
    redirect_target = False
    for word in [*words, "&&"]:
        if word in ("&&", "|"):
            if command:
                yield command
            command = []
        elif redirect_target:
            redirect_target = False
        elif word.startswith(">"):
            redirect_target = word == ">"
        elif not command and (ENV_ASSIGNMENT.match(word) or word in ("uv", "run")):
            continue
        else:
            command.append(word)


def _parse(example: str, created: set[str]) -> list[list[str]]:
    """Parse each ``bonzo-bulk`` command of ``example`` with the real app (raises on an unknown command, option or
    bad value), check the YAML files it names exist, note the files it creates; the argument lists."""
    parsed: list[list[str]] = []
    for words in _invocations(example):
        if words[0] != "bonzo-bulk":
            continue
        args = words[1:]
        parent = ROOT_COMMAND.make_context("bonzo-bulk", [*args], resilient_parsing=True)
        target: Any = ROOT_COMMAND
        rest = list(args)
        while hasattr(target, "commands") and rest and rest[0] in target.commands:
            target = target.commands[rest.pop(0)]
        # A group that runs on its own (``problems --all``) takes options where a subcommand would stand.
        runs_alone = getattr(target, "invoke_without_command", False) and bool(rest) and rest[0].startswith("-")
        assert not hasattr(target, "commands") or not rest or runs_alone, f"{example}: {rest[0]!r} is not a command"
        target.make_context(target.name or "", list(rest), parent=parent)  # raises on an unknown option or bad value
        if target.name == "init" and "--integration" in rest:
            created.add(f"{rest[rest.index('--integration') + 1]}_test_config.yaml")
        outputs = {rest[i + 1] for i, word in enumerate(rest[:-1]) if word == "--out"}
        for word in rest:
            if word.endswith((".yaml", ".yml")) and word not in created | outputs:
                assert (ROOT / word).is_file(), f"{example}: {word} does not exist"
        parsed.append(args)
    return parsed


def test_every_command_group_has_examples() -> None:
    documented = {path for path, _ in EXAMPLES}
    assert {"run", "report", "cleanup", "prune", "health", "generate"} <= documented


@pytest.mark.parametrize(("command", "example"), EXAMPLES, ids=[f"{c}: {e}" for c, e in EXAMPLES])
def test_help_example_parses_and_its_files_exist(command: str, example: str) -> None:
    assert not MADE_UP_RUN_ID.search(example), "write RUN_ID (from `bonzo-bulk history`), not a made-up run id"
    assert _parse(example, set()), example


def _code_blocks(path: Path) -> Iterator[list[str]]:
    """The lines of each fenced code block of a Markdown file, stripped."""
    block: list[str] | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("```"):
            if block is not None:
                yield block
            block = None if block is not None else []
        elif block is not None:
            block.append(line)


def _doc_transcript(path: Path) -> Iterator[tuple[str, tuple[str, ...]]]:
    """The ``bonzo-bulk`` command lines of a Markdown file's code blocks, in order, each with the output the file
    shows under it: in a block with ``$ `` prompts only the prompted lines are commands (the lines up to the next
    prompt are the output shown); ``\\`` continuations joined."""
    for block in _code_blocks(path):
        prompted = any(line.startswith("$ ") for line in block)
        pending = ""
        for index, line in enumerate(block):
            if prompted and not pending and not line.startswith("$ "):
                continue
            line = pending + line.removeprefix("$ ")
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            if COMMAND_LINE.search(line):
                shown = itertools.takewhile(lambda out: not out.startswith("$ "), block[index + 1 :])
                yield line, tuple(shown) if prompted else ()


def _doc_commands(path: Path) -> Iterator[str]:
    """The ``bonzo-bulk`` command lines of a Markdown file's code blocks, in order."""
    return (line for line, _ in _doc_transcript(path))


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOC_COMMANDS = [(path.relative_to(ROOT).as_posix(), line) for path in DOCS for line in _doc_commands(path)]
FAST = {"integrations", "contract", "records"}
"""Commands that only read and answer at once: the docs' examples of them are run as written."""


def test_the_docs_hold_commands() -> None:
    assert {doc for doc, _ in DOC_COMMANDS} >= {"README.md", "docs/load.md", "docs/monitoring.md", "docs/contract.md"}
    assert len(DOC_COMMANDS) >= 50


@pytest.mark.parametrize("doc", sorted({doc for doc, _ in DOC_COMMANDS}))
def test_every_docs_command_names_a_real_command_and_real_flags(doc: str) -> None:
    """Issue 24.9: `load --scenario campaign.yaml` named a file that never shipped."""
    created: set[str] = set()
    for _, line in (item for item in DOC_COMMANDS if item[0] == doc):
        try:
            _parse(line, created)
        except (AssertionError, click.ClickException) as exc:
            raise AssertionError(f"{doc}: {line}\n{exc}") from exc


@pytest.mark.parametrize(
    ("doc", "line"),
    [(doc, line) for doc, line in DOC_COMMANDS if any(w[1:2] and w[1] in FAST for w in _invocations(line))],
)
def test_the_fast_docs_commands_run_as_written(doc: str, line: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TEST_HOOK_URL", "SUPERUSER_API_KEY", "SUPERUSER_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(ROOT)
    for args in _parse(line, set()):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, f"{doc}: {line}\n{result.output}"


# Every command of README.md, docs/*.md and the --help examples, run as written (issue 24: "the README's commands
# and every docs command run in a test"), in order, each source in a temporary copy of the repository's configs.
# Only what a test machine cannot be is changed, each change in a table below with its reason.

RUN_ID_PRINTED = re.compile(r"\br\d{8}-\d{6}-[0-9a-f]{6}\b")
PROBLEM_ID_PRINTED = re.compile(r"\bproblem ([0-9a-f]{10})\b")
SHOWN_EXIT = re.compile(r"^exit (\d+)$")
DEFAULT_CONFIG = "tests/configs/monitorbase_test_config.yaml"
CAMPAIGN = "tests/configs/load/campaign.yaml"
SMOKE = "tests/configs/load/smoke.yaml"

ADDED_FLAGS: dict[str, tuple[str, ...]] = {
    # command (as written, comment dropped) -> the only flags the test adds (the last of a repeated flag wins)
    "load --scenario tests/configs/load/campaign.yaml --json": ("--scenario", SMOKE),
    "load --scenario tests/configs/load/campaign.yaml --processes 4": ("--scenario", SMOKE),
    "load --scenario tests/configs/load/campaign.yaml --master --expect-workers 2 --master-bind-host 0.0.0.0 "
    "--master-port 5557": ("--scenario", SMOKE),
    "load --config tests/configs/monitorbase_test_config.yaml --scenario tests/configs/load/campaign.yaml --master "
    "--expect-workers 2 --master-bind-host 0.0.0.0 --master-port 5557": ("--scenario", SMOKE),
    "stress --start-rate 20 --max-rate 400 --json": ("--step-duration", "2s", "--max-leads", "100"),
    "stress --config tests/configs/monitorbase_test_config.yaml --start-rate 20 --max-rate 400": (
        "--step-duration",
        "2s",
        "--max-leads",
        "100",
    ),
    "stress --start-rate 20 --max-rate 400 --step-duration 20s": ("--step-duration", "2s", "--max-leads", "100"),
    "stress --scenario tests/configs/load/stress.yaml --json": ("--step-duration", "2s", "--max-leads", "100"),
}
"""campaign.yaml sends for a minute (a master included: as written it took 71 s of the lane, its workers
waiting it out) and stress steps last 20 s until the 5-minute cap by design: the test runs them on the 7-second
smoke scenario / 2-second steps of at most 100 leads (each is also run whole by
``benchmarks/bench_load.py`` and ``benchmarks/bench_stress_default.py``)."""

FIXED_PORTS = "--port FREE for sandbox and serve; --master-bind-host 127.0.0.1 --master-port FREE for a master"
"""Servers get a free loopback port for the fixed one they name (another process may hold it); a master binds
127.0.0.1 and its workers connect there, not to 0.0.0.0 and 10.0.0.5 (tests listen on loopback only)."""

OWN_STORE: dict[str, dict[str, str]] = {
    "history": {},
    "report --run run_4_stress": {},
    "store migrate": {"BONZO_BULK_STORE_URL": "sqlite:///team/runs.sqlite3"},
    'store copy --from sqlite:///reports/runs.sqlite3 --to "$BONZO_BULK_STORE_URL"': {
        "BONZO_BULK_STORE_URL": "sqlite:///team/runs.sqlite3"
    },
    "run && uv run bonzo-bulk history && uv run bonzo-bulk report --last 50": {
        "BONZO_BULK_STORE_URL": "sqlite:///team/runs.sqlite3"
    },
}
"""README lines run in a working directory of their own: `history`/`report --run run_4_stress` over the store of
tests/unit/load/test_load_history.py that they quote; the team-store block with its `export BONZO_BULK_STORE_URL`
pointed at a SQLite file, since no PostgreSQL answers at db.internal here."""

OWN_SANDBOX = {"monitor_drill_config.yaml"}
"""Configs that keep a sandbox process of their own, as the docs ran them: measured, each faulted drill run waited
the 60 s straggler wait on the shared sandbox and none on its own."""

AFTER_README = {"docs/serve.md"}
"""Docs that show what the README's runs left: they run in its working directory, after it (serve needs a store)."""

LIVE = {"monitor run --config tests/configs/monitorbase_test_config.yaml --target live"}
"""--help examples that need live secrets: run with TEST_HOOK_URL, SUPERUSER_WEBHOOK_URL, SUPERUSER_API_KEY and
BONZO_API_URL pointed at the shared standalone sandbox (docs/monitoring.md shows the same command without them)."""

REPEATS = {"# x3": 3, "# the second time": 2}
"""A comment saying the command is typed more than once: it runs that many times; the last run is judged."""

EXITS: dict[str, int] = {
    "run --faults tests/configs/faults/broken_integration.yaml --deadline 5": 1,
    "run --config tests/configs/sandbox_hostile_listing_config.yaml --deadline 10": 1,
    "monitor run --config tests/configs/monitorbase_test_config.yaml": 2,
    "monitor run --config tests/configs/monitor_drill_config.yaml --faults tests/configs/faults/monitor_outage.yaml": 1,
    "run --test-records 500 --concurrency 32 --faults tests/configs/faults/wrong_owner.yaml": 1,
    "monitor run --target sandbox --test-records 5 --faults tests/configs/faults/broken_integration.yaml": 1,
    "serve --host 0.0.0.0": 2,
    "monitor run --config tests/configs/monitorbase_test_config.yaml --target live": 2,
    "serve --port 9000 --store-url postgresql://ro@db:5432/bonzo": 2,
    "serve --reports-dir /tmp/ci/reports": 2,
}
"""Exit codes the docs state in prose or a comment ("exit 1 when…", "exit 2 no live secrets", "without the token it
refuses"); a shown ``exit N`` line says it for the transcripts; every other command exits 0. Two serve lines
name stores this machine has not (PostgreSQL at host db, a CI folder): run as written, they refuse with exit 2
naming the store, nothing served."""


def _bare(line: str) -> str:
    """A command line without its comment, environment prefix and ``uv run bonzo-bulk``: the tables' key."""
    text = re.sub(r"\s+#.*$", "", line.strip())
    text = re.sub(r"^([A-Z_][A-Z0-9_]*=\S+ )*(uv run )?bonzo-bulk ", "", text)
    return " ".join(text.split())


def _in_own_store(source: str, line: str) -> bool:
    return source == "README.md" and ("test_load_history.py" in line or _bare(line) in OWN_STORE)


@dataclasses.dataclass(frozen=True)
class Case:
    """One command line of a doc (or a --help example) and the output the doc shows under it."""

    source: str
    line: str
    shown: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return _bare(self.line)

    @property
    def group(self) -> str:
        """Commands of one group share a working directory (and so a run store), in the order they are written."""
        if not self.source.endswith(".md"):
            return "help"
        if self.source in AFTER_README:
            return "README.md"
        return f"{self.source} (own store)" if _in_own_store(self.source, self.line) else self.source

    @property
    def exit_code(self) -> int:
        shown = [int(m.group(1)) for out in self.shown if (m := SHOWN_EXIT.match(out))]
        if shown or self.live:
            return shown[0] if shown else 0
        return EXITS.get(self.key, 0)

    @property
    def live(self) -> bool:
        return self.key in LIVE and self.source.endswith("--help")

    @property
    def repeat(self) -> int:
        return next((n for marker, n in REPEATS.items() if marker in self.line), 1)

    @property
    def env(self) -> dict[str, str]:
        prefix = itertools.takewhile(ENV_ASSIGNMENT.match, shlex.split(self.line, comments=True))
        own = OWN_STORE.get(self.key, {}) if _in_own_store(self.source, self.line) else {}
        return dict(word.split("=", 1) for word in prefix) | own


CASES = [
    *(Case(path.relative_to(ROOT).as_posix(), line, shown) for path in DOCS for line, shown in _doc_transcript(path)),
    *(Case(f"{command} --help", example) for command, example in EXAMPLES),
]


SERVERS_AND_LOAD = {"load", "load-worker", "stress", "sandbox", "serve"}
"""Subcommands that send load for seconds, wait for workers, or start a server and stop it: run in the
``docs_commands`` lane only."""


SLOW = {
    "run --config tests/configs/sandbox_hostile_listing_config.yaml --deadline 10": "waits out its 10 s deadline",
    "monitor_drill_config.yaml": "the monitor drill: a sandbox process of its own, a faulted run",
    "problems_drill_config.yaml": "the problems drill: ten 3-record monitor runs in a row",
    "init --integration acme --from zillow && bonzo-bulk run --config acme_test_config.yaml": "README's init and run",
    "run --config acme_test_config.yaml": "a plain run like README's first, on the config init wrote (init stays)",
    "cleanup --all-test-data --yes --json": "sweeps every test record the sandbox holds",
    "run --config tests/configs/sandbox_chicago_config.yaml --test-records 20": "20 records and their control",
    "calibrate --records 5 --out contracts/monitorbase.yaml --accept": "README's calibrate runs in the lane",
    "health --integration monitorbase --config tests/configs/monitorbase_test_config.yaml --json": "as health",
    "run --sandbox-strictness strict": "docs/sandbox.md's plain run runs in the lane",
}
"""Command lines (or a part every line of a drill holds) whose run takes seconds the default lane cannot spend,
each with what makes it slow or which command like it runs in the lane: the ``docs_commands`` lane runs them.
A command whose output a later one of its doc reads stays (README's faulted run makes the problem that its
``problems show ID`` shows; the 500-record --help run makes the store that ``report --help`` reads)."""


def _in_fast_lane(case: Case) -> bool:
    if any(w[0] == "bonzo-bulk" and w[1] in SERVERS_AND_LOAD for w in _invocations(case.line) if w[1:]):
        return False
    return not any(part == case.key or (part.endswith(".yaml") and part in case.key) for part in SLOW)


FIRST_SOURCE = {case.key: case.source for case in reversed(CASES)}
FAST_LANE = [i for i, case in enumerate(CASES) if _in_fast_lane(case) and FIRST_SOURCE[case.key] == case.source]
"""The default lane: each distinct command line where it is first written (the same command in README, a doc and
a --help runs once; a doc that types it again as the next step of its transcript, another output shown, runs it
again), load, stress, workers and servers left to the ``docs_commands`` lane."""
FULL_LANE = list(range(len(CASES)))


@dataclasses.dataclass(frozen=True)
class Outcome:
    exit_code: int
    output: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


CLEAN_ENV: dict[str, str | None] = dict.fromkeys(
    (
        "TEST_HOOK_URL",
        "SUPERUSER_API_KEY",
        "SUPERUSER_WEBHOOK_URL",
        "BONZO_API_URL",
        "BONZO_BULK_STORE_URL",
        "BONZO_BULK_REPORTS_DIR",
        "BONZO_BULK_TARGET",
        "BONZO_BULK_NOTIFY_URLS",
        "BONZO_BULK_PING_URL",
        "BONZO_BULK_PUSHGATEWAY_URL",
        "BONZO_BULK_SERVE_TOKEN",
        "BONZO_BULK_SANDBOX_STRICTNESS",
        "BONZO_BULK_TEST_RECORDS",
    )
)
"""Variables a developer's shell may hold that would change what a command does: unset for every command."""


def _environ(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in CLEAN_ENV} | {"COLUMNS": "200"} | env


def _spawn(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """``bonzo-bulk ARGS`` in a process of its own (servers and Locust workers), output merged."""
    return subprocess.Popen(
        [sys.executable, "-m", "bonzo_bulk", *args],
        cwd=cwd,
        env=_environ(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _finish(process: subprocess.Popen[str], before: str = "") -> Outcome:
    try:
        rest, _ = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        rest, _ = process.communicate()
    return Outcome(process.returncode, before + rest)


def _pipe(args: list[str], reader: list[str], env: dict[str, str], cwd: Path) -> Outcome:
    """``bonzo-bulk ARGS | READER`` with real processes and a real pipe: the reader may close it early
    (``head -3``), and bonzo-bulk must then end quietly, so its exit code is the one judged; the output is what the
    reader printed and whatever bonzo-bulk wrote to stderr."""
    producer = subprocess.Popen(
        [sys.executable, "-m", "bonzo_bulk", *args],
        cwd=cwd,
        env=_environ(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert producer.stdout is not None and producer.stderr is not None
    filtered = subprocess.run(reader, stdin=producer.stdout, capture_output=True, text=True, check=False, timeout=120)
    producer.stdout.close()  # the reader's end is the only one left: bonzo-bulk's next write breaks the pipe
    with producer.stderr:
        errors = producer.stderr.read()
    producer.wait(timeout=120)
    return Outcome(producer.returncode or filtered.returncode, filtered.stdout + filtered.stderr + errors)


def _serve(args: list[str], env: dict[str, str], cwd: Path) -> Outcome:
    """A server (``sandbox``, ``serve``): started, asked for a page once it says it serves, then stopped with
    Ctrl-C as its banner says; a server that refuses to start ends by itself."""
    process = _spawn(args, env, cwd)
    assert process.stdout is not None
    killer = threading.Timer(60, process.kill)
    killer.start()
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        if "Ctrl-C" in line:
            break
    killer.cancel()
    urls = re.findall(r"http://127\.0\.0\.1:\d+", "".join(lines))
    try:
        if process.poll() is None and urls:
            lines.append(_probe(urls[0] + ("/healthz" if args[0] == "serve" else "/openapi.json")))
    finally:
        process.send_signal(signal.SIGINT)
        outcome = _finish(process, "".join(lines))
    return outcome


def _probe(url: str) -> str:
    """``GET url``, as soon as the server answers (its banner may come before it listens)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - our own loopback http
                return f"GET {url}: {response.status}\n"
        except urllib.error.URLError as exc:
            if time.monotonic() > deadline:
                return f"GET {url}: {exc}\n"
            time.sleep(0.1)


class Session:
    """Runs the cases in order, each group in a working directory of its own (a copy of tests/configs and
    tests/fixtures whose configs use one shared standalone sandbox), and keeps every outcome."""

    def __init__(self, root: Path, sandbox: SandboxProcess, live_env: dict[str, str], lane: list[int]) -> None:
        self.root = root
        self.lane = frozenset(lane)
        self.sandbox = sandbox
        self.live_env = live_env
        self.outcomes: dict[int, Outcome] = {}
        self.outputs: dict[str, list[str]] = {}
        self.workers: dict[int, list[subprocess.Popen[str]]] = {}
        self.settings = self._admin("GET", "settings")
        self.faults = self._admin("GET", "faults")

    def _admin(self, method: str, path: str, body: Any = None) -> Any:
        return self._admin_at(self.sandbox.url, method, path, body)

    @staticmethod
    def _admin_at(url: str, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{url}/__sandbox/{path}", data=data, method=method)  # noqa: S310
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the sandbox on loopback
            return json.loads(response.read())

    def outcome(self, index: int) -> Outcome:
        """The case's outcome, running every case of its lane before it first (a later command may read what they
        left); a case of another lane never runs here, so each lane passes or fails on its own."""
        assert index in self.lane, f"{CASES[index].key} is not in this session's lane"
        for earlier in sorted(i for i in self.lane if i <= index):
            if earlier not in self.outcomes and CASES[earlier].group == CASES[index].group:
                try:
                    self.outcomes[earlier] = self._run(earlier)
                except Exception:
                    self.outcomes[earlier] = Outcome(-1, traceback.format_exc())
        return self.outcomes[index]

    def workdir(self, group: str) -> Path:
        path = self.root / re.sub(r"[^a-z0-9]+", "-", group.lower()).strip("-")
        if not path.exists():
            for part in ("tests/configs", "tests/fixtures"):
                shutil.copytree(ROOT / part, path / part)
            for config in (path / "tests/configs").glob("*.yaml"):
                self._share_sandbox(config)
            if group == "README.md (own store)":
                kinds_store(path / "reports" / "runs.sqlite3")
        return path

    def _share_sandbox(self, config: Path) -> None:
        """A config whose sandbox needs nothing of its own (a clock, a listing, strictness) uses the shared one
        (``sandbox.url``) instead of starting a sandbox process per command."""
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
        if "test_users" in data and "sandbox" not in data and config.name not in OWN_SANDBOX:
            data["sandbox"] = {"url": self.sandbox.url}
            config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    def _args(self, words: list[str], case: Case, port: int) -> list[str]:
        """The argument list as run: placeholders filled from what earlier commands of the group printed, the
        environment expanded, and the table's flags added."""
        problems = PROBLEM_ID_PRINTED.findall("".join(self.outputs.get(case.group, [])))
        places = {
            "RUN_ID": self._latest_run(case) if "RUN_ID" in words else "",
            "ID": problems[-1] if problems else "ID",
        }
        args = [places.get(w, os.path.expandvars(w) if w.startswith("$") else w) for w in words[1:]]
        args = [case.env.get(w[1:], w) if w.startswith("$") else w for w in args]
        if len(list(_invocations(case.line))) == 1:
            args += ADDED_FLAGS.get(case.key, ())
        if args[0] in ("sandbox", "serve"):
            args += ["--port", str(_free_port())]
        elif args[0] == "load" and "--master" in args:
            args += ["--master-bind-host", "127.0.0.1", "--master-port", str(port)]
        elif args[0] == "load-worker":
            args += ["--master-host", "127.0.0.1", "--master-port", str(port)]
        return args

    def _latest_run(self, case: Case) -> str:
        """The newest run of the group's store, as `bonzo-bulk history` lists it (what RUN_ID asks for)."""
        listed = self._step(-1, ["history", "--json"], case.env, self.workdir(case.group))
        assert listed.exit_code == 0, listed.output
        return str(json.loads(listed.output)[0]["run_id"])

    def _run(self, index: int) -> Outcome:
        case = CASES[index]
        cwd = self.workdir(case.group)
        env = case.env | (self.live_env if case.live else {})
        outcome = Outcome(0, "")
        for _ in range(case.repeat):
            outcome = Outcome(0, "")
            invocations = list(_invocations(case.line))
            for words, after in zip(invocations, [*invocations[1:], None], strict=True):
                if words[0] != "bonzo-bulk":
                    continue  # the reader of a pipe: run with the command it reads (below)
                args = self._args(words, case, self._port(index))
                if after is not None and after[0] != "bonzo-bulk":
                    assert "|" in case.line, f"{case.line}: {after[0]} runs only as the reader of a pipe"
                    step = _pipe(args, after, env, cwd)
                else:
                    step = self._step(index, args, env, cwd)
                outcome = Outcome(step.exit_code, outcome.output + step.output)
                if step.exit_code:
                    break
            self.outputs.setdefault(case.group, []).append(outcome.output)
        self._admin("PUT", "settings", self.settings)  # what a run set on the shared sandbox, undone
        self._admin("PUT", "faults", self.faults)
        return outcome

    def _port(self, index: int) -> int:
        """The port of a master and of the workers that follow it."""
        if not hasattr(self, "_ports"):
            self._ports: dict[int, int] = {}
        master = next((i for i in range(index, -1, -1) if "--master" in CASES[i].line), index)
        return self._ports.setdefault(master, _free_port())

    def _step(self, index: int, args: list[str], env: dict[str, str], cwd: Path) -> Outcome:
        if args[0] in ("sandbox", "serve"):
            return _serve(args, env, cwd)
        if args[0] == "load-worker":
            started = self.workers.pop(index, None)
            assert started, "a load-worker line runs beside the --master line before it; none was started"
            finished = [_finish(worker) for worker in started]
            return Outcome(max(o.exit_code for o in finished), "".join(o.output for o in finished))
        if args[0] == "load" and "--master" in args:
            worker = next(i for i in range(index + 1, len(CASES)) if _bare(CASES[i].line).startswith("load-worker"))
            count = int(args[args.index("--expect-workers") + 1])
            worker_args = self._args(next(_invocations(CASES[worker].line)), CASES[worker], self._port(index))
            self.workers[worker] = [_spawn(worker_args, env, cwd) for _ in range(count)]
        previous = os.getcwd()
        os.chdir(cwd)
        try:
            result = CliRunner(env={**CLEAN_ENV, "COLUMNS": "200", **env}).invoke(app, args)
        finally:
            os.chdir(previous)
        failed = result.exception if result.exit_code == 3 else None
        trace = "".join(traceback.format_exception(failed)) if failed else ""
        return Outcome(result.exit_code, result.output + trace)


def _session(tmp_path_factory: pytest.TempPathFactory, lane: list[int]) -> Iterator[Session]:
    """One standalone sandbox (fast processing) for every command of a lane, stopped at the end with any worker
    left."""
    root = tmp_path_factory.mktemp("docs-commands")
    processing = ProcessingDelayModel(distribution="fixed", seconds=0.05)
    with SandboxProcess(SandboxOptions(db_path=root / "sandbox.sqlite3", processing=processing)) as sandbox:
        config = yaml.safe_load((ROOT / DEFAULT_CONFIG).read_text(encoding="utf-8"))
        body = {"users": config["test_users"], "hooks": [{"type": "monitorbase"}, {"type": "general"}]}
        seeded = Session._admin_at(sandbox.url, "POST", "seed", body)
        hooks = {hook["type"]: hook["url"] for hook in seeded["hooks"]}
        live = {
            "TEST_HOOK_URL": hooks["monitorbase"],
            "SUPERUSER_WEBHOOK_URL": hooks["general"],
            "SUPERUSER_API_KEY": seeded["superuser_token"],
            "BONZO_API_URL": sandbox.url,
        }
        session = Session(root, sandbox, live, lane)
        try:
            yield session
        finally:
            for workers in session.workers.values():
                for worker in workers:
                    worker.kill()
                    worker.communicate()


@pytest.fixture(scope="module")
def fast_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    yield from _session(tmp_path_factory, FAST_LANE)


@pytest.fixture(scope="module")
def full_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    yield from _session(tmp_path_factory, FULL_LANE)


def _mask(text: str) -> str:
    """Output as compared with what a doc shows: run ids, numbers and runs of spaces made alike."""
    text = RUN_ID_PRINTED.sub("RUN", text).replace("│", " ")
    text = re.sub(r"\d+(\.\d+)?", "9", text)
    return "\n".join(" ".join(line.split()) for line in text.splitlines())


def _comparable(shown: tuple[str, ...]) -> list[str]:
    """The lines of a doc's shown output worth finding in the real one (no elisions, rules or exit lines)."""
    return [
        _mask(line)
        for line in shown
        if line.strip()
        and not SHOWN_EXIT.match(line)
        and line.strip() not in ("…", "...")
        and not re.fullmatch(r"[\s─━┏┓┗┛┃│┡┩╇┳┻└┘┌┐┴┬┼├┤]*", line)
    ]


def _runs_as_written(index: int, session: Session) -> None:
    """The command run (in order, against the sandbox) to the exit code the docs give, printing a line of the
    output they show."""
    case = CASES[index]
    outcome = session.outcome(index)
    where = f"{case.source}: {case.line}\n{outcome.output[-4000:]}"
    assert outcome.exit_code == case.exit_code, where
    shown = _comparable(case.shown)
    if shown:
        printed = _mask(outcome.output)
        assert any(line in printed for line in shown), where


@pytest.mark.parametrize("index", FAST_LANE, ids=[f"{CASES[i].source}: {CASES[i].key}" for i in FAST_LANE])
def test_each_distinct_docs_command_runs_as_written(index: int, fast_session: Session) -> None:
    """The default lane: each distinct command of README.md, docs/*.md and every --help but load, stress, workers
    and servers, after only the default-lane commands before it in its doc."""
    _runs_as_written(index, fast_session)


@pytest.mark.docs_commands
@pytest.mark.parametrize("index", FULL_LANE, ids=[f"{CASES[i].source}: {CASES[i].key}" for i in FULL_LANE])
def test_every_docs_command_runs_as_written(index: int, full_session: Session) -> None:
    """The ``docs_commands`` lane: every command of README.md, docs/*.md and every --help, in order."""
    _runs_as_written(index, full_session)


def test_the_fast_lane_runs_each_distinct_command_but_load_and_servers_once() -> None:
    keys = [CASES[i].key for i in FAST_LANE]
    assert all(len({CASES[i].source for i in FAST_LANE if CASES[i].key == key}) == 1 for key in keys)
    assert set(keys) == {case.key for case in CASES if _in_fast_lane(case)}
    assert all(CASES[i].key.split()[0] not in SERVERS_AND_LOAD for i in FAST_LANE)
    subcommands = {" ".join(case.key.split()[:2]) for case in CASES if case.key.split()[0] not in SERVERS_AND_LOAD}
    assert {" ".join(CASES[i].key.split()[:2]) for i in FAST_LANE} >= {
        s for s in subcommands if s.split()[0] in ("monitor", "store", "baseline")
    }
    assert {CASES[i].key.split()[0] for i in FAST_LANE} == {s.split()[0] for s in subcommands}
    assert all(any(part in case.key for case in CASES) for part in SLOW)


def test_the_tables_name_only_commands_the_docs_hold() -> None:
    keys = {case.key for case in CASES}
    for table in (ADDED_FLAGS, OWN_STORE, EXITS, dict.fromkeys(LIVE)):
        assert set(table) <= keys, set(table) - keys
