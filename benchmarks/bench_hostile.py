"""What a hostile target costs the user's own command, `bonzo-bulk run`, as a subprocess in live mode.

Scenarios (the hostile servers of ``tests/unit/hostile_servers.py``, in front of a sandbox started here):

- ``silent``: the webhook accepts connections and never answers a POST (``SilentHook``), once per
  ``--hook-timeouts`` value (``webhook_settings.timeout``); prints the wall time, the exit code and how
  many POSTs the hook held;
- ``throttled``: Bonzo's API answers every call ``429`` with ``Retry-After: 100000``; prints the wall time
  and the exit code (the preflight refuses the wait: exit 2, nothing sent).

    uv run python benchmarks/bench_hostile.py [--records 6] [--hook-timeouts 2 30] [--timeout 900]

Every server listens on 127.0.0.1 on a free port and is stopped here; every run is bounded by --timeout.
Work happens in a temporary folder, removed at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))

from hostile_servers import Canned, HostileProxy, Reply, SilentHook

from bonzo_bulk.config.schema import ProcessingDelayModel
from bonzo_bulk.sandbox import SandboxOptions, SandboxServer

USERS = [{"name": "LO One", "email": "lo.one@lender.test", "user_id": 101, "team_id": 11}]
TOO_MANY = Reply(
    429, b'{"message": "Too Many Attempts."}', {"Content-Type": "application/json", "Retry-After": "100000"}
)


def _config(folder: Path, records: int, hook_timeout: float) -> Path:
    path = folder / f"live-{hook_timeout:g}.yaml"
    document: dict[str, Any] = {
        "test_name": "hostile benchmark",
        "webhook_url": "{TEST_HOOK_URL}",
        "superuser_api_key": "{SUPERUSER_API_KEY}",
        "test_records": records,
        "test_users": USERS,
        "control": False,
        "webhook_settings": {"timeout": hook_timeout},
        "polling": {"interval": 0.2, "deadline": 5},
        "reports_dir": str(folder / "reports"),
    }
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def _run(config: Path, env: dict[str, str], folder: Path, timeout: float) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bonzo_bulk", "run", "--config", str(config)],
        env={"PATH": os.environ["PATH"], "HOME": str(folder), **env},
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return time.perf_counter() - started, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=6)
    parser.add_argument("--hook-timeouts", type=float, nargs="+", default=[2.0, 30.0])
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds each run may take")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        folder = Path(tmp)
        options = SandboxOptions(
            db_path=folder / "sandbox.sqlite3", processing=ProcessingDelayModel(distribution="fixed", seconds=0.05)
        )
        with SandboxServer(options) as sandbox:
            seeded = sandbox.seed(USERS, [{"type": "monitorbase", "source": "monitorbase"}])
            token = seeded["superuser_token"]
            for hook_timeout in args.hook_timeouts:
                with SilentHook() as silent:
                    env = {"TEST_HOOK_URL": silent.url, "SUPERUSER_API_KEY": token, "BONZO_API_URL": sandbox.url}
                    wall, code = _run(_config(folder, args.records, hook_timeout), env, folder, args.timeout)
                    print(
                        f"silent hook, timeout {hook_timeout:g} s, {args.records} records: {wall:.1f} s, exit {code}, "
                        f"{silent.posts} POSTs held"
                    )
            hook = seeded["hooks"][0]["url"]
            with HostileProxy(sandbox.url, [Canned(TOO_MANY, "/api/v3/")]) as proxy:
                env = {
                    "TEST_HOOK_URL": hook.replace(sandbox.url, proxy.url),
                    "SUPERUSER_API_KEY": token,
                    "BONZO_API_URL": proxy.url,
                }
                wall, code = _run(_config(folder, args.records, 2.0), env, folder, args.timeout)
                posted = sum(seen.method == "POST" for seen in proxy.requests)
                print(f"API 429 Retry-After 100000 s: {wall:.1f} s, exit {code}, {posted} POSTs sent")


if __name__ == "__main__":
    main()
