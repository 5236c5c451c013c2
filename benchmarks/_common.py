"""Shared helpers for the benchmark scripts: corpus download, machine description, tables, stats.

Nothing here is product code; the benchmarks import the product (assistant, ingest, ui) and
measure it side by side with a raw baseline in the same process.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterable, Sequence

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "benchmarks" / "data"  # gitignored: never commit it
DOC_PACKAGE = "python3.11-doc"
SAMPLES = REPO / "samples" / "corpus"

if str(REPO) not in sys.path:  # runnable as `python benchmarks/NAME.py` even without the editable install
    sys.path.insert(0, str(REPO))


def quiet_libraries() -> None:
    """Keep the benchmark output readable (progress bars and tokenizer warnings off)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    for name in ("transformers", "sentence_transformers", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except Exception:
        pass


def doc_package(name: str, subdir: str = "", *, dest: str | None = None, log=print) -> Path | None:
    """A Debian package's files, fetched once with `apt-get download NAME` and unpacked with `dpkg-deb -x`
    into `benchmarks/data/<dest>/` (dest defaults to NAME); returns that folder's SUBDIR, or None when the
    package cannot be fetched or has no such folder."""
    root = DATA / (dest or name)
    want = root / subdir
    if want.is_dir():
        return want
    DATA.mkdir(parents=True, exist_ok=True)
    try:
        debs = sorted(DATA.glob(f"{name}_*.deb"))
        if not debs:
            log(f"fetching {name} with apt-get download ...")
            r = subprocess.run(["apt-get", "download", name], cwd=DATA, capture_output=True, text=True)
            if r.returncode != 0:
                subprocess.run(["apt-get", "update"], capture_output=True, text=True)
                subprocess.run(["apt-get", "download", name], cwd=DATA, capture_output=True, text=True)
            debs = sorted(DATA.glob(f"{name}_*.deb"))
        if not debs:
            return None
        tmp = root.with_name(root.name + ".partial")  # a killed unpack never looks like a finished one
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(tmp)], check=True)
        shutil.rmtree(root, ignore_errors=True)
        tmp.rename(root)
    except (OSError, subprocess.CalledProcessError) as e:
        log(f"could not get {name}: {e}")
        return None
    return want if want.is_dir() else None


def doc_package_version(name: str = DOC_PACKAGE) -> str:
    """The .deb file fetched for NAME (its name carries the version), or NAME before it is fetched."""
    debs = sorted(DATA.glob(f"{name}_*.deb"))
    return debs[-1].name if debs else name


def doc_package_field(name: str, field: str = "Version") -> str | None:
    """A control field of the fetched .deb (e.g. Version: `1:2.39.5-0+deb12u3`), None before it is fetched."""
    debs = sorted(DATA.glob(f"{name}_*.deb"))
    if not debs:
        return None
    r = subprocess.run(["dpkg-deb", "-f", str(debs[-1]), field], capture_output=True, text=True)
    return (r.stdout.strip() or None) if r.returncode == 0 else None


def python_doc_sources(log=print) -> Path | None:
    """The Python docs reStructuredText sources (`_sources/`), downloaded with apt once, else None."""
    return doc_package(DOC_PACKAGE, "usr/share/doc/python3.11/html/_sources", dest="pydoc", log=log)


REFERENCE_MIN_WORDS = 12  # a FAQ reference shorter than this ("Yes.") takes the next paragraph too
REFERENCE_MAX_WORDS = 120


def faq_reference(
    paragraphs: Sequence[str], min_words: int = REFERENCE_MIN_WORDS, max_words: int = REFERENCE_MAX_WORDS
) -> str:
    """The reference answer of a FAQ entry: its opening prose paragraph, extended by the next ones while
    it is under MIN_WORDS words, cut at MAX_WORDS words."""
    ref = paragraphs[0]
    for p in paragraphs[1:]:
        if len(ref.split()) >= min_words:
            break
        ref = f"{ref} {p}"
    words = ref.split()
    return " ".join(words[:max_words]) if len(words) > max_words else ref


_CODE_CLASSES = {"listingblock", "literalblock", "tableblock", "imageblock", "codeblock"}
_BLOCKS = {
    "p",
    "div",
    "blockquote",
    "ul",
    "ol",
    "dl",
    "li",
    "dt",
    "dd",
    "section",
    "article",
    "center",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
}


def html_prose_paragraphs(el) -> list[str]:
    """The prose paragraphs of an HTML element (BeautifulSoup), in order: <p> and list items and text
    between blocks, whitespace collapsed; code (<pre>, AsciiDoc listing/literal blocks) and tables left out."""
    from bs4 import Comment, NavigableString

    out: list[str] = []
    cur: list[str] = []

    def flush() -> None:
        text = " ".join("".join(cur).split())
        cur.clear()
        if text:
            out.append(text)

    for child in el.children:
        if isinstance(child, NavigableString):
            if not isinstance(child, Comment):
                cur.append(str(child))
            continue
        if child.name == "br":
            cur.append(" ")
        elif child.name in ("pre", "table", "script", "style", "svg", "img", "form", "button") or _CODE_CLASSES & set(
            child.get("class") or []
        ):
            flush()
        elif child.name in _BLOCKS:
            flush()
            out += html_prose_paragraphs(child)
        else:  # inline markup: a, b, code, tt, em, span ...
            cur.append(child.get_text(""))
    flush()
    return out


def sample_corpus_files() -> list[Path]:
    return sorted(p for p in SAMPLES.rglob("*") if p.is_file() and not p.name.startswith("."))


def cpu_model() -> str | None:
    """The CPU's model name from /proc/cpuinfo, or None where it cannot be read."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def machine() -> str:
    cpu = cpu_model() or platform.processor() or platform.machine()
    import torch

    gpu = "CUDA" if torch.cuda.is_available() else "no GPU"
    return (
        f"{os.cpu_count()} CPU cores ({cpu}), {gpu}, torch {torch.__version__} ({torch.get_num_threads()} "
        f"threads), Python {platform.python_version()}"
    )


def now() -> str:
    return _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")


def header(title: str, args: Sequence[str] | None = None) -> None:
    print(f"# {title}")
    print(
        "command : .venv/bin/python "
        f"{' '.join(['benchmarks/' + Path(sys.argv[0]).name, *(args if args is not None else sys.argv[1:])])}"
    )
    print(f"date    : {now()}")
    print(f"machine : {machine()}")
    print(f"load    : {load()} (other processes share these cores; ratios are measured side by side, alternating)")
    print()
    import atexit

    atexit.register(lambda: print(f"\nload at end: {load()}"))


def load() -> str:
    try:
        return "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "load average n/a"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    rows = [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows
    ]
    return "\n".join([line, sep, *body])


def _fmt(c: object) -> str:
    if isinstance(c, float):
        if c == 0:
            return "0"
        if abs(c) >= 100:
            return f"{c:,.0f}"
        if abs(c) >= 10:
            return f"{c:.1f}"
        return f"{c:.3f}" if abs(c) < 1 else f"{c:.2f}"
    return str(c)


def _numeric(c: str) -> bool:
    return c.replace(",", "").replace(".", "", 1).replace("-", "", 1).replace("%", "").replace("x", "").isdigit()


def percentile(values: Sequence[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=float), q))


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


class Timer:
    def __enter__(self) -> "Timer":
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.s = time.perf_counter() - self.t0


def temp_dir(prefix: str, where: Path | None = None) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"lorag-bench-{prefix}-", dir=where))


def rm(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
