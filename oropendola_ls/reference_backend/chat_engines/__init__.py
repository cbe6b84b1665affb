"""The reference backend's chat engines: the offline one and an OpenAI-compatible model.

`base` defines what an engine gets (`ChatRequest`, the editor `ChatContext`) and gives (text
deltas); `offline` answers from static analysis and the workspace index; `openai_compat`
streams a model's answer from Ollama, llama.cpp server, vLLM or any OpenAI-compatible server.
"""

from oropendola_ls.reference_backend.chat_engines.base import (
    ACTIONS,
    ChatContext,
    ChatEngine,
    ChatRequest,
    ContextError,
    EngineError,
    HistoryEntry,
    IndexLookup,
    WorkspaceLookup,
    parse_context,
    text_deltas,
)
from oropendola_ls.reference_backend.chat_engines.offline import (
    HEADER,
    OFFLINE_MODEL,
    OfflineEngine,
)
from oropendola_ls.reference_backend.chat_engines.openai_compat import (
    LLMConfig,
    OpenAICompatEngine,
    ProviderConfigError,
)

__all__ = [
    "ACTIONS",
    "HEADER",
    "OFFLINE_MODEL",
    "ChatContext",
    "ChatEngine",
    "ChatRequest",
    "ContextError",
    "EngineError",
    "HistoryEntry",
    "IndexLookup",
    "LLMConfig",
    "OfflineEngine",
    "OpenAICompatEngine",
    "ProviderConfigError",
    "WorkspaceLookup",
    "engine_for",
    "parse_context",
    "text_deltas",
]


def engine_for(llm: LLMConfig | None) -> ChatEngine:
    """The model behind ``llm``, or the offline engine when there is none."""
    return OfflineEngine() if llm is None else OpenAICompatEngine(llm)
