"""Choose the adapter for a question: explicit choice > the domain asked for > the routed domain.

Routing (`auto` without a domain) blends two signals per domain: a nearest-centroid classifier over
the query embedding (softmax of cosine to each domain's mean chunk vector) and the share of the top
retrieved passages that come from the domain. Below `routing.threshold` the base model answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from assistant.errors import LoragError
from assistant.settings_pipeline import RoutingSettings

AUTO, BASE_CHOICE = "auto", "base"


@dataclass
class Route:
    adapter: str | None  # None: the base model
    domain: str | None
    reason: str
    confidence: float = 1.0
    scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "adapter": self.adapter or "base",
            "domain": self.domain,
            "reason": self.reason,
            "confidence": round(self.confidence, 4),
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
        }


class Router:
    def __init__(
        self,
        settings: RoutingSettings,
        adapters_by_domain: dict[str, str],
        centroids: dict[str, np.ndarray] | None = None,
        *,
        temperature: float = 0.05,
        loaded: Callable[[], Iterable[str]] | None = None,
    ):
        self.settings = settings
        self.adapters_by_domain = dict(adapters_by_domain)
        self.loaded = loaded or (lambda: ())  # every attached adapter (an explicit choice may name a non-promoted one)
        self.centroids = {d: v / (np.linalg.norm(v) or 1.0) for d, v in (centroids or {}).items()}
        self.temperature = temperature

    def classify(self, query_vec: np.ndarray) -> dict[str, float]:
        if not self.centroids:
            return {}
        names = sorted(self.centroids)
        q = query_vec / (np.linalg.norm(query_vec) or 1.0)
        logits = np.array([float(q @ self.centroids[d]) for d in names]) / self.temperature
        p = np.exp(logits - logits.max())
        p /= p.sum()
        return dict(zip(names, p.tolist()))

    def route(
        self,
        *,
        choice: str | None = AUTO,
        domain: str | None = None,
        query_vec: np.ndarray | None = None,
        hit_domains: Sequence[str] = (),
    ) -> Route:
        choice = choice or AUTO
        if choice == BASE_CHOICE:
            return Route(None, domain, "explicit choice: base model")
        if choice != AUTO:
            known = set(self.adapters_by_domain.values()) | set(self.loaded())
            if choice not in known and not any(choice.startswith(d + "-v") for d in self.adapters_by_domain):
                raise LoragError(
                    f"adapter '{choice}' is not loaded: promoted adapters are served",
                    hint=f"loaded: {', '.join(sorted(known)) or 'none'}; `lorag ask --adapter {choice}` loads any "
                    f"registered version, `lorag adapters promote {choice}` serves it by default",
                )
            return Route(choice, domain, f"explicit choice: {choice}")
        if domain is not None:
            adapter = self.adapters_by_domain.get(domain)
            reason = f"domain asked for: {domain}" + ("" if adapter else ", which has no promoted adapter: base model")
            return Route(adapter, domain, reason)
        if not self.adapters_by_domain:
            return Route(None, None, "no promoted adapters: base model")
        classifier = self.classify(query_vec) if query_vec is not None else {}
        share = {d: hit_domains.count(d) / len(hit_domains) for d in set(hit_domains)} if hit_domains else {}
        domains = sorted(set(classifier) | set(share))
        if not domains:
            return Route(None, None, "nothing to route on: base model", 0.0)
        weight = 0.5 if classifier and share else 1.0
        scores = {d: weight * classifier.get(d, 0.0) + weight * share.get(d, 0.0) for d in domains}
        best = max(scores, key=scores.get)
        conf = scores[best]
        adapter = self.adapters_by_domain.get(best)
        if conf < self.settings.threshold:
            return Route(
                None,
                best,
                f"routed to {best} with confidence {conf:.2f} < threshold {self.settings.threshold:.2f}: base model",
                conf,
                scores,
            )
        if adapter is None:
            return Route(
                None, best, f"routed to {best} ({conf:.2f}), which has no promoted adapter: base model", conf, scores
            )
        return Route(adapter, best, f"routed to {best} ({conf:.2f}: query classifier + top-hit share)", conf, scores)
