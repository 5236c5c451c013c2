"""One typed settings tree, loaded once from `lorag.yaml` (optional) + `LORAG_*` environment: the root Settings,
its loader, and the messages that list every problem in it. The sections live in settings_pipeline, settings_eval
and settings_app.

Nested fields use `__` in the environment: `LORAG_MODELS__DEVICE=cpu`, `LORAG_QDRANT__URL=...`.
Precedence: constructor arguments > environment > YAML file > defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, InitSettingsSource, SettingsConfigDict

from assistant.errors import ConfigError
from assistant.settings_app import CliSettings, PathsSettings, UISettings
from assistant.settings_eval import EvalSettings, JudgeSettings
from assistant.settings_pipeline import (
    IngestSettings,
    ModelSettings,
    QdrantSettings,
    RetrievalSettings,
    RoutingSettings,
)

CONFIG_FILE_NAME = "lorag.yaml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LORAG_", env_nested_delimiter="__", extra="forbid", validate_assignment=True
    )

    paths: PathsSettings = Field(default_factory=PathsSettings)
    models: ModelSettings = Field(default_factory=ModelSettings)
    qdrant: QdrantSettings = Field(default_factory=QdrantSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    judge: JudgeSettings = Field(default_factory=JudgeSettings)
    eval: EvalSettings = Field(default_factory=EvalSettings)
    ui: UISettings = Field(default_factory=UISettings)
    cli: CliSettings = Field(default_factory=CliSettings)

    # Derived locations, so nobody builds paths by hand.
    @property
    def store_path(self) -> Path:
        return self.qdrant.path or self.paths.data_dir / "qdrant"

    @property
    def adapters_dir(self) -> Path:
        return self.paths.data_dir / "adapters"

    @property
    def datasets_dir(self) -> Path:
        return self.paths.data_dir / "datasets"

    @property
    def reports_dir(self) -> Path:
        return self.paths.data_dir / "reports"

    @property
    def recipes_dir(self) -> Path:
        """The user's training recipes, <domain>.yaml: read before the packaged ones."""
        return self.paths.data_dir / "recipes"

    def public_dict(self) -> dict[str, Any]:
        """Settings as plain data with secrets masked (for `lorag config`)."""
        return self.model_dump(mode="json")


def find_config_file(explicit: Path | None = None, environ: dict[str, str] | None = None) -> Path | None:
    environ = os.environ if environ is None else environ
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"{explicit}: settings file not found")
        return explicit
    if environ.get("LORAG_CONFIG"):
        p = Path(environ["LORAG_CONFIG"])
        if not p.is_file():
            raise ConfigError(f"{p}: settings file named by LORAG_CONFIG not found")
        return p
    p = Path.cwd() / CONFIG_FILE_NAME
    return p if p.is_file() else None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections (paths, models, ...)")
    return data


def format_validation_error(
    err: ValidationError, source: str, more: list[str] | None = None, environ: Any = None
) -> str:
    """One message listing every problem: the validation errors, then `more` (lines already formatted). A value that
    came from a variable of `environ` (LORAG_*) is named by it as well as by its setting."""
    more = more or []
    lines = [f"{source}: {err.error_count() + len(more)} problem(s) in the settings:"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        var = _env_name(e["loc"], environ or {})
        if var:
            loc += f" (from {var})"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            near = _close_setting(e["loc"])
            msg = "unknown setting" + (f" (did you mean {near}?)" if near else "")
        got = e.get("input")
        shown = "" if e["type"] in ("extra_forbidden", "missing") or isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  - {loc}: {msg}{shown}")
    return "\n".join(lines + more)


def _env_name(loc: tuple, environ: Any) -> str | None:
    """The LORAG_* variable that set the value at `loc` (the environment wins over the file): the one named for its
    setting, or one for a section above it whose JSON holds it (LORAG_RETRIEVAL='{"top_k": ...}'). Names match in
    any case, as pydantic-settings reads them."""
    import json

    loc = loc[: _setting_length(loc)]
    names = {name.upper(): name for name in environ if name.upper().startswith("LORAG_")}
    for end in range(len(loc), 0, -1):
        name = names.get("LORAG_" + "__".join(str(p) for p in loc[:end]).upper())
        if name is None:
            continue
        if end == len(loc):
            return name
        try:
            node = json.loads(environ[name])
        except ValueError:
            return None
        for part in loc[end:]:  # the section's JSON holds the value, or the file gave it
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return None
        return name
    return None


def _setting_length(loc: tuple) -> int:
    """How many parts of an error's `loc` name sections and then the setting itself; the parts after them lie within
    the setting's value, which a single variable gives whole: a union's member (`int`, `list[str]` for `int | str |
    list[str]`), an item's index."""
    model: Any = Settings
    for i, part in enumerate(loc):
        field_info = getattr(model, "model_fields", {}).get(part) if isinstance(part, str) else None
        model = getattr(field_info, "annotation", None)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return i + 1
    return len(loc)


def _close_setting(loc: tuple) -> str | None:
    """The known setting nearest a misspelt one at `loc` (section path + name), if one is close."""
    import difflib

    model: Any = Settings
    for part in loc[:-1]:
        field_info = getattr(model, "model_fields", {}).get(part)
        model = getattr(field_info, "annotation", None)
        if model is None:
            return None
    names = list(getattr(model, "model_fields", {}))
    near = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.75)
    if near:
        return ".".join([*map(str, loc[:-1]), near[0]])
    # a setting written in the wrong section, or at the top level ("data_dir" for paths.data_dir)
    elsewhere = [
        f"{section}.{loc[-1]}"
        for section, info in Settings.model_fields.items()
        if loc[-1] in getattr(info.annotation, "model_fields", {}) and tuple(loc[:-1]) != (section,)
    ]
    return " or ".join(elsewhere) or None


def load_settings(config_file: Path | None = None, *, use_file: bool = True) -> Settings:
    """Load settings once: defaults < lorag.yaml < LORAG_* environment. Raises ConfigError listing every problem."""
    path = find_config_file(config_file) if use_file else None
    file_values = _read_yaml(path) if path else {}
    source = str(path) if path else "settings"

    class _FileBackedSettings(Settings):
        @classmethod
        def settings_customise_sources(
            cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
        ):  # noqa: ANN001
            return (init_settings, env_settings, InitSettingsSource(settings_cls, init_kwargs=file_values))

    problems = _unknown_env_names(os.environ)
    try:
        settings = _FileBackedSettings()
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, f"{source} + LORAG_* environment", problems, os.environ)) from None
    if problems:
        raise ConfigError("\n".join([f"environment: {len(problems)} problem(s) in the settings:", *problems]))
    return settings


def _unknown_env_names(environ: dict[str, str] | os._Environ) -> list[str]:
    """pydantic-settings ignores LORAG_* names that match no section; a typo should not pass silently."""
    sections = {name.upper() for name in Settings.model_fields}
    out = []
    for name in environ:
        if not name.startswith("LORAG_") or name in ("LORAG_CONFIG",):
            continue
        section = name[len("LORAG_") :].split("__", 1)[0]
        if section not in sections:
            out.append(f"  - {name}: unknown setting (sections: {', '.join(sorted(s.lower() for s in sections))})")
    return out
