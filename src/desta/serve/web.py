"""``desta demo-web``: a Gradio page to upload or record audio and chat with the model.

The page calls the same :class:`~desta.infer.engine.Engine` as the server; ``chat_turn`` and
``stream_turn`` hold the only logic (append the user turn, generate, append the answer) and are tested
without a browser. Answers stream into the page token by token. The bundled example clip is offered
as an example (one click fills the audio and a question). The system prompt box starts empty: the
model then uses its own default system prompt (the one it was trained with, shown as the box's
placeholder); text typed there replaces it. Launched, the page prints its local URL only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from desta.errors import DeSTAError
from desta.infer.engine import Engine, as_engine
from desta.messages import AUDIO_LOCATOR

TITLE = "DeSTA2.5-Audio demo"


def system_placeholder(engine: Engine) -> str:
    """What the empty system box stands for: the engine's own default system prompt."""
    default = getattr(engine, "default_system_prompt", None)
    return f"(model default) {default}" if default else "(none: the model has no default system prompt)"


def chat_turn(
    engine: Engine,
    conversation: list[dict],
    audio_path: str | None,
    prompt: str,
    options: Any,
    system: str | None = None,
) -> tuple[list[dict], str]:
    """Add one user turn (optional audio + text), generate, and return (conversation, answer).

    The input ``conversation`` is not modified. Audio becomes ``<|AUDIO|>`` before the prompt. A
    non-empty ``system`` starts a new conversation with that system message; otherwise none is added
    and the model applies its own default system prompt.
    """
    conversation = user_turn(conversation, audio_path, prompt, system)
    (result,) = engine.generate([conversation], options)
    conversation.append({"role": "assistant", "content": result.text})
    return conversation, result.text


def user_turn(conversation: list[dict], audio_path: str | None, prompt: str, system: str | None = None) -> list[dict]:
    """A copy of ``conversation`` with the user's turn appended (see :func:`chat_turn`)."""
    from desta.audio import load_audio

    prompt = (prompt or "").strip()
    if not audio_path and not prompt:
        raise DeSTAError("record or upload audio, or type a message, before sending")
    conversation = list(conversation)
    if not conversation and system and system.strip():
        conversation.append({"role": "system", "content": system.strip()})
    message: dict = {"role": "user", "content": prompt}
    if audio_path:
        wave = load_audio(audio_path, max_seconds=600.0)
        message = {
            "role": "user",
            "content": f"{AUDIO_LOCATOR}\n{prompt}" if prompt else AUDIO_LOCATOR,
            "audios": [{"audio": wave, "text": None}],
        }
    conversation.append(message)
    return conversation


def stream_turn(
    engine: Engine,
    conversation: list[dict],
    audio_path: str | None,
    prompt: str,
    options: Any,
    system: str | None = None,
) -> Iterator[tuple[list[dict], str]]:
    """:func:`chat_turn`, streamed: yields ``(conversation, answer so far)`` once per text piece the
    engine produces; the last one's conversation ends with the whole answer. An engine without
    ``stream`` answers in one piece."""
    conversation = user_turn(conversation, audio_path, prompt, system)
    answer = ""
    if hasattr(engine, "stream"):
        for piece in engine.stream(conversation, options):
            answer += piece
            yield conversation, answer
    else:
        (result,) = engine.generate([conversation], options)
        answer = result.text
    yield [*conversation, {"role": "assistant", "content": answer}], answer


def example_inputs() -> list[list[str]]:
    """The page's examples: the bundled clip with the README's question (none if the clip is missing)."""
    from desta.model.load import example_clip

    try:
        return [[example_clip(), "What is said, and is the speaker a man or a woman?"]]
    except DeSTAError:
        return []


def build_demo(engine: Engine, options: Any = None):
    """The Gradio Blocks page (not launched)."""
    import gradio as gr

    engine = as_engine(engine)
    if options is None:
        from desta.infer.options import GenerationOptions

        options = GenerationOptions(max_new_tokens=256)

    def respond(audio_path, prompt, system, chat, conversation):
        chat = list(chat or [])
        shown = prompt or ""
        if audio_path:
            shown = f"🔊 {Path(audio_path).name}" + (f"\n{shown}" if shown else "")
        turns = stream_turn(engine, conversation or [], audio_path, prompt, options, system)
        try:
            for conv, answer in turns:  # the answer grows in the chat as tokens arrive
                shown_chat = [*chat, {"role": "user", "content": shown}, {"role": "assistant", "content": answer}]
                yield shown_chat, conv, None, ""
        except DeSTAError as err:
            raise gr.Error(str(err)) from None

    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        gr.Markdown(f"# {TITLE}\nModel: `{engine.name}`. Upload or record audio, ask about it, and chat.")
        conversation = gr.State([])
        chatbot = gr.Chatbot(label="Conversation", height=360, elem_id="desta-chat")
        with gr.Row():
            audio = gr.Audio(
                sources=["upload", "microphone"], type="filepath", label="Audio", elem_id="desta-audio"
            )
            with gr.Column():
                prompt = gr.Textbox(
                    label="Message", placeholder="What is said in the audio?", lines=2, elem_id="desta-prompt"
                )
                system = gr.Textbox(
                    label="System prompt (empty: the model's default)",
                    value="",
                    placeholder=system_placeholder(engine),
                    lines=1,
                )
                with gr.Row():
                    send = gr.Button("Send", variant="primary", elem_id="desta-send")
                    clear = gr.Button("Clear", elem_id="desta-clear")
        examples = example_inputs()
        if examples:
            gr.Examples(examples, [audio, prompt], label="Try the bundled example clip (a LibriVox reading)")
        inputs = [audio, prompt, system, chatbot, conversation]
        outputs = [chatbot, conversation, audio, prompt]
        send.click(respond, inputs, outputs)
        prompt.submit(respond, inputs, outputs)
        clear.click(lambda: ([], [], None, ""), None, outputs)
    return demo


def launch_demo(engine: Engine, host: str = "127.0.0.1", port: int = 7860, block: bool = True):
    """Build and serve the page; one request at a time reaches the model. Returns the Blocks.

    Prints one line, the page's local URL (Gradio's own banner, which suggests ``share=True``, a
    ``launch()`` argument a command-line user cannot set, is left out)."""
    demo = build_demo(engine)
    demo.queue(default_concurrency_limit=1, max_size=32)
    demo.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=True, quiet=True)
    print(f"desta demo-web: open {local_url(demo, host, port)} (Ctrl+C stops it)", flush=True)
    if block:
        try:
            demo.block_thread()
        finally:
            demo.close()
    return demo


def local_url(demo: Any, host: str, port: int) -> str:
    """The page's URL as Gradio serves it (``demo.local_url``), else ``http://host:port/``."""
    url = getattr(demo, "local_url", None)
    return url if isinstance(url, str) and url else f"http://{host}:{port}/"
