"""The component graph: validation and ordering."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from warden._exceptions import DependencyError


def start_order(depends_on: Mapping[str, Sequence[str]]) -> list[str]:
    """Return the names in an order where every component follows its dependencies.

    The order is stable: level by level (first those with no dependencies, then those whose
    dependencies are all placed, ...), registration order within a level, so the same program
    starts the same way every time. Raises :class:`DependencyError` for an
    unknown name or a cycle, naming the path.
    """
    for name, deps in depends_on.items():
        for dep in deps:
            if dep not in depends_on:
                known = ", ".join(depends_on) or "none"
                raise DependencyError(
                    f"component {name!r} depends on {dep!r}, which is not registered; "
                    f"add a component named {dep!r} or fix the name (registered: {known})"
                )
    order: list[str] = []
    placed: set[str] = set()
    remaining = list(depends_on)
    while remaining:
        ready = [n for n in remaining if all(d in placed for d in depends_on[n])]
        if not ready:
            raise DependencyError(
                f"dependency cycle: {' -> '.join(_find_cycle(depends_on, remaining))}; "
                "remove one of these depends_on entries"
            )
        for name in ready:
            order.append(name)
            placed.add(name)
        remaining = [n for n in remaining if n not in placed]
    return order


def _find_cycle(depends_on: Mapping[str, Sequence[str]], candidates: list[str]) -> list[str]:
    # Every unplaced component has an unplaced dependency, so walking dependencies from any
    # of them must revisit a node; the walk from that node back to itself is the cycle.
    path: list[str] = []
    node = candidates[0]
    while node not in path:
        path.append(node)
        node = next(d for d in depends_on[node] if d in candidates)
    return [*path[path.index(node) :], node]
