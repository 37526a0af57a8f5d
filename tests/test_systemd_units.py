"""deploy/systemd/: the units a server with systemd runs (scripts/install-production copies them to
/etc/systemd/system/). `systemd-analyze verify` checks them as systemd would load them; it needs no
running systemd, but it does require each ExecStart= program to exist, so it is given a copy whose
/opt/geoapp/venv/bin/ programs are stubs in a temporary folder (everything else unchanged)."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "deploy" / "systemd"
VENV_BIN = "/opt/geoapp/venv/bin/"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed here (Debian: apt-get install systemd)")

SERVICES = {"geoapp.service", "geoapp-notify.service", "geoapp-sweep.service", "geoapp-backup.service",
            "geoapp-photo-sync.service"}
TIMERS = {"geoapp-sweep.timer", "geoapp-backup.timer", "geoapp-photo-sync.timer", "geoapp-pgbackrest.timer"}
# pgBackRest reads the cluster's data directory: it runs as postgres, not as geoapp
POSTGRES_SERVICES = {"geoapp-pgbackrest.service"}


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """section -> key -> values (a key may repeat: ExecStart= of a oneshot, ReadWritePaths=)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(unit: dict, section: str, key: str) -> str:
    [value] = unit[section][key]
    return value


def staged(tmp_path: Path, edit=None) -> list[Path]:
    """A copy of the units with the venv's programs pointed at stubs that exist."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    for program in ("gunicorn", "geoapp"):
        stub = bin_dir / program
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    out = tmp_path / "units"
    out.mkdir()
    staged_paths = []
    for unit in sorted(UNITS.iterdir()):
        text = unit.read_text()
        assert VENV_BIN in text or unit.suffix == ".timer" or unit.name in POSTGRES_SERVICES, unit.name
        text = text.replace(VENV_BIN, f"{bin_dir}/")
        if edit:
            text = edit(unit.name, text)
        (out / unit.name).write_text(text)
        staged_paths.append(out / unit.name)
    return staged_paths


def verify(paths: list[Path]) -> tuple[int, list[str]]:
    proc = subprocess.run([SYSTEMD_ANALYZE, "verify", "--man=no", *map(str, paths)],
                          capture_output=True, text=True, timeout=60)
    # only what concerns our units (a host's own units may have warnings of their own)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if "geoapp" in line]
    return proc.returncode, lines


def test_the_expected_units_are_there():
    assert {p.name for p in UNITS.iterdir()} == SERVICES | POSTGRES_SERVICES | TIMERS


@needs_systemd_analyze
def test_systemd_analyze_verify_finds_nothing(tmp_path):
    code, complaints = verify(staged(tmp_path))
    assert code == 0 and complaints == []


@needs_systemd_analyze
def test_verify_would_catch_a_typo_or_a_missing_program(tmp_path):
    """The check above has teeth: systemd-analyze only warns about an unknown key (exit 0), which
    the test reads; a missing program makes it fail."""
    code, complaints = verify(staged(tmp_path / "typo", lambda name, text: text.replace(
        "ProtectSystem=strict", "ProtectSytem=strict")))
    assert any("ProtectSytem" in line for line in complaints)
    code, complaints = verify(staged(tmp_path / "missing", lambda name, text: text.replace(
        f"{tmp_path}/missing/bin/gunicorn", "/nonexistent/gunicorn")))
    assert code != 0 and any("/nonexistent/gunicorn" in line for line in complaints)


@needs_systemd_analyze
@pytest.mark.parametrize("service", sorted(SERVICES | POSTGRES_SERVICES))
def test_hardening_exposure_is_low(service):
    """systemd's own review of the sandbox (0 = locked down, 10 = none): each below 2.0 ("OK")."""
    proc = subprocess.run([SYSTEMD_ANALYZE, "security", "--offline=yes", "--threshold=20", str(UNITS / service)],
                          capture_output=True, text=True, timeout=60)
    score = re.search(r"Overall exposure level for \S+: ([\d.]+)", proc.stdout + proc.stderr)
    assert proc.returncode == 0 and score and float(score.group(1)) <= 2.0, proc.stdout[-2000:]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_service_runs_as_geoapp_with_the_installed_settings_sandboxed(service):
    unit = parse_unit(UNITS / service)
    s = unit["Service"]
    assert one(unit, "Service", "User") == "geoapp" and one(unit, "Service", "Group") == "geoapp"
    assert one(unit, "Service", "EnvironmentFile") == "/etc/geoapp/geoapp.env"
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
                       "ProtectHome": "yes", "PrivateDevices": "yes", "CapabilityBoundingSet": ""}.items():
        assert s.get(key) == [value], (service, key)
    writable = " ".join(s["ReadWritePaths"]).split()
    assert "/var/log/geoapp" in writable
    assert one(unit, "Service", "StandardOutput").startswith("append:/var/log/geoapp/")
    for line in s["ExecStart"]:
        assert line.startswith((VENV_BIN, "/bin/sh ")), line


def test_the_point_in_time_backup_runs_as_postgres_sandboxed():
    unit = parse_unit(UNITS / "geoapp-pgbackrest.service")
    assert one(unit, "Service", "User") == "postgres" and one(unit, "Service", "Type") == "oneshot"
    command = one(unit, "Service", "ExecStart")
    assert "--config=/etc/pgbackrest/geoapp.conf --stanza=geoapp" in command and "%%u" in command
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes"}.items():
        assert unit["Service"].get(key) == [value], key
    assert "/var/lib/pgbackrest" in " ".join(unit["Service"]["ReadWritePaths"]).split()


def test_the_web_service():
    unit = parse_unit(UNITS / "geoapp.service")
    assert one(unit, "Service", "ExecStart") == (
        "/opt/geoapp/venv/bin/gunicorn -c /opt/geoapp/deploy/gunicorn.conf.py 'geoapp:create_app()'")
    # gunicorn's arbiter sends READY=1 itself (gunicorn.systemd.sd_notify)
    assert one(unit, "Service", "Type") == "notify"
    from gunicorn import systemd as gunicorn_systemd
    assert callable(gunicorn_systemd.sd_notify)
    assert one(unit, "Service", "ExecReload") == "/bin/kill -HUP $MAINPID"  # a graceful reload of workers
    assert one(unit, "Service", "RuntimeDirectory") == "geoapp"  # /run/geoapp/gunicorn.sock
    assert set(" ".join(unit["Service"]["ReadWritePaths"]).split()) == {"/var/lib/geoapp", "/var/log/geoapp"}
    assert one(unit, "Install", "WantedBy") == "multi-user.target"
    gunicorn_conf = (ROOT / "deploy" / "gunicorn.conf.py").read_text()
    assert "unix:/run/geoapp/gunicorn.sock" in gunicorn_conf


def test_the_notification_sender():
    unit = parse_unit(UNITS / "geoapp-notify.service")
    assert one(unit, "Service", "ExecStart") == "/opt/geoapp/venv/bin/geoapp notify loop"
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


@pytest.mark.parametrize("timer, schedule, command", [
    ("geoapp-sweep.timer", {"OnCalendar": "hourly"}, "/opt/geoapp/venv/bin/geoapp photos sweep"),
    ("geoapp-backup.timer", {"OnCalendar": "*-*-* 02:30:00"},
     "/opt/geoapp/venv/bin/geoapp backup --output /var/backups/geoapp"),
    ("geoapp-pgbackrest.timer", {"OnCalendar": "*-*-* 03:30:00"},
     "/bin/sh -c 't=diff; [ \"$(date +%%u)\" = 7 ] && t=full; exec /usr/bin/pgbackrest "
     "--config=/etc/pgbackrest/geoapp.conf --stanza=geoapp --type=$t backup'"),
    ("geoapp-photo-sync.timer", {"OnUnitInactiveSec": "1min"},
     "/opt/geoapp/venv/bin/geoapp photos sync ${PHOTO_DIR} /mnt/geoapp-standby/photos"),
])
def test_the_timers(timer, schedule, command):
    unit = parse_unit(UNITS / timer)
    for key, value in schedule.items():
        assert one(unit, "Timer", key) == value
    assert one(unit, "Install", "WantedBy") == "timers.target"
    service = one(unit, "Timer", "Unit")
    assert service in SERVICES | POSTGRES_SERVICES
    job = parse_unit(UNITS / service)
    assert one(job, "Service", "Type") == "oneshot" and "Install" not in job  # started by its timer only
    assert job["Service"]["ExecStart"][0] == command


def test_the_install_enables_units_that_exist():
    install = (ROOT / "scripts" / "install-production").read_text()
    enabled = re.search(r"systemctl enable --now ([^\n]+)", install).group(1).split()
    assert enabled and set(enabled) <= SERVICES | POSTGRES_SERVICES | TIMERS
