"""``bonzo-bulk stress`` with no flags, as a new user runs it in a pipe (issue 24, finding 1), then its cleanup.

Prints: the cap the run printed before its first send, the wall time against that cap, the longest silence
between two output lines, the leads sent and created, the knee line, and what the printed cleanup command
deleted and left behind. Everything goes to a sandbox on 127.0.0.1 (the default target with no
``TEST_HOOK_URL``); the reports go to a temporary folder removed at the end.

Run: ``uv run python benchmarks/bench_stress_default.py``
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TIMEOUT_S = 900.0
CAP = re.compile(r"cap: at most ([\d,]+) leads and ([\d.]+) min")
CLEANUP = re.compile(r"^Remove the leads of run (\S+) with: (bonzo-bulk cleanup .*)$")


def _run(command: list[str], env: dict[str, str]) -> tuple[int, list[tuple[float, str]], float]:
    """Run ``command`` with its output in a pipe; each line with the seconds since the start, and the wall time."""
    started = time.monotonic()
    lines: list[tuple[float, str]] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as process:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append((time.monotonic() - started, line.rstrip("\n")))
            if time.monotonic() - started > TIMEOUT_S:
                process.kill()
        code = process.wait()
    return code, lines, time.monotonic() - started


def main() -> int:
    env = {k: v for k, v in os.environ.items() if k not in ("TEST_HOOK_URL", "SUPERUSER_API_KEY")}
    env.update(COLUMNS="200", NO_COLOR="1")
    with tempfile.TemporaryDirectory(prefix="bench-stress-") as folder:
        reports = Path(folder) / "reports"
        cli = [sys.executable, "-m", "bonzo_bulk"]
        code, lines, wall = _run([*cli, "stress", "--reports-dir", str(reports)], env)
        text = [line for _, line in lines]
        cap = next((m for line in text if (m := CAP.search(line))), None)
        cleanup = next((m for line in text if (m := CLEANUP.match(line))), None)
        gaps = [(b[0] - a[0], a[1], b[1]) for a, b in itertools.pairwise(lines)]
        accounting = next((line for line in text if line.startswith("planned ")), "(no accounting line)")
        knee = next((line for line in text if "knee" in line and not line.startswith("cap:")), "(no knee line)")
        print(f"stress with no flags: exit {code}, wall {wall:.1f} s")
        if cap is None:
            print("  no cap line before the first send")
        else:
            cap_s = float(cap[2]) * 60
            verdict = "within" if wall <= cap_s else "OVER"
            print(
                f"  printed cap: {cap[1]} leads and {cap[2]} min -> {verdict} the cap ({wall:.0f} s of {cap_s:.0f} s)"
            )
        longest = max(gaps, default=(0.0, "", ""))
        print(f"  longest silence between two lines: {longest[0]:.1f} s, after {longest[1][:70]!r}")
        print(f"  {accounting}")
        print(f"  {knee}")
        if cleanup is None:
            print("  no cleanup command at the end")
            return 1
        words = shlex.split(cleanup[2])
        done, after, cleanup_wall = _run([*cli, *words[1:]], env)
        summary = next((line for _, line in after if line.startswith("deleted ")), "(no summary line)")
        print(f"  the printed cleanup command: exit {done}, {cleanup_wall:.1f} s, {summary}")
    return 0 if code == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
