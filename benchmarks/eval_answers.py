"""Answer an A/B test set on another machine (a GPU), score it here with `lorag eval`.

    # here: the prompts `lorag eval` would send (retrieved once, the serving prompt), one per question
    python benchmarks/eval_answers.py export --domain D --testset T.jsonl --out prompts.jsonl
    # there: benchmarks/gpu_quality_job.py answers them with the base model and with the adapter
    # here, after `lorag adapters import`: the answers go into the evaluation cache under the arms'
    # identities, so `lorag eval --domain D --testset T.jsonl --ab base,D-vN` scores them unchanged
    python benchmarks/eval_answers.py import --domain D --testset T.jsonl --ab base,D-vN --answers answers.jsonl

The prompts are built by the same functions `lorag eval` uses (eval.runner: retrieve_all,
stable_passages; assistant.prompt.build_messages), and the cache keys by the same `key()`, so a
question whose prompt differs from `lorag eval`'s own is simply generated again here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _generation(settings) -> dict:
    m = settings.models
    return {
        "max_new_tokens": m.max_new_tokens,
        "temperature": m.temperature,
        "repetition_penalty": m.repetition_penalty,
    }


def export(args: argparse.Namespace) -> None:
    from assistant.prompt import build_messages
    from assistant.settings import load_settings
    from eval.runner import retrieve_all, stable_passages
    from eval.testset import load_testset
    from ui.components import Components

    settings = load_settings()
    comps = Components(settings)
    items = load_testset(args.testset)
    top_k = args.top_k or settings.retrieval.top_k
    rows = []
    for item, r in zip(items, retrieve_all(comps.retriever, [i.question for i in items], args.domain, top_k)):
        if r.relevant:
            rows.append(
                {"id": item.id or item.question, "messages": build_messages(item.question, stable_passages(r.passages))}
            )
    args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(
        json.dumps(
            {"questions": len(items), "prompts": len(rows), "generation": _generation(settings), "out": str(args.out)}
        )
    )


def import_answers(args: argparse.Namespace) -> None:
    from assistant.settings import load_settings
    from eval.arms import parse_arms
    from eval.cache import EvalCache, key
    from eval.runner import gen_identity
    from ui.components import Components

    settings = load_settings()
    comps = Components(settings)
    arms = parse_arms(args.ab, registry=comps.registry, base_model=settings.models.generator)
    if len(arms) != 2 or arms[0].kind != "base" or arms[1].kind != "adapter":
        raise SystemExit("--ab must be base,<adapter>")
    roles = {"base": arms[0], "adapter": arms[1]}
    generation = _generation(settings)
    cache = EvalCache(settings.reports_dir / "cache" / "results.jsonl")
    prompts = {r["id"]: r["messages"] for r in map(json.loads, args.prompts.read_text().splitlines()) if r}
    n = 0
    for line in args.answers.read_text().splitlines():
        a = json.loads(line)
        arm = roles[a["arm"]]
        cache.put(
            key("answer", prompts[a["id"]], gen_identity(arm, generation)),
            {"answer": a["answer"].strip(), "arm": arm.label},
        )
        n += 1
    print(json.dumps({"cached_answers": n, "arms": [a.label for a in arms], "generation": generation}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("--domain", required=True)
    e.add_argument("--testset", type=Path, required=True)
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--top-k", type=int, default=None)
    i = sub.add_parser("import")
    i.add_argument("--domain", required=True)
    i.add_argument("--ab", required=True)
    i.add_argument("--prompts", type=Path, required=True)
    i.add_argument("--answers", type=Path, required=True)
    args = ap.parse_args()
    export(args) if args.cmd == "export" else import_answers(args)


if __name__ == "__main__":
    main()
