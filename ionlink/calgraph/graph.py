"""The calibration graph: nodes and their dependency edges, checked to be a DAG."""

from __future__ import annotations

from collections.abc import Iterable

from ionlink.calgraph.node import CalNode

__all__ = ["CalGraph", "GraphError"]


class GraphError(ValueError):
    """The graph is malformed (duplicate node, unknown dependency, cycle...)."""


class CalGraph:
    """A directed acyclic graph of :class:`CalNode` (edge: dependency -> dependent).

    :param nodes: the nodes; each dependency must name another node of the graph, every
        parameter must be owned by one node only, and there must be no cycle.
    """

    def __init__(self, nodes: Iterable[CalNode]) -> None:
        self.nodes: dict[str, CalNode] = {}
        owner: dict[str, str] = {}
        for node in nodes:
            if node.name in self.nodes:
                raise GraphError(f"two nodes are named {node.name!r}")
            self.nodes[node.name] = node
            for p in node.params:
                if p in owner:
                    raise GraphError(f"parameter {p} is owned by both {owner[p]} and "
                                     f"{node.name}")
                owner[p] = node.name
        self.owner = owner
        for node in self.nodes.values():
            for dep in node.dependencies:
                if dep not in self.nodes:
                    raise GraphError(f"node {node.name} depends on unknown node {dep!r}")
                if dep == node.name:
                    raise GraphError(f"node {node.name} depends on itself")
        self._order = self._toposort()

    def _toposort(self) -> list[str]:
        order: list[str] = []
        state: dict[str, int] = {}  # 1 visiting, 2 done

        def visit(name: str, path: list[str]) -> None:
            s = state.get(name)
            if s == 2:
                return
            if s == 1:
                cycle = path[path.index(name):] + [name]
                raise GraphError("dependency cycle: " + " -> ".join(cycle))
            state[name] = 1
            for dep in self.nodes[name].dependencies:
                visit(dep, path + [name])
            state[name] = 2
            order.append(name)

        for name in self.nodes:
            visit(name, [])
        return order

    def order(self) -> list[str]:
        """Node names with every dependency before its dependents (stable: ties keep the
        order in which the nodes were given)."""
        return list(self._order)

    def __getitem__(self, name: str) -> CalNode:
        try:
            return self.nodes[name]
        except KeyError:
            raise GraphError(f"no node named {name!r} (known: "
                             f"{', '.join(self.nodes)})") from None

    def dependents(self, name: str) -> list[str]:
        """Names of the nodes that depend directly on ``name``."""
        self[name]
        return [n for n, node in self.nodes.items() if name in node.dependencies]

    def ancestors(self, name: str) -> list[str]:
        """All nodes ``name`` depends on, directly or not, in graph order."""
        seen: set[str] = set()
        stack = list(self[name].dependencies)
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(self.nodes[n].dependencies)
        return [n for n in self._order if n in seen]

    def subgraph_order(self, targets: Iterable[str]) -> list[str]:
        """Graph order of ``targets`` and everything they depend on."""
        wanted: set[str] = set()
        for t in targets:
            wanted.add(self[t].name)
            wanted.update(self.ancestors(t))
        return [n for n in self._order if n in wanted]
