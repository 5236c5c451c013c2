"""Chat tab: streamed answers with expandable citations, adapter and domain pickers, follow-ups."""

from __future__ import annotations

import html
from typing import Any, Iterator

from assistant.answer import Answer
from assistant.errors import LoragError
from assistant.routing import AUTO

NOTHING_INDEXED = "Nothing is indexed yet: add documents in the **Documents** tab, then ask again."


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _where(p: Any) -> str:
    parts = [f"source <code>{esc(p.source)}</code>"]
    if p.section:
        parts.append(f"section <i>{esc(p.section)}</i>")
    if p.page:
        parts.append(f"page {p.page}")
    parts.append(f"domain {esc(p.domain)}")
    return " · ".join(parts)


def passage_block(p: Any, label: str | None = None) -> str:
    """One `<details>`: the summary names the passage, the body is its text and where it is from."""
    text = esc(p.text.strip()).replace("\n", "<br>")
    return (f'<details class="cite"><summary>{label or f"[{p.n}] {esc(p.ref)}"}</summary>'
            f'<div class="cite-meta">{_where(p)}</div><blockquote>{text}</blockquote></details>')  # fmt: skip


def citations_html(ans: Answer) -> str:
    """Citations under an answer; when the model cited nothing, the passages it was given."""
    by_n = {p.n: p for p in ans.passages}
    blocks = []
    for c in ans.citations:
        p = by_n.get(c.n)
        if p is not None:
            note = " <i>(inferred)</i>" if c.how == "overlap" else ""
            blocks.append(passage_block(p, f"[{c.n}] {esc(c.ref)}{note}"))
    if blocks:
        return '<div class="cites"><b>Sources</b>' + "".join(blocks) + "</div>"
    if ans.relevant and ans.passages:
        return '<div class="cites"><b>Passages used (none cited)</b>' + "".join(passage_block(p) for p in ans.passages) + "</div>"
    return ""


def route_line(ans: Answer) -> str:
    route = ans.route or {}
    who = route.get("adapter") or ans.adapter or "base"
    why = route.get("reason", "")
    return f'<div class="route">answered by <b>{esc(who)}</b>' + (f" — {esc(why)}" if why else "") + "</div>"


def render_answer(ans: Answer) -> str:
    body = ans.answer
    if not ans.relevant:
        body += "\n\n_Add documents about this in the **Documents** tab, or pick another domain._"
    return body + "\n\n" + route_line(ans) + citations_html(ans)


def message(e: BaseException) -> str:
    """A LoragError's message with its hint on the same line."""
    base = str(e.args[0]) if e.args else type(e).__name__
    hint = getattr(e, "hint", None)
    return base + (f" — {hint}" if hint else "")


def error_text(e: LoragError) -> str:
    if "nothing is indexed" in str(e):
        return NOTHING_INDEXED
    return "⚠ " + message(e)


def chat_turn(core: Any, message: str, history: list, turns: list, dom: str, choice: str) -> Iterator[tuple[list, list, str]]:
    """One question in the chat: (conversation, earlier turns, input box) as the answer streams in. An
    error (an engine that is down, too slow, or fails mid-answer) ends the turn with a clear message
    after what came so far."""
    message = (message or "").strip()
    history = list(history or [])
    if not message:
        yield history, turns, ""
        return
    history.append({"role": "user", "content": message})
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
                history[-1] = {"role": "assistant", "content": text + " ▌"}
            yield history, turns, ""
    except LoragError as e:  # an engine that fails mid-answer: what came so far, then why it stopped
        history[-1] = {"role": "assistant", "content": (text + "\n\n" if text else "") + error_text(e)}
        yield history, turns, ""


def build(core: Any) -> None:
    import gradio as gr

    with gr.Row():
        domain = gr.Dropdown(core.domain_choices(), value="all", label="Domain", elem_id="chat-domain", scale=1)
        adapter = gr.Dropdown(core.chat_adapters(), value=AUTO, label="Adapter", elem_id="chat-adapter", scale=1,
                              info="auto routes each question; base is the plain model")  # fmt: skip
    chatbot = gr.Chatbot(label="Conversation", elem_id="chatbot", height=520, sanitize_html=True,
                         placeholder="Ask a question about your documents.")  # fmt: skip
    pairs = gr.State([])  # (question, answer text) of earlier turns, for follow-ups
    with gr.Row():
        question = gr.Textbox(placeholder="Ask a question… (Enter to send)", show_label=False, elem_id="chat-input", scale=6)
        send = gr.Button("Send", variant="primary", elem_id="chat-send", scale=1)
        clear = gr.Button("New chat", elem_id="chat-clear", scale=1)

    def chat(message: str, history: list, turns: list, dom: str, choice: str) -> Iterator[tuple[list, list, str]]:
        yield from chat_turn(core, message, history, turns, dom, choice)

    for trigger in (question.submit, send.click):
        trigger(chat, [question, chatbot, pairs, domain, adapter], [chatbot, pairs, question],
                api_visibility="private", concurrency_limit=core.generation_slots,
                concurrency_id="generation")  # fmt: skip
    clear.click(lambda: ([], []), None, [chatbot, pairs], api_visibility="private")

    def refresh_choices(dom: str, choice: str) -> tuple[Any, Any]:
        doms, ads = core.domain_choices(), core.chat_adapters()
        return (gr.Dropdown(choices=doms, value=dom if dom in doms else "all"),
                gr.Dropdown(choices=ads, value=choice if choice in ads else AUTO))  # fmt: skip

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
