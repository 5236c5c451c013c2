"""Chat tab: streamed answers with expandable citations, adapter and domain pickers, follow-ups."""

from __future__ import annotations

import html
import re
import secrets
from pathlib import Path
from typing import Any, Iterator

from assistant.answer import Answer
from assistant.errors import EMPTY_QUESTION, LoragError
from assistant.markup import markdown_literal
from assistant.routing import AUTO
from assistant.sentences import CJK_CHARS
from ui.answer_markdown import closed_markdown, one_html_block, outside_code

# the conversation fills the window above the question box (the page's title, tabs and pickers take ~340 px),
# so the box is in sight when the tab opens; never shorter than a few turns
CHAT_HEIGHT = "max(300px, calc(100vh - 340px))"
NOTHING_INDEXED = "Nothing is indexed yet: add documents in the **Documents** tab, then ask again."


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _where(p: Any) -> str:
    parts = [f"<code>{esc(p.ref)}</code>"]
    if getattr(p, "same_text", None):  # the same text found elsewhere too (retrieval kept this one)
        parts.append("same text in " + ", ".join(f"<code>{esc(r)}</code>" for r in p.same_text))
    parts.append(f"domain {esc(p.domain)}")
    return " · ".join(parts)


def _md() -> Any:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    # an image is its alt text, as the quote reads it (a document's image path does not load from the chat)
    md.add_render_rule(
        "image", lambda self, tokens, i, options, env: self.renderInline(tokens[i].children, options, env)
    )
    return md


_TAG = re.compile(r"(<[^>]*>)")
# a line break that a quote reads as no space: after a word that a hyphen cut (the hyphen goes too), between two
# Chinese or Japanese characters
_JOINED = re.compile(rf"(?<=[^\W\d_])-[ \t]*\n\s*(?=[^\W\d_])|(?<=[{CJK_CHARS}])[ \t]*\n[ \t]*(?=[{CJK_CHARS}])")


def _joined(m: re.Match[str]) -> bool:
    return m[0][0] != "-" or m.string[m.end()].islower()


def _highlight(html_text: str, quote: str) -> tuple[str, bool]:
    """Mark the supporting sentence (plain text) inside the rendered passage, whatever inline markup runs through
    it (**bold**, `code`, a link): each text piece of it between tags gets its own <mark>, so the HTML stays
    well nested; (html, whether it was found)."""
    want = " ".join(quote.split())
    if not want:
        return html_text, False
    parts = _TAG.split(html_text)  # even: text (escaped), odd: a tag
    texts = {i: html.unescape(parts[i]) for i in range(0, len(parts), 2)}
    plain: list[str] = []  # the passage's text, whitespace collapsed, and where each of its characters is
    where: list[tuple[int, int]] = []
    for i, text in texts.items():
        joined = {j for m in _JOINED.finditer(text) if _joined(m) for j in range(m.start(), m.end())}
        for j, ch in enumerate(text):
            if j in joined:  # read as the quote reads it: "tradi-" "tional" one word (assistant/sentences.py)
                continue
            if ch.isspace():
                if not plain or plain[-1] == " ":
                    continue
                ch = " "
            plain.append(ch)
            where.append((i, j))
    at = "".join(plain).find(want)
    if at < 0:
        return html_text, False
    spans: dict[int, list[int]] = {}  # text piece -> [first, last] character of it inside the sentence
    for i, j in where[at : at + len(want)]:
        spans.setdefault(i, [j, j])[1] = j
    for i, (a, b) in spans.items():
        text = texts[i]
        inside = text[a : b + 1]
        if inside.strip():  # a bare newline between two tags is no text to mark
            parts[i] = esc_text(text[:a]) + f"<mark>{esc_text(inside)}</mark>" + esc_text(text[b + 1 :])
    return "".join(parts), True


def esc_text(text: str) -> str:
    return html.escape(text, quote=False)


def is_table(p: Any) -> bool:
    """A passage of CSV rows (one "column: value; ..." line per row)."""
    return str(getattr(p, "section", "") or "").startswith("table: ")


def passage_html(p: Any) -> str:
    """The passage rendered from its markdown; CSV rows one per line (markdown would run them into a paragraph)."""
    md = _md()
    text = re.sub(r"\A(?:[ \t]*\n)+", "", p.text).rstrip()  # the first line keeps its indentation: code cut mid-block
    if is_table(p):
        rows = [line.strip() for line in text.splitlines() if line.strip()]
        return '<ul class="cite-rows">' + "".join(f"<li>{md.renderInline(r)}</li>" for r in rows) + "</ul>"
    return md.render(text)


def cite_id(key: str, n: int) -> str:
    """The id of source n under the answer rendered with `key` (unique per answer: several answers in one chat, or
    side by side, each open their own source)."""
    return f"cite-{key}-{n}"


def new_key() -> str:
    return secrets.token_hex(4)


def passage_block(p: Any, label: str | None = None, quote: str = "", anchor: str = "") -> str:
    """One `<details>`: the summary is a short label (file › section, p. N, CSV row N); opened, the supporting
    sentence first (highlighted), then the passage rendered from its markdown with that sentence marked, then
    where it is from. `anchor`: its id, which the answer's [n] marker links to."""
    from assistant.passage_label import passage_label

    summary = label or f"[{p.n}] {esc(passage_label(p))}"
    quote_line = f'<div class="cite-quote">“<mark>{esc_text(quote)}</mark>”</div>' if quote else ""
    body, _ = _highlight(passage_html(p), quote)
    ident = f' id="{esc(anchor)}"' if anchor else ""
    return (
        f'<details class="cite"{ident}><summary>{summary}</summary>{quote_line}<div class="cite-body">{body}</div>'
        f'<div class="cite-meta">{_where(p)}</div></details>'
    )


def citations_html(ans: Answer, key: str = "") -> str:
    """Citations under an answer, each with its supporting sentence (and, with `key`, the id its [n] marker links
    to); when the model cited nothing, the passages it was given."""
    by_n = {p.n: p for p in ans.passages}
    blocks = []
    for c in ans.citations:
        p = by_n.get(c.n)
        if p is not None:
            note = ' <span class="cite-note">(inferred: the model wrote no marker)</span>' if c.how == "overlap" else ""
            anchor = cite_id(key, c.n) if key else ""
            numbers = "".join(f"[{n}]" for n in c.markers)  # [1][3]: the answer's markers this source stands for
            blocks.append(passage_block(p, f"{numbers} {esc(c.label or c.ref)}{note}", c.quote, anchor))
    if blocks:
        return one_html_block('<div class="cites"><b>Sources</b>' + "".join(blocks) + "</div>")
    if ans.relevant and ans.passages:
        return one_html_block(
            '<div class="cites"><b>Passages used (none cited)</b>'
            + "".join(passage_block(p) for p in ans.passages)
            + "</div>"
        )
    return ""


def route_line(ans: Answer) -> str:
    if not ans.relevant:
        return '<div class="route">no model ran: nothing relevant was found</div>'
    route = ans.route or {}
    who = route.get("adapter") or ans.adapter or "base"
    why = route.get("reason", "")
    return f'<div class="route">answered by <b>{esc(who)}</b>' + (f" — {esc(why)}" if why else "") + "</div>"


_MARKER = re.compile(r"\[(\d{1,2})\]")


def answer_body(ans: Answer, key: str = "") -> str:
    """The answer with its [n] markers (inferred ones added) shown as small badges, and a note when it was cut.
    With `key` (the one given to citations_html) each badge links to its source: a click opens it (CITE_JS)."""
    source = {n: c.n for c in ans.citations for n in c.markers}  # a marker merged into another's source opens it

    def badge(m: re.Match) -> str:
        n = int(m.group(1))
        if n not in source:
            return m.group(0)
        if not key:
            return f'<sup class="cite-ref">[{n}]</sup>'
        to = source[n]
        return f'<sup><a class="cite-ref" href="#{cite_id(key, to)}" title="open source {to}">[{n}]</a></sup>'

    text = outside_code(ans.marked_answer(), lambda prose: _MARKER.sub(badge, prose))  # code shows [n] as is
    text = closed_markdown(text)  # nothing after it is taken into its blocks
    if ans.cut:
        text += (
            f'\n\n<div class="cut">✂ cut at the token limit ({ans.tokens} tokens, models.max_new_tokens): the answer '
            "is incomplete</div>"
        )
    return text


def render_answer(ans: Answer, key: str | None = None) -> str:
    """The answer, its route and its sources; `key` (default: a new random one) makes its sources' ids unique."""
    key = key or new_key()
    body = answer_body(ans, key) if ans.relevant else ans.answer
    if not ans.relevant:
        body += "\n\n_Add documents about this in the **Documents** tab, or pick another domain._"
    return body + "\n\n" + route_line(ans) + citations_html(ans, key)


def message(e: BaseException) -> str:
    """A LoragError's message with its hint on the same line."""
    base = str(e.args[0]) if e.args else type(e).__name__
    hint = getattr(e, "hint", None)
    return base + (f" — {hint}" if hint else "")


def on_shown(shown: tuple[Any, ...], fn: Any, inputs: list[Any], outputs: list[Any]) -> None:
    """Run `fn` on each event that shows a tab (the page's load, the tab's select), so what it shows is worked out
    then, not left as it was when the app started."""
    for event in shown:
        event(fn, inputs, outputs, api_visibility="private", queue=False)


def warn(e: BaseException | str, *, file: Any = None) -> str:
    """An error (or its message) for a Markdown view: "⚠ message — hint", shown as written (markdown_literal: a
    `<spec>` in it is no HTML tag), a multi-line message kept on its lines, and an uploaded file named by its name
    (not the server's temporary path)."""
    text = message(e) if isinstance(e, BaseException) else str(e)
    if file:
        text = text.replace(str(file), Path(str(file)).name)
    return "⚠ " + markdown_literal(text).replace("\n", "  \n")


def error_text(e: LoragError) -> str:
    if "nothing is indexed" in str(e):
        return NOTHING_INDEXED
    return warn(e)


def partial_answer(text: str) -> str:
    """An answer while it streams: the text so far and a cursor, as the final answer's markdown reads (a code
    block the model has opened shows as code, the cursor in it)."""
    return closed_markdown(text + " ▌")


def chat_turn(
    core: Any, message: str, history: list, turns: list, dom: str, choice: str
) -> Iterator[tuple[list, list, str]]:
    """One question in the chat: (conversation, earlier turns, input box) as the answer streams in. An
    error (an engine that is down, too slow, or fails mid-answer) ends the turn with a clear message
    after what came so far."""
    message = (message or "").strip()
    history = list(history or [])
    if not message:
        yield history, turns, ""
        return
    history.append({"role": "user", "content": markdown_literal(message)})  # shown as typed: `<b>` is no bold
    history.append({"role": "assistant", "content": "…"})
    yield history, turns, ""
    text = ""
    try:
        for item in core.stream(message, dom, adapter=choice, history=[tuple(t) for t in turns]):
            if isinstance(item, Answer):
                history[-1] = {"role": "assistant", "content": render_answer(item)}
                turns = [*turns, (message, item.answer)]
            else:
                text += item
                history[-1] = {"role": "assistant", "content": partial_answer(text)}
            yield history, turns, ""
    except LoragError as e:  # an engine that fails mid-answer: what came so far, then why it stopped
        so_far = closed_markdown(text) + "\n\n" if text else ""  # the message is not read as the answer's code
        history[-1] = {"role": "assistant", "content": so_far + error_text(e)}
        yield history, turns, ""


def build(core: Any) -> None:
    import gradio as gr

    with gr.Row():
        domain = gr.Dropdown(core.domain_choices(), value="all", label="Domain", elem_id="chat-domain", scale=1)
        adapter = gr.Dropdown(
            core.chat_adapters(),
            value=AUTO,
            label="Adapter",
            elem_id="chat-adapter",
            scale=1,
            info="auto routes each question; base is the plain model",
        )
    chatbot = gr.Chatbot(
        label="Conversation",
        elem_id="chatbot",
        height=CHAT_HEIGHT,
        sanitize_html=True,
        placeholder="Ask a question about your documents.",
    )
    pairs = gr.State([])  # (question, answer text) of earlier turns, for follow-ups
    with gr.Row():
        question = gr.Textbox(
            placeholder="Ask a question… (Enter to send)", show_label=False, elem_id="chat-input", scale=6
        )
        send = gr.Button("Send", variant="primary", elem_id="chat-send", scale=1)
        clear = gr.Button("New chat", elem_id="chat-clear", scale=1)
    status = gr.Markdown(elem_id="chat-status")  # why nothing was sent (an empty question), as side by side says it

    def chat(message: str, history: list, turns: list, dom: str, choice: str) -> Iterator[tuple[list, list, str, str]]:
        """A question sent; an empty one is not: the tab says so under the input, the conversation stays."""
        if not (message or "").strip():
            yield list(history or []), turns, "", warn(EMPTY_QUESTION)
            return
        for out in chat_turn(core, message, history, turns, dom, choice):
            yield (*out, "")

    for trigger in (question.submit, send.click):
        trigger(
            chat,
            [question, chatbot, pairs, domain, adapter],
            [chatbot, pairs, question, status],
            api_visibility="private",
            concurrency_limit=core.generation_slots,
            concurrency_id="generation",
        )
    clear.click(lambda: ([], [], ""), None, [chatbot, pairs, status], api_visibility="private")

    def refresh_choices(dom: str, choice: str) -> tuple[Any, Any]:
        doms, ads = core.domain_choices(), core.chat_adapters()
        return (
            gr.Dropdown(choices=doms, value=dom if dom in doms else "all"),
            gr.Dropdown(choices=ads, value=choice if choice in ads else AUTO),
        )

    domain.focus(refresh_choices, [domain, adapter], [domain, adapter], api_visibility="private", queue=False)
    adapter.focus(refresh_choices, [domain, adapter], [domain, adapter], api_visibility="private", queue=False)


def register_api(core: Any) -> None:
    """Gradio API endpoints for scripting with gradio_client (`/ask`, `/adapters`)."""
    import gradio as gr

    def ask(question: str, domain: str = "all", adapter: str = AUTO) -> dict:
        """Answer a question from the indexed documents: answer, citations, passages, route."""
        try:
            ans = core.ask(question, domain, adapter=adapter)
        except LoragError as e:
            return {"error": message(e)}
        return ans.to_dict()

    def adapters() -> dict:
        """Adapter and domain choices: chat (auto, base, served), side by side (every version)."""
        return {"chat": core.chat_adapters(), "compare": core.compare_adapters(), "domains": core.domain_choices()}

    gr.api(ask, api_name="ask", concurrency_limit=core.generation_slots, concurrency_id="generation")
    gr.api(adapters, api_name="adapters")
