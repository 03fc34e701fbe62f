"""Short-term memory in the functional API (the seeds' `@entrypoint` example): `previous` holds what the
last run saved, `entrypoint.final` returns one value and saves another.

The seed iterates over `workflow.invoke(...)` in its first loop, which returns one message, not chunks;
this program streams both turns.

Run: python examples/functional_memory.py
"""

from __future__ import annotations

from _model import chat_model, describe, name_chat_script

from graphrt.checkpoint.memory import InMemorySaver
from graphrt.func import entrypoint, task
from graphrt.graph import add_messages
from graphrt.messages import AnyMessage

model = chat_model(name_chat_script())


@task
def call_model(messages: list[AnyMessage]):
    response = model.invoke(messages)
    return response


checkpointer = InMemorySaver()


@entrypoint(checkpointer=checkpointer)
def workflow(inputs: list[AnyMessage], *, previous: list[AnyMessage]):
    if previous:
        inputs = add_messages(previous, inputs)

    response = call_model(inputs).result()
    return entrypoint.final(value=response, save=add_messages(inputs, response))


if __name__ == "__main__":
    print(f"Model: {describe(model)}")
    config = {"configurable": {"thread_id": "1"}}
    for chunk in workflow.stream([{"role": "user", "content": "hi! I'm bob"}], config, stream_mode="values"):
        chunk.pretty_print()
    for chunk in workflow.stream([{"role": "user", "content": "what's my name?"}], config, stream_mode="values"):
        chunk.pretty_print()
