"""Word forms the writers share: lemmas, gerunds and imperatives, "you" turned to "I", sentence
case, plurals."""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=65536)
def lemmas(word: str) -> dict[str, tuple[str, ...]]:
    """A word's lemmas by part of speech: 'runs' -> {'NOUN': ('run',), 'VERB': ('run',)}."""
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


OBJECT_START = {
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
    lem = lemmas(ws[0])
    if "VERB" not in lem or lem["VERB"][0] != ws[0].lower():
        return False
    return "NOUN" not in lem and "ADJ" not in lem or ws[1].lower() in OBJECT_START


def you_to_me(text: str) -> str:
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


def lower_first(text: str, context: str = "") -> str:
    """A title's words in sentence case: 'Error Codes' -> 'error codes', 'Python Objects' -> 'Python objects'."""
    return " ".join(_lower_word(w, context) for w in text.split(" "))


def is_plural(phrase: str) -> bool:
    head = re.split(r"\s+(?:of|for|in|on|with|to|from|between|and)\s+", phrase, maxsplit=1)[0]
    last = re.sub(r"[^A-Za-z]", "", head.split()[-1]) if head.split() else ""
    if len(last) < 3 or last.endswith(("ss", "us", "is", "ics")) or not last.endswith("s") or last.isupper():
        return False
    lem = lemmas(last)
    return not lem or ("NOUN" in lem and lem["NOUN"][0] != last.lower())
