"""Offline question writers: the questions a reader of a document would ask, each answered with a
complete sentence or two of the chunk, written the way the chunk says it.

- `section` (section.py): a chunk that opens a section → a question made from the section's title
  (titles.py: how-to for "Configuring X" and "Create a table", what-is for noun phrases, what-does for
  commands and code, the title itself when it is a question), answered by the section's opening prose;
  a term of a definition list (an option, a setting, a function, a glossary word) → "What does --depth
  do?", answered by its definition.
- `sentence` (sentence.py): a definition sentence ("A tuple is ...", "X means ...") → "What is a
  tuple?"; a procedure sentence ("To undo a commit, run ...", "If you want to X, ...", "Use Y to X.")
  → "How do I undo a commit?"; answered by that sentence and the next when it is short.
- `cloze` (cloze.py): a fact of a sentence blanked (never a man-page section number, a footnote or
  citation marker, part of a URL or a list index); answered by the whole sentence.

Each writer returns candidates (candidate.py); finetune/synth.py filters them. wording.py holds the
word forms they share (lemmas, gerunds, "you" → "I", sentence case).
"""
