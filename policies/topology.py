"""The topology of a workload as Cytoscape elements, positions computed here (design §7, ui.md).

Pure Python: verdicts in, a JSON-able dict out. The page gives the positions to Cytoscape's ``preset``
layout, so the graph never jumps between updates:

- the workload in the middle; peers it only receives from on the left, peers it only sends to on the
  right, peers seen both ways above;
- peers inside a box per namespace (its own first, then by connections), at most ``MAX_PER_BOX`` nodes
  per box and the rest folded into one "+N more" node;
- addresses outside the cluster never one node per IP: a node per alias, per Service without a selector
  (the Kubernetes API server among them), and one summary node per category;
- one edge per peer, direction and verdict: black when the draft plus the applied policies let the rows
  through, red when they block them (verdicts from the engine, never recomputed in the browser).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from policies.engine import AddressPeer, CommunicationRow, OpaquePeer, RowVerdict, Scope, WorkloadPeer

MAX_PER_BOX = 25
MAX_PORTS_IN_LABEL = 3
NODE_GAP = 62  # vertical distance between two peers of a box
COLUMN_GAP = 200  # horizontal distance between two columns of a box
BOX_GAP = 120  # between two boxes of a column: their padding and titles fit in it
SIDE_X = 460  # distance of the left and right columns from the workload
TOP_Y = -300  # where the boxes of peers seen both ways sit
API_SERVER = "APIServer"
OUTSIDE = "outside"
OTHER = "other"


@dataclass
class _Node:
    id: str
    label: str
    sublabel: str
    group: str  # the box it sits in
    details: dict[str, Any]
    connections: int = 0
    directions: set[str] = field(default_factory=set)
    addresses: set[str] = field(default_factory=set)


@dataclass
class _Edge:
    node: str
    direction: str
    allowed: bool
    verdicts: list[RowVerdict] = field(default_factory=list)


def _peer_node(row: CommunicationRow) -> tuple[str, str, str, str, dict[str, Any]]:
    """(id, label, sublabel, group, details) of the node a row's peer is drawn as."""
    peer = row.peer
    if isinstance(peer, WorkloadPeer):
        return (f"w:{peer.key}", peer.name, peer.kind, f"ns:{peer.namespace}",
                {"kind": peer.kind, "namespace": peer.namespace, "name": peer.name,
                 "labels": dict(peer.pod_labels), "ports": [_port(p) for p in peer.ports]})
    if isinstance(peer, OpaquePeer):
        return (f"o:{peer.token}", "other namespace", "hidden", OTHER, {"kind": "workload in another namespace"})
    assert isinstance(peer, AddressPeer)
    if row.node_local:
        return ("x:node", "kubelet probes", "always allowed", OUTSIDE, {"kind": "the pod's own node"})
    if peer.service:
        api = peer.category == API_SERVER
        return (f"s:{peer.service}", "Kubernetes API server" if api else peer.service.split("/", 1)[1],
                "API server" if api else "Service", OUTSIDE,
                {"kind": "Kubernetes API server" if api else "Service without a selector", "service": peer.service,
                 "cidrs": list(peer.cidrs)})
    if peer.alias:
        return (f"a:{peer.alias}", peer.alias, "alias", OUTSIDE, {"kind": "alias", "alias": peer.alias,
                                                                  "cidrs": list(peer.cidrs)})
    category = peer.category or "Unknown"
    return (f"c:{category}", category, "", OUTSIDE, {"kind": f"{category} addresses"})


def _port(port: Any) -> str:
    return f"{port.name + ' ' if port.name else ''}{port.port}/{port.protocol}"


def _row_port(row: CommunicationRow) -> str:
    return f"{'any' if row.port is None else row.port}/{row.protocol}"


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""


def _box_order(group: str, scope: Scope, connections: Mapping[str, int]) -> tuple:
    if group == f"ns:{scope.namespace}":
        return (0, 0, group)
    if group == OTHER:
        return (2, 0, group)
    if group == OUTSIDE:
        return (3, 0, group)
    return (1, -connections[group], group)


def _box_label(group: str) -> str:
    if group == OUTSIDE:
        return "outside the cluster"
    if group == OTHER:
        return "other namespaces"
    return f"namespace {group.removeprefix('ns:')}"


def layout(scope: Scope, verdicts: Sequence[RowVerdict], *, unlabelled: frozenset[str] = frozenset(),
           services: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """Cytoscape elements (``nodes`` and ``edges`` with ``data``, ``classes`` and ``position``) and a
    ``legend`` with counts. ``unlabelled``: namespaces whose boxes carry the missing-label warning;
    ``services``: the Services that select the workload (key "scope") and each workload peer (its key)."""
    services = services or {}
    nodes: dict[str, _Node] = {}
    edges: dict[tuple[str, str, bool], _Edge] = {}
    for verdict in verdicts:
        row = verdict.row
        node_id, label, sublabel, group, details = _peer_node(row)
        if isinstance(row.peer, WorkloadPeer) and services.get(row.peer.key):
            details = {**details, "services": list(services[row.peer.key])}
        node = nodes.setdefault(node_id, _Node(node_id, label, sublabel, group, details))
        node.connections += row.connections
        node.directions.add(row.direction)
        if isinstance(row.peer, AddressPeer):
            node.addresses.add(row.peer.ip)
        edges.setdefault((node_id, row.direction, verdict.allowed),
                         _Edge(node_id, row.direction, verdict.allowed)).verdicts.append(verdict)

    for node in nodes.values():
        if node.id.startswith(("c:", "a:")):  # a node standing for addresses says how many
            count = f"{len(node.addresses)} IP{'s' if len(node.addresses) != 1 else ''}"
            node.sublabel = f"{node.sublabel} · {count}" if node.sublabel else count

    # Which column every node goes in, then boxes per column, then "+N more" past MAX_PER_BOX.
    columns: dict[str, dict[str, list[_Node]]] = defaultdict(lambda: defaultdict(list))
    for node in nodes.values():
        side = "both" if len(node.directions) == 2 else ("left" if "ingress" in node.directions else "right")
        columns[side][node.group].append(node)
    box_connections: dict[str, int] = defaultdict(int)
    for node in nodes.values():
        box_connections[node.group] += node.connections

    folded: dict[str, str] = {}  # node id -> the "+N more" node that stands for it
    out_nodes: list[dict[str, Any]] = []
    positions: dict[str, tuple[float, float]] = {"scope": (0.0, 0.0)}
    for side in ("left", "right", "both"):
        boxes = sorted(columns.get(side, {}).items(), key=lambda item: _box_order(item[0], scope, box_connections))
        placed: list[tuple[str, list[tuple[str, float, float]]]] = []
        for group, members in boxes:
            members.sort(key=lambda n: (-n.connections, n.label, n.id))
            shown, rest = members[:MAX_PER_BOX - 1], members[MAX_PER_BOX - 1:]
            if len(members) <= MAX_PER_BOX:
                shown, rest = members, []
            ids = [n.id for n in shown]
            if rest:
                more_id = f"more:{side}:{group}"
                for n in rest:
                    folded[n.id] = more_id
                nodes[more_id] = _Node(more_id, f"+{len(rest)} more", "peers", group,
                                       {"kind": "folded peers", "peers": [n.label for n in rest]},
                                       sum(n.connections for n in rest))
                ids.append(more_id)
            cols = 1 if len(ids) <= 8 else 2
            cells = [(node_id, (i % cols) * COLUMN_GAP, (i // cols) * NODE_GAP) for i, node_id in enumerate(ids)]
            placed.append((group, cells))
        _place(side, placed, positions)
        for group, cells in placed:
            box_id = f"box:{side}:{group}"
            out_nodes.append({"data": {"id": box_id, "label": _box_label(group), "box": True},
                              "classes": "box" + (" warn" if group.removeprefix("ns:") in unlabelled else "")
                              + (" outside" if group in (OUTSIDE, OTHER) else "")})
            for node_id, _, _ in cells:
                node = nodes[node_id]
                out_nodes.append({"data": {"id": node_id, "parent": box_id, "label": node.label,
                                           "sublabel": node.sublabel, "connections": node.connections,
                                           "addresses": sorted(node.addresses)[:20],
                                           "more_addresses": max(0, len(node.addresses) - 20), **node.details},
                                  "classes": "peer", "position": _point(positions[node_id])})

    out_edges: list[dict[str, Any]] = []
    merged: dict[tuple[str, str, bool], list[RowVerdict]] = defaultdict(list)
    for (node_id, direction, allowed), edge in edges.items():
        merged[(folded.get(node_id, node_id), direction, allowed)].extend(edge.verdicts)
    blocked_nodes: dict[str, list[bool]] = defaultdict(list)
    for (node_id, direction, allowed), group_verdicts in sorted(merged.items()):
        blocked_nodes[node_id].append(allowed)
        rows = [v.row for v in group_verdicts]
        ports = sorted({_row_port(r) for r in rows}, key=lambda p: (len(p), p))
        label = ", ".join(ports[:MAX_PORTS_IN_LABEL]) + (f" +{len(ports) - MAX_PORTS_IN_LABEL}"
                                                          if len(ports) > MAX_PORTS_IN_LABEL else "")
        always = all(r.node_local for r in rows)
        source, target = (node_id, "scope") if direction == "ingress" else ("scope", node_id)
        out_edges.append({
            "data": {
                "id": f"e:{node_id}:{direction}:{'allowed' if allowed else 'blocked'}", "source": source,
                "target": target, "label": label, "direction": direction, "allowed": allowed,
                "connections": sum(r.connections for r in rows),
                "last_seen": max((_iso(r.last_seen) for r in rows), default=""),
                "keys": [r.key for r in rows if not r.node_local],
                "rows": [{"port": _row_port(v.row), "connections": v.row.connections, "included": v.row.included,
                          "blocked_by": list(v.blocked_by), "policies": list(v.policies), "warning": v.warning,
                          "denied_in_cluster": v.row.denied_in_cluster, "always_allowed": v.row.node_local}
                         for v in group_verdicts],
            },
            "classes": "allowed" if allowed else "blocked" + (" always" if always else ""),
        })
    for node in out_nodes:
        states = blocked_nodes.get(node["data"]["id"])
        if states and not any(states):
            node["classes"] += " hollow"  # every edge of this peer is blocked

    scope_node = {"data": {"id": "scope", "label": scope.name, "sublabel": scope.kind, "kind": scope.kind,
                           "namespace": scope.namespace, "name": scope.name, "labels": dict(scope.pod_labels),
                           "ports": [_port(p) for p in scope.ports], "services": list(services.get("scope", ()))},
                  "classes": "scope", "position": {"x": 0, "y": 0}}
    allowed_edges = sum(1 for e in out_edges if e["data"]["allowed"])
    return {
        "nodes": [scope_node, *out_nodes],
        "edges": out_edges,
        "legend": {"peers": sum(1 for n in out_nodes if "peer" in n["classes"].split()),
                   "allowed": allowed_edges, "blocked": len(out_edges) - allowed_edges,
                   "hollow": sum(1 for n in out_nodes if "hollow" in n["classes"].split())},
    }


def _place(side: str, placed: list[tuple[str, list[tuple[str, float, float]]]],
           positions: dict[str, tuple[float, float]]) -> None:
    """Absolute positions of the nodes of one column's boxes (a row of boxes for peers seen both ways)."""
    if not placed:
        return
    if side == "both":
        widths = [max(dx for _, dx, _ in cells) + COLUMN_GAP for _, cells in placed]
        x = -(sum(widths) + BOX_GAP * (len(widths) - 1)) / 2
        for (_, cells), width in zip(placed, widths, strict=True):
            height = max(dy for _, _, dy in cells)
            for node_id, dx, dy in cells:
                positions[node_id] = (x + dx + COLUMN_GAP / 2, TOP_Y - height + dy)
            x += width + BOX_GAP
        return
    heights = [max(dy for _, _, dy in cells) for _, cells in placed]
    total = sum(heights) + BOX_GAP * (len(heights) - 1)
    y = -total / 2
    for (_, cells), height in zip(placed, heights, strict=True):
        width = max(dx for _, dx, _ in cells)
        # Two-column boxes grow away from the workload.
        x0 = -SIDE_X - width if side == "left" else SIDE_X
        for node_id, dx, dy in cells:
            positions[node_id] = (x0 + dx, y + dy)
        y += height + BOX_GAP


def _point(xy: tuple[float, float]) -> dict[str, float]:
    return {"x": round(xy[0], 1), "y": round(xy[1], 1)}
