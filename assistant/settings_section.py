"""The base of every settings section: an unknown key is an error, and so is an invalid value assigned later."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class SettingsSection(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)
