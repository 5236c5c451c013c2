"""`lorag config --check`: is each configured engine reachable and serving what the settings name?

One GET /models per endpoint: the generation engine (models.endpoint) and the judge's endpoint when it
is another one (judge.base_url). Each promoted adapter the engine does not serve is an error with the
command that loads it (for llama.cpp's server, its adapters come from GET /lora-adapters).
"""

from __future__ import annotations

from typing import Any

from assistant.errors import EngineError


def check_engines(settings: Any) -> list[dict[str, Any]]:
    """One result per endpoint: {name, url, ok, message}. Nothing configured: one ok line saying so."""
    from assistant.engines.client import EngineClient
    from assistant.engines.openai_generator import OpenAIGenerator

    results = []
    ep = settings.models.endpoint
    if ep.base_url:
        gen = OpenAIGenerator(settings.models)
        try:
            h = gen.health()
        except EngineError as e:
            results.append(_failed("engine", ep.base_url, e))
        else:
            if h.model_listed:
                msg = f"{h.url} serves {ep.model}; adapters: {', '.join(h.adapters) or 'none'}"
            else:
                msg = (
                    f"{h.url} answers but does not list models.endpoint.model {ep.model!r} (it lists: "
                    f"{', '.join(h.models) or 'nothing'}); set models.endpoint.model to the served name"
                )
            results.append(
                {"name": "engine", "url": ep.base_url, "ok": h.model_listed, "message": msg, "models": h.models}
            )
            results += _promoted_not_served(settings, gen, h.adapters)
            if settings.judge.model and not settings.judge.base_url:  # the judge is a model on this engine
                ok = settings.judge.model in h.models
                results.append(
                    {
                        "name": "judge",
                        "url": ep.base_url,
                        "ok": ok,
                        "message": (
                            f"judge.model {settings.judge.model} is served by the engine"
                            if ok
                            else f"judge.model {settings.judge.model!r} is not listed by the engine at {h.url} "
                            "(judge.base_url is "
                            "unset, so the judge runs there)"
                        ),
                    }
                )
    else:
        results.append(
            {
                "name": "engine",
                "url": None,
                "ok": True,
                "message": "none configured (models.endpoint.base_url): the local generator "
                f"{settings.models.generator} answers",
            }
        )
    judge = settings.judge
    if judge.base_url and judge.base_url.rstrip("/") != (ep.base_url or ""):
        client = EngineClient(
            judge.base_url,
            api_key=judge.api_key,
            connect_timeout_s=ep.connect_timeout_s,
            read_timeout_s=ep.read_timeout_s,
            max_retries=ep.max_retries,
            retry_backoff_s=ep.retry_backoff_s,
            label="judge endpoint",
            setting="judge",
        )
        try:
            names = [e["id"] for e in client.models()]
        except EngineError as e:
            results.append(_failed("judge", judge.base_url, e))
        else:
            listed = not judge.model or judge.model in names
            msg = (
                f"{client.url('models')} serves {judge.model or 'models (set judge.model to use one)'}"
                if listed
                else f"{client.url('models')} answers but does not list judge.model {judge.model!r} (it lists: "
                f"{', '.join(names) or 'nothing'})"
            )
            results.append({"name": "judge", "url": judge.base_url, "ok": listed, "message": msg, "models": names})
        finally:
            client.close()
    return results


def _failed(name: str, url: str, e: EngineError) -> dict[str, Any]:
    return {"name": name, "url": url, "ok": False, "message": str(e), "status": e.status}


def _promoted_not_served(settings: Any, gen: Any, served: list[str]) -> list[dict[str, Any]]:
    """One error per promoted adapter the engine does not serve (routing would pick it), with how to load it."""
    from pathlib import Path

    from assistant.registry import Registry
    from finetune.serve_config import engine_kind, load_hint

    registry = Registry(settings.adapters_dir)
    out = []
    for card in sorted(registry.promoted().values(), key=lambda c: c.name):
        if card.name in served:
            continue
        kind = engine_kind(settings.models.endpoint.adapter_api, gen.client.base_url, gen.listed())
        rec = registry.latest_export(card, "gguf")
        hint = load_hint(
            kind,
            card.name,
            folder=registry.folder(card),
            gguf=Path(rec["file"]) if rec else None,
            base_url=gen.client.base_url,
        )
        out.append(
            {
                "name": "adapter",
                "url": settings.models.endpoint.base_url,
                "ok": False,
                "message": f"promoted adapter {card.name} is not served by the engine; {hint}",
            }
        )
    return out
