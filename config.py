"""Configuration classes, read from the environment (see the README for every variable).

Nothing else in the code base reads os.environ: a setting lives here or nowhere.
"""

import os
import secrets
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent
INSTANCE_DIR = PROJECT_ROOT / "instance"


def _flag(name: str, default: str) -> bool:
    return os.environ.get(name, default).strip().lower() in {"1", "on", "true", "yes"}


def _instance_secret_key() -> str:
    """A random key made once per install and kept in instance/, so restarts keep sessions valid."""
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    key_file = INSTANCE_DIR / "secret_key"
    try:
        # O_EXCL: when several workers start at once, exactly one writes the key.
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return key_file.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        key = secrets.token_urlsafe(48)
        handle.write(key)
    return key


MAIL_DELIVERIES = ("smtp", "files")
LOWEST_CPU_PRIORITY = 19  # the largest nice value


def _scheduler_nice(value: str | int) -> int:
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or int(text) > LOWEST_CPU_PRIORITY:
        raise ValueError(
            f"SCHEDULER_NICE is a whole number from 0 to {LOWEST_CPU_PRIORITY}, not {value!r}"
        )
    return int(text)


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY") or None  # filled from instance/ in load_config()
    SQLALCHEMY_DATABASE_URI = os.environ.get(
        "DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'booking.db'}"
    )
    # No ping on every checkout (a round trip per request): a pooled connection is pinged
    # only after lying idle this long (booking/database); one broken by a restart while in
    # use fails its request with a 503 and the pool replaces every connection of its age.
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    DATABASE_PING_AFTER_IDLE_SECONDS = 30.0

    SMTP_HOST = os.environ.get("SMTP_HOST", "localhost")
    SMTP_PORT = int(os.environ.get("SMTP_PORT", "25"))
    SMTP_USERNAME = os.environ.get("SMTP_USERNAME")
    SMTP_PASSWORD = os.environ.get("SMTP_PASSWORD")
    SMTP_STARTTLS = _flag("SMTP_STARTTLS", "false")
    MAIL_FROM = os.environ.get("MAIL_FROM")  # default: the clinic's email from the clinic file
    SMTP_TIMEOUT_SECONDS = 30
    # Where mail goes: "smtp", to the server above; or "files", one .eml per message in
    # MAIL_OUTBOX_FOLDER, listed in the back office for admins (development without a mail
    # server: `make run` picks it when SMTP_HOST is unset).
    MAIL_DELIVERY = os.environ.get("MAIL_DELIVERY", "smtp").strip().lower()
    MAIL_OUTBOX_FOLDER = os.environ.get("MAIL_OUTBOX_FOLDER") or str(INSTANCE_DIR / "outbox")
    # The dispatcher claims this many due notifications at a time, for this long each
    # (a claim left by a crashed dispatcher is taken over when it runs out), and gives up on
    # one after this many failed tries, waiting 2, 4, 8, 16 minutes between them.
    NOTIFICATION_BATCH_SIZE = int(os.environ.get("NOTIFICATION_BATCH_SIZE", "50"))
    NOTIFICATION_LEASE_SECONDS = int(os.environ.get("NOTIFICATION_LEASE_SECONDS", "120"))
    NOTIFICATION_MAX_ATTEMPTS = 5

    BOOKING_SCHEDULER = _flag("BOOKING_SCHEDULER", "off")
    PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/")

    RATELIMIT_ENABLED = _flag("RATE_LIMITS", "on")
    RATELIMIT_STORAGE_URI = os.environ.get("RATE_LIMIT_STORAGE_URI", "memory://")
    RATELIMIT_HEADERS_ENABLED = True
    # Per client (remote address). Booking is the action worth protecting from floods.
    RATE_LIMIT_BOOKING = "20 per minute;200 per day"
    RATE_LIMIT_MANAGE = "30 per minute"
    RATE_LIMIT_READ = "300 per minute"

    # A JSON body is a few hundred bytes; anything near this is not a booking.
    MAX_CONTENT_LENGTH = 64 * 1024

    # Availability queries cover at most this many days (CONTRACT: 62).
    AVAILABILITY_MAX_DAYS = 62
    # A manage link keeps working until this long after the visit ends.
    MANAGE_LINK_GRACE_DAYS = 30
    # A stored Idempotency-Key answer is replayed for this long.
    IDEMPOTENCY_KEY_TTL_HOURS = 24

    TESTING = False

    # The waitlist: a freed time is offered to this many waiting entries at once (oldest
    # first); each may claim it for this long from when its mail is sent (never later than
    # the service's notice), after which it passes to the next ones. The scheduler looks for
    # lapsed offers this often.
    WAITLIST_OFFERS_AT_ONCE = int(os.environ.get("WAITLIST_OFFERS_AT_ONCE", "3"))
    WAITLIST_CLAIM_MINUTES = int(os.environ.get("WAITLIST_CLAIM_MINUTES", "120"))
    WAITLIST_EXPIRY_SECONDS = float(os.environ.get("WAITLIST_EXPIRY_SECONDS", "60"))

    # Notifications: how often the scheduler wakes the dispatcher (and how late a wake-up may
    # still run after a stall), and a folder whose mail templates replace the built-in ones
    # of templates/mail/ with the same name (unset: the built-in ones only).
    NOTIFICATION_DISPATCH_SECONDS = float(os.environ.get("NOTIFICATION_DISPATCH_SECONDS", "15"))
    SCHEDULER_MISFIRE_GRACE_SECONDS = 60
    # How far `flask scheduler run` yields the CPU to the web on its host (a nice value, 0-19;
    # 0: as much as a web worker). Mail sent a few seconds later is nothing to a patient, a
    # page kept waiting is (docs/notifications.md).
    SCHEDULER_NICE = os.environ.get("SCHEDULER_NICE", "10")
    MAIL_TEMPLATES_FOLDER = os.environ.get("MAIL_TEMPLATES_FOLDER") or None

    # The back office (/desk): staff sessions. The cookie is HttpOnly (Flask's default),
    # SameSite=Lax, and Secure when the site is served over HTTPS.
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = PUBLIC_BASE_URL.startswith("https://")
    PERMANENT_SESSION_LIFETIME = 12 * 60 * 60  # seconds: a working day
    # Per client: enough for typing errors, not for guessing passwords.
    RATE_LIMIT_LOGIN = "10 per minute;100 per day"
    # `flask users create` and the back office refuse shorter staff passwords, and ones that
    # zxcvbn scores below this (0-4; 4: over 10^10 guesses, counting common passwords and words
    # from the login's email, the therapist's and the clinic's names).
    STAFF_PASSWORD_MIN_LENGTH = 12
    STAFF_PASSWORD_MIN_STRENGTH = 4

    # Calendar feeds (docs/calendar-feeds.md): visits from this many days back on; a cancelled
    # visit stays in (as STATUS:CANCELLED) until this many days after it was cancelled.
    FEED_PAST_DAYS = 30
    FEED_CANCELLED_DAYS = 30
    # Therapists' external busy calendars: refreshed this often by the scheduler, fetched
    # with this timeout and size limit, expanded this far ahead. Addresses on loopback or
    # private networks are refused (SSRF) unless this is on.
    EXTERNAL_CALENDAR_REFRESH_SECONDS = float(
        os.environ.get("EXTERNAL_CALENDAR_REFRESH_SECONDS", str(15 * 60))
    )
    EXTERNAL_CALENDAR_TIMEOUT_SECONDS = 10
    EXTERNAL_CALENDAR_MAX_BYTES = 5 * 1024 * 1024
    EXTERNAL_CALENDAR_HORIZON_DAYS = 400
    EXTERNAL_CALENDAR_MAX_EVENTS = 20_000  # busy spans in the horizon; a flood is refused
    # Reading a calendar costs what the horizon holds, not its rules' history (a series every
    # minute since 1900 is brought up to today first), within these bounds, past which the
    # calendar is refused with a message saying which: events in the file (parsing is not
    # interruptible, so they are counted first); occurrences of one repeating event in the
    # horizon; combinations a rule's BY-parts may list (BYHOUR x BYMINUTE x ...);
    # occurrences of a COUNT rule counted before the horizon; and seconds, in a back-office
    # request (add, upload) and in the scheduler's refresh.
    EXTERNAL_CALENDAR_MAX_EVENTS_IN_FILE = 20_000  # VEVENTs, counted before parsing
    EXTERNAL_CALENDAR_MAX_EVENTS_PER_SERIES = 5_000
    EXTERNAL_CALENDAR_MAX_RULE_COMBINATIONS = 1_000
    EXTERNAL_CALENDAR_MAX_SKIPPED_OCCURRENCES = 100_000
    EXTERNAL_CALENDAR_READ_SECONDS_IN_REQUEST = 5.0
    EXTERNAL_CALENDAR_READ_SECONDS_IN_REFRESH = 20.0
    EXTERNAL_CALENDAR_ALLOW_PRIVATE_ADDRESSES = _flag(
        "EXTERNAL_CALENDAR_ALLOW_PRIVATE_ADDRESSES", "off"
    )

    # Operations (docs/deploy.md). How many reverse proxies stand in front of the app and set
    # X-Forwarded-For/-Proto/-Host (nginx: 1); 0 trusts none of those headers.
    TRUSTED_PROXIES = int(os.environ.get("TRUSTED_PROXIES", "0"))
    # /healthz calls the dispatcher "late" when none has run for this long.
    DISPATCHER_LATE_SECONDS = 60
    # `flask backup` on PostgreSQL runs this pg_dump (its version at least the server's).
    PG_DUMP = os.environ.get("PG_DUMP", "pg_dump")
    # When the shared rate-limit store (redis) cannot be reached, each process counts on its
    # own until it is back: booking keeps working, still limited, rather than failing.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_SWALLOW_ERRORS = True


class TestConfig(Config):
    TESTING = True
    SECRET_KEY = "test-secret-key-not-for-production"
    RATELIMIT_ENABLED = False
    WTF_CSRF_ENABLED = False
    # Tests send what is due themselves; a scheduler only where a test starts one.
    BOOKING_SCHEDULER = False


def load_config(config: type[Config] | dict | None = None) -> dict:
    """The settings for one app: a Config class (default Config), plus overrides."""
    base = config if isinstance(config, type) else Config
    settings = {key: getattr(base, key) for key in dir(base) if key.isupper()}
    if isinstance(config, dict):
        settings.update(config)
    delivery = settings["MAIL_DELIVERY"]
    if delivery not in MAIL_DELIVERIES:
        raise ValueError(f"MAIL_DELIVERY is one of {', '.join(MAIL_DELIVERIES)}, not {delivery!r}")
    settings["SCHEDULER_NICE"] = _scheduler_nice(settings["SCHEDULER_NICE"])
    if not settings.get("SECRET_KEY"):
        settings["SECRET_KEY"] = _instance_secret_key()
    return settings
