"""deploy/logrotate/geoapp keeps every geoapp log at least 180 days (网络安全法 第21条: six months).
logrotate itself reads a copy whose paths point into a temporary folder: `-d` (debug: changes
nothing) says how it understood each stanza, and a forced run shows the rotation as it happens."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "deploy" / "logrotate" / "geoapp"
LOGROTATE = shutil.which("logrotate") or next(
    (p for p in ("/usr/sbin/logrotate", "/sbin/logrotate") if Path(p).exists()), None)
pytestmark = pytest.mark.skipif(LOGROTATE is None,
                                reason="logrotate is not installed (scripts/test installs Debian's)")
MIN_DAYS = 180
# Debian's own stanza for nginx (/etc/logrotate.d/nginx), read after ours ("geoapp" < "nginx")
DEBIAN_NGINX = """/var/log/nginx/*.log {
\tdaily
\tmissingok
\trotate 14
\tcompress
\tdelaycompress
\tnotifempty
\tcreate 0640 www-data adm
\tsharedscripts
\tpostrotate
\t\tinvoke-rc.d nginx rotate >/dev/null 2>&1
\tendscript
}
"""


def staged(tmp_path: Path) -> dict[str, Path]:
    """/etc/logrotate.d as it is on the server (ours, then Debian's nginx), paths moved to tmp_path:
    /var/log/geoapp, /var/log/nginx, /run/nginx.pid; `su geoapp geoapp` becomes this test's user."""
    import grp
    import os
    import pwd

    logs = {"geoapp": tmp_path / "log" / "geoapp", "nginx": tmp_path / "log" / "nginx"}
    for folder in logs.values():
        folder.mkdir(parents=True)
        folder.chmod(0o750)
    user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    text = CONFIG.read_text()
    for old, new in (("/var/log/geoapp/", f"{logs['geoapp']}/"), ("/var/log/nginx/", f"{logs['nginx']}/"),
                     ("/run/nginx.pid", str(tmp_path / "nginx.pid")), ("su geoapp geoapp", f"su {user} {group}"),
                     ("create 0640 www-data adm", f"create 0640 {user} {group}")):
        assert old in text, old  # the rewrite moves what the file really says
        text = text.replace(old, new)
    conf = tmp_path / "logrotate.d"
    conf.mkdir()
    (conf / "geoapp").write_text(text)
    (conf / "nginx").write_text(DEBIAN_NGINX.replace("/var/log/nginx/", f"{logs['nginx']}/"))
    return {"conf": conf, **logs, "state": tmp_path / "state"}


def logrotate(paths, *options) -> subprocess.CompletedProcess:
    return subprocess.run([LOGROTATE, *options, "-s", str(paths["state"]), str(paths["conf"])],
                          capture_output=True, text=True, timeout=60)


def test_every_stanza_keeps_at_least_180_days():
    text = CONFIG.read_text()
    stanzas = re.findall(r"^(/[^{\n]+)\{(.*?)^\}", text, re.S | re.M)
    assert {tuple(names.split()) for names, _ in stanzas} == {
        ("/var/log/geoapp/*.log",), ("/var/log/nginx/geoapp-access.log", "/var/log/nginx/geoapp-error.log")}
    for _, body in stanzas:
        assert re.search(r"^\s*daily\s*$", body, re.M)
        assert int(re.search(r"^\s*rotate\s+(\d+)", body, re.M).group(1)) >= MIN_DAYS
        for directive in ("compress", "delaycompress", "dateext"):
            assert re.search(rf"^\s*{directive}\s*$", body, re.M), directive
        assert not re.search(r"^\s*max(age|size)\b", body, re.M)  # nothing cuts the 190 days short


def test_logrotate_reads_it_without_error(tmp_path):
    paths = staged(tmp_path)
    for name in ("app.log", "notify.log"):
        (paths["geoapp"] / name).write_text("{}\n")
    for name in ("geoapp-access.log", "access.log"):
        (paths["nginx"] / name).write_text("{}\n")
    proc = logrotate(paths, "-d")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0 and not re.search(r"^error:", output, re.M | re.I), output
    rotations = dict(re.findall(r"rotating pattern: (.+?)\s+after 1 days \((\d+) rotations\)", output))
    ours = {pattern: int(n) for pattern, n in rotations.items() if "geoapp" in pattern}
    assert len(ours) == 2 and min(ours.values()) >= MIN_DAYS, output
    # geoapp-access.log is ours alone: Debian's 14-day glob leaves it be, and still rotates access.log
    assert "ignore duplicate log entry for " + str(paths["nginx"] / "geoapp-access.log") in output
    debian = next(p for p in rotations if p.endswith("/nginx/*.log"))
    assert int(rotations[debian]) == 14


def test_a_rotation_keeps_the_writer_and_names_the_day(tmp_path):
    paths = staged(tmp_path)
    app_log = paths["geoapp"] / "app.log"
    with open(app_log, "a") as writer:  # the supervisor's descriptor (O_APPEND), kept across the rotation
        writer.write('{"message": "before"}\n')
        writer.flush()
        proc = logrotate(paths, "-f")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        writer.write('{"message": "after"}\n')
        writer.flush()
    [rotated] = paths["geoapp"].glob("app.log-*")
    assert re.fullmatch(r"app\.log-\d{8}", rotated.name)  # dateext: the day it was rotated
    assert rotated.read_text() == '{"message": "before"}\n'  # delaycompress: yesterday's stays plain
    assert app_log.read_text() == '{"message": "after"}\n'  # copytruncate: same file, written from the start
