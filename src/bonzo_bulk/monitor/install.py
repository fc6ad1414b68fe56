"""``monitor install``: write the platform scheduler's own files for ``monitor run`` — no scheduler of our own.

cron (a crontab line), systemd (a oneshot service and its timer), GitHub Actions (a scheduled workflow
using this repo's composite action) or Kubernetes (a CronJob that never overlaps). Every scheduled command
runs ``monitor run --target live``: a monitor whose secrets are missing exits 2 instead of testing the
sandbox. With ``--serve``, systemd and Kubernetes also get ``bonzo-bulk serve`` over the monitor's run store
(a long-running service; a Deployment and its Service). Each file is complete as written;
:func:`plan_install` returns the files and the one command that activates them.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bonzo_bulk.errors import ConfigError

Backend = Literal["cron", "systemd", "github", "k8s"]
BACKENDS: tuple[Backend, ...] = ("cron", "systemd", "github", "k8s")
DEFAULT_DIRS: dict[Backend, Path] = {
    "cron": Path("deploy/cron"),
    "systemd": Path("deploy/systemd"),
    "github": Path(".github/workflows"),
    "k8s": Path("deploy/k8s"),
}
GRACE_SECONDS = 300
"""Room the scheduler gives a run beyond monitor.max_duration (cleanup and reports)."""
_HOUR_STEPS = (1, 2, 3, 4, 6, 8, 12, 24)
LIVE = ("--target", "live")
"""Every scheduled ``monitor run`` targets live: without its secrets it exits 2, never tests the sandbox."""


def parse_every(text: str) -> int:
    """``--every`` as whole minutes: ``15m``, ``1h``, ``1d``.

    >>> parse_every("15m"), parse_every("2h"), parse_every("1d")
    (15, 120, 1440)
    """
    match = re.fullmatch(r"\s*(\d+)\s*(m|min|h|d)\s*", text)
    if match is None or int(match.group(1)) == 0:
        raise ConfigError(f"--every {text!r}: give a whole interval like 15m, 1h or 1d", key="--every")
    return int(match.group(1)) * {"m": 1, "min": 1, "h": 60, "d": 1440}[match.group(2)]


def _steps(minutes: int, every: str) -> tuple[int, int]:
    """(minute step, hour step) of an interval a calendar schedule can hold, or a clear error."""
    if minutes < 60 and 60 % minutes == 0:
        return minutes, 0
    if minutes % 60 == 0 and minutes // 60 in _HOUR_STEPS:
        return 0, minutes // 60
    raise ConfigError(
        f"--every {every}: a schedule can only repeat evenly within the hour or the day; use one of 1m, 2m, 5m, "
        "10m, 15m, 20m, 30m or 1h, 2h, 3h, 4h, 6h, 8h, 12h, 1d",
        key="--every",
    )


def cron_expression(minutes: int, every: str = "") -> str:
    """The five-field cron schedule of an interval.

    >>> cron_expression(15), cron_expression(60), cron_expression(360), cron_expression(1440)
    ('*/15 * * * *', '0 * * * *', '0 */6 * * *', '0 0 * * *')
    """
    step, hours = _steps(minutes, every or f"{minutes}m")
    if hours == 0:
        return "* * * * *" if step == 1 else f"*/{step} * * * *"
    return {1: "0 * * * *", 24: "0 0 * * *"}.get(hours, f"0 */{hours} * * *")


def systemd_calendar(minutes: int, every: str = "") -> str:
    """The systemd ``OnCalendar=`` of an interval.

    >>> systemd_calendar(15), systemd_calendar(120), systemd_calendar(1440)
    ('*:0/15', '0/2:00', 'daily')
    """
    step, hours = _steps(minutes, every or f"{minutes}m")
    if hours == 0:
        return "minutely" if step == 1 else f"*:0/{step}"
    return {1: "hourly", 24: "daily"}.get(hours, f"0/{hours}:00")


@dataclass(frozen=True, slots=True)
class InstallSpec:
    """What the schedule runs, and where."""

    backend: Backend
    every: str
    name: str
    config: str
    """The config path as the scheduled command sees it (relative to ``workdir``)."""
    workdir: Path
    executable: Sequence[str]
    """How to start bonzo-bulk on this machine (cron, systemd), e.g. the venv's absolute ``bonzo-bulk``."""
    max_duration: float
    notify_env: str
    ping_env: str
    image: str | None = None
    action: str = "./.github/actions/bonzo-bulk"
    serve: bool = False
    """Also run ``bonzo-bulk serve`` over the monitor's store (systemd and Kubernetes)."""
    store: str = "reports/runs.sqlite3"
    """The monitor's run store as the serve unit names it (a path, or a URL without its password)."""
    serve_port: int = 8080


@dataclass(frozen=True, slots=True)
class InstallPlan:
    """The files to write (name -> text) and the command that activates them."""

    files: tuple[tuple[str, str], ...]
    activate: str
    """Run in the files' folder; with ``from_workdir``, run where ``monitor install`` ran (the repository root),
    naming the folder ``{folder}``."""
    from_workdir: bool = False

    def command(self, folder: Path) -> str:
        """The activation as one command to run where ``monitor install`` ran, the files written to ``folder``."""
        where = shlex.quote(str(folder))
        return self.activate.format(folder=where) if self.from_workdir else f"cd {where} && {self.activate}"


def plan_install(spec: InstallSpec) -> InstallPlan:
    """The schedule files of ``spec.backend`` and how to activate them."""
    minutes = parse_every(spec.every)
    if spec.backend == "github" and minutes < 5:
        raise ConfigError(f"--every {spec.every}: GitHub runs schedules at most every 5 minutes", key="--every")
    if spec.serve and spec.backend not in ("systemd", "k8s"):
        raise ConfigError(
            f"--serve with --{spec.backend}: serve is a long-running service; use it with --systemd or --k8s",
            key="--serve",
        )
    render = {"cron": _cron, "systemd": _systemd, "github": _github, "k8s": _k8s}[spec.backend]
    plan = render(spec, minutes)
    if not spec.serve:
        return plan
    serve = _systemd_serve(spec) if spec.backend == "systemd" else _k8s_serve(spec)
    return InstallPlan((*plan.files, *serve.files), f"{plan.activate} && {serve.activate}")


def _unit(spec: InstallSpec) -> str:
    return "bonzo-bulk-monitor-" + re.sub(r"[^a-z0-9-]+", "-", spec.name.lower()).strip("-")


def _command(spec: InstallSpec, *extra: str) -> str:
    return shlex.join([*spec.executable, "monitor", "run", "--config", spec.config, *LIVE, *extra])


def _cron(spec: InstallSpec, minutes: int) -> InstallPlan:
    unit = _unit(spec)
    log = spec.workdir / "reports" / f"{unit}.log"
    text = (
        f"# bonzo-bulk monitor {spec.name}: every {spec.every} (written by `bonzo-bulk monitor install --cron`)\n"
        f"# Secrets come from {spec.workdir / '.env'} (read by bonzo-bulk), never from this file.\n"
        f"{cron_expression(minutes, spec.every)} cd {shlex.quote(str(spec.workdir))} && {_command(spec)}"
        f" >> {shlex.quote(str(log))} 2>&1\n"
    )
    name = f"{unit}.cron"
    return InstallPlan(((name, text),), f"(crontab -l 2>/dev/null; cat {name}) | crontab -")


def _systemd(spec: InstallSpec, minutes: int) -> InstallPlan:
    unit = _unit(spec)
    service = f"""# written by `bonzo-bulk monitor install --systemd`
[Unit]
Description=bonzo-bulk monitor {spec.name} (one bounded run)
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
WorkingDirectory={spec.workdir}
# Secrets (TEST_HOOK_URL, SUPERUSER_API_KEY, {spec.notify_env}, {spec.ping_env}) live in .env, not here.
EnvironmentFile=-{spec.workdir / ".env"}
ExecStart={_command(spec)}
TimeoutStartSec={int(spec.max_duration) + GRACE_SECONDS}
"""
    timer = f"""# written by `bonzo-bulk monitor install --systemd`
[Unit]
Description=bonzo-bulk monitor {spec.name} every {spec.every}

[Timer]
OnCalendar={systemd_calendar(minutes, spec.every)}
RandomizedDelaySec=30
Persistent=true
Unit={unit}.service

[Install]
WantedBy=timers.target
"""
    activate = (
        f"cp {unit}.service {unit}.timer ~/.config/systemd/user/ && systemctl --user daemon-reload && "
        f"systemctl --user enable --now {unit}.timer"
    )
    return InstallPlan(((f"{unit}.service", service), (f"{unit}.timer", timer)), activate)


def _systemd_serve(spec: InstallSpec) -> InstallPlan:
    unit = "bonzo-bulk-serve"
    command = shlex.join(
        [*spec.executable, "serve", "--host", "127.0.0.1", "--port", str(spec.serve_port), "--store-url", spec.store]
    )
    service = f"""# written by `bonzo-bulk monitor install --systemd --serve`
[Unit]
Description=bonzo-bulk serve: integration health pages and /metrics over the run store
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
WorkingDirectory={spec.workdir}
# Loopback only; to serve beyond this machine, change --host and put BONZO_BULK_SERVE_TOKEN in .env.
EnvironmentFile=-{spec.workdir / ".env"}
ExecStart={command}
Restart=on-failure
RestartSec=5

[Install]
WantedBy=default.target
"""
    activate = (
        f"cp {unit}.service ~/.config/systemd/user/ && systemctl --user daemon-reload && "
        f"systemctl --user enable --now {unit}.service"
    )
    return InstallPlan(((f"{unit}.service", service),), activate)


def _k8s_serve(spec: InstallSpec) -> InstallPlan:
    unit = _unit(spec)
    store = spec.store if "://" in spec.store else "/data/runs.sqlite3"
    listen = ["--host", "0.0.0.0", "--port", str(spec.serve_port)]  # noqa: S104 - in its pod, behind the token
    args = ", ".join(f'"{a}"' for a in ["serve", *listen, "--store-url", store])
    text = f"""# written by `bonzo-bulk monitor install --k8s --serve`: bonzo-bulk serve over {unit}'s run store.
# It listens on every interface of its pod, so the Secret {unit} must hold BONZO_BULK_SERVE_TOKEN (it refuses to
# start without it). A SQLite store on the ReadWriteOnce claim {unit}-reports is shared with the CronJob only on
# one node; a store_url on PostgreSQL has no such limit.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {unit}-serve
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {unit}-serve
  template:
    metadata:
      labels:
        app: {unit}-serve
    spec:
      containers:
        - name: serve
          image: {spec.image}
          command: ["bonzo-bulk"]
          args: [{args}]
          ports:
            - containerPort: {spec.serve_port}
          envFrom:
            - secretRef:
                name: {unit}
          readinessProbe:
            httpGet:
              path: /healthz
              port: {spec.serve_port}
          volumeMounts:
            - name: reports
              mountPath: /data
      volumes:
        - name: reports
          persistentVolumeClaim:
            claimName: {unit}-reports
---
apiVersion: v1
kind: Service
metadata:
  name: {unit}-serve
spec:
  selector:
    app: {unit}-serve
  ports:
    - port: {spec.serve_port}
      targetPort: {spec.serve_port}
"""
    return InstallPlan(((f"{unit}-serve.yaml", text),), f"kubectl apply -f {unit}-serve.yaml")


def _github(spec: InstallSpec, minutes: int) -> InstallPlan:
    unit = _unit(spec)
    secrets = ["TEST_HOOK_URL", "SUPERUSER_API_KEY", "SUPERUSER_WEBHOOK_URL", spec.notify_env, spec.ping_env]
    env = "\n".join(f"          {s}: ${{{{ secrets.{s} }}}}" for s in secrets)
    text = f"""# written by `bonzo-bulk monitor install --github`: {spec.name} every {spec.every}.
# GitHub runs schedules on a best-effort basis (never more often than every 5 minutes, sometimes late);
# the run store is kept between runs in the Actions cache so the alert policy remembers outages.
name: bonzo-bulk monitor {spec.name}
on:
  schedule:
    - cron: "{cron_expression(minutes, spec.every)}"
  workflow_dispatch:
concurrency:
  group: {unit}
  cancel-in-progress: false
permissions:
  contents: read
jobs:
  monitor:
    runs-on: ubuntu-latest
    timeout-minutes: {(int(spec.max_duration) + GRACE_SECONDS) // 60 + 1}
    steps:
      - uses: actions/checkout@v4
      - uses: {spec.action}
        with:
          command: monitor run
          config: {spec.config}
          args: "{" ".join(LIVE)}"
          keep-store: "true"
        env:
{env}
"""
    message = shlex.quote(f"bonzo-bulk monitor: schedule {unit}")
    return InstallPlan(
        ((f"{unit}.yml", text),),
        f"git add {{folder}}/{unit}.yml && git commit -m {message} && git push",
        from_workdir=True,
    )


def _k8s(spec: InstallSpec, minutes: int) -> InstallPlan:
    if not spec.image:
        raise ConfigError(
            "--k8s needs --image: a container image with bonzo-bulk and your config in its working directory",
            key="--image",
        )
    unit = _unit(spec)
    monitor = ["monitor", "run", "--config", spec.config, *LIVE, "--reports-dir", "/data"]
    args = ", ".join(f'"{a}"' for a in monitor)
    text = f"""# written by `bonzo-bulk monitor install --k8s`: {spec.name} every {spec.every}.
# Secrets come from the Secret {unit} (kubectl create secret generic {unit} --from-env-file=.env);
# the run store (alert state, history) lives on the PersistentVolumeClaim {unit}-reports.
apiVersion: batch/v1
kind: CronJob
metadata:
  name: {unit}
spec:
  schedule: "{cron_expression(minutes, spec.every)}"
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: {GRACE_SECONDS}
  successfulJobsHistoryLimit: 3
  failedJobsHistoryLimit: 3
  jobTemplate:
    spec:
      backoffLimit: 0
      activeDeadlineSeconds: {int(spec.max_duration) + GRACE_SECONDS}
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: monitor
              image: {spec.image}
              command: ["bonzo-bulk"]
              args: [{args}]
              envFrom:
                - secretRef:
                    name: {unit}
              volumeMounts:
                - name: reports
                  mountPath: /data
          volumes:
            - name: reports
              persistentVolumeClaim:
                claimName: {unit}-reports
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {unit}-reports
spec:
  accessModes: ["ReadWriteOnce"]
  resources:
    requests:
      storage: 1Gi
"""
    return InstallPlan(((f"{unit}.yaml", text),), f"kubectl apply -f {unit}.yaml")


def write_plan(plan: InstallPlan, directory: Path, *, force: bool = False) -> list[Path]:
    """Write the plan's files into ``directory``; an existing different file is kept unless ``force``."""
    paths = [directory / name for name, _ in plan.files]
    for path, (_, text) in zip(paths, plan.files, strict=True):
        if path.exists() and path.read_text(encoding="utf-8") != text and not force:
            raise ConfigError(f"{path} exists and differs; pass --force to replace it", key="--force")
    directory.mkdir(parents=True, exist_ok=True)
    for path, (_, text) in zip(paths, plan.files, strict=True):
        path.write_text(text, encoding="utf-8")
    return paths


@dataclass(frozen=True, slots=True)
class Installed:
    """The schedule files written, their folder and the command that activates them."""

    paths: list[Path]
    folder: Path
    activate: str


def install(
    backend: Backend,
    *,
    every: str,
    config: Path,
    out_dir: Path | None,
    image: str | None,
    action: str,
    force: bool,
    serve: bool = False,
) -> Installed:
    """Write the schedule file(s) that run ``bonzo-bulk monitor run --config CONFIG`` every ``every``.

    The scheduled command is this venv's ``bonzo-bulk`` when there is one beside the interpreter, else
    ``uv run bonzo-bulk``; the monitor's name, duration bound and notification variables come from the config.
    ``serve`` adds ``bonzo-bulk serve`` over the config's run store (systemd, Kubernetes).
    """
    import sys

    from bonzo_bulk.config.loader import load_config
    from bonzo_bulk.config.store_location import StoreLocation
    from bonzo_bulk.target.endpoints import store_location_for

    loaded = load_config(config)
    settings = loaded.config
    executable = Path(sys.executable).with_name("bonzo-bulk")
    spec = InstallSpec(
        backend=backend,
        every=every,
        name=settings.monitor.name or settings.integration_type,
        config=str(config),
        workdir=Path.cwd().resolve(),
        executable=[str(executable)] if executable.exists() else ["uv", "run", "bonzo-bulk"],
        max_duration=settings.monitor.max_duration,
        notify_env=settings.monitor.notify_env,
        ping_env=settings.monitor.ping_env,
        image=image,
        action=action,
        serve=serve,
        store=StoreLocation.parse(store_location_for(loaded)).label,
    )
    plan = plan_install(spec)
    folder = out_dir or DEFAULT_DIRS[backend]
    return Installed(write_plan(plan, folder, force=force), folder, plan.command(folder))
