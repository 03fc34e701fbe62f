"""The store basics of the seed documents: put, get, and search with a filter and a query.

Run: python examples/store_basics.py
"""

from __future__ import annotations

from graphrt.store.memory import InMemoryStore


def embed(texts: list[str]) -> list[list[float]]:
    # Replace with an actual embedding function (graphrt.embeddings has offline ones).
    return [[1.0, 2.0] for _ in texts]


# InMemoryStore saves data to an in-memory dictionary. Use a DB-backed store in production use.
store = InMemoryStore(index={"embed": embed, "dims": 2})
user_id = "my-user"
application_context = "chitchat"
namespace = (user_id, application_context)
store.put(
    namespace,
    "a-memory",
    {
        "rules": [
            "User likes short, direct language",
            "User only speaks English & python",
        ],
        "my-key": "my-value",
    },
)
# get the "memory" by ID
item = store.get(namespace, "a-memory")
print("get:", item.key if item else None, item.value if item else None)

# search for "memories" within this namespace, filtering on content equivalence, sorted by vector similarity
items = store.search(namespace, filter={"my-key": "my-value"}, query="language preferences")
print("search:", [(i.key, i.value["rules"], round(i.score or 0, 3)) for i in items])

# The course notebook's store: namespace, key, value.
in_memory_store = InMemoryStore()
memory_namespace = ("1", "memories")
in_memory_store.put(memory_namespace, "a-memory-key", {"food_preference": "I like pizza"})
memories = in_memory_store.search(memory_namespace)
print("course search:", [m.dict() | {"created_at": "...", "updated_at": "..."} for m in memories])
print("course get:", in_memory_store.get(memory_namespace, "a-memory-key").value)
