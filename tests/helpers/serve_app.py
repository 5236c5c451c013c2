"""Serve the app with fake backends through `ui.app.serve` (what `lorag ui` runs), for the SIGTERM test.

python -m tests.helpers.serve_app DATA_ROOT PORT
"""

import sys
from pathlib import Path

from assistant.embedding import Bm25SparseEncoder
from assistant.settings import Settings
from assistant.store.edge import EdgeStore
from tests.fakes import HashingEmbedder
from tests.test_ui_core import CORPUS, ScriptedGenerator
from ui.app import serve
from ui.components import Components

root, port = Path(sys.argv[1]), int(sys.argv[2])
settings = Settings(
    paths={"data_dir": root / "data", "model_cache": root / "cache"},
    retrieval={"min_relevance": 0.2},
    ui={"generation_concurrency": 2, "generation_queue": 8},
)
comps = Components(
    settings,
    store=EdgeStore(settings.store_path),
    dense=HashingEmbedder(2048),
    sparse=Bm25SparseEncoder(),
    generator=ScriptedGenerator(delay=1.0),
)
comps.ingestor().run([CORPUS / "manual"], "manual")
serve(comps, "127.0.0.1", port)
