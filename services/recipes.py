"""Training recipes and the gate metric: where a domain's recipe comes from, and which metric judges an adapter.

A domain's recipe is `<data_dir>/recipes/<domain>.yaml` when the user wrote one, else the packaged
`finetune/configs/<domain>.yaml`, else the defaults; `--config FILE` names one outright. An adapter is
judged on the gate metric of the recipe it was trained with (its card), not on today's recipe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assistant.errors import ConfigError
from assistant.names import check_domain

DEFAULT_GATE_METRIC = "answer_f1"


def recipe_file(settings: Any, domain: str) -> Path | None:
    """The user's recipe for the domain in the data folder, or None (the packaged one or the defaults apply)."""
    f = Path(settings.recipes_dir) / f"{check_domain(domain)}.yaml"
    return f if f.is_file() else None


def load_recipe(settings: Any, domain: str, config: Path | None = None, overrides: dict[str, Any] | None = None) -> Any:
    """The domain's recipe (`config`, else the data folder's, else the package's, else defaults), validated whole."""
    from finetune.config import load_train_config

    return load_train_config(config or recipe_file(settings, domain), domain=domain, overrides=overrides)


def domain_gate_metric(settings: Any, domain: str, warn: Any = None) -> str:
    """The gate metric of the domain's current recipe; a recipe that does not load falls back to answer F1
    (`warn(message)` says so)."""
    try:
        return load_recipe(settings, domain).gate_metric
    except ConfigError as e:
        if warn is not None:
            warn(f"{e}; using {DEFAULT_GATE_METRIC} as the gate metric")
        return DEFAULT_GATE_METRIC


def card_gate_metric(settings: Any, card: Any) -> str:
    """The metric an adapter is judged on: the one of the recipe it was trained with, as its card records it;
    a card without one (imported without its run's result.json) falls back to the domain's recipe."""
    metric = (card.hyperparameters or {}).get("gate_metric")
    return metric if isinstance(metric, str) and metric else domain_gate_metric(settings, card.domain)
