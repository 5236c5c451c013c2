"""Settings sections of evaluation: the judge of Ragas' LLM metrics, and what a comparison needs to count."""

from __future__ import annotations

from pydantic import Field, SecretStr

from assistant.settings_section import SettingsSection


class JudgeSettings(SettingsSection):
    model: str | None = Field(
        None,
        description="Judge for Ragas' LLM metrics: a local model (built-in name, HF id, folder), or with base_url "
        "the served model's name. Unset: judge metrics are skipped.",
    )
    base_url: str | None = Field(
        None,
        description="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1. Unset while models.endpoint is "
        "set: the "
        "judge is `model` on that engine.",
    )
    api_key: SecretStr | None = Field(
        None, description="Bearer token for base_url (default: models.endpoint.api_key, then $OPENAI_API_KEY)."
    )
    max_new_tokens: int = Field(512, ge=16, le=8192, description="Token budget of one judge reply.")
    concurrency: int = Field(4, ge=1, le=64, description="Parallel requests to base_url.")


class EvalSettings(SettingsSection):
    min_questions: int = Field(
        20,
        ge=1,
        description="Paired questions a comparison needs before its 95% CI counts: with fewer, a report's verdict "
        "says it is inconclusive and `lorag adapters promote` refuses (unless forced). A bootstrap CI over a handful "
        "of questions is too narrow to mean anything (over 1 it is a single point).",
    )
