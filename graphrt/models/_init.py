"""`init_chat_model("provider:model")`: LangChain's one-line way to pick a chat model."""

from __future__ import annotations

from typing import Any

from graphrt.models._base import BaseChatModel

__all__ = ("init_chat_model",)

_PROVIDERS = ("anthropic", "openai")
_PREFIXES = (("claude", "anthropic"), ("gpt-", "openai"), ("o1", "openai"), ("o3", "openai"), ("o4", "openai"))


def init_chat_model(
    model: str | None = None,
    *,
    model_provider: str | None = None,
    configurable_fields: Any = None,
    config_prefix: str | None = None,
    **kwargs: Any,
) -> BaseChatModel:
    """A chat model from `"provider:model"` (or `model` plus `model_provider`), as LangChain's `init_chat_model`.

    Providers: `anthropic` (`ChatAnthropic`) and `openai` (`ChatOpenAI`, also for any OpenAI-compatible
    server: pass `base_url=` or set `OPENAI_BASE_URL`). Without a provider, it is inferred from the model
    name (`claude...` -> anthropic, `gpt-...`/`o1`/`o3`/`o4` -> openai). Other keyword arguments go to the
    model class (`api_key`, `base_url`, `temperature`, `max_tokens`, `timeout`, `max_retries`, ...).

    Raises:
        ValueError: no model, an unknown provider, or a provider that cannot be inferred.
        NotImplementedError: `configurable_fields` (runtime-configurable models are not supported).
        MissingAPIKeyError: the provider needs a key and none was given or set in its environment variable.
    """
    if configurable_fields is not None or config_prefix is not None:
        raise NotImplementedError(
            "init_chat_model(configurable_fields=...) is not supported by graphrt: build the model you need "
            "with init_chat_model('provider:model', ...) instead."
        )
    if not model:
        raise ValueError("init_chat_model needs a model, e.g. init_chat_model('anthropic:claude-3-5-haiku-latest').")
    provider = model_provider
    if provider is None and ":" in model:
        head, _, rest = model.partition(":")
        if head in _PROVIDERS:
            provider, model = head, rest
    if provider is None:
        provider = next((p for prefix, p in _PREFIXES if model.startswith(prefix)), None)
    if provider is None:
        raise ValueError(
            f"Unable to infer model provider for model={model!r}; pass 'provider:model' or model_provider=... "
            f"(graphrt supports: {', '.join(_PROVIDERS)})."
        )
    provider = provider.replace("-", "_").lower()
    if provider == "anthropic":
        from graphrt.models._anthropic import ChatAnthropic

        return ChatAnthropic(model, **kwargs)
    if provider == "openai":
        from graphrt.models._openai import ChatOpenAI

        return ChatOpenAI(model, **kwargs)
    raise ValueError(
        f"Unsupported model_provider={provider!r}. graphrt supports: {', '.join(_PROVIDERS)} "
        "(for another OpenAI-compatible server use 'openai:<model>' with base_url=...)."
    )
