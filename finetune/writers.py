"""Offline question writers: the questions a reader of a document would ask, each answered with a
complete sentence or two of the chunk, written the way the chunk says it.

- `section`: a chunk that opens a section → a question made from the section's title (how-to for
  "Configuring X" and "Create a table", what-is for noun phrases, what-does for commands and code,
  the title itself when it is a question), answered by the section's opening prose; a term of a
  definition list (an option, a setting, a function, a glossary word) → "What does --depth do?",
  answered by its definition.
- `sentence`: a definition sentence ("A tuple is ...", "X means ...") → "What is a tuple?"; a
  procedure sentence ("To undo a commit, run ...", "If you want to X, ...", "Use Y to X.") →
  "How do I undo a commit?"; answered by that sentence and the next when it is short.
- `cloze`: a fact of a sentence blanked (never a man-page section number, a footnote or citation
  marker, part of a URL or a list index); answered by the whole sentence.

Each writer returns candidates; finetune/synth.py filters them.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache

from finetune.text import Block, blocks, is_sentence, opening, plain, split_sentences, words


@dataclass
class Candidate:
    question: str
    answer: str
    writer: str
    qtype: str


def qtype(question: str) -> str:
    """how | what | why | which | when | where | who | yes-no | other (the question's first word)."""
    first = question.split()[0].lower().strip("¿") if question.split() else ""
    if first in ("how", "what", "why", "which", "when", "where", "who"):
        return first
    if first in ("can", "is", "are", "does", "do", "should", "could", "will", "may", "must"):
        return (
            "yes-no"
            if first not in ("could", "can")
            or not re.match(r"^(can|could) you (explain|describe|show)", question, re.I)
            else "what"
        )
    return "other"


# -- words -------------------------------------------------------------------------------------
@lru_cache(maxsize=65536)
def _lemmas(word: str) -> dict[str, tuple[str, ...]]:
    from lemminflect import getAllLemmas

    return dict(getAllLemmas(word.lower()))


@lru_cache(maxsize=65536)
def _verb_lemma(word: str) -> str | None:
    from lemminflect import getLemma

    lem = getLemma(word.lower(), upos="VERB")
    return lem[0] if lem else None


def gerund_base(word: str) -> str | None:
    """'Configuring' -> 'configure', 'Running' -> 'run'; None for words that are not a gerund."""
    w = word.lower()
    if (
        not w.endswith("ing")
        or len(w) < 5
        or w
        in (
            "string",
            "thing",
            "something",
            "nothing",
            "everything",
            "anything",
            "spring",
            "ring",
            "king",
            "evening",
            "ceiling",
            "during",
            "morning",
        )
    ):
        return None
    lem = _verb_lemma(w)
    return lem if lem and lem != w else None


_OBJECT_START = {
    "the",
    "a",
    "an",
    "your",
    "my",
    "our",
    "their",
    "this",
    "these",
    "that",
    "those",
    "up",
    "out",
    "off",
    "down",
    "over",
    "back",
    "new",
    "multiple",
    "all",
    "each",
    "every",
    "any",
    "some",
    "it",
    "them",
    "files",
    "data",
    "changes",
    "with",
    "from",
    "to",
    "into",
    "between",
    "and",
    "or",
}


def is_imperative(title: str) -> bool:
    """'Create a table', 'Undo the last commit': a base-form verb first, then its object."""
    ws = title.split()
    if len(ws) < 2 or not ws[0].isalpha():
        return False
    lem = _lemmas(ws[0])
    if "VERB" not in lem or lem["VERB"][0] != ws[0].lower():
        return False
    return "NOUN" not in lem and "ADJ" not in lem or ws[1].lower() in _OBJECT_START


def _you_to_me(text: str) -> str:
    for a, b in (("you're", "I'm"), ("you’re", "I’m"), ("you've", "I've"), ("you'll", "I'll"), ("you'd", "I'd")):
        text = re.sub(rf"\b{a}\b", b, text, flags=re.I)
    text = re.sub(r"\byour\b", "my", text)
    text = re.sub(r"\byours\b", "mine", text)
    text = re.sub(r"\byourself\b", "myself", text)
    return re.sub(r"\byou\b", "I", text)


def _lower_word(word: str, context: str) -> str:
    """An ordinary capitalised word in lower case (not an acronym, not code, not a name the context
    always writes with a capital)."""
    if word in ("The", "A", "An"):
        return word.lower()
    if not word or not word[0].isupper() or not word[1:].islower() or not word.isalpha():
        return word
    if context and not re.search(rf"\b{word.lower()}\b", context) and re.search(rf"\b{word}\b", context):
        return word  # written with a capital in the text, never without: a name (Python, Git)
    return word.lower()


def _lower_first(text: str, context: str = "") -> str:
    """A title's words in sentence case: 'Error Codes' -> 'error codes', 'Python Objects' -> 'Python objects'."""
    return " ".join(_lower_word(w, context) for w in text.split(" "))


def _is_plural(phrase: str) -> bool:
    head = re.split(r"\s+(?:of|for|in|on|with|to|from|between|and)\s+", phrase, maxsplit=1)[0]
    last = re.sub(r"[^A-Za-z]", "", head.split()[-1]) if head.split() else ""
    if len(last) < 3 or last.endswith(("ss", "us", "is", "ics")) or not last.endswith("s") or last.isupper():
        return False
    lem = _lemmas(last)
    return not lem or ("NOUN" in lem and lem["NOUN"][0] != last.lower())


# -- titles ------------------------------------------------------------------------------------
GENERIC_TITLES = {
    "description",
    "overview",
    "introduction",
    "discussion",
    "details",
    "summary",
    "background",
    "about",
    "general",
    "definition",
    "purpose",
    "abstract",
    "preface",
    "intro",
    "name",
}
SKIP_TITLES = {
    "see also",
    "author",
    "authors",
    "bugs",
    "reporting bugs",
    "examples",
    "example",
    "footnotes",
    "contents",
    "table of contents",
    "index",
    "copyright",
    "license",
    "licence",
    "changelog",
    "history",
    "references",
    "further reading",
    "acknowledgements",
    "acknowledgments",
    "credits",
    "version",
    "colophon",
    "navigation",
    "search",
    "related",
    "todo",
    "synopsis",
    "options",
    "files",
    "environment",
    "exit status",
    "notes",
    "note",
    "documentation",
    "links",
    "resources",
    "appendix",
    "glossary",
    "contributors",
    "thanks",
    "errata",
    "git",
    "part of the git suite",
    "next topic",
    "previous topic",
    "this page",
    "quick search",
}
ASPECTS = {
    "syntax",
    "usage",
    "limitations",
    "restrictions",
    "performance",
    "parameters",
    "arguments",
    "return value",
    "errors",
    "caveats",
    "security",
    "compatibility",
    "requirements",
    "format",
    "structure",
    "configuration",
    "defaults",
    "behavior",
    "behaviour",
    "implementation",
    "semantics",
    "availability",
    "portability",
    "limits",
    "side effects",
    "exceptions",
    "complexity",
    "rules",
    "properties",
    "attributes",
    "methods",
    "output",
    "input",
    "internals",
    "diagnostics",
    "return values",
    "exit codes",
    "variables",
    "hooks",
}


def clean_title(title: str) -> str:
    t = plain(title)
    t = re.sub(r"^(?:chapter|part|appendix|section)\s+[\dIVXLC]+[.:]?\s*", "", t, flags=re.I)
    t = re.sub(r"^\d+(?:\.\d+)*\.?\s+|^\(\d+\)\s*", "", t)  # "2.1.3. Foo", "(19) SQLITE_CONSTRAINT"
    t = re.sub(r"\s*Manual Page$", "", t, flags=re.I)
    t = re.sub(r"(?<=\w)\(\d[a-z]*\)", "", t)  # git-clone(1)
    return t.strip(" .:—–-").strip()


def _case(title: str) -> str:
    """A title in capitals (a man page's DESCRIPTION, SPECIFYING THE REFS) in lower case."""
    return title.lower() if re.fullmatch(r"[A-Z][A-Z ]{3,}", title) else title


def _subject(title: str) -> str:
    """The name part of 'datetime --- Basic date and time types' / 'git-clone - Clone a repository'."""
    return re.split(r"\s+(?:---|—|–|--|-)\s+", title, maxsplit=1)[0].strip()


def _code_like(t: str) -> bool:
    return bool(
        re.match(r"^-{1,2}\w", t)
        or re.match(r"^[\w.:/-]*[_.:/()-][\w.:/()-]*$", t)
        and " " not in t
        or re.match(r"^\S+\(.*\)$", t)
        or (t.islower() and " " not in t and len(t) > 2 and not _lemmas(t))
    )


def title_question(title: str, parents: list[str], context: str, rng: random.Random) -> str | None:
    """A reader's question about the section `title` (parents: the titles above it, nearest last)."""
    t = _case(clean_title(title))
    parent = next(
        (
            _subject(clean_title(p))
            for p in reversed(parents)
            if clean_title(p).lower() not in GENERIC_TITLES | SKIP_TITLES and clean_title(p)
        ),
        "",
    )
    low = t.lower()
    if not t or low in SKIP_TITLES or len(t) > 120:
        return None
    if low in GENERIC_TITLES:
        if not parent:
            return None
        return f"What does {parent} do?" if _code_like(parent) else f"What is {_lower_first(parent, context)}?"
    if low in ASPECTS:
        if not parent:
            return None
        verb = "are" if _is_plural(low) else "is"
        return f"What {verb} the {low} of {parent}?"
    if t.endswith("?"):
        return t[0].upper() + t[1:]
    m = re.match(r"^how (?:to|do (?:i|you)) (.+)$", t, re.I)
    if m:
        return f"How do I {_you_to_me(m.group(1))}?"
    if re.match(r"^(why|when|where|what|which|who)\b", t, re.I):
        return t[0].upper() + t[1:] + "?"
    if re.search(r"\s(?:is|are|was|were|has|have|does|do|can|cannot|will|must|should)\s", t):
        return None  # a statement ("SQLite is Embedded, not Client-Server"): no question of its own
    subject = _subject(t)
    first, _, rest = subject.partition(" ")
    base = gerund_base(first)
    if base and rest:
        return f"How do I {base} {_you_to_me(_lower_first(rest, context))}?"
    if is_imperative(subject):
        return f"How do I {_you_to_me(first.lower() + (' ' + _lower_first(rest, context) if rest else ''))}?"
    if _code_like(subject):
        return f"What does the {subject} option do?" if subject.startswith("-") else f"What does {subject} do?"
    np = _lower_first(subject, context)
    if _is_plural(np):
        return rng.choice(
            [f"What are {np}?", f"What are {np}?", f"Can you explain {np}?", f"What should I know about {np}?"]
        )
    return rng.choice([f"What is {np}?", f"What is {np}?", f"Can you explain {np}?", f"What should I know about {np}?"])


def term_question(term: str, parents: list[str], context: str, rng: random.Random) -> str | None:
    """A question about a definition-list term: an option, a setting, a function, a word."""
    t = plain(term).strip()
    cmd = next((_subject(clean_title(p)) for p in reversed(parents) if _code_like(_subject(clean_title(p)))), "")
    if t.startswith("-"):
        opt = re.split(r"[\s=\[<,]", t, maxsplit=1)[0]
        return f"What does the {opt} option of {cmd} do?" if cmd else f"What does the {opt} option do?"
    arg = re.match(r"^<([\w-]+)>", t)
    if arg:
        return f"What is the {arg.group(1)} argument of {cmd}?" if cmd else None
    name = re.split(r"\s*[(<\[]|\s+-\s+|:", t, maxsplit=1)[0].strip()
    if not name or words(name) > 6:
        return None
    if _code_like(name) or re.search(r"[A-Z_]{3,}", name) and " " not in name:
        return (
            f"What does {name} do?" if "(" in t or not re.search(r"[a-z]\.[a-z]", name) else f"What is {name} used for?"
        )
    return title_question(name, parents, context, rng)


# -- the section writer ------------------------------------------------------------------------
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
    lem = _lemmas(ws[0])
    if "VERB" not in lem:
        return None
    base = lem["VERB"][0]
    if ws[0].lower() not in (base, base + "s", base + "es") and not ws[0].lower().endswith("s"):
        return None
    cmd = next((_subject(clean_title(p)) for p in reversed(path) if _code_like(_subject(clean_title(p)))), "")
    q = f"How do I {base} {_you_to_me(' '.join(ws[1:]))}" + (f" with {cmd}?" if cmd else "?")
    a = f"Use the {opt} option" + (f" of {cmd}" if cmd else "") + f": {definition[0].lower() + definition[1:]}"
    return Candidate(q, a, "section", "how")


def _name_line(line: str) -> tuple[str | None, str | None]:
    m = re.match(r"^(\S+(?:,\s*\S+)*)\s+-{1,2}\s+(.+)$", line)
    if not m:
        return None, None
    name, desc = m.group(1).split(",")[0].strip(), m.group(2).strip().rstrip(".")
    first, _, rest = desc.partition(" ")
    lem = _lemmas(first)
    if "VERB" in lem and lem["VERB"][0] == first.lower() and rest:
        from lemminflect import getInflection

        third = getInflection(first.lower(), tag="VBZ")
        return f"What does {name} do?", f"{name} {third[0] if third else first.lower()} {rest}."
    return f"What is {name}?", f"{name} is {desc[0].lower() + desc[1:]}."


# -- the sentence writer -----------------------------------------------------------------------
_PRONOUN_START = {
    "it",
    "this",
    "that",
    "these",
    "those",
    "there",
    "here",
    "he",
    "she",
    "they",
    "we",
    "you",
    "i",
    "which",
    "what",
    "each",
    "every",
    "some",
    "such",
    "all",
    "any",
    "both",
    "most",
    "one",
    "another",
    "other",
    "its",
    "their",
    "his",
    "her",
    "our",
    "your",
    "my",
    "now",
    "then",
    "also",
    "however",
    "note",
    "if",
    "when",
    "so",
    "thus",
    "hence",
    "but",
    "and",
    "or",
    "in",
    "on",
    "at",
    "for",
    "as",
    "by",
    "with",
    "from",
    "to",
    "of",
    "after",
    "before",
    "since",
    "while",
    "because",
    "although",
    "only",
    "many",
    "several",
    "few",
    "no",
    "none",
    "not",
    "more",
    "less",
    "first",
    "second",
    "next",
    "last",
    "same",
}
_CLAUSE_WORDS = {
    "if",
    "when",
    "that",
    "this",
    "which",
    "where",
    "whether",
    "than",
    "because",
    "but",
    "or",
    "not",
    "to",
    "by",
    "with",
    "in",
    "on",
    "at",
    "from",
    "as",
    "is",
    "are",
    "was",
    "be",
    "it",
    "can",
    "will",
    "may",
}
_DEF = re.compile(
    r"^(?P<art>(?:An?|The)\s+)?(?P<term>[A-Za-z0-9][\w'’/+-]*(?:\.\w+)*(?:\s+[\w'’/+-]+(?:\.\w+)*){0,4}?)\s+(?P<verb>is|are)\s+"
    r"(?P<rest>(?:an?|the|one|used|called|defined|responsible|designed|similar|equivalent|a set|a list|"
    r"a way|a kind|a type|a special|any)\b.+)$"
)
_MEANS = re.compile(
    r"^(?P<art>(?:An?|The)\s+)?(?P<term>[A-Za-z0-9][\w.'’/+-]*(?:\s+[\w.'’/+-]+){0,4}?)\s+"
    r"(?P<verb>means|refers to|denotes|stands for|represents)\s+(?P<rest>.+)$"
)
_TO = re.compile(r"^To (?P<goal>[a-z][^,;:]{3,90}),\s+(?P<rest>.+)$")
_IF_WANT = re.compile(r"^(?:If|When) you (?:want|need|wish|would like) to (?P<goal>[^,;:]{3,90}),\s+(?P<rest>.+)$")
_USE_TO = re.compile(r"^Use (?P<tool>[^.;:]{2,50}?) to (?P<goal>[a-z][^.;:]{3,80})[.,]")
_YOU_CAN = re.compile(r"^You can (?P<goal>[a-z][^.;:]{3,70}?) (?:by|with|using) (?P<rest>.+)$")
_LETS = re.compile(
    r"^(?P<subj>(?:The |An? )?[\w.()'’-]+(?: [\w.()'’-]+){0,4}) (?:lets|allows|enables) (?:you|users|the user) "
    r"(?:to )?(?P<goal>[a-z][^.;:]{3,80})[.;]"
)
_COND = re.compile(r"^(?P<word>If|When|Unless) (?P<cond>[^,;:]{8,90}), (?P<rest>.{8,})$")
_RETURNS = re.compile(
    r"^(?P<subj>(?:The |An? )?[\w.]+(?:\(\))?(?: (?:function|method|call|command|option|statement))?) "
    r"returns (?P<rest>.{4,})$"
)
_CAN = re.compile(
    r"^(?P<subj>(?:The |An? )?[\w.()'’-]+(?: [\w.()'’-]+){0,3}) (?P<neg>can|cannot|can't|can not) "
    r"(?P<verb>[a-z]+)(?P<rest>[^.;:]{0,60})[.;]"
)
_BECAUSE = re.compile(r"^(?P<clause>[A-Z][^,;:]{10,90}?),? because (?P<reason>.{6,})$")
_NO_SUBJECT = {
    "set",
    "given",
    "used",
    "specified",
    "called",
    "enabled",
    "disabled",
    "omitted",
    "present",
    "absent",
    "true",
    "false",
    "possible",
    "needed",
    "necessary",
    "unset",
    "empty",
    "run",
    "invoked",
    "configured",
    "passed",
    "supplied",
    "provided",
    "requested",
    "successful",
    "unsuccessful",
    "available",
    "applicable",
}
_AUX = {
    "is",
    "are",
    "was",
    "were",
    "can",
    "cannot",
    "will",
    "would",
    "should",
    "must",
    "may",
    "does",
    "do",
    "did",
    "has",
    "have",
}


def _goal_ok(goal: str) -> bool:
    first = goal.split()[0] if goal.split() else ""
    lem = _lemmas(first)
    return "VERB" in lem and lem["VERB"][0] == first.lower() and 2 <= words(goal) <= 14


def _subject_ok(subj: str) -> bool:
    ws = subj.split()
    return (
        bool(ws)
        and ws[0].lower() not in _PRONOUN_START - {"the", "a", "an"}
        and not set(w.lower() for w in ws[1:]) & _CLAUSE_WORDS
    )


def _why(clause: str) -> str | None:
    """'Python uses indentation' -> 'Why does Python use indentation?'; 'X is slow' -> 'Why is X slow?'."""
    ws = clause.rstrip(".").split()
    for i, w in enumerate(ws[1:6], 1):
        lw = w.lower()
        subj = " ".join(ws[:i])
        if not _subject_ok(subj):
            return None
        if lw in _AUX:
            rest = " ".join(ws[i + 1 :])
            if lw == "cannot":
                return f"Why can't {_lower_first(subj, clause)} {rest}?"
            return f"Why {lw} {_lower_first(subj, clause)} {rest}?" if rest else None
        lem = _lemmas(lw)
        if "VERB" in lem and lem["VERB"][0] != lw and lw.endswith("s"):
            return f"Why does {_lower_first(subj, clause)} {lem['VERB'][0]} {' '.join(ws[i + 1 :])}?".replace(" ?", "?")
    return None


def sentence_question(sentence: str) -> str | None:
    """The question a definition, procedure, condition or reason sentence answers, or None."""
    s = sentence.strip()
    for rx in (_TO, _IF_WANT):
        m = rx.match(s)
        if m and _goal_ok(m.group("goal")):
            return f"How do I {_you_to_me(m.group('goal').strip())}?"
    m = _USE_TO.match(s)
    if m and _goal_ok(m.group("goal")):
        return f"How do I {_you_to_me(m.group('goal').strip())}?"
    m = _YOU_CAN.match(s)
    if m and _goal_ok(m.group("goal")):
        return f"How can I {_you_to_me(m.group('goal').strip())}?"
    m = _LETS.match(s)
    if m and _goal_ok(m.group("goal")) and _subject_ok(m.group("subj")):
        return f"How can I {_you_to_me(m.group('goal').strip())}?"
    m = _COND.match(s)
    if (
        m
        and m.group("word") != "Unless"
        and not m.group("cond").lower().startswith(("you want", "you need", "you wish"))
        and m.group("cond").split()[0].lower()
        not in (_PRONOUN_START | _NO_SUBJECT) - {"the", "a", "an", "you", "your", "any", "no"}
    ):
        cond = _you_to_me(m.group("cond").strip())
        return f"What happens {m.group('word').lower()} {cond}?"
    m = _RETURNS.match(s)
    if m and _subject_ok(m.group("subj")):
        return f"What does {_lower_first(m.group('subj'), s)} return?"
    m = _CAN.match(s)
    if m and _subject_ok(m.group("subj")) and "VERB" in _lemmas(m.group("verb")):
        return f"Can {_you_to_me(_lower_first(m.group('subj'), s))} {m.group('verb')}{_you_to_me(m.group('rest'))}?"
    m = _BECAUSE.match(s)
    if m:
        q = _why(m.group("clause"))
        if q:
            return q
    for rx in (_DEF, _MEANS):
        m = rx.match(s)
        if not m:
            continue
        term = m.group("term").strip()
        if set(term.lower().split()[1:]) & _CLAUSE_WORDS:
            continue
        if term.split()[0].lower() in _PRONOUN_START or (
            m.group("art") is None and term.split()[0].lower() in _OBJECT_START
        ):
            continue
        art = (m.group("art") or "").strip()
        phrase = f"{art.lower()} {term}".strip() if art else term
        phrase = phrase if art else _lower_first(phrase, s[len(term) :])
        if rx is _MEANS:
            return f"What does {phrase} mean?"
        return f"What {m.group('verb')} {phrase}?"
    return None


def sentence_candidates(text: str, rng: random.Random, *, limit: int = 2) -> list[Candidate]:
    out: list[Candidate] = []
    for b in blocks(text):
        if b.kind != "prose":
            continue
        sents = split_sentences(b.text)
        for i, s in enumerate(sents):
            if not is_sentence(s, min_words=6, max_words=45):
                continue
            q = sentence_question(s)
            if not q:
                continue
            answer = s
            if (
                i + 1 < len(sents)
                and is_sentence(sents[i + 1], min_words=3, max_words=40)
                and words(s + " " + sents[i + 1]) <= 60
                and not re.match(r"^(To|If|When|Use|You can)\b", sents[i + 1])
            ):
                answer = f"{s} {sents[i + 1]}"
            out.append(Candidate(q, answer, "sentence", qtype(q)))
    rng.shuffle(out)
    return out[:limit]


# -- the cloze writer --------------------------------------------------------------------------
_FACT = re.compile(  # a code (HR-12) or a number with an optional unit; the space belongs to the unit
    r"\b(?:[A-Z]{1,4}-?\d[\w-]*|\d+(?:[.,]\d+)?(?:\s?(?:%|percent|days?|hours?|minutes?|seconds?|weeks?|months?|years?|"
    r"euros?|EUR|USD|dollars?|nm|mm|cm|kg|g|°C|V|W|GB|MB|KB|bytes?|characters?|times?|bits?)\b)?)(?!\w)"
)


def _blank_ok(sentence: str, m: re.Match) -> bool:
    """Not part of a longer token or of something that is no fact: a phone number, a time, a date, a
    path, a man-page section `mount(8)`, a footnote or citation `[1]`, a URL, a list index, a version."""
    before, after = sentence[: m.start()], sentence[m.end() :]
    if before[-1:] in ("+", ":", "/", ".", "-", "(", "[", "#", "v", "V") or re.search(r"\d\s?$", before):
        return False
    if re.match(r"\s?\d|[:/.,-]\d|[)\]]", after):
        return False
    token = re.search(r"\S*$", before).group(0) + m.group(0) + re.match(r"\S*", after).group(0)
    if re.search(r"://|www\.|\.(com|org|net|html?)\b|@", token):
        return False
    return not re.match(r"^\s*$", before)  # a number opening the sentence is a list index


def cloze_candidates(text: str, rng: random.Random) -> list[Candidate]:
    sents = [
        s
        for b in blocks(text)
        if b.kind == "prose"
        for s in split_sentences(b.text)
        if is_sentence(s, min_words=6, max_words=35)
    ]
    cands = [(s, m) for s in sents for m in _FACT.finditer(s) if m.group(0).strip() and _blank_ok(s, m)]
    if not cands:
        return []
    s, m = rng.choice(cands)
    blanked = (s[: m.start()] + "____" + s[m.end() :]).rstrip(" .")
    q = f"Fill in the blank: {blanked}. What goes in the blank?"
    return [Candidate(q, s, "cloze", "other")]
