"""Configuration from environment variables (and a `.env` file), with embedded defaults.

With nothing set the server runs on a local SQLite file, an in-process event bus and the
built-in MTA simulator, so it works on a fresh machine.
"""

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.enums import FeedbackMode
from server.bus import PREFIX_PATTERN

DEFAULT_SECRET = "change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = "sqlite://data/delivery.sqlite3"
    mta_url: str = "simulator://"
    feedback_secret: str = DEFAULT_SECRET
    feedback_mode: FeedbackMode = FeedbackMode.LEGACY
    stats_refresh_seconds: float = Field(3600.0, gt=0)
    public_url: str | None = None
    event_bus_url: str = "memory://"
    # Channel prefix on a shared Redis or PostgreSQL bus (docs/event-bus.md); unset: derived
    # from DATABASE_URL, so that only processes of one database hear each other.
    event_bus_prefix: str | None = Field(None, pattern=PREFIX_PATTERN)

    # Engine tuning (not part of the contract; documented in docs/configuration.md).
    engine_enabled: bool = True
    batch_size: int = Field(1000, ge=1, le=10_000)
    claim_lease_seconds: float = Field(60.0, gt=0)
    engine_tick_seconds: float = Field(0.25, gt=0)
    progress_interval_seconds: float = Field(0.25, ge=0)
    # Permanent MTA errors (credentials, sender, TLS, configuration) in a row before FAILED.
    max_relay_failures: int = Field(5, ge=1)
    # A transient MTA failure (down, busy, unreachable): wait this long, doubling each time
    # up to the cap, and try again, for as long as the validity period runs (docs/engine.md).
    relay_backoff_initial_seconds: float = Field(1.0, gt=0)
    relay_backoff_max_seconds: float = Field(30.0, gt=0)
    # While the MTA holds a batch, what it accepted is recorded at least this often: a worker
    # killed mid-batch relays again at most what it accepted since the last record.
    relay_record_interval_seconds: float = Field(0.1, gt=0)
    message_domain: str = "delivery.local"
    quarantine_threshold: int = Field(5, ge=1)
    quarantine_gap_hours: float = Field(24.0, ge=0)
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    # The CSV upload of profiles (docs/bulk.md): its own body limit (MAX_BODY_BYTES does not
    # apply to it), the longest record, and the rows written per transaction.
    profile_import_max_bytes: int = Field(256 * 1024 * 1024, ge=1024)
    profile_import_max_record_chars: int = Field(64 * 1024, ge=1024)
    profile_import_batch_rows: int = Field(5000, ge=1, le=50_000)

    # Mail (docs/smtp.md). The SMTP options themselves ride in MTA_URL's query string.
    mail_from: str = "Campaign <noreply@delivery.local>"
    # The product's retry plan for soft refusals (SMTP 4xx): five retries this far apart, ...
    retry_interval_seconds: float = Field(3600.0, gt=0)
    # ... then one every this many seconds until the validity period is over.
    retry_later_seconds: float = Field(86400.0, gt=0)

    # Bounces and feedback-loop reports by mail (docs/bounces.md): the domain of each message's
    # VERP envelope sender, and where the inbound SMTP listener listens (`host:port`).
    bounce_domain: str | None = Field(
        None, max_length=253, pattern=r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,63}$"
    )
    inbound_smtp: str | None = Field(None, pattern=r"^\[?[^\s\]]*\]?:\d{1,5}$")
    inbound_max_bytes: int = Field(1024 * 1024, ge=1024)  # a larger message gets 552

    # Tracking (docs/tracking.md): the key that signs tracking ids; FEEDBACK_SECRET when unset.
    tracking_secret: str | None = None
    tracking_flush_seconds: float = Field(0.2, gt=0)
    tracking_batch_size: int = Field(500, ge=1)

    # Provider webhooks (docs/feedback-formats.md); each is off until configured.
    sparkpost_webhook_auth: str | None = None  # "user:password" of the webhook's basic auth
    ses_topic_arns: str | None = None  # comma-separated SNS topics whose messages are taken
    sns_cert_url_pattern: str = r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[^?#]*\.pem$"
    sns_max_age_seconds: float = Field(3600.0, gt=0)

    # Hardening (docs/limits.md). PRODUCTION turns introspection, field suggestions and the
    # GraphiQL page off; the limits below hold in every mode.
    production: bool = False
    max_query_depth: int = Field(15, ge=1)
    max_query_aliases: int = Field(30, ge=1)
    max_query_tokens: int = Field(1000, ge=10)
    # Objects an operation may ask for, nested lists multiplied (graphql_schema/cost.py).
    max_query_cost: int = Field(20_000, ge=1)
    # Answers of queries kept until the database changes (graphql_schema/results.py); 0: off.
    result_cache_size: int = Field(256, ge=0)
    # ... and at most this many bytes of their JSON; an answer over a sixteenth is not kept.
    result_cache_max_bytes: int = Field(32 * 1024 * 1024, ge=0)
    # Browsers may open the WebSocket only from these origins (comma-separated, or "*");
    # a handshake without an Origin header (a non-browser client) is always allowed.
    allowed_origins: str | None = None
    ws_max_message_bytes: int = Field(64 * 1024, ge=1024)
    ws_max_subscriptions: int = Field(100, ge=1)
    # Open WebSockets per operator, and per client address; over either, close 4429.
    ws_max_sockets_per_operator: int = Field(20, ge=1)
    ws_max_sockets_per_client: int = Field(100, ge=1)
    # permessage-deflate on the WebSocket (`serve`): off, it saves about a fifth of the CPU of
    # each snapshot sent and 40 KiB per socket, for ~300 bytes of bandwidth per snapshot.
    ws_per_message_deflate: bool = False
    # The GIL switch interval `serve` sets (sys.setswitchinterval; Python's default is 5 ms).
    # SQLite's queries run in a thread of their own, which waits up to this long for the GIL
    # each time while the event loop is busy (a fan-out): shorter, they hold SQLite's one
    # connection for less, and a request waits for less (bench/RESULTS.md, finding 6).
    switch_interval_seconds: float = Field(0.001, gt=0, le=0.1)
    # A WebSocket that sends no `connection_init` within this many seconds is closed (4408).
    ws_init_timeout_seconds: float = Field(10.0, gt=0)
    # A valid bearer token's operator is remembered this long (0: read it on every request).
    token_cache_seconds: float = Field(5.0, ge=0)
    # Failed authentications per client address: over the limit within the window, 429.
    auth_failure_limit: int = Field(20, ge=1)
    auth_failure_window_seconds: float = Field(60.0, gt=0)

    # GraphiQL (docs/graphiql.md): where `npm ci --prefix web` put the browser assets;
    # unset means web/node_modules in the source tree.
    graphiql_assets_dir: str | None = None

    @property
    def tracking_key(self) -> str:
        return self.tracking_secret or self.feedback_secret

    @field_validator("feedback_mode", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value
