"""YAML read safely: PyYAML's safe loader, refusing documents whose aliases expand too far.

An alias (``*a``) repeats the node its anchor (``&a``) names. PyYAML builds an alias as a
second reference to one object, so parsing costs little; it is every reader *after* the parse
that pays for the expansion: validating, freezing into a snapshot, copying, hashing, printing.
Nine levels of nine aliases each ("billion laughs", 459 bytes) are 387 million values to any
of them (measured before this module: 950 MB and rising in ``ConfigStore``). The file size
cap cannot help, since the expansion happens after it.

So each document's node graph is composed first (no Python objects yet), its size *as
expanded* is counted once per distinct node (the graph is a DAG: a node's expanded size is
remembered, so counting costs what the file costs), and a document whose aliases add more
nodes than the file itself holds (and more than :data:`ALIAS_ALLOWANCE`) is refused before a
single object is built. A file without aliases is never refused; anchors used as intended
(defaults merged into a few tables with ``<<: *defaults``) stay far below the bar.

PyYAML is the ``yaml`` extra: it is imported on the first call, never at import time, so the
CLI and the supervisor load it only when they read YAML.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._exceptions import WardenError

ALIAS_ALLOWANCE = 10_000
"""Nodes that aliases may add to a document whatever its size: generous for a config's
``<<: *defaults``, far below what hurts (a billion laughs of depth 4 adds 74,000)."""


class RefusedYAMLError(WardenError, ValueError):
    """A YAML document refused before it is built: aliases that expand far beyond what the
    file holds, an alias inside itself, or nesting deeper than the parser can follow.
    ``line`` is where the document (or the problem) starts, 1-based."""

    def __init__(self, reason: str, line: int) -> None:
        self.line = line
        super().__init__(reason)


def _bomb(written: int, expanded: int, line: int) -> RefusedYAMLError:
    return RefusedYAMLError(
        f"its aliases expand {written:,} nodes to {expanded:,} (an alias bomb?); "
        "write the repeated values out, or nest fewer aliases",
        line,
    )


def safe_load(text: str) -> Any:
    """The one document in ``text`` (``None`` when empty), as ``yaml.safe_load`` reads it.

    Raises:
        RefusedYAMLError: aliases that expand too far, a recursive alias, nesting too deep.
        yaml.YAMLError: the text is not YAML (PyYAML's own error, with its marks).
        ImportError: PyYAML is not installed.
    """
    documents = list(safe_load_all(text))
    if len(documents) > 1:
        import yaml  # type: ignore[import-untyped]

        raise yaml.YAMLError("expected a single document, found more than one (a '---' line)")
    return documents[0] if documents else None


def safe_load_all(text: str) -> Iterator[Any]:
    """Every document in ``text``, in order, each checked before it is built."""
    for document, _ in _load_all(text, located=False):
        yield document


Lines = dict[tuple[str | int, ...], int]
"""Where each value of a document starts: its path (keys and list indexes) -> 1-based line."""


def safe_load_all_located(text: str) -> Iterator[tuple[Any, Lines]]:
    """Every document in ``text`` with the line of each of its values, for messages that
    name the line: ``lines[("spec", "containers", 0, "image")]``. Checked as
    :func:`safe_load_all` checks them."""
    return _load_all(text, located=True)


def _load_all(text: str, *, located: bool) -> Iterator[tuple[Any, Lines]]:
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        while loader.check_node():
            try:
                node = loader.get_node()  # PyYAML's composer recurses once per level
            except RecursionError:
                raise RefusedYAMLError(
                    "it nests collections deeper than the parser can follow; flatten it",
                    loader.get_mark().line + 1,
                ) from None
            _check_expansion(node)
            lines = _lines(node) if located else {}
            yield loader.construct_document(node), lines
    finally:
        loader.dispose()


def _lines(root: Any) -> Lines:
    """The line of every value reachable from ``root`` by keys that are scalars. Aliases are
    followed once per path: the document passed :func:`_check_expansion`, so the paths are
    bounded by what the file holds."""
    found: Lines = {}
    if root is None:
        return found
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        value = node.value
        if not isinstance(value, list):
            continue
        if value and isinstance(value[0], tuple):  # a mapping
            for key, child in value:
                if isinstance(key.value, str):
                    where = (*path, key.value)
                    found.setdefault(where, key.start_mark.line + 1)
                    stack.append((child, where))
        else:
            for index, child in enumerate(value):
                where = (*path, index)
                found.setdefault(where, child.start_mark.line + 1)
                stack.append((child, where))
    return found


def _check_expansion(root: Any) -> None:
    """Raise :class:`RefusedYAMLError` when aliases add too many nodes to ``root``'s document."""
    if root is None:
        return
    expanded: dict[int, int] = {}  # id(node) -> its size with every alias written out
    open_: set[int] = set()  # nodes whose children are being counted: the path from the root
    distinct = 0
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:  # iterative post-order: a deep document must not exhaust Python's stack
        node, children_done = stack.pop()
        key = id(node)
        if key in expanded:
            continue
        children = _children(node)
        if not children_done and children:
            if key in open_:  # reached again below itself: `&a [*a]`
                raise RefusedYAMLError(
                    "an alias refers to a node that contains it (a recursive document); "
                    "write the value out",
                    node.start_mark.line + 1,
                )
            open_.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in expanded)
            continue
        open_.discard(key)
        expanded[key] = 1 + sum(expanded[id(child)] for child in children)
        distinct += 1
    total = expanded[id(root)]
    if total - distinct > max(ALIAS_ALLOWANCE, distinct):
        raise _bomb(distinct, total, root.start_mark.line + 1)


def _children(node: Any) -> list[Any]:
    value = node.value
    if not isinstance(value, list):
        return []  # a scalar
    if value and isinstance(value[0], tuple):  # a mapping: (key, value) pairs
        return [part for pair in value for part in pair]
    return list(value)
