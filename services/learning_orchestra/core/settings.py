"""Settings read from the environment (`LO_*` variables), or from files they name.

Every setting `LO_X` may instead be given as `LO_X_FILE`, the path of a file holding its
value: how Docker (and Kubernetes) hand secrets to a service, as files under /run/secrets
rather than in its environment, where other processes of its user could read them
(/proc/<pid>/environ) and `docker inspect` shows them. `secret_value` is that one rule, used
by `Settings` (its `FileSettingsSource`) and by the artifact key's reader (`LO_SECRET_KEY`,
core/artifacts.py); `secret_files` lists the files so the sandbox hides them from user code.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

BASE_PATH = "/api/learningOrchestra/v1"
PREFIX = "LO_"
#: `LO_X_FILE`: the path of a file holding the value of `LO_X`.
FILE_SUFFIX = "_FILE"
#: The artifact key (core/artifacts.py): not a field of Settings, since a job's worker reads
#: it too, but read by the same rule.
SECRET_KEY = "LO_SECRET_KEY"


class SettingError(ValueError):
    """A setting that cannot be read; the message names the variables and what to do."""


def secret_value(name: str) -> str | None:
    """The value of variable `name`, or else the content of the file `{name}_FILE` names (its
    trailing newline and spaces stripped); None when neither is set.

    Both set is an error rather than a precedence rule: one of them is a leftover, and which
    one the operator meant cannot be guessed. So is an empty or unreadable file: a missing
    token or key must stop the server, not silently turn authentication off or make a new key.
    """
    file_variable = name + FILE_SUFFIX
    path = os.environ.get(file_variable)
    if path is None:
        return os.environ.get(name)
    if name in os.environ:
        raise SettingError(
            f"{name} and {file_variable} are both set: keep one ({file_variable} names a file "
            f"holding {name}'s value, e.g. a Docker secret)"
        )
    if not path.strip():
        raise SettingError(f"{file_variable} is empty: give the path of a file holding {name}")
    try:
        value = Path(path).read_text(encoding="utf-8").rstrip()
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise SettingError(
            f"{file_variable}={path}: the file cannot be read ({type(exc).__name__}: {reason}); "
            "give a readable file holding the value, or unset the variable"
        ) from None
    if not value:
        raise SettingError(f"{file_variable}={path}: the file is empty; it must hold {name}")
    return value


def secret_files() -> list[Path]:
    """The files `LO_*_FILE` variables of this process's environment name: settings and
    secrets the sandbox hides from user code (sandbox/__init__.py, `Sandbox.config`)."""
    return sorted(
        Path(path)
        for variable, path in os.environ.items()
        if variable.startswith(PREFIX) and variable.endswith(FILE_SUFFIX) and path.strip()
    )


class FileSettingsSource(PydanticBaseSettingsSource):
    """Each field from the file `LO_<FIELD>_FILE` names, where that variable is set
    (`secret_value`: both it and `LO_<FIELD>` set, or an unreadable file, is an error).

    Only the field's own name gets a `_FILE` twin, not its aliases (LO_CONCURRENCY)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        variable = f"{PREFIX}{field_name.upper()}"
        if variable + FILE_SUFFIX not in os.environ:
            return None, field_name, False
        return secret_value(variable), field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, field_name)
            if value is not None:
                values[key] = value
        return values


class Settings(BaseSettings):
    """Every knob of a service. Each field is read from `LO_<FIELD>` (upper case), or from
    the file `LO_<FIELD>_FILE` names."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", populate_by_name=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """pydantic-settings' sources, with `LO_<FIELD>_FILE` after the environment (a field
        cannot come from both: `secret_value` refuses that)."""
        files = FileSettingsSource(settings_cls)
        return init_settings, env_settings, files, dotenv_settings, file_secret_settings

    data_dir: Path = Field(Path("./data"), description="artifact volume and embedded store")
    store_url: str | None = Field(
        None, description="mongodb://... or sqlite:///path; default sqlite in data_dir"
    )
    job_timeout: float = Field(3600.0, gt=0, description="wall-clock seconds a job may run")
    job_memory_mb: int = Field(4096, gt=0, description="resident memory a job may use")
    job_cpu_seconds: float | None = Field(
        None,
        gt=0,
        description="CPU seconds a job's sandboxed code may use, all its threads together; "
        "default LO_JOB_TIMEOUT times the cores (training is multi-threaded)",
    )
    max_jobs: int = Field(
        default_factory=lambda: max(2, os.cpu_count() or 2),
        ge=1,
        validation_alias=AliasChoices("max_jobs", "LO_MAX_JOBS", "LO_CONCURRENCY"),
        description="jobs the server runs at once, every step type together (default: the "
        "cores, at least 2); a step waiting for a slot stays pending. LO_CONCURRENCY, its "
        "former name, is read too",
    )
    lease_seconds: float = Field(30.0, gt=0, description="how long a job lease lasts unrenewed")
    max_upload_mb: int = Field(2048, gt=0, description="largest dataset accepted")
    max_log_mb: int = Field(
        64, gt=0, description="captured output kept per step: past it, the oldest half goes"
    )
    scan_concurrency: int = Field(
        2, ge=1, le=64, description="table reads (pages, queries, downloads) run at once"
    )
    scan_timeout: float = Field(
        30.0, gt=0, description="seconds a table read may take (waiting for its turn included)"
    )
    api_tokens: str = Field("", description="comma-separated bearer tokens; empty: no auth")
    sandbox_user: str = Field(
        "nobody", description="user that runs user code when the server runs as root"
    )
    # The sandbox of user code (sandbox/, docs/security.md)
    sandbox_network: Literal["none", "host"] = Field(
        "none",
        description="'none': user code reaches no network but its own loopback (or only "
        "LO_SANDBOX_TCP_PORTS where no network namespace can be made); 'host': no restriction",
    )
    sandbox_tcp_ports: str = Field(
        "",
        description="comma-separated TCP ports user code may connect to where the network is "
        "confined with Landlock (no network namespace possible)",
        pattern=r"^\s*(\d{1,5}\s*(,\s*\d{1,5}\s*)*)?$",
    )
    allow_unconfined: bool = Field(
        False,
        description="run user code even where its network or files cannot be confined",
    )
    sandbox_pool: int = Field(
        1,
        ge=0,
        le=16,
        description="sandboxed interpreters kept started ahead of need per sandbox family "
        "(python, scikitlearn, ...); 0: a fresh one per run (sandbox/pool.py)",
    )
    # Spark (docs/spark.md): where a run's Spark driver sends its work
    spark_master: str = Field(
        "",
        description="a standalone master (spark://host:7077) for builder/sparkml and for "
        "tables above LO_SPARK_MIN_ROWS; empty: builder/sparkml runs Spark in local mode "
        "inside its sandbox, tables are read with pyarrow",
        pattern=r"^(spark://[A-Za-z0-9.\-]+(:\d{1,5})?(,[A-Za-z0-9.\-]+(:\d{1,5})?)*)?$",
    )
    spark_min_rows: int = Field(
        1_000_000,
        ge=0,
        description="with LO_SPARK_MASTER set, projection, dataType, histogram and summary "
        "run on Spark for input tables of more rows than this",
    )
    spark_driver_memory_mb: int = Field(
        1024, ge=256, description="heap of the Spark driver a run starts (its JVM)"
    )
    spark_executor_memory_mb: int = Field(
        1024, ge=256, description="memory of each executor on LO_SPARK_MASTER's workers"
    )
    # HTTP edges (core/edge.py, core/urls.py; docs/security.md "Requests from browsers" and
    # "Dataset URLs")
    cors_origins: str = Field(
        "", description="comma-separated origins (https://host:port) browsers may call from"
    )
    allowed_hosts: str = Field(
        "",
        description="comma-separated extra Host names accepted on a loopback connection "
        "(e.g. behind a local reverse proxy); '*' accepts any",
    )
    allow_private_urls: bool = Field(
        False, description="dataset URLs may reach loopback, private and link-local addresses"
    )
    allowed_url_hosts: str = Field(
        "", description="comma-separated host or host:port that dataset URLs may reach anyway"
    )

    def cpu_seconds(self) -> int:
        """The CPU-time limit of a job's sandboxed code (LO_JOB_CPU_SECONDS)."""
        seconds = self.job_cpu_seconds or self.job_timeout * (os.cpu_count() or 1)
        return max(1, round(seconds))

    @property
    def resolved_store_url(self) -> str:
        return self.store_url or f"sqlite://{(self.data_dir / 'store.sqlite3').resolve()}"

    @property
    def sandbox_ports(self) -> list[int]:
        """LO_SANDBOX_TCP_PORTS as numbers (each checked to be a port)."""
        ports = sorted({int(p) for p in self.sandbox_tcp_ports.split(",") if p.strip()})
        if any(not 0 < p < 65536 for p in ports):
            raise ValueError(f"LO_SANDBOX_TCP_PORTS: {ports} holds a number that is not a port")
        return ports

    @property
    def tokens(self) -> frozenset[str]:
        return frozenset(t.strip() for t in self.api_tokens.split(",") if t.strip())

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

    @property
    def allowed_host_list(self) -> list[str]:
        return [h.strip().lower() for h in self.allowed_hosts.split(",") if h.strip()]

    @property
    def allowed_url_host_list(self) -> list[str]:
        return [h.strip().lower() for h in self.allowed_url_hosts.split(",") if h.strip()]


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests build their own `Settings` instead)."""
    return Settings()
