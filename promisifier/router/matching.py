"""Indexes of URIs and URI patterns (exact, prefix, wildcard) for registrations and subscriptions.

Routing must not scan every pattern per message, so each match policy has an index:

* exact: a dict;
* prefix: a dict per prefix, probed with the URI's leading slices of the lengths that
  occur among the registered prefixes (longest first) - cost grows with the number of
  distinct prefix lengths, not with the number of prefixes;
* wildcard: a trie of URI components where an empty component (the wildcard) is a child
  like any other; a lookup follows the concrete child and the wildcard child at each level.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Generic, TypeVar

T = TypeVar("T")


def iso_8601(seconds: float) -> str:
    """A clock reading as the meta API's ``created`` wants it: an ISO 8601 string (UTC)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def covers(pattern: str, match: str, uri: str) -> bool:
    """A registration or subscription of ``pattern`` with ``match`` covers the concrete ``uri``."""
    if match == "prefix":
        return uri.startswith(pattern)
    if match == "wildcard":
        parts, components = pattern.split("."), uri.split(".")
        return len(parts) == len(components) and all(p == "" or p == c for p, c in zip(parts, components))
    return pattern == uri


class _TrieNode(Generic[T]):
    __slots__ = ("children", "item")

    def __init__(self) -> None:
        self.children: dict[str, _TrieNode[T]] = {}
        self.item: T | None = None


def _wildcard_rank(pattern: str) -> tuple[int, ...]:
    # The spec prefers the pattern whose concrete components before each wildcard are
    # longest, first wildcard first: that is the largest tuple of wildcard positions, ended
    # by the component count (no further wildcard = the portion runs to the end, so
    # "a..c.d" beats "a..c." for "a.b.c.d").
    components = pattern.split(".")
    return tuple(index for index, component in enumerate(components) if component == "") + (len(components),)


class UriIndex(Generic[T]):
    """Items keyed by (URI, match policy); answers which items a concrete URI matches."""

    def __init__(self) -> None:
        self._exact: dict[str, T] = {}
        self._prefix: dict[str, T] = {}
        self._prefix_lengths: list[int] = []  # distinct prefix lengths, longest first
        self._prefix_length_counts: dict[int, int] = {}
        self._wildcard_root: _TrieNode[T] = _TrieNode()
        self._wildcard_count = 0

    def __len__(self) -> int:
        return len(self._exact) + len(self._prefix) + self._wildcard_count

    def get(self, uri: str, match: str) -> T | None:
        """The item added for exactly this (uri, match), or None."""
        if match == "exact":
            return self._exact.get(uri)
        if match == "prefix":
            return self._prefix.get(uri)
        node = self._wildcard_node(uri, create=False)
        return node.item if node is not None else None

    def add(self, uri: str, match: str, item: T) -> None:
        """Add ``item`` for (uri, match); replaces nothing (the caller checks ``get`` first)."""
        if match == "exact":
            self._exact[uri] = item
        elif match == "prefix":
            self._prefix[uri] = item
            length = len(uri)
            count = self._prefix_length_counts.get(length, 0)
            self._prefix_length_counts[length] = count + 1
            if count == 0:
                self._prefix_lengths = sorted(self._prefix_length_counts, reverse=True)
        elif match == "wildcard":
            node = self._wildcard_node(uri, create=True)
            assert node is not None
            if node.item is None:
                self._wildcard_count += 1
            node.item = item
        else:
            raise ValueError(f"unknown match policy {match!r}")

    def remove(self, uri: str, match: str) -> None:
        """Remove the item of (uri, match) if present."""
        if match == "exact":
            self._exact.pop(uri, None)
        elif match == "prefix":
            if self._prefix.pop(uri, None) is not None:
                length = len(uri)
                count = self._prefix_length_counts[length] - 1
                if count:
                    self._prefix_length_counts[length] = count
                else:
                    del self._prefix_length_counts[length]
                    self._prefix_lengths = sorted(self._prefix_length_counts, reverse=True)
        elif match == "wildcard":
            self._remove_wildcard(uri)

    def best(self, uri: str) -> T | None:
        """The one item a call to ``uri`` goes to: exact, else longest prefix, else best wildcard."""
        item = self._exact.get(uri)
        if item is not None:
            return item
        if self._prefix:
            prefixes = self._prefix
            size = len(uri)
            for length in self._prefix_lengths:
                if length <= size:
                    item = prefixes.get(uri[:length])
                    if item is not None:
                        return item
        if self._wildcard_count:
            best_item: T | None = None
            best_rank: tuple[int, ...] = ()
            for pattern, candidate in self._wildcard_matches(uri):
                rank = _wildcard_rank(pattern)
                if best_item is None or rank > best_rank:
                    best_item, best_rank = candidate, rank
            return best_item
        return None

    def all(self, uri: str) -> list[T]:
        """Every item ``uri`` matches, under any policy (for event delivery)."""
        found: list[T] = []
        item = self._exact.get(uri)
        if item is not None:
            found.append(item)
        if self._prefix:
            prefixes = self._prefix
            size = len(uri)
            for length in self._prefix_lengths:
                if length <= size:
                    item = prefixes.get(uri[:length])
                    if item is not None:
                        found.append(item)
        if self._wildcard_count:
            found.extend(candidate for _, candidate in self._wildcard_matches(uri))
        return found

    def items(self, match: str) -> list[T]:
        """All items of one match policy."""
        if match == "exact":
            return list(self._exact.values())
        if match == "prefix":
            return list(self._prefix.values())
        return [item for _, item in self._walk(self._wildcard_root, [])]

    # -- wildcard trie ------------------------------------------------------------------

    def _wildcard_node(self, pattern: str, create: bool) -> _TrieNode[T] | None:
        node = self._wildcard_root
        for component in pattern.split("."):
            child = node.children.get(component)
            if child is None:
                if not create:
                    return None
                child = node.children[component] = _TrieNode()
            node = child
        return node

    def _remove_wildcard(self, pattern: str) -> None:
        path: list[tuple[_TrieNode[T], str]] = []
        node = self._wildcard_root
        for component in pattern.split("."):
            child = node.children.get(component)
            if child is None:
                return
            path.append((node, component))
            node = child
        if node.item is None:
            return
        node.item = None
        self._wildcard_count -= 1
        # prune empty branches
        for parent, component in reversed(path):
            child = parent.children[component]
            if child.item is None and not child.children:
                del parent.children[component]
            else:
                break

    def _wildcard_matches(self, uri: str) -> Iterator[tuple[str, T]]:
        components = uri.split(".")
        last = len(components)
        # iterative walk: (node, depth, pattern components so far)
        stack: list[tuple[_TrieNode[T], int, tuple[str, ...]]] = [(self._wildcard_root, 0, ())]
        while stack:
            node, depth, taken = stack.pop()
            if depth == last:
                if node.item is not None:
                    yield ".".join(taken), node.item
                continue
            component = components[depth]
            children = node.children
            child = children.get(component)
            if child is not None:
                stack.append((child, depth + 1, taken + (component,)))
            if component:
                wildcard = children.get("")
                if wildcard is not None:
                    stack.append((wildcard, depth + 1, taken + ("",)))

    def _walk(self, node: _TrieNode[T], taken: list[str]) -> Iterator[tuple[str, T]]:
        if node.item is not None and taken:
            yield ".".join(taken), node.item
        for component, child in node.children.items():
            yield from self._walk(child, taken + [component])
