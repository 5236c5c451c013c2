"""Votes on a comparison of two arms, kept per domain, and their export as a test set.

Votes go to `<data_dir>/votes/<domain>.jsonl`, one JSON object a line. A vote is a test case of one domain (what
`lorag eval` takes): with every domain searched ("all"), it counts for the domain its passages came from; when they
came from several, the vote is refused and the tab says to pick the domain. The export (of one domain: not "all")
turns them into a test set for `lorag eval --testset`:
`{"id", "question", "answer", "sources", "tags"}` whose reference answer is the one the voter wrote
(an edited reference), else the preferred answer (left or right). A tie or "both bad" without an
edited reference has no answer known to be right, so it is not exported (never is a wrong answer
made the reference); the export counts those, and they stay in the votes file.

One vote per comparison: a comparison (what /compare returns, and the tab keeps) has an id, which its vote keeps;
a second vote on the same comparison replaces the first in the file (same id, one line), so the counts are of
comparisons, not clicks. A comparison without an id (sent by a script that built it) is known by its content.
The export keeps the latest vote on a question (a test set asks each question once) and counts the older ones
it left out, so that its counts add up to the votes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from assistant.errors import LoragError
from assistant.names import ALL_DOMAINS, check_domain

VOTES = ("left", "right", "tie", "both_bad")
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a comparison's id, as new_comparison_id makes it (or a script sends)
_VOTES_LOCK = threading.Lock()  # the app's handlers run in threads: one writer of the votes files at a time
LOCK_TIMEOUT_S = 30.0


@contextmanager
def _writing(core: Any) -> Iterator[None]:
    """One writer of the votes files at a time: of this process's threads, and of the processes that share the data
    folder (two apps on one Qdrant server may): a vote is read, changed and written back, so two writers at once
    would lose one's vote."""
    from filelock import FileLock, Timeout

    folder = votes_dir(core)
    folder.mkdir(parents=True, exist_ok=True)
    with _VOTES_LOCK:
        try:
            with FileLock(folder / ".lock", timeout=LOCK_TIMEOUT_S):
                yield
        except Timeout:
            raise LoragError(
                f"the votes in {folder} are being written by another process for over {LOCK_TIMEOUT_S:g} s",
                hint=f"try again; if no lorag process runs, remove {folder / '.lock'}",
            ) from None


def votes_dir(core: Any) -> Path:
    return core.data_dir / "votes"


def votes_domain(core: Any, domain: str | None) -> str:
    """The votes file's domain: a checked domain name ("all" is none: votes are kept per domain)."""
    dom = core.domain_arg(domain)
    if dom is None:
        listed = ", ".join(f"{d} ({n})" for d, n in voted_domains(core).items())
        raise LoragError(
            "votes are kept per domain, as `lorag eval` takes them: pick the domain above (not 'all')",
            hint=f"domains with votes: {listed}" if listed else "no votes yet",
        )
    return check_domain(dom)


def sort_votes_of_all(core: Any) -> int:
    """Votes an earlier version kept under "all" (`votes/all.jsonl`) move to the domain their passages came from,
    where export finds them; a vote whose passages name several domains, or none, stays there. The moved votes are
    appended to their domains' files before all.jsonl is rewritten without them (a crash in between leaves a vote
    in both: a vote whose id is in its domain's file already is not added again). The export orders votes by
    time, so a moved (older) vote never wins over a newer one on the same question. Returns how many moved."""
    src = votes_dir(core) / f"{ALL_DOMAINS}.jsonl"
    if not src.is_file():
        return 0
    with _writing(core):
        if not src.is_file():
            return 0
        keep: list[bytes] = []  # lines kept as they were, whatever their bytes
        moved: dict[str, list[dict[str, Any]]] = {}
        for line in src.read_bytes().split(b"\n"):
            if not line.strip():
                continue
            vote, domain = _vote_of(line), None
            try:
                if vote is not None:
                    domain, _ = comparison_domain({"domain": ALL_DOMAINS, "passages": vote["passages"]})
                    domain = check_domain(domain) if domain is not None else None
            except (KeyError, TypeError, LoragError):
                domain = None
            if domain is None or domain == ALL_DOMAINS:
                keep.append(line)
            else:
                moved.setdefault(domain, []).append({**vote, "domain": domain})
        for domain, votes in moved.items():
            dest = votes_dir(core) / f"{domain}.jsonl"
            have = {v.get("id") for v in _votes_in(dest)}
            with dest.open("a", encoding="utf-8") as fh:
                fh.write("".join(json.dumps(v, ensure_ascii=False) + "\n" for v in votes if v["id"] not in have))
                fh.flush()
                os.fsync(fh.fileno())
        if moved:
            if keep:
                _replace(src, b"".join(v + b"\n" for v in keep))
            else:
                src.unlink(missing_ok=True)
        return sum(len(v) for v in moved.values())


def _is_side(side: Any) -> bool:
    cited = side.get("citations", []) if isinstance(side, dict) else None
    return (
        isinstance(side, dict)
        and isinstance(side.get("answer", ""), str)
        and isinstance(side.get("adapter", ""), str)
        and isinstance(cited, list)
        and all(isinstance(c, dict) and "n" in c for c in cited)
    )


def _vote_of(line: bytes) -> dict[str, Any] | None:
    """The vote a line of a votes file holds: a JSON object with what an export reads, of the types it reads;
    None for anything else (a line torn by a crash mid-write, even inside a character; one edited by hand)."""
    try:
        v = json.loads(line.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError included
        return None
    ok = (
        isinstance(v, dict)
        and isinstance(v.get("id"), (str, int))
        and v["id"] != ""
        and isinstance(v.get("question"), str)
        and v.get("vote") in VOTES
        and _is_side(v.get("left"))
        and _is_side(v.get("right"))
        and isinstance(v.get("reference") or "", str)
        and isinstance(v.get("passages"), list)
        and all(isinstance(p, dict) and isinstance(p.get("source"), str) and "n" in p for p in v["passages"])
    )
    return v if ok else None


def _votes_in(f: Path, unreadable: list[int] | None = None) -> list[dict[str, Any]]:
    """The votes of a file (see _vote_of), one per comparison (were two lines to hold one comparison's vote, the
    later one is its vote); the numbers of the lines that hold none are added to `unreadable`, blank lines are
    nothing. Lines end at line feeds only: a vote's text may hold any other line separator."""
    if not f.is_file():
        return []
    out: dict[str, dict[str, Any]] = {}
    for n, line in enumerate(f.read_bytes().split(b"\n"), 1):
        if not line.strip():
            continue
        v = _vote_of(line)
        if v is not None:
            out[str(v["id"])] = v
        elif unreadable is not None:
            unreadable.append(n)
    return list(out.values())


def voted_domains(core: Any) -> dict[str, int]:
    """{domain: votes (comparisons voted on)} of the domains with a votes file."""
    sort_votes_of_all(core)
    files = sorted(votes_dir(core).glob("*.jsonl")) if votes_dir(core).is_dir() else []
    return {f.stem: len(_votes_in(f)) for f in files if not f.stem.endswith("-testset") and f.stem != ALL_DOMAINS}


def comparison_domain(comparison: dict[str, Any]) -> tuple[str | None, list[str]]:
    """(the domain a vote on the comparison counts for, the domains of its passages): the domain searched; with
    every domain searched ("all"), the one its passages came from (None when they came from several, or none)."""
    dom = comparison["domain"]
    if not isinstance(dom, str):
        raise TypeError("domain must be a string")
    came_from = sorted({p["domain"] for p in comparison["passages"]})
    if dom != ALL_DOMAINS:
        return dom, came_from
    return (came_from[0] if len(came_from) == 1 else None), came_from


def no_vote_domain(came_from: list[str]) -> str:
    """Why a comparison of every domain takes no vote: its passages name no one domain."""
    if not came_from:
        return "no passage was found in any domain, so a vote would be a test case of no domain"
    return (
        f"the passages come from several domains ({', '.join(came_from)}), and a vote is a test case of one "
        "domain (what `lorag eval` takes)"
    )


def votes_file(core: Any, domain: str | None) -> Path:
    return votes_dir(core) / f"{votes_domain(core, domain)}.jsonl"


def new_comparison_id() -> str:
    """The id of a new comparison, which its vote keeps."""
    return secrets.token_hex(6)


def comparison_id(comparison: dict[str, Any]) -> str:
    """The comparison's id; one without (built by a script) is known by its content: the question, the domain,
    both sides' arms and answers and the passages."""
    cid = comparison.get("id")
    if cid is None:
        seen = {
            "question": comparison["question"],
            "domain": comparison["domain"],
            "sides": [[comparison[s]["adapter"], comparison[s]["answer"]] for s in ("left", "right")],
            "passages": [[p["n"], p["source"], p["domain"]] for p in comparison["passages"]],
        }
        return hashlib.sha256(json.dumps(seen, sort_keys=True).encode()).hexdigest()[:12]
    if not isinstance(cid, str) or not _ID.fullmatch(cid):
        raise TypeError("id must be the comparison's id as /compare returned it")
    return cid


def record_vote(core: Any, comparison: dict[str, Any], vote: str, reference: str | None = None) -> dict[str, Any]:
    """Store a vote; `reference`: the right answer as the voter wrote it (what a tie or "both bad" needs to be
    exported as a test case). One vote per comparison: a vote on a comparison voted on already replaces that vote.
    Returns the row stored, with "replaced": the vote it replaced ({"vote", "time", "reference"?}), else None."""
    if vote not in VOTES:
        raise LoragError(f"vote must be one of {', '.join(VOTES)}")
    if not isinstance(comparison, dict) or not comparison or not comparison.get("done"):
        raise LoragError("ask a question first: there is no finished comparison to vote on")
    if reference is not None and not isinstance(reference, str):
        raise LoragError("the reference answer must be text")
    try:
        row = _vote_row(comparison, vote)
        if reference and reference.strip():
            row["reference"] = reference.strip()
    except (KeyError, TypeError, AttributeError) as e:
        raise LoragError(
            f"the comparison is malformed ({type(e).__name__}: {e}); vote on what /compare returned"
        ) from None
    if _vote_of(json.dumps(row, ensure_ascii=False).encode()) is None:  # stored only as the reader reads it back
        raise LoragError(
            "the comparison is malformed (a side or passage of the wrong type); vote on what /compare returned"
        )
    f = votes_file(core, row["domain"])
    sort_votes_of_all(core)  # older votes first
    with _writing(core):
        old = _put_vote(f, row)
    replaced = None if old is None else {k: old[k] for k in ("vote", "time", "reference") if k in old}
    return {**row, "replaced": replaced}


def _put_vote(f: Path, row: dict[str, Any]) -> dict[str, Any] | None:
    """Write the vote to the file: appended, and the vote it replaces (its comparison's) taken out, the file then
    rewritten whole (every other line as it was) and put in place of the old one. The lines stay in the order the
    votes were cast, which the export follows on votes of one second. Returns the vote it replaced, if any."""
    line = json.dumps(row, ensure_ascii=False).encode()
    data = f.read_bytes() if f.is_file() else b""
    kept: list[bytes] = []
    old: dict[str, Any] | None = None
    for held in data.split(b"\n"):
        v = _vote_of(held) if held.strip() else None
        if v is not None and str(v["id"]) == row["id"]:
            old = v  # were there two (none is written so), the later is the vote replaced
        else:
            kept.append(held)
    if old is None:
        with f.open("ab") as fh:
            fh.write((b"\n" if data and not data.endswith(b"\n") else b"") + line + b"\n")
        return None
    text = b"\n".join(kept)
    _replace(f, text + (b"\n" if text and not text.endswith(b"\n") else b"") + line + b"\n")
    return old


def _replace(f: Path, data: bytes) -> None:
    """`f` holds `data`, whole or not at all: written beside it, synced, renamed over it, the rename synced."""
    tmp = f.with_name(f".{f.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, f)
    finally:
        tmp.unlink(missing_ok=True)
    fd = os.open(f.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _vote_row(comparison: dict[str, Any], vote: str) -> dict[str, Any]:
    if not isinstance(comparison["question"], str):
        raise TypeError("question must be a string")
    domain, came_from = comparison_domain(comparison)
    if domain is None:
        raise LoragError(
            no_vote_domain(came_from), hint="pick the domain above and compare again to vote on its answers"
        )
    check_domain(domain)
    return {
        "id": comparison_id(comparison),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "vote": vote,
        "question": comparison["question"],
        "domain": domain,
        "left": {k: v for k, v in comparison["left"].items() if k != "final"},
        "right": {k: v for k, v in comparison["right"].items() if k != "final"},
        "passages": [{k: p[k] for k in ("n", "ref", "source", "domain")} for p in comparison["passages"]],
    }


def read_votes(core: Any, domain: str | None, unreadable: list[int] | None = None) -> list[dict[str, Any]]:
    """A domain's votes, one per comparison; the numbers of lines that hold none are added to `unreadable` (see
    _votes_in)."""
    sort_votes_of_all(core)
    return _votes_in(votes_file(core, domain), unreadable)


def export_votes(core: Any, domain: str | None) -> dict[str, Any]:
    """Votes of a domain -> `<data_dir>/votes/<domain>-testset.jsonl` (the last vote per question wins). The counts
    add up: votes = cases + both_bad_skipped + tie_skipped + superseded (older votes on a question voted on again,
    in another comparison)."""
    unreadable: list[int] = []
    votes = read_votes(core, domain, unreadable)
    by_q: dict[str, dict[str, Any]] = {}
    superseded = 0
    for v in sorted(votes, key=lambda v: str(v.get("time", ""))):  # the latest vote on a question wins
        q = v["question"].strip().lower()
        superseded += q in by_q
        by_q[q] = v
    rows, both_bad, no_reference = [], 0, 0
    for v in by_q.values():
        reference = (v.get("reference") or "").strip()
        preferred = v["right"] if v["vote"] == "right" else v["left"] if v["vote"] == "left" else None
        if not reference and (preferred is None or not preferred.get("answer", "").strip()):
            both_bad += v["vote"] == "both_bad"
            no_reference += v["vote"] != "both_bad"
            continue  # no answer known to be right: never make one the reference
        side = preferred or {}
        cited = {c["n"] for c in side.get("citations", [])}
        sources = list(dict.fromkeys(p["source"] for p in v["passages"] if not cited or p["n"] in cited))
        tags = ["vote", v["vote"] if v["vote"] in ("tie", "both_bad") else f"preferred:{side.get('adapter', '')}"]
        if reference:
            tags.append("edited reference")
        rows.append(
            {
                "id": f"vote-{v['id']}",
                "question": v["question"],
                "answer": reference or side["answer"].strip(),
                "sources": sources,
                "tags": tags,
            }
        )
    out = votes_dir(core) / f"{votes_domain(core, domain)}-testset.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return {
        "path": str(out),
        "cases": len(rows),
        "votes": len(votes),
        "both_bad_skipped": both_bad,
        "tie_skipped": no_reference,
        "superseded": superseded,
        "unreadable_lines": unreadable,
        "votes_file": str(votes_file(core, domain)),
    }
