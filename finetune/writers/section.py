"""The section writer: a section's title or a definition-list term, answered by its opening prose."""

from __future__ import annotations

import random
import re

from finetune.text import Block, blocks, opening, plain
from finetune.writers.candidate import Candidate, qtype
from finetune.writers.titles import clean_title, code_like, term_question, title_question, title_subject
from finetune.writers.wording import lemmas, you_to_me


def _prose_after(bl: list[Block], i: int) -> list[str]:
    """The prose paragraphs of this section from block i on (code, lists and tables skipped; the
    next heading or term ends the section)."""
    out = []
    for b in bl[i:]:
        if b.kind in ("heading", "term"):
            break
        if b.kind == "prose":
            out.append(b.text)
    return out


def section_candidates(text: str, section: str, rng: random.Random, *, max_terms: int = 2) -> list[Candidate]:
    path = [p for p in (section or "").split(" > ") if p.strip()]
    bl = blocks(text)
    out: list[Candidate] = []
    if not bl:
        return out
    title = path[-1] if path else ""
    opens = bool(title) and (bl[0].kind == "heading" or plain(bl[0].text) == plain(title))
    body_text = " ".join(b.text for b in bl[1:] if b.kind in ("prose", "item"))  # how the section writes its words
    if opens:
        heading = bl[0].text if bl[0].kind == "heading" else title
        body = _prose_after(bl, 1)
        if clean_title(heading).lower() == "name" and body:  # a man page's NAME line: "git-clone - Clone a repository"
            q, a = _name_line(body[0])
        else:
            q = title_question(heading, path[:-1], body_text, rng)
            a = opening(body, min_words=20, max_words=70) if body and q else None
        if q and a:
            out.append(Candidate(q, a, "section", qtype(q)))
    terms = [(i, b) for i, b in enumerate(bl) if b.kind == "term" and i + 1 < len(bl) and not (opens and i == 0)]
    rng.shuffle(terms)
    for i, b in terms[:max_terms]:
        q = term_question(b.text, path, body_text, rng)
        definition = [bl[i + 1].text] + [x.text for x in bl[i + 2 :] if x.kind == "prose" and x.indent > b.indent]
        a = opening(definition, min_words=8) if q else None
        if q and a:
            out.append(Candidate(q, a, "section", qtype(q)))
            how = option_howto(b.text, a, path)
            if how:
                out.append(how)
    return out


def option_howto(term: str, definition: str, path: list[str]) -> Candidate | None:
    """An option whose definition opens with a verb ('Create a shallow clone ...', 'Specifies how ...')
    also answers 'How do I create a shallow clone?': use the option, as its definition says."""
    t = plain(term).strip()
    if not t.startswith("-"):
        return None
    opt = re.split(r"[\s=\[<,]", t, maxsplit=1)[0]
    first_clause = re.split(r"[.;:,(]", definition, maxsplit=1)[0].strip()
    ws = first_clause.split()
    if not 3 <= len(ws) <= 14:
        return None
    lem = lemmas(ws[0])
    if "VERB" not in lem:
        return None
    base = lem["VERB"][0]
    if ws[0].lower() not in (base, base + "s", base + "es") and not ws[0].lower().endswith("s"):
        return None
    cmd = next((title_subject(clean_title(p)) for p in reversed(path) if code_like(title_subject(clean_title(p)))), "")
    q = f"How do I {base} {you_to_me(' '.join(ws[1:]))}" + (f" with {cmd}?" if cmd else "?")
    a = f"Use the {opt} option" + (f" of {cmd}" if cmd else "") + f": {definition[0].lower() + definition[1:]}"
    return Candidate(q, a, "section", "how")


def _name_line(line: str) -> tuple[str | None, str | None]:
    m = re.match(r"^(\S+(?:,\s*\S+)*)\s+-{1,2}\s+(.+)$", line)
    if not m:
        return None, None
    name, desc = m.group(1).split(",")[0].strip(), m.group(2).strip().rstrip(".")
    first, _, rest = desc.partition(" ")
    lem = lemmas(first)
    if "VERB" in lem and lem["VERB"][0] == first.lower() and rest:
        from lemminflect import getInflection

        third = getInflection(first.lower(), tag="VBZ")
        return f"What does {name} do?", f"{name} {third[0] if third else first.lower()} {rest}."
    return f"What is {name}?", f"{name} is {desc[0].lower() + desc[1:]}."
