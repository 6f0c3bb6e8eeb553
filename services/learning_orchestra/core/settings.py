"""Settings read from the environment (`LO_*` variables)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

BASE_PATH = "/api/learningOrchestra/v1"


class Settings(BaseSettings):
    """Every knob of a service. Each field is read from `LO_<FIELD>` (upper case)."""

    model_config = SettingsConfigDict(env_prefix="LO_", extra="ignore")

    data_dir: Path = Field(Path("./data"), description="artifact volume and embedded store")
    store_url: str | None = Field(
        None, description="mongodb://... or sqlite:///path; default sqlite in data_dir"
    )
    job_timeout: float = Field(3600.0, gt=0, description="wall-clock seconds a job may run")
    job_memory_mb: int = Field(4096, gt=0, description="resident memory a job may use")
    concurrency: int = Field(2, ge=1, description="jobs a service runs at once")
    lease_seconds: float = Field(30.0, gt=0, description="how long a job lease lasts unrenewed")
    max_upload_mb: int = Field(2048, gt=0, description="largest dataset accepted")
    api_tokens: str = Field("", description="comma-separated bearer tokens; empty: no auth")
    sandbox_user: str = Field(
        "nobody", description="user that runs user code when the server runs as root"
    )

    @property
    def resolved_store_url(self) -> str:
        return self.store_url or f"sqlite://{(self.data_dir / 'store.sqlite3').resolve()}"

    @property
    def tokens(self) -> frozenset[str]:
        return frozenset(t.strip() for t in self.api_tokens.split(",") if t.strip())


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests build their own `Settings` instead)."""
    return Settings()
