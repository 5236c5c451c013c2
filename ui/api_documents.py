"""/v1/documents: list, upload, ingest by path and delete a domain's documents, for the `lorag` CLI of a running app
(the embedded store admits one process)."""

from __future__ import annotations

import hmac
import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from assistant.errors import LoragError
from assistant.names import domain_name
from ui.api_body import json_object, require_domain
from ui.api_errors import lorag_error_body, lorag_error_response


def add_document_routes(router: APIRouter, core: Any) -> None:
    @router.get("/v1/documents")
    def documents(domain: str | None = None) -> Any:
        from services.documents import list_documents

        try:
            every = "leave the domain out to list every domain's documents"
            return {"data": list_documents(core.comps.store, domain_name(domain, "domain", every) if domain else None)}
        except LoragError as e:
            return lorag_error_response(e)

    @router.post("/v1/documents")
    async def upload_documents(request: Request) -> Any:
        """multipart/form-data: `domain`, and `files` (each file's name may hold sub-folders: kept under the
        domain's upload folder, never outside it). Starts an ingest job: {"job": id}; poll /v1/jobs/{id}."""
        from ui.docs_index import start_ingest

        form = await request.form()
        domain = str(form.get("domain") or "")
        uploads = [f for f in form.getlist("files") if hasattr(f, "filename")]
        tmp = Path(tempfile.mkdtemp(prefix="lorag-upload-"))
        try:
            require_domain(domain, "the form field 'domain'", "the domain the files go into")
            files = []
            for i, f in enumerate(uploads):
                target = tmp / str(i)
                with target.open("wb") as out:
                    shutil.copyfileobj(f.file, out)
                files.append((str(f.filename or f"file-{i}"), target))
            # copies the files before it returns; a script's or the CLI's upload: not the Documents tab's last upload
            job = await run_in_threadpool(start_ingest, core, domain, files, source="api")
        except LoragError as e:
            return lorag_error_response(e)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            await form.close()
        return {"job": job}

    @router.post("/v1/documents/local")
    async def ingest_local(request: Request) -> Any:
        """{"domain": D, "paths": [...], "sync": bool}: ingest files and folders of this machine where they are, for
        the `lorag` CLI of the app's own user only: the request must carry the token of the app's note
        (<data_dir>/app.json, readable by that user alone), since it makes the app read any path that user can.
        Starts an ingest job: {"job": id}."""
        from ui.docs_index import start_ingest
        from ui.remote import TOKEN_HEADER

        want = getattr(core, "local_token", None)
        got = request.headers.get(TOKEN_HEADER, "")
        if not want or not hmac.compare_digest(got.encode(), str(want).encode()):
            err = LoragError(
                "reading files by path is only for the lorag CLI of the app's own user",
                hint="upload the files with POST /v1/documents instead",
            )
            return JSONResponse(lorag_error_body(err), status_code=403)
        body = await json_object(request)
        if isinstance(body, JSONResponse):
            return body
        if not isinstance(body.get("paths"), list):
            return lorag_error_response(LoragError('expected {"domain": ..., "paths": [...]}'))
        try:
            require_domain(body.get("domain"), "the field 'domain'", "the domain the files go into")
            paths = [Path(str(p)) for p in body["paths"]]
            job = await run_in_threadpool(
                start_ingest,
                core,
                str(body.get("domain") or ""),
                [],
                local=paths,
                sync=bool(body.get("sync")),
                source="cli",
            )
        except LoragError as e:
            return lorag_error_response(e)
        return {"job": job}

    @router.post("/v1/documents/delete")
    async def delete_documents(request: Request) -> Any:
        """{"domain": D, "documents": [names]} or {"domain": D, "all": true}."""
        from ui.docs_index import delete_docs

        body = await json_object(request)
        if isinstance(body, JSONResponse):
            return body
        try:
            if not isinstance(body.get("domain"), str):
                raise LoragError('the body must be {"domain": ..., "documents": [...]} or {"domain": ..., "all": true}')
            removed = await run_in_threadpool(
                delete_docs, core, body["domain"], list(body.get("documents") or []), bool(body.get("all"))
            )
        except LoragError as e:
            return lorag_error_response(e)
        return {"removed": removed}
