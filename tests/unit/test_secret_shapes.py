"""Secrets in every shape, redacted before anything is cut (issue 25, item 5).

A webhook or an API may echo a secret back in a form nobody registered: the percent-decoded password of
``user:p%40ss@host``, the base64 of the HTTP Basic credential, the base64 of the API key, a short or base64
query token. And text that is cut before it is redacted keeps the first characters of a secret whose end
fell past the cut. Every such canary is searched for in what the tool prints, in every text column of the
run store and in ``bonzo-bulk export``, as a whole and as its first characters.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from bonzo_bulk._http import describe_exception
from bonzo_bulk.bonzo.client import BonzoClient, _summarise_error_body
from bonzo_bulk.deliver.sender import EXCERPT_CHARS, _excerpt
from bonzo_bulk.errors import BonzoAPIError
from bonzo_bulk.monitor.notify import register_url
from bonzo_bulk.pytest_plugin.html import _cell
from bonzo_bulk.report.rows import short
from bonzo_bulk.sandbox import SandboxServer
from bonzo_bulk.secrets import redact, redact_cut, redact_url, register_secret, register_secret_parts

HOOK_HASH = "d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4"
USER = "canary-user"
PASSWORD = "pa%40ss-w0rd-Q7"  # as written in the URL; a client sends it decoded
PASSWORD_DECODED = "pa@ss-w0rd-Q7"
SHORT_TOKEN = "t0K9zq"  # a short query token
BASE64_TOKEN = "QmFzZTY0LVRva2VuLTQy/+xy=="  # a base64 query token (+ and / and = are not token-like to a regex)
FORMATS = ("jsonl", "csv")
PREFIX = 8
"""No run of this many first characters of a secret may show (its end cut off by a cut)."""


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def leaks(secrets: list[str], text: str) -> list[str]:
    """Each secret that shows in ``text`` whole or as its first characters (past a public ``sandbox_`` start)."""
    found = []
    for secret in secrets:
        head = secret[: PREFIX + 4] if secret.startswith("sandbox_") else secret[:PREFIX]
        if head in text:
            found.append(secret[:4] + "…")
    return found


# --- the rule: every shape registered, redacted first, cut second --------------------------------------------


def test_a_registered_secret_is_masked_percent_encoded_decoded_and_base64() -> None:
    register_secret("k%2Fey-shape-0451")
    decoded = "k/ey-shape-0451"
    text = f"a {decoded} b k%2Fey-shape-0451 c {b64(decoded)} d {b64('k%2Fey-shape-0451')} e k\\/ey-shape-0451"
    assert leaks(["k%2Fey-shape-0451", decoded, b64(decoded), b64("k%2Fey-shape-0451")], redact(text)) == []
    assert redact("plain words stay") == "plain words stay"


def test_a_url_registers_its_decoded_password_its_basic_credential_and_short_or_base64_query_tokens() -> None:
    url = f"http://{USER}:pw%40shape-8812@127.0.0.1:9/api/webhook/{'e' * 32}?token=s4Ort1&sig=QUJD/RUZH+SElK=="
    register_secret_parts(url)
    basic = b64(f"{USER}:pw@shape-8812")
    text = f"pw@shape-8812 / {basic} / Basic {basic} / s4Ort1 / QUJD/RUZH+SElK== / QUJD%2FRUZH%2BSElK%3D%3D"
    shown = redact(text)
    assert leaks(["pw@shape-8812", basic, "s4Ort1", "QUJD/RUZH+SElK==", "QUJD%2FRUZH%2BSElK%3D%3D"], shown) == []
    assert "s4Ort1" not in redact_url(url) and "pw%40shape" not in redact_url(url)


def test_a_ping_url_registers_its_basic_credential_too() -> None:
    register_url("https://pinger:n0tify-Pw%21@ping.example/hook/abc")
    basic = b64("pinger:n0tify-Pw!")
    assert leaks(["n0tify-Pw!", basic], redact(f"echo n0tify-Pw! and {basic}")) == []


def test_an_innocent_query_value_is_not_registered() -> None:
    register_secret_parts("http://127.0.0.1:9/api/webhook/x?source=monitorbase&page=2")
    assert redact("source monitorbase page 2") == "source monitorbase page 2"


def test_redact_cut_redacts_before_it_cuts() -> None:
    key = "cutkey-Z0123456789abcdefXY"
    register_secret(key)
    text = "." * 90 + key + " and more"
    assert text[:100].endswith(key[:10]), "the cut falls inside the key"
    cut = redact_cut(text, 100)
    assert len(cut) <= 100 and cut.endswith("…")
    assert leaks([key], cut) == []


def test_redact_cut_masks_the_beginning_of_a_secret_left_at_the_end_of_text_cut_elsewhere() -> None:
    key = "tailkey-Z0123456789abcdefXY"
    register_secret(key)
    assert redact_cut("answer: " + key[:9], 100, clipped=True) == "answer: ***"
    assert redact_cut("answer: " + key[:9], 100) == "answer: " + key[:9], "only text known to be cut"
    assert redact_cut("answer: tai", 100, clipped=True) == "answer: tai", "3 characters are no secret"


# --- every place that cuts text from a response or an exception -----------------------------------------------

CUT_KEY = "sitekey-0f1e2d3c4b5a69788796a5b4"


@pytest.fixture
def cut_key() -> str:
    register_secret(CUT_KEY)
    return CUT_KEY


def straddling(limit: int, inside: int = 12) -> str:
    """Text whose cut at ``limit`` characters falls ``inside`` characters into the key."""
    return "." * (limit - inside) + CUT_KEY + " tail"


def test_an_api_error_summary_is_redacted_before_it_is_cut(cut_key: str) -> None:
    body = json.dumps({"message": straddling(300 - len('{"message": "'))}).encode()
    assert leaks([cut_key], _summarise_error_body(body)) == []
    assert leaks([cut_key], _summarise_error_body(straddling(300).encode())) == []


def test_an_api_body_that_is_not_json_is_redacted_before_it_is_cut(cut_key: str) -> None:
    with pytest.raises(BonzoAPIError) as caught:
        BonzoClient._decode(("<html>" + straddling(200 - len("<html>"))).encode(), 503, "GET", "/prospects")
    assert leaks([cut_key], str(caught.value)) == []


def test_a_webhook_answer_excerpt_is_redacted_before_it_is_cut(cut_key: str) -> None:
    assert leaks([cut_key], _excerpt(straddling(EXCERPT_CHARS).encode())) == []
    cut_in_the_bytes = (CUT_KEY + " ") * 5000  # past what is decoded: the window ends inside a key
    excerpt = _excerpt(cut_in_the_bytes.encode())
    assert leaks([cut_key], excerpt) == [] and excerpt.startswith("***")


def test_exceptions_rows_and_html_cells_are_redacted_before_they_are_cut(cut_key: str) -> None:
    assert leaks([cut_key], describe_exception(ValueError(straddling(200)))) == []
    assert leaks([cut_key], short(straddling(60), 60)) == []
    assert leaks([cut_key], _cell(straddling(80))) == []


# --- end to end: a hostile hook echoing every shape -----------------------------------------------------------


class _Echo(BaseHTTPRequestHandler):
    """A webhook that answers 422 echoing a secret in one shape per request, in turn."""

    api_key = ""
    served = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with _Echo.lock:
            turn = _Echo.served
            _Echo.served += 1
        basic = (self.headers.get("Authorization") or "").removeprefix("Basic ")
        shapes = [
            json.dumps({"message": f"wrong password {PASSWORD_DECODED} for {USER}"}),
            json.dumps({"message": "credential seen", "auth": basic}),
            json.dumps({"message": "key seen", "key": b64(self.api_key)}),
            "." * (EXCERPT_CHARS - 13) + self.api_key + " was refused",
            "." * (EXCERPT_CHARS - 15) + HOOK_HASH + " is paused",
            json.dumps({"token": SHORT_TOKEN, "sig": BASE64_TOKEN, "pw": PASSWORD}),
        ]
        body = shapes[turn % len(shapes)].encode()
        self.send_response(422)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def echoing_hook() -> Iterator[tuple[str, int]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """A process of its own: nothing registered by another test can mask a leak."""
    return subprocess.run(
        [sys.executable, "-m", "bonzo_bulk", *args],
        env={"PATH": os.environ["PATH"], "HOME": str(cwd), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def store_text(path: Path) -> str:
    """Every text (and blob) value of every table of a SQLite run store, one per line."""
    values: list[str] = []
    with sqlite3.connect(path) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 - names from sqlite_master
                for value in row:
                    if isinstance(value, bytes):
                        values.append(value.decode("utf-8", "replace"))
                    elif isinstance(value, str):
                        values.append(value)
    return "\n".join(values)


def test_no_echoed_shape_of_any_secret_reaches_output_store_or_export(
    tmp_path: Path, sandbox: SandboxServer, users: list[dict[str, object]], echoing_hook: tuple[str, int]
) -> None:
    token = str(sandbox.seed(users)["superuser_token"])
    _Echo.api_key, _Echo.served = token, 0
    host, port = echoing_hook
    hook = f"http://{USER}:{PASSWORD}@{host}:{port}/api/webhook/{HOOK_HASH}?token={SHORT_TOKEN}&sig={BASE64_TOKEN}"
    config = tmp_path / "c.yaml"
    reports = tmp_path / "reports"
    config.write_text(
        yaml.safe_dump(
            {
                "webhook_url": "{TEST_HOOK_URL}",
                "superuser_api_key": "{SUPERUSER_API_KEY}",
                "test_records": 12,
                "control": False,
                "test_users": users,
                "webhook_settings": {"timeout": 5, "retry_attempts": 0},
                "api_settings": {"retry_attempts": 0},
                "polling": {"interval": 0.1, "deadline": 0.5},
                "reports_dir": str(reports),
            }
        )
    )
    env = {"TEST_HOOK_URL": hook, "SUPERUSER_API_KEY": token, "BONZO_API_URL": sandbox.url}
    ran = run_cli(["run", "--config", str(config), "--log-level", "DEBUG"], env, tmp_path)
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert _Echo.served >= 12, "every shape was echoed at least twice"
    store = reports / "runs.sqlite3"
    stored = store_text(store)
    assert "credential seen" in stored and "key seen" in stored, "the excerpts were stored"
    with sqlite3.connect(store) as db:
        run_id = db.execute("SELECT run_id FROM runs").fetchone()[0]
    exported = [run_cli(["export", run_id, "--format", f, "--store", str(store)], {}, tmp_path) for f in FORMATS]
    assert all(e.returncode == 0 for e in exported), exported
    assert "credential seen" in exported[0].stdout, "the JSON lines carry each delivery's response excerpt"

    basic = b64(f"{USER}:{PASSWORD_DECODED}")
    secrets = [token, b64(token), HOOK_HASH, PASSWORD, PASSWORD_DECODED, basic, SHORT_TOKEN, BASE64_TOKEN]
    texts = {
        "run output": ran.stdout + ran.stderr,
        "run store": stored,
        **{f"export {i}": e.stdout + e.stderr for i, e in enumerate(exported)},
    }
    texts.update({p.name: p.read_bytes().decode("utf-8", "replace") for p in reports.rglob("*") if p.is_file()})
    found = {name: leaks(secrets, text) for name, text in texts.items() if leaks(secrets, text)}
    assert found == {}
