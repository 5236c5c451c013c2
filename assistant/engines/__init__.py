"""Generation engines behind the `Generator` interface (assistant/generation.py).

An OpenAI-compatible engine — vLLM (adapters served by name with `--enable-lora`), llama.cpp server,
Ollama or a hosted API — answers instead of a local model when `models.endpoint.base_url` is set:

    client.py            EngineClient: HTTP to the engine (timeouts, retries, concurrency bound, errors)
    sse.py               the `data:` payloads of a server-sent-events body
    openai_generator.py  OpenAIGenerator: the Generator protocol over an EngineClient

Modules here import httpx inside functions, so importing them costs nothing at start-up.
"""
