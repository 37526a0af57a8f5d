"""Every setting in one place, read from the environment once, with documented defaults."""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("GEOAPP_VAR_DIR", PROJECT_ROOT / "var"))


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def _optional_int(name: str) -> int | None:
    raw = os.environ.get(name)
    return int(float(raw)) if raw not in (None, "") else None


def _bbox(name: str, default: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    raw = os.environ.get(name)
    if not raw:
        return default
    parts = tuple(float(p) for p in raw.split(","))
    if len(parts) != 4:
        raise ValueError(f"{name} must be 'min_lon,min_lat,max_lon,max_lat'")
    return parts  # type: ignore[return-value]


def _nearby_along_m() -> float:
    from .domain.vocabulary import NEARBY_ALONG_M  # one home for the 20 m
    return NEARBY_ALONG_M


def _default_office_hours() -> str:
    from .domain.working_time import DEFAULT_OFFICE_HOURS
    return DEFAULT_OFFICE_HOURS


def _secret_key() -> str:
    """A stable secret across restarts without asking the operator for one: VAR_DIR/secret_key,
    made on the first start. Workers starting together must agree on it, so each writes a whole key
    to a file of its own and hard-links it to the final name: the link either makes the key or fails
    because another process made it first, and then that one is read. Never seen half-written."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        tmp = VAR_DIR / f".secret_key.{os.getpid()}.{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            os.fchmod(fd, 0o640)  # the app's user, and its group (backups); whatever the umask
            os.write(fd, secrets.token_hex(32).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process was first: its key is the key
        finally:
            os.unlink(tmp)
    key = path.read_text().strip()
    if not key:
        raise RuntimeError(f"{path} is empty: remove it (a new key is then made) or set SECRET_KEY")
    return key


@dataclass(frozen=True)
class Settings:
    # postgresql://… ; scripts/serve and scripts/test export it for the project-local cluster.
    database_url: str = field(default_factory=lambda: os.environ.get("DATABASE_URL", ""))
    # The role that owns the schema and runs the migrations (`geoapp db upgrade`, `geoapp restore`);
    # the app itself connects as DATABASE_URL's role, which may only read and write rows
    # (geoapp/db_roles.py). Unset: the same as DATABASE_URL (one role for everything, not for production).
    owner_database_url: str = field(default_factory=lambda: os.environ.get("OWNER_DATABASE_URL")
                                    or os.environ.get("DATABASE_URL", ""))
    secret_key: str = field(default_factory=_secret_key)
    # A report must lie within this many metres of a key street (measured in the metric CRS).
    snap_tolerance_m: float = field(default_factory=lambda: _float("SNAP_TOLERANCE_M", 30.0))
    # Walks (geoapp/domain/walks.py): GPS points less accurate than this (metres, as the phone
    # reports it) are dropped, and so are points implying a speed above this (m/s) from the previous
    # kept point (a GPS jump, or a ride in a car: a walk is on foot).
    walk_max_accuracy_m: float = field(default_factory=lambda: _float("WALK_MAX_ACCURACY_M", 30.0))
    walk_max_speed_mps: float = field(default_factory=lambda: _float("WALK_MAX_SPEED_MPS", 7.0))
    # Duplicate suggestions (geoapp/domain/duplicates.py): open reports of the same item on the same
    # street, each within this many metres along it of the next (default: the phone's "already
    # reported nearby" distance), reported within the last this many days.
    duplicate_along_m: float = field(default_factory=lambda: _float("DUPLICATE_ALONG_M", _nearby_along_m()))
    duplicate_window_days: int = field(default_factory=lambda: int(_float("DUPLICATE_WINDOW_DAYS", 30)))
    # Coverage per road (geoapp/domain/coverage.py): the default length of a street's bins, in metres
    # (10-500, a multiple of 10; a query's bin_m overrides it).
    coverage_bin_m: int = field(default_factory=lambda: int(_float("COVERAGE_BIN_M", 50)))
    # The city's extent (WGS-84 lon/lat). Points outside are refused before any snapping;
    # it is also how swapped latitude/longitude is recognised.
    city_bbox: tuple[float, float, float, float] = field(
        default_factory=lambda: _bbox("CITY_BBOX", (120.85, 40.90, 121.45, 41.35))
    )
    # Optional basemap, e.g. Tianditu (needs its tk key) or an intranet tile server.
    # Empty: streets are drawn on a plain background and nothing is fetched from outside.
    tile_url: str = field(default_factory=lambda: os.environ.get("TILE_URL", ""))
    tile_attribution: str = field(default_factory=lambda: os.environ.get("TILE_ATTRIBUTION", ""))
    upload_max_mb: float = field(default_factory=lambda: _float("UPLOAD_MAX_MB", 10.0))
    photo_dir: Path = field(default_factory=lambda: Path(os.environ.get("PHOTO_DIR", VAR_DIR / "photos")))
    # Long edge of the published (watermarked) copy, in pixels: phones send 4000 px, a case needs far
    # less, and 1600 lets a 12 MP JPEG be decoded at half scale (bench/run post_report).
    photo_max_px: int = field(default_factory=lambda: int(_float("PHOTO_MAX_PX", 1600)))
    # How many uploaded images are decoded at once; more wait (up to 20 s, then 503). Bounds the
    # memory a burst of large photos can take: see bench/photo_memory.py.
    photo_decode_slots: int = field(default_factory=lambda: int(_float("PHOTO_DECODE_SLOTS", 2)))
    # Times are stored in UTC and shown to people in the city's time zone.
    display_tz: str = field(default_factory=lambda: os.environ.get("DISPLAY_TZ", "Asia/Shanghai"))
    # Office hours of a working day (geoapp/domain/working_time.py), local time in display_tz: one or
    # more HH:MM-HH:MM spans in order. Items' time limits (deadline_days) count only these hours on the
    # official calendar's working days; a working day is their sum (7.5 h by default).
    office_hours: str = field(default_factory=lambda: os.environ.get("OFFICE_HOURS") or _default_office_hours())
    # The city's corrections to the official calendar (date,working,note): a year the installed
    # chinesecalendar does not know yet, or a local day off. They win over the library.
    calendar_file: Path = field(default_factory=lambda: Path(os.environ.get("CALENDAR_FILE")
                                                             or PROJECT_ROOT / "gis_data" / "calendar.csv"))

    # accounts and sessions (geoapp/web/auth.py, geoapp/domain/accounts.py, geoapp/demo.py)
    # GEOAPP_DEMO=1 (the default, for a first run): `geoapp demo load` creates rep01…rep29, dispatcher and
    # admin with the published demo password and demo reports. A real deployment sets 0: demo load then
    # creates nothing, and `geoapp users init-admin` creates the first admin with a one-time password.
    demo: bool = field(default_factory=lambda: (os.environ.get("GEOAPP_DEMO") or "1").strip().lower()
                       not in ("0", "false", "no", "off"))
    # GEOAPP_HTTPS=1 when users reach the site over https (a TLS reverse proxy): cookies are then sent
    # only over https (Secure). Off by default: city intranets often serve plain http.
    https: bool = field(default_factory=lambda: (os.environ.get("GEOAPP_HTTPS") or "0").strip().lower()
                        in ("1", "true", "yes", "on"))
    # A sign-in lasts at most this long, and ends after this much inactivity...
    session_hours: float = field(default_factory=lambda: _float("SESSION_HOURS", 12.0))
    session_idle_minutes: float = field(default_factory=lambda: _float("SESSION_IDLE_MINUTES", 120.0))
    # ...unless "keep me signed in" was ticked (phones): then it lasts this long, with no idle limit.
    session_remember_days: float = field(default_factory=lambda: _float("SESSION_REMEMBER_DAYS", 30.0))
    # Failed sign-ins allowed per username and per client IP within one window; one more and further
    # attempts (even with the right password) are refused until the window ends. Checked before any
    # password hash is computed; successful sign-ins are not counted. The per-username count and the
    # window's length are the security administrator's (/admin/security: lockout_failures,
    # lockout_minutes; geoapp/domain/security_policy.py); LOGIN_FAILS_PER_USER and
    # LOGIN_FAIL_WINDOW_MINUTES, when set, override the policy (tests, an emergency), and the policy
    # page says so. Unset (None): the policy decides.
    login_fails_per_user: int | None = field(default_factory=lambda: _optional_int("LOGIN_FAILS_PER_USER"))
    login_fails_per_ip: int = field(default_factory=lambda: int(_float("LOGIN_FAILS_PER_IP", 30)))
    login_fail_window_minutes: int | None = field(default_factory=lambda: _optional_int("LOGIN_FAIL_WINDOW_MINUTES"))
    # How many reverse proxies stand in front of the app and are trusted to say who the client is
    # (X-Forwarded-For/-Proto): 0 for `geoapp serve` reached directly (a client's header is then
    # ignored, so no one can choose their own address), 1 behind the production nginx.
    trusted_proxy_hops: int = field(default_factory=lambda: int(_float("GEOAPP_PROXY_HOPS", 0)))
    # Where those counts are kept (Flask-Limiter / `limits` storage URI). `database` (the default): the
    # table rate_limits in the app's own PostgreSQL, shared by every worker and host, no extra service
    # (geoapp/ratelimit_store.py); memory:// counts per process (one process only, reset on restart);
    # redis://host:6379 works too.
    ratelimit_storage_uri: str = field(default_factory=lambda: os.environ.get("RATELIMIT_STORAGE_URI") or "database")
    # The app's log lines on stderr (geoapp/logs.py): `text` for a terminal, `json` (production: one
    # object per line, each with the request id nginx also logs) for /var/log/geoapp/app.log.
    log_format: str = field(default_factory=lambda: (os.environ.get("GEOAPP_LOG_FORMAT") or "text").strip().lower())
    # Per-machine coordination files (the photo-decode slots' lock files, geoapp/domain/photos.py): every
    # process of the app on one machine must use the same folder.
    run_dir: Path = field(default_factory=lambda: Path(os.environ.get("GEOAPP_RUN_DIR") or VAR_DIR / "run"))

    # notifications (geoapp/domain/notifications.py): e-mailed through this SMTP server when SMTP_HOST is
    # set (none: the in-app inbox only); `geoapp notify run`, and `geoapp serve` every NOTIFY_INTERVAL_S
    # seconds (0: never), sweep overdue reports and send the outbox.
    smtp_host: str = field(default_factory=lambda: os.environ.get("SMTP_HOST", ""))
    smtp_port: int = field(default_factory=lambda: int(_float("SMTP_PORT", 25)))
    smtp_from: str = field(default_factory=lambda: os.environ.get("SMTP_FROM", ""))
    smtp_user: str = field(default_factory=lambda: os.environ.get("SMTP_USER", ""))
    smtp_password: str = field(default_factory=lambda: os.environ.get("SMTP_PASSWORD", ""))
    smtp_starttls: bool = field(default_factory=lambda: (os.environ.get("SMTP_STARTTLS") or "0").strip().lower()
                                in ("1", "true", "yes", "on"))
    notify_interval_s: float = field(default_factory=lambda: _float("NOTIFY_INTERVAL_S", 300.0))

    def __post_init__(self) -> None:
        # a malformed OFFICE_HOURS stops the app at startup, not at the first dispatch
        from .domain.working_time import OfficeHours
        OfficeHours.from_settings(self)
        if self.log_format not in ("text", "json"):  # a typo must not silently change the auditor's format
            raise ValueError(f"GEOAPP_LOG_FORMAT must be text or json, not {self.log_format!r}")

    @property
    def request_body_max_bytes(self) -> int:
        """The largest request the app reads: a report with its most photos, each at the upload
        limit, plus the form fields."""
        from .domain.vocabulary import MAX_PHOTOS_PER_REPORT
        return MAX_PHOTOS_PER_REPORT * int(self.upload_max_mb * 1024 * 1024) + 64 * 1024

    def as_flask_config(self) -> dict:
        return {
            "SECRET_KEY": self.secret_key,
            # multipart overhead on top of the photo itself
            "MAX_CONTENT_LENGTH": self.request_body_max_bytes,
            "GEOAPP": self,
        }
