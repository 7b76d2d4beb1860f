"""RFC 6962 / RFC 9162 Merkle tree hashing, compact ranges and proofs.

Pure functions over SHA-256 (stdlib ``hashlib`` only, no I/O).

Terminology
-----------
* A *leaf hash* is ``leaf_hash(entry)`` = SHA-256(0x00 || entry) (RFC 9162 §2.1.1).
* The *perfect subtree* node ``(level, index)`` covers leaves
  ``[index * 2**level, (index + 1) * 2**level)``; level 0 holds the leaf hashes.
  Such nodes never change once complete, so a log can store them and serve
  proofs from them via a :data:`NodeGetter`.
* ``MTH(D[a:b])`` is the Merkle Tree Hash of RFC 9162 §2.1.1 over the leaves
  ``a .. b-1``.

All proof builders take a :data:`NodeGetter` and issue O(log n) calls to it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import TypeAlias

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "InclusionChecker",
    "NodeGetter",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_at",
    "subtree_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32

#: MTH({}) = SHA-256() -- the root of the empty tree (RFC 9162 §2.1.1).
EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()

#: ``get(level, index)`` returns the hash of the perfect subtree ``(level, index)``.
NodeGetter: TypeAlias = Callable[[int, int], bytes]

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d) (RFC 9162 §2.1.1)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Interior node hash SHA-256(0x01 || left || right) (RFC 9162 §2.1.1)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split_point(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (requires n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_hash(h: object, what: str) -> bytes:
    if not isinstance(h, bytes | bytearray | memoryview) or len(h) != HASH_SIZE:
        raise ValueError(f"{what} must be {HASH_SIZE} bytes")
    return bytes(h)


class CompactRange:
    """Frontier of an append-only Merkle tree of ``size`` leaves.

    ``hashes`` are the roots of the perfect subtrees corresponding to the set
    bits of ``size``, largest (leftmost) first, so ``len(hashes) ==
    popcount(size)``.  This is all the state needed to append leaves and compute
    the RFC 9162 §2.1.1 tree head; memory is O(log n), appends are O(log n).
    """

    __slots__ = ("size", "hashes")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0:
            raise ValueError("size must be non-negative")
        if len(hashes) != size.bit_count():
            raise ValueError(
                f"compact range of size {size} needs {size.bit_count()} hashes, got {len(hashes)}"
            )
        self.size: int = size
        self.hashes: list[bytes] = [_check_hash(h, "frontier hash") for h in hashes]

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Append one LEAF HASH.

        Returns the perfect subtree nodes completed by this append as
        ``(level, index, hash)`` tuples with ``level >= 1``, lowest level first.
        (The leaf itself is node ``(0, old_size)`` and is not included.)
        """
        h = leaf if type(leaf) is bytes and len(leaf) == HASH_SIZE else \
            _check_hash(leaf, "leaf hash")
        index = self.size
        level = 0
        completed: list[tuple[int, int, bytes]] = []
        while (self.size >> level) & 1:
            h = node_hash(self.hashes.pop(), h)
            level += 1
            index >>= 1
            completed.append((level, index, h))
        self.hashes.append(h)
        self.size += 1
        return completed

    def root(self) -> bytes:
        """MTH of the whole tree (RFC 9162 §2.1.1); EMPTY_ROOT when empty.

        Folds the frontier right-to-left: with the leftmost subtree being the
        largest power of two, this is exactly the RFC's split at the largest
        power of two smaller than n, applied recursively.
        """
        if not self.hashes:
            return EMPTY_ROOT
        h = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            h = node_hash(left, h)
        return h

    def to_bytes(self) -> bytes:
        """Concatenated frontier hashes (``32 * popcount(size)`` bytes)."""
        return b"".join(self.hashes)

    @classmethod
    def from_bytes(cls, size: int, blob: bytes) -> CompactRange:
        """Inverse of :meth:`to_bytes`."""
        if size < 0:
            raise ValueError("size must be non-negative")
        if len(blob) != HASH_SIZE * size.bit_count():
            raise ValueError(
                f"compact range of size {size} needs {HASH_SIZE * size.bit_count()} bytes, "
                f"got {len(blob)}"
            )
        blob = bytes(blob)
        return cls(size, [blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)])

    def copy(self) -> CompactRange:
        return CompactRange(self.size, self.hashes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self.size == other.size and self.hashes == other.hashes

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"CompactRange(size={self.size}, root={self.root().hex()})"


def subtree_hash(start: int, end: int, get: NodeGetter) -> bytes:
    """MTH(D[start:end]) computed from stored perfect-subtree nodes.

    Precondition (checked, ``ValueError`` otherwise): with ``n = end - start``
    and ``P`` the smallest power of two ``>= n``, ``start`` is a multiple of
    ``P``.  Every subtree that appears in the RFC 9162 §2.1.1 MTH recursion of
    a tree rooted at leaf 0 (hence every node of PATH §2.1.3.1 and PROOF
    §2.1.4.1) satisfies this.  Under it, [start, end) decomposes into aligned
    perfect subtrees of strictly decreasing size (the set bits of ``n``), the
    first of which is exactly the RFC's left half of size "largest power of two
    < n"; folding them right-to-left therefore reproduces MTH(D[start:end]).
    Other ranges are rejected because their MTH involves interior nodes that
    are not aligned perfect subtrees and cannot be served by ``get`` in
    O(log n) calls.

    Uses ``popcount(end - start)`` calls to ``get``; ``EMPTY_ROOT`` for an empty
    range.
    """
    if start < 0 or end < start:
        raise ValueError(f"invalid range [{start}, {end})")
    n = end - start
    if n == 0:
        return EMPTY_ROOT
    if start & ((1 << (n - 1).bit_length()) - 1):
        raise ValueError(f"range [{start}, {end}) is not an RFC 6962 subtree (misaligned start)")
    parts: list[bytes] = []
    pos = start
    for level in range(n.bit_length() - 1, -1, -1):
        if (n >> level) & 1:
            parts.append(get(level, pos >> level))
            pos += 1 << level
    h = parts[-1]
    for left in reversed(parts[:-1]):
        h = node_hash(left, h)
    return h


def root_at(size: int, get: NodeGetter) -> bytes:
    """Tree head MTH(D[0:size]) (RFC 9162 §2.1.1) from stored nodes."""
    if size < 0:
        raise ValueError("size must be non-negative")
    return subtree_hash(0, size, get)


def inclusion_proof(index: int, size: int, get: NodeGetter) -> list[bytes]:
    """Audit path PATH(index, D[0:size]) of RFC 9162 §2.1.3.1, leaf-to-root order.

    Needs O(log size) calls to ``get``: all siblings are single perfect nodes
    except at most one right-hand sibling ending at ``size``.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} out of range for tree size {size}")
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split_point(hi - lo)
        if index < lo + k:
            # PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])
            path.append(subtree_hash(lo + k, hi, get))
            hi = lo + k
        else:
            # PATH(m, D[n]) = PATH(m - k, D[k:n]) : MTH(D[0:k])
            path.append(subtree_hash(lo, lo + k, get))
            lo += k
    path.reverse()
    return path


def consistency_proof(old_size: int, new_size: int, get: NodeGetter) -> list[bytes]:
    """PROOF(m, D[0:n]) = SUBPROOF(m, D[0:n], true) of RFC 9162 §2.1.4.1.

    Empty when ``old_size == new_size`` (SUBPROOF(n, D[n], true) = {}) and when
    ``old_size == 0`` (the RFC defines proofs only for 0 < m; an empty tree is
    trivially consistent with every tree).  Needs O(log n) calls to ``get``.
    """
    if old_size < 0 or new_size < old_size:
        raise ValueError(f"invalid consistency range {old_size} -> {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    proof: list[bytes] = []
    lo, hi = 0, new_size
    b = True
    while True:
        if old_size == hi:
            # SUBPROOF(m, D[m], true) = {};  SUBPROOF(m, D[m], false) = {MTH(D[m])}
            if not b:
                proof.append(subtree_hash(lo, hi, get))
            break
        k = _split_point(hi - lo)
        if old_size - lo <= k:
            # SUBPROOF(m, D[n], b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            proof.append(subtree_hash(lo + k, hi, get))
            hi = lo + k
        else:
            # SUBPROOF(m, D[n], b) = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
            proof.append(subtree_hash(lo, lo + k, get))
            lo += k
            b = False
    proof.reverse()
    return proof


def _all_hashes(items: Sequence[bytes]) -> bool:
    return all(isinstance(h, bytes) and len(h) == HASH_SIZE for h in items)


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2 inclusion verification; ``leaf`` is the LEAF HASH.

    Returns False (never raises) for any invalid input, including
    ``index >= size`` (step 1: "fail the proof verification"), negative values,
    and -- in addition to the RFC -- any hash that is not 32 bytes.
    """
    if not _all_hashes([leaf, root, *proof]):
        return False
    if index < 0 or size < 0 or index >= size:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # If LSB(fn) is not set, shift until LSB(fn) is set or fn is 0.
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2 consistency verification between tree heads.

    Edge cases (outside the RFC algorithm, which assumes 0 < m < n):

    * ``old_size == new_size``: True iff the proof is empty and the roots are equal.
    * ``old_size == 0 < new_size``: True iff the proof is empty (an empty tree
      is consistent with every tree; the roots are not examined).
    * Negative sizes, ``old_size > new_size`` or any hash that is not 32 bytes:
      False.  This function never raises for bad input.
    """
    if old_size < 0 or new_size < old_size:
        return False
    if not _all_hashes(proof):
        return False
    if old_size == new_size:
        return not proof and _all_hashes([old_root, new_root]) and old_root == new_root
    if old_size == 0:
        return not proof
    if not _all_hashes([old_root, new_root]):
        return False
    # 1. An empty consistency_path fails.
    if not proof:
        return False
    path = list(proof)
    # 2. If first is an exact power of 2, prepend first_hash.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # 3.
    fn, sn = old_size - 1, new_size - 1
    # 4.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5.
    fr = sr = path[0]
    # 6.
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            # If LSB(fn) is not set, shift until LSB(fn) is set or fn is 0.
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # 7.
    return fr == old_root and sr == new_root and sn == 0


class InclusionChecker:
    """Checks many leaves against one signed tree head, cheaply.

    Every complete perfect subtree node on a verified audit path is remembered as proven (it
    hashes up to the signed root). A later leaf climbs through stored siblings only until it
    meets a proven node, so checking the k events of one case costs O(k + log n) node reads
    instead of O(k log n). Stored nodes are never trusted: a node is proven only by a path
    that reaches ``root``.
    """

    def __init__(self, size: int, root: bytes, get: NodeGetter) -> None:
        self.size = size
        self.root = root
        self.get = get
        self._proven: dict[tuple[int, int], bytes] = {}

    def includes(self, index: int, leaf: bytes) -> bool:
        """Whether ``leaf`` (a leaf hash) is leaf ``index`` of the tree (never raises on bad
        stored nodes: a missing or malformed node is a failed proof)."""
        if not 0 <= index < self.size or len(leaf) != HASH_SIZE:
            return False
        try:
            return self._includes(index, leaf)
        except (ValueError, LookupError, TypeError):
            return False
        except Exception as exc:  # noqa: BLE001 - the node getter's own errors (storage)
            if type(exc).__name__ in ("StorageError", "LedgerError"):
                return False
            raise

    def _includes(self, index: int, leaf: bytes) -> bool:
        level, idx, node = 0, index, leaf
        climbed: dict[tuple[int, int], bytes] = {}
        while True:
            known = self._proven.get((level, idx))
            if known is not None:
                if known != node:
                    return False
                self._proven.update(climbed)   # they hash up to a proven node
                return True
            climbed[(level, idx)] = node
            parent = idx >> 1
            if (parent + 1) << (level + 1) > self.size:
                break   # the parent is not a complete perfect subtree: prove the whole path
            sibling = self.get(level, idx ^ 1)
            node = node_hash(sibling, node) if idx & 1 else node_hash(node, sibling)
            level, idx = level + 1, parent
        proof = inclusion_proof(index, self.size, self.get)
        proven = _verified_path(leaf, index, self.size, proof, self.root)
        if proven is None:
            return False
        self._proven.update(proven)
        return True


def _verified_path(leaf: bytes, index: int, size: int, proof: Sequence[bytes],
                   root: bytes) -> dict[tuple[int, int], bytes] | None:
    """RFC 9162 §2.1.3.2 inclusion verification that also returns the complete perfect
    subtree nodes on the path, by (level, index); None if the proof fails."""
    if not _all_hashes([leaf, root, *proof]) or not 0 <= index < size:
        return None
    fn, sn, level, r = index, size - 1, 0, leaf
    nodes: dict[tuple[int, int], bytes] = {}
    for p in proof:
        if sn == 0:
            return None
        if (fn + 1) << level <= size:
            nodes[(level, fn)] = r
        if fn & 1 or fn == sn:
            while fn and not fn & 1:   # a right-edge node with no right sibling here
                fn >>= 1
                sn >>= 1
                level += 1
            r = node_hash(p, r)
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
        level += 1
    if sn != 0 or r != root:
        return None
    return nodes
