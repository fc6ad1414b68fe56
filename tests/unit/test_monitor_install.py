"""``monitor install``: each scheduler's files, parsed back; intervals a scheduler cannot hold are refused."""

from __future__ import annotations

import configparser
import functools
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bonzo_bulk.cli import app
from bonzo_bulk.errors import ConfigError
from bonzo_bulk.monitor.install import cron_expression, parse_every, systemd_calendar

ROOT = Path(__file__).parents[2]
CONFIG = "tests/configs/monitorbase_test_config.yaml"


def install(tmp_path: Path, *args: str) -> tuple[int, str, Path]:
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["monitor", "install", "--config", str(ROOT / CONFIG), "--out", str(out), *args])
    return result.exit_code, " ".join(result.output.split()), out


@pytest.mark.parametrize(
    ("every", "cron", "calendar"),
    [("5m", "*/5 * * * *", "*:0/5"), ("1h", "0 * * * *", "hourly"), ("6h", "0 */6 * * *", "0/6:00")],
)
def test_intervals(every: str, cron: str, calendar: str) -> None:
    minutes = parse_every(every)
    assert cron_expression(minutes) == cron
    assert systemd_calendar(minutes) == calendar


@pytest.mark.parametrize("every", ["7m", "90m", "5h", "0m", "soon"])
def test_intervals_no_schedule_can_hold_are_refused(every: str) -> None:
    with pytest.raises(ConfigError, match="--every"):
        cron_expression(parse_every(every), every)


def test_systemd_writes_a_oneshot_service_and_its_timer(tmp_path: Path) -> None:
    code, output, out = install(tmp_path, "--systemd", "--every", "15m")
    assert code == 0, output
    service, timer = configparser.ConfigParser(), configparser.ConfigParser()
    service.read(out / "bonzo-bulk-monitor-monitorbase.service")
    timer.read(out / "bonzo-bulk-monitor-monitorbase.timer")
    assert service["Service"]["Type"] == "oneshot"
    assert service["Service"]["ExecStart"].endswith(f"monitor run --config {ROOT / CONFIG} --target live")
    assert service["Service"]["TimeoutStartSec"] == "900"
    assert timer["Timer"]["OnCalendar"] == "*:0/15" and timer["Timer"]["Persistent"] == "true"
    assert "systemctl --user enable --now bonzo-bulk-monitor-monitorbase.timer" in output


def test_cron_writes_one_crontab_line(tmp_path: Path) -> None:
    code, output, out = install(tmp_path, "--cron", "--every", "30m")
    assert code == 0, output
    lines = [line for line in (out / "bonzo-bulk-monitor-monitorbase.cron").read_text().splitlines() if line[:1] != "#"]
    assert len(lines) == 1 and lines[0].startswith("*/30 * * * * cd ")
    assert "monitor run --config" in lines[0] and "crontab -" in output


def test_github_writes_a_scheduled_workflow_with_secrets_from_the_store(tmp_path: Path) -> None:
    code, output, out = install(tmp_path, "--github", "--every", "1h")
    assert code == 0, output
    workflow = yaml.safe_load((out / "bonzo-bulk-monitor-monitorbase.yml").read_text())
    assert workflow[True]["schedule"] == [{"cron": "0 * * * *"}]  # YAML 1.1 reads the key `on` as True
    assert workflow["concurrency"]["cancel-in-progress"] is False
    step = workflow["jobs"]["monitor"]["steps"][1]
    assert step["uses"] == "./.github/actions/bonzo-bulk" and step["with"]["command"] == "monitor run"
    assert step["with"]["args"] == "--target live"
    assert step["env"]["BONZO_BULK_NOTIFY_URLS"] == "${{ secrets.BONZO_BULK_NOTIFY_URLS }}"
    code, output, _ = install(tmp_path, "--github", "--every", "2m")
    assert code == 2 and "at most every 5 minutes" in output


def test_k8s_writes_a_cronjob_that_never_overlaps_and_needs_an_image(tmp_path: Path) -> None:
    code, output, _ = install(tmp_path, "--k8s")
    assert code == 2 and "--image" in output
    code, output, out = install(tmp_path, "--k8s", "--every", "1h", "--image", "registry.test/bonzo-bulk:1")
    assert code == 0, output
    job, claim = yaml.safe_load_all((out / "bonzo-bulk-monitor-monitorbase.yaml").read_text())
    spec = job["spec"]
    assert spec["schedule"] == "0 * * * *" and spec["concurrencyPolicy"] == "Forbid"
    container = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:2] == ["monitor", "run"] and container["image"] == "registry.test/bonzo-bulk:1"
    assert container["args"][4:6] == ["--target", "live"]
    assert claim["kind"] == "PersistentVolumeClaim"


def test_exactly_one_scheduler_and_no_silent_overwrite(tmp_path: Path) -> None:
    code, output, _ = install(tmp_path, "--cron", "--systemd")
    assert code == 2 and "exactly one of --cron, --systemd, --github, --k8s" in output
    assert install(tmp_path, "--cron")[0] == 0
    code, output, _ = install(tmp_path, "--cron", "--every", "5m")
    assert code == 2 and "--force" in output
    assert install(tmp_path, "--cron", "--every", "5m", "--force")[0] == 0


def test_serve_with_systemd_is_a_long_running_loopback_service_over_the_monitors_store(tmp_path: Path) -> None:
    code, output, out = install(tmp_path, "--systemd", "--every", "15m", "--serve")
    assert code == 0, output
    service = configparser.ConfigParser()
    service.read(out / "bonzo-bulk-serve.service")
    assert service["Service"]["Type"] == "simple" and service["Service"]["Restart"] == "on-failure"
    command = service["Service"]["ExecStart"]
    assert " serve --host 127.0.0.1 --port 8080 --store-url " in command
    assert command.endswith("reports/runs.sqlite3")  # the config's store: where the monitor's runs go
    assert (out / "bonzo-bulk-monitor-monitorbase.timer").is_file()
    assert "enable --now bonzo-bulk-monitor-monitorbase.timer" in output
    assert "enable --now bonzo-bulk-serve.service" in output


def test_serve_with_k8s_is_a_deployment_and_service_that_needs_the_token(tmp_path: Path) -> None:
    code, output, out = install(tmp_path, "--k8s", "--image", "registry.test/bonzo-bulk:1", "--serve")
    assert code == 0, output
    text = (out / "bonzo-bulk-monitor-monitorbase-serve.yaml").read_text()
    deployment, service = yaml.safe_load_all(text)
    assert (deployment["kind"], service["kind"]) == ("Deployment", "Service")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    everywhere = "0.0.0.0"  # noqa: S104 - in its pod, behind the token
    assert container["args"] == ["serve", "--host", everywhere, "--port", "8080", "--store-url", "/data/runs.sqlite3"]
    assert container["envFrom"] == [{"secretRef": {"name": "bonzo-bulk-monitor-monitorbase"}}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}
    assert "BONZO_BULK_SERVE_TOKEN" in text
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert "kubectl apply -f bonzo-bulk-monitor-monitorbase-serve.yaml" in output


@pytest.mark.parametrize("backend", ["--cron", "--github"])
def test_serve_needs_a_long_running_backend(tmp_path: Path, backend: str) -> None:
    code, output, out = install(tmp_path, backend, "--serve")
    assert code == 2 and f"--serve with {backend}" in output and "--systemd or --k8s" in output
    assert not out.exists()


def scheduled_command(backend: str, out: Path) -> str:
    """The command line the scheduler of ``backend`` runs, read back from the file ``install`` wrote."""
    if backend == "--cron":
        text = (out / "bonzo-bulk-monitor-monitorbase.cron").read_text()
        return next(line for line in text.splitlines() if not line.startswith("#"))
    if backend == "--systemd":
        service = configparser.ConfigParser()
        service.read(out / "bonzo-bulk-monitor-monitorbase.service")
        return service["Service"]["ExecStart"]
    if backend == "--github":
        workflow = yaml.safe_load((out / "bonzo-bulk-monitor-monitorbase.yml").read_text())
        step = workflow["jobs"]["monitor"]["steps"][1]["with"]
        return f"{step['command']} --config {step['config']} {step.get('args', '')}"
    job, _ = yaml.safe_load_all((out / "bonzo-bulk-monitor-monitorbase.yaml").read_text())
    return " ".join(job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"])


@pytest.mark.parametrize("backend", ["--cron", "--systemd", "--github", "--k8s"])
def test_every_scheduled_monitor_targets_live(tmp_path: Path, backend: str) -> None:
    """Issue 24.10: a scheduled monitor whose secrets were missing silently tested the sandbox; the command each
    scheduler runs says --target live, so it exits 2 instead (and install says so)."""
    image = ["--image", "registry.test/bonzo-bulk:1"] if backend == "--k8s" else []
    code, output, out = install(tmp_path, backend, *image)
    assert code == 0, output
    assert "target: live" in output and "TEST_HOOK_URL and SUPERUSER_API_KEY" in output
    command = scheduled_command(backend, out)
    assert "monitor run --config " in command and "--target live" in command, command


def test_the_github_activate_line_works_from_the_repository_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It said ``cd .github/workflows && git add .github/workflows``, a path that does not exist from there."""
    remote, work = tmp_path / "remote.git", tmp_path / "work"
    env = {
        **os.environ,
        **{
            f"GIT_{who}_{what}": value
            for who in ("AUTHOR", "COMMITTER")
            for what, value in (("NAME", "t"), ("EMAIL", "t@t.test"))
        },
    }
    git = functools.partial(subprocess.run, check=True, capture_output=True, env=env)
    git(["git", "init", "-q", "--bare", str(remote)])
    git(["git", "init", "-q", str(work)])
    git(["git", "-C", str(work), "commit", "-q", "--allow-empty", "-m", "start"])
    git(["git", "-C", str(work), "remote", "add", "origin", str(remote)])
    git(["git", "-C", str(work), "push", "-q", "-u", "origin", "HEAD"])
    config = yaml.safe_load((ROOT / CONFIG).read_text())
    for key in ("payload_template", "superuser_payload_template"):
        config[key] = str(ROOT / config[key])
    (tmp_path / "monitor.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.chdir(work)
    result = CliRunner().invoke(app, ["monitor", "install", "--config", str(tmp_path / "monitor.yaml"), "--github"])
    assert result.exit_code == 0, result.output
    [activate] = [line.removeprefix("activate: ") for line in result.output.splitlines() if line.startswith("activate")]
    assert not activate.startswith("cd "), activate

    git(["bash", "-c", activate], cwd=work)

    pushed = git(["git", "-C", str(remote), "ls-tree", "-r", "--name-only", "HEAD"], text=True).stdout.split()
    assert ".github/workflows/bonzo-bulk-monitor-monitorbase.yml" in pushed
