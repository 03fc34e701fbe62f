"""Namespace validation and matching, shared by every store backend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graphrt.store.base import MatchCondition

__all__ = (
    "InvalidNamespaceError",
    "check_key",
    "check_put_namespace",
    "check_labels",
    "matches_condition",
    "under_prefix",
)


class InvalidNamespaceError(ValueError):
    """A namespace is empty or one of its labels is not allowed."""


_VALID: dict[tuple[str, ...], bool] = {}
"""Namespaces already checked, to whether they may also hold items (see `check_put_namespace`): a store is
called with the same few namespaces over and over, so each is checked once, not on every call."""
_VALID_LIMIT = 4096
"""The memo is cleared when it grows past this many namespaces (it only saves time)."""


def _known(namespace: Any) -> bool | None:
    """Whether a memoized namespace may hold items; None when it was not checked yet (or cannot be memoized)."""
    if type(namespace) is not tuple:
        return None
    try:
        return _VALID.get(namespace)
    except TypeError:  # an unhashable label: the full check reports it
        return None


def known_writable(namespace: Any) -> bool:
    """Whether `namespace` is a tuple already checked as a namespace items may be written under."""
    return _known(namespace) is True


def _remember(namespace: tuple[str, ...], writable: bool) -> None:
    if len(_VALID) >= _VALID_LIMIT:
        _VALID.clear()
    _VALID[namespace] = writable


def check_labels(namespace: Sequence[Any]) -> None:
    """Raise `InvalidNamespaceError` unless every label is a non-empty string free of `.`, NUL and lone surrogates."""
    if _known(namespace) is not None:
        return
    _check_labels(namespace)
    if type(namespace) is tuple:
        _remember(namespace, bool(namespace) and namespace[0] != "langgraph")


def _check_labels(namespace: Sequence[Any]) -> None:
    for label in namespace:
        if not isinstance(label, str):
            raise InvalidNamespaceError(
                f"Invalid namespace label '{label}' found in {namespace}. Namespace labels"
                f" must be strings, but got {type(label).__name__}."
            )
        if "." in label:
            raise InvalidNamespaceError(
                f"Invalid namespace label '{label}' found in {namespace}. Namespace labels cannot"
                " contain periods ('.')."
            )
        if "\x00" in label:
            raise InvalidNamespaceError(
                f"Invalid namespace label '{label}' found in {namespace}. Namespace labels cannot"
                " contain NUL bytes ('\\x00')."
            )
        if not label:
            raise InvalidNamespaceError(f"Namespace labels cannot be empty strings. Got {label} in {namespace}")
        if not label.isascii():
            try:
                label.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidNamespaceError(
                    f"Invalid namespace label {label!r} found in {namespace}. Namespace labels cannot contain"
                    " lone surrogates (not valid Unicode text)."
                ) from None


def check_key(key: Any) -> str:
    """A store key: a string that every backend can store (no NUL, no lone surrogate)."""
    if not isinstance(key, str):
        raise TypeError(f"Store keys must be strings, got {type(key).__name__}: {key!r}.")
    if "\x00" in key:
        raise ValueError(f"Store key {key!r} contains a NUL character ('\\x00'), which databases cannot store.")
    if not key.isascii():
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                f"Store key {key!r} contains a lone surrogate, which is not valid Unicode text and cannot be stored."
            ) from None
    return key


def check_put_namespace(namespace: Sequence[Any]) -> None:
    """Validate a namespace an item is written under: non-empty, valid labels, not rooted at "langgraph"."""
    if _known(namespace):
        return
    if not isinstance(namespace, tuple):
        raise InvalidNamespaceError(
            f"Namespace must be a tuple of strings, got {type(namespace).__name__}: {namespace!r}."
        )
    if not namespace:
        raise InvalidNamespaceError("Namespace cannot be empty.")
    check_labels(namespace)
    if namespace[0] == "langgraph":
        raise InvalidNamespaceError(f'Root label for namespace cannot be "langgraph". Got: {namespace}')


def under_prefix(namespace: tuple[str, ...], prefix: tuple[str, ...]) -> bool:
    """Whether `namespace` starts with the whole labels of `prefix`.

    ("acme",) matches ("acme", "x") but never ("acme-corp",).
    """
    return namespace[: len(prefix)] == prefix


def matches_condition(namespace: tuple[str, ...], condition: MatchCondition) -> bool:
    """Whether a namespace satisfies a prefix or suffix condition; `"*"` matches any one label."""
    path = condition.path
    if len(namespace) < len(path):
        return False
    if condition.match_type == "prefix":
        pairs = zip(namespace, path, strict=False)
    elif condition.match_type == "suffix":
        pairs = zip(reversed(namespace), reversed(path), strict=False)
    else:
        raise ValueError(f"Unsupported match type: {condition.match_type!r}; use 'prefix' or 'suffix'.")
    return all(want == "*" or have == want for have, want in pairs)
