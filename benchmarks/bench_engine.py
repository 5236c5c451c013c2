"""Generation through an engine (models.endpoint): what lorag adds on top of the engine, and mixed adapters.

    .venv/bin/python benchmarks/bench_engine.py [--server auto|llama-server|llama_cpp.server|transformers]
                                                [--prompts N] [--repeats R] [--max-tokens T] [--concurrency C] [--quick]

The built-in SmolLM2-135M is served on this machine by one of:
  * llama-server (llama.cpp's own server; --llama-server PATH, $LORAG_LLAMA_SERVER or PATH) from the built-in
    GGUF, with two GGUF LoRA adapters (`--lora`, off unless a request's `lora` field turns one on);
  * python -m llama_cpp.server (llama-cpp-python, the `llama-cpp` extra) with a config file: the base and each
    adapter under its own name (it keeps one model loaded and reloads on a change of name);
  * transformers serve (the model folder; no adapters: part 2 is skipped).
The adapters are random LoRA weights (r 8, attention projections) written as GGUF by lorag's writer
(finetune/gguf_lora.py), so the answers differ per adapter. The handbook sample is ingested into a temporary
store with the real embedder; each question's passages are retrieved once and reused.

1. lorag ÷ direct, same prompt. Per question, alternately R times (order swapped every repeat, after one
   uncounted warm-up call): `lorag ask`'s path (AskService.stream with the retrieved passages: prompt build,
   OpenAIGenerator's request, SSE parsing, the Answer with citations) and a direct `openai` client streaming the
   identical request body (the body lorag builds: same messages, max_tokens, temperature, penalty field, `lora`).
   tokens/s = completion tokens (the engine's usage) / wall seconds of the call; TTFT = seconds to the first
   content token. Ratios (target >= 0.95): median lorag tok/s ÷ median direct tok/s, and median direct TTFT ÷
   median lorag TTFT (both read "lorag's speed as a share of the engine's").
2. Mixed ÷ single adapters: C concurrent lorag asks (threads, as the web app and API run them), all for adapter
   A, then alternately for A and B; R rounds, alternating. Ratio = median mixed tok/s ÷ median single tok/s
   (total completion tokens of the round / its wall seconds).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, header, quiet_libraries, rm, table, temp_dir, verdict  # noqa: E402

TARGET = 0.95
GEN = "smollm2-135m-instruct"
DOMAIN = "handbook"
ADAPTERS = ("handbook-v1", "handbook-v2")
STANDARD = ("model", "messages", "max_tokens", "temperature")  # the rest of lorag's body goes in extra_body


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pick_server(choice: str, binary: str | None) -> str:
    if choice != "auto":
        return choice
    if binary:
        return "llama-server"
    if importlib.util.find_spec("llama_cpp") is not None:
        return "llama_cpp.server"
    return "transformers"


def make_adapters(base: Path, out: Path) -> dict[str, Path]:
    """Two random LoRA adapters on the base, as GGUF files named after them."""
    from transformers import AutoConfig

    from finetune.gguf_lora import write_gguf_lora
    from tests.helpers.loras import random_lora

    config = AutoConfig.from_pretrained(base)
    files = {}
    for seed, name in enumerate(ADAPTERS, start=3):
        folder = random_lora(
            base,
            out / name,
            seed=seed,
            r=8,
            alpha=16,
            b_std=0.05,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        )
        files[name] = out / f"{name}.gguf"
        write_gguf_lora(folder, config, files[name], name=name)
    return files


def start_server(
    kind: str,
    *,
    port: int,
    base_gguf: Path,
    base_folder: Path,
    loras: dict[str, Path],
    binary: str | None,
    threads: int,
    parallel: int,
    log: Path,
) -> tuple[subprocess.Popen, dict[str, Any], str]:
    """The server process, lorag's models.endpoint for it, and the URL that answers when it is ready."""
    url = f"http://127.0.0.1:{port}"
    if kind == "llama-server":
        argv = [
            binary,
            "-m",
            str(base_gguf),
            "--alias",
            GEN,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--threads",
            str(threads),
            "--parallel",
            str(parallel),
            "--ctx-size",
            str(4096 * parallel),
            "--lora-init-without-apply",
        ]
        for f in loras.values():
            argv += ["--lora", str(f)]
        endpoint = {"model": GEN, "adapter_api": "llamacpp", "repetition_penalty_field": "repeat_penalty"}
        ready = url + "/health"
    elif kind == "llama_cpp.server":
        common = {"model": str(base_gguf), "n_ctx": 4096, "n_threads": threads, "verbose": False}
        models = [{**common, "model_alias": GEN}] + [
            {**common, "model_alias": n, "lora_path": str(f)} for n, f in loras.items()
        ]
        cfg = log.with_suffix(".json")
        cfg.write_text(json.dumps({"host": "127.0.0.1", "port": port, "models": models}))
        argv = [sys.executable, "-m", "llama_cpp.server", "--config_file", str(cfg)]
        endpoint = {"model": GEN, "adapter_api": "model", "repetition_penalty_field": "repeat_penalty"}
        ready = url + "/v1/models"
    else:
        exe = shutil.which("transformers") or str(Path(sys.executable).with_name("transformers"))
        argv = [
            exe,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--dtype",
            "float32",
        ]  # its auto: the weights' bf16, slow on CPUs
        endpoint = {"model": str(base_folder), "adapter_api": "model", "repetition_penalty_field": "none"}
        ready = url + "/v1/models"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.Popen(argv, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    return (
        proc,
        {"base_url": url + "/v1", "read_timeout_s": 300, "max_concurrency": max(parallel, 4), **endpoint},
        ready,
    )


def wait_ready(proc: subprocess.Popen, url: str, log: Path, timeout: float = 300) -> None:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    sys.exit(f"the server did not answer {url} within {timeout:g} s")


def via_lorag(service: Any, question: str, found: Any, adapter: str | None) -> dict[str, Any]:
    from assistant.answer import Answer

    t0 = time.perf_counter()
    ttft, final = None, None
    for item in service.stream(question, DOMAIN, adapter=adapter or "base", retrieval=found):
        if isinstance(item, Answer):
            final = item
        elif item and ttft is None:
            ttft = time.perf_counter() - t0
    total = time.perf_counter() - t0
    return {"ttft": ttft, "s": total, "tokens": final.tokens, "text": final.answer, "cited": bool(final.citations)}


def via_client(client: Any, body: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    std = {k: body[k] for k in STANDARD if k in body}
    extra = {k: v for k, v in body.items() if k not in STANDARD}
    ttft, pieces, usage = None, [], None
    for chunk in client.chat.completions.create(
        **std, stream=True, stream_options={"include_usage": True}, extra_body=extra
    ):
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices[:1]:
            if choice.delta.content:
                if ttft is None:
                    ttft = time.perf_counter() - t0
                pieces.append(choice.delta.content)
    total = time.perf_counter() - t0
    return {
        "ttft": ttft,
        "s": total,
        "tokens": usage.completion_tokens if usage else len(pieces),
        "text": "".join(pieces).strip(),
    }


def rate(r: dict[str, Any]) -> float:
    return r["tokens"] / r["s"]


def part_lorag_vs_direct(service: Any, gen: Any, client: Any, found: dict[str, Any], repeats: int) -> dict[str, Any]:
    from assistant.prompt import build_messages

    rows, lorag_runs, direct_runs, same = [], [], [], 0
    for q, r in found.items():
        body = gen.request_body(build_messages(q, r.passages), None, None)
        via_client(client, body)  # warm-up (the engine's prompt cache), not counted
        ql, qd = [], []
        for rep in range(repeats):
            order = ("lorag", "direct") if rep % 2 == 0 else ("direct", "lorag")
            for who in order:
                if who == "lorag":
                    ql.append(via_lorag(service, q, r, None))
                else:
                    qd.append(via_client(client, gen.request_body(build_messages(q, r.passages), None, None)))
        same += sum(a["text"] == b["text"] for a, b in zip(ql, qd))
        lorag_runs += ql
        direct_runs += qd
        rows.append(
            [
                q[:48],
                statistics.median(map(rate, ql)),
                statistics.median(map(rate, qd)),
                statistics.median(x["ttft"] for x in ql),
                statistics.median(x["ttft"] for x in qd),
                ql[0]["tokens"],
            ]
        )
    print(table(["question", "lorag tok/s", "direct tok/s", "lorag TTFT s", "direct TTFT s", "tokens"], rows))
    tok = statistics.median(map(rate, lorag_runs)) / statistics.median(map(rate, direct_runs))
    ttft = statistics.median(x["ttft"] for x in direct_runs) / statistics.median(x["ttft"] for x in lorag_runs)
    print(
        f"\nsame text lorag vs direct: {same}/{len(lorag_runs)}; answers with citations: "
        f"{sum(x['cited'] for x in lorag_runs)}/{len(lorag_runs)}"
    )
    print(f"tok/s ratio (lorag ÷ direct, medians): {tok:.3f}  {verdict(tok >= TARGET)} (target ≥ {TARGET})")
    print(f"TTFT ratio (direct ÷ lorag, medians):  {ttft:.3f}  {verdict(ttft >= TARGET)} (target ≥ {TARGET})")
    return {"tok_ratio": tok, "ttft_ratio": ttft, "same_text": same, "runs": len(lorag_runs)}


def concurrent_round(service: Any, items: list[tuple[str, Any]], adapters: list[str]) -> dict[str, Any]:
    out: list[dict[str, Any] | BaseException] = [None] * len(items)  # type: ignore[list-item]

    def one(i: int) -> None:
        try:
            out[i] = via_lorag(service, items[i][0], items[i][1], adapters[i])
        except BaseException as e:  # noqa: BLE001 - reported below
            out[i] = e

    t0 = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(items))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    errors = [x for x in out if isinstance(x, BaseException)]
    if errors:
        raise errors[0]
    return {"s": wall, "tokens": sum(x["tokens"] for x in out)}  # type: ignore[index]


def part_mixed(service: Any, found: dict[str, Any], concurrency: int, repeats: int) -> dict[str, Any]:
    qs = list(found.items())
    items = [qs[i % len(qs)] for i in range(concurrency)]
    single = [ADAPTERS[0]] * concurrency
    mixed = [ADAPTERS[i % 2] for i in range(concurrency)]
    concurrent_round(service, items, mixed)  # warm-up
    runs: dict[str, list[dict[str, Any]]] = {"single": [], "mixed": []}
    for rep in range(repeats):
        for name in ("single", "mixed") if rep % 2 == 0 else ("mixed", "single"):
            runs[name].append(concurrent_round(service, items, single if name == "single" else mixed))
    rows = [[n, len(v), statistics.median(x["s"] for x in v), statistics.median(map(rate, v))] for n, v in runs.items()]
    print(table(["round", "rounds", f"wall s ({concurrency} asks)", "tok/s"], rows))
    ratio = statistics.median(map(rate, runs["mixed"])) / statistics.median(map(rate, runs["single"]))
    print(f"\nmixed ÷ single adapters, tok/s (medians): {ratio:.3f}")
    return {"mixed_ratio": ratio}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", default="auto", choices=["auto", "llama-server", "llama_cpp.server", "transformers"])
    ap.add_argument("--llama-server", default=os.environ.get("LORAG_LLAMA_SERVER") or shutil.which("llama-server"))
    ap.add_argument("--prompts", type=int, default=None, help="questions (default 4, quick 2)")
    ap.add_argument(
        "--repeats", type=int, default=None, help="measured calls per path and question (default 4, quick 2)"
    )
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--concurrency", type=int, default=4, help="asks at once in part 2")
    ap.add_argument("--threads", type=int, default=2, help="the engine's CPU threads")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (server log, adapters)")
    args = ap.parse_args()
    prompts = args.prompts or (2 if args.quick else 4)
    repeats = args.repeats or (2 if args.quick else 4)
    quiet_libraries()
    kind = pick_server(args.server, args.llama_server)
    header("bench_engine: lorag ask through an engine ÷ a direct client; mixed ÷ single adapters")
    print(f"server  : {kind}")

    from openai import OpenAI

    from assistant.answer import AskService
    from assistant.models.cache import ModelCache
    from assistant.settings import Settings
    from ui.components import Components

    cache = ModelCache(Path(os.environ.get("LORAG_MODEL_CACHE", "~/.cache/lorag")).expanduser())
    if not cache.is_pulled(GEN):
        sys.exit(f"the built-in models are not in {cache.root}: lorag models pull")
    base_folder = Path(cache.resolve(GEN))
    base_gguf = cache.gguf_file(GEN)
    work = temp_dir("engine")
    proc = None
    try:
        loras = make_adapters(base_folder, work / "adapters") if kind != "transformers" else {}
        port = free_port()
        log = work / "server.log"
        proc, endpoint, ready = start_server(
            kind,
            port=port,
            base_gguf=base_gguf,
            base_folder=base_folder,
            loras=loras,
            binary=args.llama_server,
            threads=args.threads,
            parallel=args.concurrency,
            log=log,
        )
        print(f"engine  : {' '.join(map(str, proc.args))}")
        settings = Settings(
            paths={"data_dir": work / "data", "model_cache": cache.root},
            models={"max_new_tokens": args.max_tokens, "endpoint": endpoint},
        )
        comps = Components(settings)
        assert comps.ingestor().run([REPO / "samples" / "corpus" / DOMAIN], DOMAIN).ok
        qa = [
            json.loads(x) for x in (REPO / "samples" / "qa" / f"{DOMAIN}.jsonl").read_text().splitlines() if x.strip()
        ]
        picked = [qa[i * len(qa) // prompts] for i in range(prompts)]
        found = {p["question"]: comps.retriever.retrieve(p["question"], DOMAIN) for p in picked}
        found = {q: r for q, r in found.items() if r.relevant}
        wait_ready(proc, ready, log)
        gen = comps.generator
        service = AskService(comps.retriever, gen, None)
        client = OpenAI(base_url=endpoint["base_url"], api_key="unused")
        print(
            f"questions {len(found)}, repeats {repeats}, max_tokens {args.max_tokens}, greedy, engine threads "
            f"{args.threads}\n"
        )
        print("## 1. lorag ask ÷ direct client, same request\n")
        result = part_lorag_vs_direct(service, gen, client, found, repeats)
        if loras:
            print(f"\n## 2. {args.concurrency} concurrent asks: mixed adapters ({', '.join(ADAPTERS)}) ÷ one adapter\n")
            result.update(part_mixed(service, found, args.concurrency, repeats))
        else:
            print("\n## 2. skipped: this server serves no LoRA adapters")
        print("\n" + json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}))
        comps.close()
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if args.keep:
            print(f"kept {work}")
        else:
            rm(work)


if __name__ == "__main__":
    main()
