"""Settings sections of the answering pipeline: the models and the engine that serves them, the vector store,
ingest, retrieval and routing."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, TypeAdapter, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from assistant.settings_section import SettingsSection


class EndpointSettings(SettingsSection):
    """An OpenAI-compatible engine (vLLM, llama.cpp server, Ollama, a hosted API) that generates instead of a
    local model. Unset `base_url`: the local generator answers."""

    base_url: str | None = Field(
        None,
        description="The engine's OpenAI-compatible base URL, e.g. http://localhost:8000/v1 (vLLM), "
        "http://localhost:11434/v1 (Ollama), http://localhost:8080/v1 (llama.cpp server). Set: answers, synthetic "
        "data and the judge come from it and no local generator is loaded.",
    )
    model: str | None = Field(
        None, description="The served base model's name as the engine lists it at GET /models (required with base_url)."
    )
    api_key: SecretStr | None = Field(
        None, description="Bearer token for base_url (default: $OPENAI_API_KEY, read when used)."
    )
    connect_timeout_s: float = Field(5.0, gt=0, description="Longest wait to connect to the engine.")
    read_timeout_s: float = Field(
        60.0,
        gt=0,
        description="Longest wait for the engine's next bytes: the reply, the first token, or the next chunk.",
    )
    total_timeout_s: float = Field(600.0, gt=0, description="Longest a single request may take from start to end.")
    max_concurrency: int = Field(
        8,
        ge=1,
        le=1024,
        description="Requests sent to the engine at once (this process); the web app's generation slots.",
    )
    max_retries: int = Field(
        2, ge=0, le=10, description="Retries of a non-streaming request after a connection error, 429 or 5xx."
    )
    retry_backoff_s: float = Field(0.5, ge=0, description="First retry's wait; doubled for each further retry.")
    adapter_api: Literal["model", "llamacpp"] = Field(
        "model",
        description="How a request picks its adapter. 'model': the request's model is the adapter's served "
        "name, as the "
        "engine lists it at GET /models (vLLM --lora-modules, Ollama models, LoRAX). 'llamacpp': llama.cpp's server, "
        "whose adapters are the --lora files it lists at GET /lora-adapters, each named by its file name without .gguf "
        "(lorag's GGUF exports are <adapter>.gguf); a request turns one on with its `lora` field.",
    )
    repetition_penalty_field: Literal["repetition_penalty", "repeat_penalty", "none"] = Field(
        "repetition_penalty",
        description="How models.repetition_penalty is sent: 'repetition_penalty' (vLLM's extra field), "
        "'repeat_penalty' "
        "(llama.cpp server), 'none' (Ollama, hosted APIs: not sent, and no other penalty is sent in its place).",
    )

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        v = v.strip().rstrip("/")
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https:// (e.g. http://localhost:8000/v1)")
        return v

    @model_validator(mode="after")
    def _model_with_url(self) -> "EndpointSettings":
        if self.base_url and not self.model:
            raise ValueError("model: name the served base model (as GET /models lists it) when base_url is set")
        return self


class ModelSettings(SettingsSection):
    generator: str = Field(
        "smollm2-135m-instruct",
        description="A built-in name (see `lorag models list`), an HF model id, a local folder or a .gguf file.",
    )
    embedder: str = Field("all-minilm-l6-v2", description="Built-in name, HF id or local sentence-transformers folder.")
    reranker: str | None = Field(None, description="Optional sentence-transformers CrossEncoder (HF id or folder).")
    embedder_backend: Literal["auto", "torch", "onnx-fp32", "onnx", "openvino", "openvino-bf16"] = Field(
        "auto",
        description="What computes the embedder's vectors. torch: transformers (float32 on CPU, float16 on "
        "CUDA). onnx-fp32: a float32 ONNX export made once from the cached model, run by onnxruntime on the CPU "
        "(pip install 'lorag[fast]'): torch's vectors (an index of either serves the other), a query embedded "
        "~3x faster. openvino-bf16: that float32 export run by OpenVINO in bfloat16, for a CPU with native "
        "bfloat16 (AVX-512 BF16 or AMX): documents ~3.3x torch float32's chunks/s (parallel streams fed by an "
        "async queue), a query on a latency-tuned compile; vectors at cosine > 0.999 to torch's (an index of "
        "either serves the other); on a CPU without bfloat16 OpenVINO computes it in float32. onnx / openvino: "
        "an int8 ONNX export, run by onnxruntime / OpenVINO on the CPU: no faster on a CPU without int8 "
        "dot-product instructions, and 7-9% of the top-10 passages change. auto: an index embedded with int8 "
        "keeps its backend; otherwise, with no GPU: openvino-bf16 on a CPU with native bfloat16 when lorag[fast] "
        "is installed (unless embedder_cpu_bf16 is off); else, with lorag[fast], queries by onnx-fp32 and "
        "documents by torch (each the faster for its work, same vectors); else torch. "
        "An index records its backend; a query with a backend whose vectors differ is refused (re-embed the "
        "domain, or set this to the recorded backend).",
    )
    embedder_cpu_bf16: Literal["auto", "on", "off"] = Field(
        "auto",
        description="torch's embedding on the CPU (documents; queries too where torch embeds them) with its matrix "
        "products in bfloat16 (norms and softmax in float32): about 1.7x the chunks/s of float32 on a CPU with "
        "native bfloat16 (AVX-512 BF16 or AMX), vectors at cosine > 0.9999 to float32's (an index of either serves "
        "the other). auto: on such a CPU, under embedder_backend auto; on: whenever torch embeds on the CPU (slow "
        "without native bfloat16); off: float32, and embedder_backend auto does not pick openvino-bf16.",
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    max_new_tokens: int = Field(192, ge=1, le=8192)
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 means greedy decoding.")
    repetition_penalty: float = Field(1.1, ge=1.0, le=2.0)
    endpoint: EndpointSettings = Field(
        default_factory=EndpointSettings,
        description="An OpenAI-compatible engine that generates instead of `generator`.",
    )


class QdrantSettings(SettingsSection):
    url: str | None = Field(None, description="Qdrant server URL; unset means the embedded store under data_dir.")
    api_key: SecretStr | None = None
    path: Path | None = Field(None, description="Embedded store folder; default <data_dir>/qdrant.")
    collection_prefix: str = Field("lorag_", description="Server collections are named <prefix><domain>.")
    shard_number: int = Field(1, ge=1)
    replication_factor: int = Field(1, ge=1)
    on_disk_vectors: bool = False
    hnsw_ef: int = Field(128, ge=8, description="Search-time HNSW beam width for the dense vectors.")
    indexing_threads: int = Field(
        0,
        ge=0,
        description="Threads that build a new embedded domain's HNSW index at the end of an ingest; 0: every core "
        "(qdrant-edge's own default keeps one core free, which on 2 cores halves the build's speed).",
    )
    preload: bool = Field(
        True,
        description="In a long-running process (`lorag ui`, the CLI's keep-warm worker): open every embedded domain "
        "in the background at start, as a server loads its collections (the first question then does not wait for "
        "its shard to load: seconds for a large domain), and read each domain's files into the page cache in a "
        "background thread when it opens and after an ingest rebuilds it, as Elasticsearch's index.store.preload "
        "does; the first questions then do not read payloads and payload indexes from disk page by page. False: "
        "domains open, and pages are read, as searches touch them.",
    )
    preload_max_memory_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="A domain whose files to preload exceed this share of the memory available (MemAvailable) is "
        "not preloaded: it would push other pages out of the cache.",
    )


class IngestSettings(SettingsSection):
    chunk_tokens: int = Field(200, ge=16, le=4096, description="Chunk size in embedder tokens.")
    chunk_overlap: int = Field(30, ge=0, description="Overlap between neighbouring chunks, in tokens.")
    formats: list[str] = Field(
        default_factory=lambda: ["pdf", "docx", "html", "htm", "md", "markdown", "rst", "txt", "csv", "tsv", "json"]
    )
    max_file_mb: float = Field(50.0, gt=0, description="Larger files are skipped (reported, the batch goes on).")
    max_rows: int = Field(100_000, ge=1, description="CSV/TSV rows, JSON records per file; one with more is skipped.")
    max_pages: int = Field(2_000, ge=1, description="PDF pages per file; a longer PDF is skipped.")
    text_encoding: str = Field(
        "auto",
        description="Text files (txt, md, rst, csv, tsv, json, html) that are neither UTF-8 nor marked by a byte order "
        "mark: 'auto' detects their legacy encoding (with a warning naming it), or name the one they are saved in "
        "(cp1250, iso8859_2, cp1251, shift_jis, ...: any Python codec) where detection guesses wrong, as it can "
        "on short Central European text. Changing it re-ingests the domain's files.",
    )
    embed_batch_size: int = Field(64, ge=1)

    @field_validator("text_encoding")
    @classmethod
    def _known_codec(cls, v: str) -> str:
        import codecs

        v = v.strip()
        if v.lower() == "auto":
            return "auto"
        try:
            name = codecs.lookup(v).name
            sample = "Aa1 ".encode(name)  # LookupError for a codec that is no text encoding (base64, rot13...)
        except (LookupError, UnicodeError):
            raise ValueError(f"'{v}' is no text encoding Python knows (e.g. cp1250, iso8859_2; or 'auto')") from None
        if b"\x00" in sample:  # UTF-16/32 text holds NUL bytes, which mark a file binary unless a BOM says so
            raise ValueError(
                f"'{v}': UTF-16 and UTF-32 files are read by their byte order mark; name a legacy encoding"
            )
        return name

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_size(cls, v: int, info: Any) -> int:
        size = info.data.get("chunk_tokens")
        if size is not None and v >= size:
            raise ValueError(f"must be smaller than chunk_tokens ({size})")
        return v

    @model_validator(mode="wrap")
    @classmethod
    def _overlap_below_invalid_size(cls, data: Any, handler: Any) -> Any:
        """With chunk_tokens itself invalid the check above cannot run: compare the overlap with the size given."""
        try:
            return handler(data)
        except ValidationError as e:
            errors = e.errors()
            locs = {err["loc"] for err in errors}
            if not isinstance(data, dict) or ("chunk_tokens",) not in locs or ("chunk_overlap",) in locs:
                raise
            try:
                as_int = TypeAdapter(int).validate_python
                size, overlap = as_int(data.get("chunk_tokens")), as_int(data.get("chunk_overlap"))
            except ValidationError:
                raise e from None
            if overlap < size:
                raise
            msg = PydanticCustomError("overlap_too_large", "must be smaller than chunk_tokens ({size})", {"size": size})
            errors.append({"type": msg, "loc": ("chunk_overlap",), "input": data.get("chunk_overlap")})
            raise ValidationError.from_exception_data(e.title, errors) from None


class RetrievalSettings(SettingsSection):
    top_k: int = Field(4, ge=1, le=50, description="Passages given to the generator.")
    prefetch_limit: int = Field(24, ge=1, description="Candidates per vector (dense, sparse) before fusion.")
    rrf_k: int = Field(60, ge=1)
    rerank: bool = Field(False, description="Rerank fused candidates with models.reranker.")
    min_relevance: float = Field(
        0.25, ge=-1.0, le=1.0, description="Below this best dense cosine, the question has no relevant passage."
    )
    drop_unrelated: bool = Field(
        True,
        description="Leave out of the sources a passage that holds no term of the question (no BM25 candidate) and "
        "whose cosine is under min_relevance, when the question has a relevant passage and no reranker runs: in "
        "a domain too small to hold top_k related passages, fusion fills the list with such chunks.",
    )


class RoutingSettings(SettingsSection):
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="Router confidence below which the base model answers.")
