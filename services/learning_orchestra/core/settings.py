"""Settings read from the environment (`LO_*` variables)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

BASE_PATH = "/api/learningOrchestra/v1"


class Settings(BaseSettings):
    """Every knob of a service. Each field is read from `LO_<FIELD>` (upper case)."""

    model_config = SettingsConfigDict(env_prefix="LO_", extra="ignore", populate_by_name=True)

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
