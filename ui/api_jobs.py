"""/v1/jobs: start the Adapters and Evaluation tabs' jobs (synth, train, eval) for the `lorag` CLI, and poll them."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from assistant.errors import LoragError
from assistant.names import domain_name
from ui.api_body import json_object, require_domain
from ui.api_errors import error_response, lorag_error_response


def add_job_routes(router: APIRouter, core: Any) -> None:
    @router.post("/v1/jobs")
    async def start_job(request: Request) -> Any:
        """{"kind": "synth", "domain", "writer"?, "max_chunks"?, "qa_jsonl"?, "qa_name"?}
        | {"kind": "train", "domain", "max_steps"?, "resume"?}
        | {"kind": "eval", "domain", "arms", "limit"?, "testset_jsonl"?, "testset_name"?}:
        the Adapters and Evaluation tabs' jobs (a *_jsonl field is the file's text, saved in the data folder; its
        *_name, the file's name where the sender has it, names it in messages). Returns {"job": id}; poll
        /v1/jobs/{id}."""
        from ui.web_jobs import display_name, start_eval, start_synth, start_train

        body = await json_object(request)
        if isinstance(body, JSONResponse):
            return body
        try:
            if body.get("kind") not in ("synth", "train", "eval"):
                raise LoragError('the body must be {"kind": "synth" | "train" | "eval", "domain": ..., ...}')
            require_domain(body.get("domain"), "the field 'domain'", "the domain the job works on")
            domain = domain_name(body["domain"])

            def saved(key: str) -> Any:
                text = body.get(key)
                if not isinstance(text, str) or not text.strip():
                    return None
                folder = Path(core.settings.paths.data_dir) / "uploads" / ".jobs"
                folder.mkdir(parents=True, exist_ok=True)
                f = folder / f"{uuid.uuid4().hex}.jsonl"
                f.write_text(text, encoding="utf-8")
                return f

            def name(key: str) -> str | None:
                return display_name(body.get(key))  # shown in messages and the report, never opened

            kind = body["kind"]
            if kind == "synth":
                job = await run_in_threadpool(
                    start_synth,
                    core,
                    domain,
                    saved("qa_jsonl"),
                    body.get("writer"),
                    body.get("max_chunks"),
                    name("qa_name"),
                )
            elif kind == "train":
                job = await run_in_threadpool(
                    start_train, core, domain, body.get("max_steps"), bool(body.get("resume"))
                )
            else:
                job = await run_in_threadpool(
                    start_eval,
                    core,
                    domain,
                    str(body.get("arms") or ""),
                    saved("testset_jsonl"),
                    body.get("limit"),
                    name("testset_name"),
                )
        except LoragError as e:
            return lorag_error_response(e)
        return {"job": job}

    @router.get("/v1/jobs/{job_id}")
    def job(job_id: str) -> Any:
        state = core.jobs.get(job_id)
        if state is None:
            return error_response(404, f"no job {job_id!r}", "not_found")
        return state
