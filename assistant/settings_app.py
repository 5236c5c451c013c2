"""Settings sections of the running app: where its data and models live, the web app and API server, the CLI."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import ConfigDict, Field, SecretStr, field_validator

from assistant.settings_section import SettingsSection


class PathsSettings(SettingsSection):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, validate_default=True)

    data_dir: Path = Field(Path(".lorag"), description="Project data: store, adapters, datasets, reports.")
    model_cache: Path = Field(
        Path("~/.cache/lorag"), description="Pulled and converted model weights, shared by projects."
    )

    @field_validator("data_dir", "model_cache")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return Path(os.path.expanduser(str(v)))


class UISettings(SettingsSection):
    host: str = "127.0.0.1"
    port: int = Field(7860, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    max_upload_mb: float = Field(50.0, gt=0)
    generation_concurrency: int = Field(2, ge=1, description="answers generated at once (UI and API together)")
    generation_queue: int = Field(
        32, ge=0, description="requests waiting for a generation slot; more are refused (HTTP 429)"
    )
    generation_timeout_s: float = Field(
        120.0, gt=0, description="longest wait for a slot before a request is refused (HTTP 503)"
    )


class CliSettings(SettingsSection):
    keep_warm_s: float = Field(
        900.0,
        ge=0,
        description="`lorag ask` starts a background worker (API only, 127.0.0.1) that keeps the models loaded, so "
        "the next ask answers without loading them; it exits after this many seconds without a request "
        "(`lorag stop` ends it sooner). 0: never start one (each ask loads the models in its own process).",
    )
