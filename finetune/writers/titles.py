"""Section titles and definition-list terms turned into a reader's question."""

from __future__ import annotations

import random
import re

from finetune.text import plain, words
from finetune.writers.wording import gerund_base, is_imperative, is_plural, lemmas, lower_first, you_to_me

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

# what a question is made of whatever it asks about: a title of these words alone ("What to look for", "Where to
# start", "Getting started", "What is this") names no subject, so out of its section its question cannot be answered
ASKING_WORDS = set(
    "what which who whom whose when where why how whether to can could should would will must may i me my you your "
    "we our us it is are am be the a an of for in on at by with about from out up off over into there here then "
    "first next now else this that these those".split()
)
GENERIC_VERBS = set(
    "do be have get go come look see know find check use make take keep try start begin need expect happen mean "
    "say ask avoid watch consider explain".split()
)


def _generic_form(word: str) -> bool:
    """An inflected form of a generic verb ('started', 'looking', 'happens'), not also a noun ('checks', 'uses')."""
    lem = lemmas(word)
    return word not in GENERIC_VERBS and "NOUN" not in lem and bool(set(lem.get("VERB", ())) & GENERIC_VERBS)


def names_a_subject(title: str) -> bool:
    """The title holds a word other than the asking words and generic verbs. A generic verb as written ("find",
    "make", "check") is a subject, as a command or a noun ("Check", "Using find", "Mean"), unless an asking word
    comes before it ("What to look for", "How do I get started") or it opens a title of more words ("Get started")."""
    ws = re.findall(r"[^\W\d_]+|\d+", title.lower())
    for i, w in enumerate(ws):
        if w in ASKING_WORDS or _generic_form(w):
            continue
        if w in GENERIC_VERBS and (ws[i - 1] in ASKING_WORDS if i else len(ws) > 1):
            continue
        return True
    return False


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


def title_subject(title: str) -> str:
    """The name part of 'datetime --- Basic date and time types' / 'git-clone - Clone a repository'."""
    return re.split(r"\s+(?:---|—|–|--|-)\s+", title, maxsplit=1)[0].strip()


def code_like(t: str) -> bool:
    return bool(
        re.match(r"^-{1,2}\w", t)
        or re.match(r"^[\w.:/-]*[_.:/()-][\w.:/()-]*$", t)
        and " " not in t
        or re.match(r"^\S+\(.*\)$", t)
        or (t.islower() and " " not in t and len(t) > 2 and not lemmas(t))
    )


def title_question(title: str, parents: list[str], context: str, rng: random.Random) -> str | None:
    """A reader's question about the section `title` (parents: the titles above it, nearest last); None for a
    title that makes none, or only one that names no subject: the words it is about (the title's, or for a title
    such as "Overview" or "Examples" its parent's) are all asking words and generic verbs, and not code ("find(1)",
    "`make`": commands named after verbs)."""
    q = _title_question(title, parents, context, rng)
    if q is None:
        return None
    about = _parent(parents) if _case(clean_title(title)).lower() in GENERIC_TITLES | ASPECTS else title
    return q if code_like(about) or code_like(clean_title(about)) or names_a_subject(clean_title(about)) else None


def _parent(parents: list[str]) -> str:
    """The nearest title above that names something (not "Description", "See also"), as its name part."""
    return next(
        (
            title_subject(clean_title(p))
            for p in reversed(parents)
            if clean_title(p).lower() not in GENERIC_TITLES | SKIP_TITLES and clean_title(p)
        ),
        "",
    )


def _title_question(title: str, parents: list[str], context: str, rng: random.Random) -> str | None:
    t = _case(clean_title(title))
    parent = _parent(parents)
    low = t.lower()
    if not t or low in SKIP_TITLES or len(t) > 120:
        return None
    if low in GENERIC_TITLES:
        if not parent:
            return None
        return f"What does {parent} do?" if code_like(parent) else f"What is {lower_first(parent, context)}?"
    if low in ASPECTS:
        if not parent:
            return None
        verb = "are" if is_plural(low) else "is"
        return f"What {verb} the {low} of {parent}?"
    if t.endswith("?"):
        return t[0].upper() + t[1:]
    m = re.match(r"^how (?:to|do (?:i|you)) (.+)$", t, re.I)
    if m:
        return f"How do I {you_to_me(m.group(1))}?"
    if re.match(r"^(why|when|where|what|which|who)\b", t, re.I):
        return t[0].upper() + t[1:] + "?"
    if re.search(r"\s(?:is|are|was|were|has|have|does|do|can|cannot|will|must|should)\s", t):
        return None  # a statement ("SQLite is Embedded, not Client-Server"): no question of its own
    subject = title_subject(t)
    first, _, rest = subject.partition(" ")
    base = gerund_base(first)
    if base and rest:
        return f"How do I {base} {you_to_me(lower_first(rest, context))}?"
    if is_imperative(subject):
        return f"How do I {you_to_me(first.lower() + (' ' + lower_first(rest, context) if rest else ''))}?"
    if code_like(subject):
        return f"What does the {subject} option do?" if subject.startswith("-") else f"What does {subject} do?"
    np = lower_first(subject, context)
    if is_plural(np):
        return rng.choice(
            [f"What are {np}?", f"What are {np}?", f"Can you explain {np}?", f"What should I know about {np}?"]
        )
    return rng.choice([f"What is {np}?", f"What is {np}?", f"Can you explain {np}?", f"What should I know about {np}?"])


def term_question(term: str, parents: list[str], context: str, rng: random.Random) -> str | None:
    """A question about a definition-list term: an option, a setting, a function, a word."""
    t = plain(term).strip()
    cmd = next(
        (title_subject(clean_title(p)) for p in reversed(parents) if code_like(title_subject(clean_title(p)))), ""
    )
    if t.startswith("-"):
        opt = re.split(r"[\s=\[<,]", t, maxsplit=1)[0]
        return f"What does the {opt} option of {cmd} do?" if cmd else f"What does the {opt} option do?"
    arg = re.match(r"^<([\w-]+)>", t)
    if arg:
        return f"What is the {arg.group(1)} argument of {cmd}?" if cmd else None
    name = re.split(r"\s*[(<\[]|\s+-\s+|:", t, maxsplit=1)[0].strip()
    if not name or words(name) > 6:
        return None
    if code_like(name) or re.search(r"[A-Z_]{3,}", name) and " " not in name:
        return (
            f"What does {name} do?" if "(" in t or not re.search(r"[a-z]\.[a-z]", name) else f"What is {name} used for?"
        )
    return title_question(name, parents, context, rng)
