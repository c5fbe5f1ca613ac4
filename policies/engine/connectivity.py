"""Full pod-to-pod connectivity: for every ordered pair of pods and every (port, protocol) asked about,
whether the connection is allowed. The answer is ``Evaluator.evaluate(...).allowed`` for each probe;
it is computed with pod sets as bit masks instead of probe by probe.

Per column (port, protocol): each destination's ingress gives the set of sources it admits (the union
of its admitting rules' peer sets), each source's egress the set of destinations it may reach. The
first matrix is transposed (a bit-matrix transpose on one big integer) and ANDed with the second.
Columns that no policy tells apart (the same ports lists admit them, the same pods name them) are
computed once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache

from policies.engine.evaluate import Address, Evaluator, PortKey, admits_address
from policies.engine.model import Namespace, Pod, Policy


class Connectivity:
    """Allowed connections between ``pods``: per column, per source index, a bit mask of destinations."""

    def __init__(self, pods: Sequence[Pod], columns: Sequence[PortKey], rows: dict[PortKey, list[int]]) -> None:
        self.pods = tuple(pods)
        self.columns = tuple(columns)
        self._rows = rows
        self._index = {pod.key: i for i, pod in enumerate(self.pods)}

    def index(self, pod: Pod) -> int:
        return self._index[pod.key]

    def destinations(self, source: int, column: PortKey) -> int:
        """Bit ``d`` set: ``pods[source]`` may connect to ``pods[d]`` on ``column``."""
        return self._rows[column][source]

    def allowed(self, source: Pod, destination: Pod, port: int, protocol: str = "TCP") -> bool:
        return bool(self._rows[(port, protocol)][self.index(source)] >> self.index(destination) & 1)

    def pairs(self, *, include_self: bool = False) -> Iterator[tuple[int, int, PortKey]]:
        """Every allowed (source index, destination index, column)."""
        for column in self.columns:
            for source, mask in enumerate(self._rows[column]):
                if not include_self:
                    mask &= ~(1 << source)
                while mask:
                    low = mask & -mask
                    yield source, low.bit_length() - 1, column
                    mask ^= low

    def count(self, *, include_self: bool = False) -> int:
        total = 0
        for column in self.columns:
            for source, mask in enumerate(self._rows[column]):
                total += (mask & ~(1 << source) if not include_self else mask).bit_count()
        return total


def connectivity(
    namespaces: Iterable[Namespace],
    pods: Iterable[Pod],
    policies: Iterable[Policy],
    columns: Iterable[PortKey],
) -> Connectivity:
    """Which pod may connect to which on each (port, protocol) of ``columns``."""
    pods = tuple(pods)
    columns = tuple(dict.fromkeys(columns))
    evaluator = Evaluator(namespaces, pods, policies)
    return _Computation(evaluator, pods).run(columns)


class _Computation:
    def __init__(self, evaluator: Evaluator, pods: tuple[Pod, ...]) -> None:
        self.evaluator = evaluator
        self.pods = pods
        self.infos = [evaluator.info(pod) for pod in pods]
        self.every = (1 << len(pods)) - 1
        # The address family a pod talks from (its first address's); a dual-stack peer answers in it.
        self.families = [evaluator.address(pod.ips[0])[0] if pod.ips else None for pod in pods]
        self._selected = self._selector_masks()
        self._peer_masks: dict[tuple[int, int | None], int] = {}
        self._block_masks: dict[tuple[object, int | None], int] = {}

    def _selector_masks(self) -> dict[int, int]:
        """Per peers list, the pods its selectors admit (the namespace part is shared per namespace)."""
        by_set: dict[int, tuple[frozenset[int], int]] = {}
        for i, info in enumerate(self.infos):
            for ids in (info.namespace_peers, info.pod_peers):
                if ids:
                    entry = by_set.get(id(ids))
                    by_set[id(ids)] = (ids, (entry[1] if entry else 0) | 1 << i)
        masks: dict[int, int] = {}
        for ids, mask in by_set.values():
            for lid in ids:
                masks[lid] = masks.get(lid, 0) | mask
        return masks

    def _address(self, i: int, family: int | None) -> Address | None:
        """The address pod ``i`` uses towards a pod talking from ``family`` (as ``Evaluator`` chooses)."""
        ips = self.pods[i].ips
        if not ips:
            return None
        address = self.evaluator.address
        if len(ips) > 1 and family is not None:
            for ip in ips:
                if address(ip)[0] == family:
                    return address(ip)
        return address(ips[0])

    def peer_mask(self, lid: int, family: int | None) -> int:
        """The pods the peers list ``lid`` admits, by selector or, at the address used towards a pod
        talking from ``family``, by ipBlock."""
        key = (lid, family)
        mask = self._peer_masks.get(key)
        if mask is None:
            mask = self._selected.get(lid, 0)
            blocks = self.evaluator.peers.blocks[lid]
            if blocks:
                block_key = (tuple((b.version, b.network, b.mask, b.excepted) for b in blocks), family)
                by_block = self._block_masks.get(block_key)
                if by_block is None:
                    by_block = 0
                    for i in range(len(self.pods)):
                        if admits_address(blocks, self._address(i, family)):
                            by_block |= 1 << i
                    self._block_masks[block_key] = by_block
                mask |= by_block
            self._peer_masks[key] = mask
        return mask

    def run(self, columns: tuple[PortKey, ...]) -> Connectivity:
        rows: dict[PortKey, list[int]] = {}
        done: dict[object, list[int]] = {}
        for column in columns:
            numbered = self.evaluator.ports.by_number(column)
            named = {i: ids for i, info in enumerate(self.infos) if (ids := info.named.get(column))}
            signature = (numbered, frozenset(named.items()))
            if signature not in done:
                done[signature] = self._column(numbered, named)
            rows[column] = done[signature]
        return Connectivity(self.pods, columns, rows)

    def _column(self, numbered: frozenset[int], named: dict[int, frozenset[int]]) -> list[int]:
        every, infos, families = self.every, self.infos, self.families
        no_ids: frozenset[int] = frozenset()
        # Destinations naming a port that a ports list admits by name, per ports list.
        named_masks: dict[int, int] = {}
        for i, ids in named.items():
            for pid in ids:
                named_masks[pid] = named_masks.get(pid, 0) | 1 << i

        # Ingress: per destination, the sources it admits.
        sources: list[int] = []
        cache: dict[tuple[int, frozenset[int], int | None], int] = {}
        for d, info in enumerate(infos):
            plan = info.ingress
            if plan is None:
                sources.append(every)
                continue
            named_here = named.get(d, no_ids)
            key = (id(plan), named_here, families[d])
            mask = cache.get(key)
            if mask is None:
                mask = 0
                for _bit, ports, lid, _blocks in plan.rules:
                    if ports < 0 or ports in numbered or ports in named_here:
                        mask |= every if lid < 0 else self.peer_mask(lid, families[d])
                        if mask == every:
                            break
                cache[key] = mask
            sources.append(mask)

        # Egress: per source, the destinations it may reach (a named port is the destination's).
        destinations: list[int] = []
        egress_cache: dict[tuple[int, int | None], int] = {}
        for s, info in enumerate(infos):
            plan = info.egress
            if plan is None:
                destinations.append(every)
                continue
            egress_key = (id(plan), families[s])
            mask = egress_cache.get(egress_key)
            if mask is None:
                mask = 0
                for _bit, ports, lid, _blocks in plan.rules:
                    if ports < 0 or ports in numbered:
                        admitted = every
                    else:
                        admitted = named_masks.get(ports, 0)
                        if not admitted:
                            continue
                    mask |= admitted & (every if lid < 0 else self.peer_mask(lid, families[s]))
                    if mask == every:
                        break
                egress_cache[egress_key] = mask
            destinations.append(mask)

        if all(mask == every for mask in sources):
            return destinations
        admitted_by = transpose(sources, len(infos))  # per source, the destinations admitting it
        return [a & b for a, b in zip(destinations, admitted_by, strict=True)]


# ---------------------------------------------------------------------------------------------------------
# Bit-matrix transpose
# ---------------------------------------------------------------------------------------------------------


def _side(n: int) -> int:
    """The power of two >= n (and >= 8, so that rows are whole bytes) the matrix is padded to."""
    return max(8, 1 << max(0, (n - 1).bit_length()))


@lru_cache(maxsize=4)
def _masks(size: int) -> tuple[tuple[int, int], ...]:
    """(shift, mask) per level j: the bits (r, c) with bit j clear in r and set in c, and the distance
    j * (size - 1) to their partner (r + j, c - j)."""
    row_bytes = size // 8
    zero = bytes(row_bytes)
    out = []
    j = size // 2
    while j:
        columns = sum(1 << c for c in range(size) if c & j).to_bytes(row_bytes, "little")
        mask = int.from_bytes(b"".join(zero if r & j else columns for r in range(size)), "little")
        out.append((j * (size - 1), mask))
        j //= 2
    return tuple(out)


def transpose(rows: Sequence[int], n: int) -> list[int]:
    """The transpose of the n x n bit matrix whose row ``i`` is the int ``rows[i]`` (bit j: column j).

    The matrix is packed into one integer and its off-diagonal blocks swapped level by level (halves,
    quarters, ...), a handful of big-integer operations per level instead of n * n bit moves."""
    if n == 0:
        return []
    size = _side(n)
    row_bytes = size // 8
    packed = b"".join(row.to_bytes(row_bytes, "little") for row in rows) + bytes(row_bytes * (size - n))
    x = int.from_bytes(packed, "little")
    for shift, mask in _masks(size):
        t = (x ^ (x >> shift)) & mask
        x ^= t ^ (t << shift)
    data = x.to_bytes(size * row_bytes, "little")
    return [int.from_bytes(data[i * row_bytes : (i + 1) * row_bytes], "little") for i in range(n)]
