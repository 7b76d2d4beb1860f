"""Known-answer and property tests for ledger.merkle (RFC 6962 / RFC 9162)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.log.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_at,
    subtree_hash,
    verify_consistency,
    verify_inclusion,
)

# ---------------------------------------------------------------------------
# Reference helpers (independent, naive implementations straight from the RFC)
# ---------------------------------------------------------------------------


def naive_mth(leaves: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH over LEAF HASHES, by the recursive definition."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(naive_mth(leaves[:k]), naive_mth(leaves[k:]))


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def naive_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(m, D[n]) by the recursive definition."""
    n = len(leaves)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return naive_path(m, leaves[:k]) + [naive_mth(leaves[k:])]
    return naive_path(m - k, leaves[k:]) + [naive_mth(leaves[:k])]


def naive_subproof(m: int, leaves: Sequence[bytes], b: bool) -> list[bytes]:
    """RFC 9162 §2.1.4.1 SUBPROOF(m, D[n], b) by the recursive definition."""
    n = len(leaves)
    if m == n:
        return [] if b else [naive_mth(leaves)]
    k = _k(n)
    if m <= k:
        return naive_subproof(m, leaves[:k], b) + [naive_mth(leaves[k:])]
    return naive_subproof(m - k, leaves[k:], False) + [naive_mth(leaves[:k])]


GetFn = Callable[[int, int], bytes]


class Tree:
    """Perfect-subtree node store populated only via CompactRange.append."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        self.leaves = list(leaf_hashes)
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.roots: list[bytes] = [EMPTY_ROOT]
        self.ranges: list[CompactRange] = [CompactRange()]
        cr = CompactRange()
        for i, h in enumerate(self.leaves):
            self.nodes[(0, i)] = h
            for level, index, nh in cr.append(h):
                assert level >= 1
                assert (level, index) not in self.nodes
                self.nodes[(level, index)] = nh
            self.roots.append(cr.root())
            self.ranges.append(cr.copy())

    def getter(self, size: int, calls: list[tuple[int, int]] | None = None) -> GetFn:
        """A getter that refuses nodes not entirely inside the tree of ``size``."""

        def get(level: int, index: int) -> bytes:
            assert level >= 0 and index >= 0
            assert (index + 1) << level <= size, f"node ({level},{index}) beyond size {size}"
            if calls is not None:
                calls.append((level, index))
            return self.nodes[(level, index)]

        return get


def _tree(n: int, tag: bytes = b"") -> Tree:
    return Tree([leaf_hash(tag + i.to_bytes(4, "big")) for i in range(n)])


BIG = _tree(300)


# ---------------------------------------------------------------------------
# Known-answer vectors
#
# Source: transparency-dev/merkle, proof/verify_test.go (the classic RFC 6962
# vectors inherited from google/certificate-transparency): `leaves`, `roots`,
# `inclusionProofs` (leaf numbers there are 1-based) and `consistencyProofs`.
# Hasher vectors: transparency-dev/merkle, rfc6962/rfc6962_test.go.
# Node-ID structure vectors: transparency-dev/merkle, proof/proof_test.go
# (TestInclusion / TestConsistency).
# ---------------------------------------------------------------------------

H = bytes.fromhex

KAT_LEAVES = [
    H(""),
    H("00"),
    H("10"),
    H("2021"),
    H("3031"),
    H("40414243"),
    H("5051525354555657"),
    H("606162636465666768696a6b6c6d6e6f"),
]

KAT_ROOTS = [  # roots for tree sizes 1..8
    H("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    H("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    H("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    H("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    H("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    H("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    H("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]

# (0-based leaf index, tree size, path); upstream lists 1-based leaf numbers.
KAT_INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            H("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            H("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (2, 3, [H("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            H("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]

KAT_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            H("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            H("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            H("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            H("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            H("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

SOME_HASH = H("abacaba000000000000000000000000000000000000000000060061e00123456")

KAT_TREE = Tree([leaf_hash(d) for d in KAT_LEAVES])


def test_hasher_vectors() -> None:
    assert H("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == EMPTY_ROOT
    assert leaf_hash(b"") == H("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    assert leaf_hash(b"L123456") == H(
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    )
    assert node_hash(b"N123", b"N456") == H(
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )
    assert leaf_hash(b"") != EMPTY_ROOT


@pytest.mark.parametrize("size", range(1, 9))
def test_kat_roots(size: int) -> None:
    assert KAT_TREE.roots[size] == KAT_ROOTS[size - 1]
    assert root_at(size, KAT_TREE.getter(size)) == KAT_ROOTS[size - 1]
    assert naive_mth(KAT_TREE.leaves[:size]) == KAT_ROOTS[size - 1]


def test_empty_root() -> None:
    assert CompactRange().root() == EMPTY_ROOT
    assert root_at(0, KAT_TREE.getter(0)) == EMPTY_ROOT


def inclusion_probes(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[str, int, int, list[bytes], bytes, bytes]]:
    """Python port of corruptInclusionProof() from proof/verify_test.go."""
    probes = [
        ("index - 1", index - 1, size, proof, root, leaf),
        ("index + 1", index + 1, size, proof, root, leaf),
        ("index ^ 2", index ^ 2, size, proof, root, leaf),
        ("size * 2", index, size * 2, proof, root, leaf),
        ("size // 2", index, size // 2, proof, root, leaf),
        ("wrong leaf", index, size, proof, root, b"WrongLeaf"),
        ("empty root", index, size, proof, EMPTY_ROOT, leaf),
        ("random root", index, size, proof, SOME_HASH, leaf),
        ("trailing garbage", index, size, [*proof, b""], root, leaf),
        ("trailing root", index, size, [*proof, root], root, leaf),
        ("preceding garbage", index, size, [b"", *proof], root, leaf),
        ("preceding root", index, size, [root, *proof], root, leaf),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 8]) + bad[i][1:]
        probes.append((f"modified proof[{i}]", index, size, bad, root, leaf))
    if proof:
        probes.append(("removed component", index, size, proof[:-1], root, leaf))
    if len(proof) > 1:
        probes.append(
            ("inserted component", index, size, [proof[0], SOME_HASH, *proof[1:]], root, leaf)
        )
    return probes


@pytest.mark.parametrize(("index", "size", "expected"), KAT_INCLUSION)
def test_kat_inclusion(index: int, size: int, expected: list[bytes]) -> None:
    proof = inclusion_proof(index, size, KAT_TREE.getter(size))
    assert proof == expected
    leaf = KAT_TREE.leaves[index]
    root = KAT_ROOTS[size - 1]
    assert verify_inclusion(leaf, index, size, expected, root)
    for desc, i, n, p, r, lf in inclusion_probes(index, size, expected, root, leaf):
        assert not verify_inclusion(lf, i, n, p, r), desc


def test_kat_inclusion_single_entry() -> None:
    # verify_test.go TestVerifyInclusionSingleEntry / TestVerifyInclusion.
    h = leaf_hash(b"data")
    assert verify_inclusion(h, 0, 1, [], h)
    assert not verify_inclusion(b"", 0, 1, [], h)
    assert not verify_inclusion(h, 0, 1, [], b"")
    assert not verify_inclusion(b"", 0, 1, [], b"")
    for index, size in [(0, 0), (0, 1), (1, 0), (2, 1)]:
        assert not verify_inclusion(SOME_HASH, index, size, [], b"")
        assert not verify_inclusion(b"", index, size, [], EMPTY_ROOT)
        assert not verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)


def consistency_probes(
    m: int, n: int, r1: bytes, r2: bytes, proof: list[bytes]
) -> list[tuple[str, int, int, bytes, bytes, list[bytes]]]:
    """Python port of corruptConsistencyProof() from proof/verify_test.go."""
    probes = [
        ("m - 1", m - 1, n, r1, r2, proof),
        ("m + 1", m + 1, n, r1, r2, proof),
        ("m ^ 2", m ^ 2, n, r1, r2, proof),
        ("n * 2", m, n * 2, r1, r2, proof),
        ("n // 2", m, n // 2, r1, r2, proof),
        ("wrong root1", m, n, b"WrongRoot", r2, proof),
        ("wrong root2", m, n, r1, b"WrongRoot", proof),
        ("swapped roots", m, n, r2, r1, proof),
        ("empty proof", m, n, r1, r2, []),
        ("trailing garbage", m, n, r1, r2, [*proof, b""]),
        ("trailing root1", m, n, r1, r2, [*proof, r1]),
        ("trailing root2", m, n, r1, r2, [*proof, r2]),
        ("preceding garbage", m, n, r1, r2, [b"", *proof]),
        ("preceding root1", m, n, r1, r2, [r1, *proof]),
        ("preceding root2", m, n, r1, r2, [r2, *proof]),
        ("preceding proof[0]", m, n, r1, r2, [proof[0], *proof]),
        ("truncated proof", m, n, r1, r2, proof[:-1]),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 16]) + bad[i][1:]
        probes.append((f"modified proof[{i}]", m, n, r1, r2, bad))
    return probes


@pytest.mark.parametrize(("m", "n", "expected"), KAT_CONSISTENCY)
def test_kat_consistency(m: int, n: int, expected: list[bytes]) -> None:
    proof = consistency_proof(m, n, KAT_TREE.getter(n))
    assert proof == expected
    r1, r2 = KAT_ROOTS[m - 1], KAT_ROOTS[n - 1]
    assert verify_consistency(m, n, r1, r2, expected)
    if expected:
        for desc, a, b, x, y, p in consistency_probes(m, n, r1, r2, expected):
            assert not verify_consistency(a, b, x, y, p), desc


def test_kat_consistency_edge_cases() -> None:
    # verify_test.go TestVerifyConsistency.  Upstream uses short "don't care"
    # roots; this module additionally requires 32-byte roots when m == n, so
    # the passing cases use real-length stand-ins.
    root1, root2 = leaf_hash(b"don't care 1"), leaf_hash(b"don't care 2")
    proof2 = [EMPTY_ROOT]
    assert not verify_consistency(0, 0, root1, root2, [])
    assert not verify_consistency(1, 1, root1, root2, [])
    assert verify_consistency(0, 0, root1, root1, [])
    assert verify_consistency(0, 1, root1, root2, [])
    assert verify_consistency(1, 1, root2, root2, [])
    assert not verify_consistency(1, 0, root1, root2, [])
    assert not verify_consistency(2, 1, root1, root2, [])
    assert not verify_consistency(1, 2, root1, root2, [])
    assert not verify_consistency(0, 0, EMPTY_ROOT, root2, [])
    assert not verify_consistency(1, 1, EMPTY_ROOT, root2, [])
    assert not verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, proof2)
    assert not verify_consistency(0, 1, EMPTY_ROOT, EMPTY_ROOT, proof2)
    assert not verify_consistency(1, 1, EMPTY_ROOT, EMPTY_ROOT, proof2)


# Node-ID structure vectors from proof/proof_test.go.  Each entry is a list of
# items; an item is either a node id (level, index) or a tuple of ids that
# upstream "rehashes" into one proof element (ids listed bottom-up; each next
# id is the LEFT child of the accumulated hash).
Item = tuple[int, int] | tuple[tuple[int, int], ...]

STRUCT_INCLUSION: list[tuple[int, int, list[Item]]] = [  # (size, index, items)
    (1, 0, []),
    (2, 0, [(0, 1)]),
    (2, 1, [(0, 0)]),
    (3, 1, [(0, 0), (0, 2)]),
    (7, 0, [(0, 1), (1, 1), ((0, 6), (1, 2))]),
    (7, 1, [(0, 0), (1, 1), ((0, 6), (1, 2))]),
    (7, 2, [(0, 3), (1, 0), ((0, 6), (1, 2))]),
    (7, 3, [(0, 2), (1, 0), ((0, 6), (1, 2))]),
    (7, 4, [(0, 5), (0, 6), (2, 0)]),
    (7, 5, [(0, 4), (0, 6), (2, 0)]),
    (7, 6, [(1, 2), (2, 0)]),
    (4, 2, [(0, 3), (1, 0)]),
    (5, 3, [(0, 2), (1, 0), (0, 4)]),
    (6, 3, [(0, 2), (1, 0), (1, 2)]),
    (6, 4, [(0, 5), (2, 0)]),
    (15, 10, [(0, 11), (1, 4), ((0, 14), (1, 6)), (3, 0)]),
    (31, 24, [(0, 25), (1, 13), ((0, 30), (1, 14)), (3, 2), (4, 0)]),
    (95, 81, [(0, 80), (1, 41), (2, 21), ((0, 94), (1, 46), (2, 22)), (4, 4), (6, 0)]),
]

STRUCT_CONSISTENCY: list[tuple[int, int, list[Item]]] = [  # (size1, size2, items)
    (1, 2, [(0, 1)]),
    (1, 4, [(0, 1), (1, 1)]),
    (1, 6, [(0, 1), (1, 1), (1, 2)]),
    (2, 3, [(0, 2)]),
    (2, 8, [(1, 1), (2, 1)]),
    (3, 7, [(0, 2), (0, 3), (1, 0), ((0, 6), (1, 2))]),
    (4, 7, [((0, 6), (1, 2))]),
    (5, 7, [(0, 4), (0, 5), (0, 6), (2, 0)]),
    (6, 7, [(1, 2), (0, 6), (2, 0)]),
    (7, 8, [(0, 6), (0, 7), (1, 2), (2, 0)]),
    (1, 1, []),
    (2, 2, []),
    (3, 3, []),
    (4, 4, []),
    (5, 5, []),
    (7, 7, []),
    (8, 8, []),
    (2, 4, [(1, 1)]),
    (3, 5, [(0, 2), (0, 3), (1, 0), (0, 4)]),
    (3, 6, [(0, 2), (0, 3), (1, 0), (1, 2)]),
    (4, 6, [(1, 2)]),
    (1, 7, [(0, 1), (1, 1), ((0, 6), (1, 2))]),
    (10, 15, [(1, 4), (1, 5), ((0, 14), (1, 6)), (3, 0)]),
    (24, 31, [(3, 2), ((0, 30), (1, 14), (2, 6)), (4, 0)]),
    (81, 95, [(0, 80), (0, 81), (1, 41), (2, 21), ((0, 94), (1, 46), (2, 22)), (4, 4), (6, 0)]),
]


def _item_hash(item: Item, nodes: dict[tuple[int, int], bytes]) -> bytes:
    if isinstance(item[0], int):
        return nodes[item]  # type: ignore[index]
    ids = list(item)
    acc = nodes[ids[0]]  # type: ignore[index]
    for nid in ids[1:]:
        acc = node_hash(nodes[nid], acc)  # type: ignore[index]
    return acc


@pytest.mark.parametrize(("size", "index", "items"), STRUCT_INCLUSION)
def test_structure_inclusion(size: int, index: int, items: list[Item]) -> None:
    expected = [_item_hash(it, BIG.nodes) for it in items]
    assert inclusion_proof(index, size, BIG.getter(size)) == expected


@pytest.mark.parametrize(("m", "n", "items"), STRUCT_CONSISTENCY)
def test_structure_consistency(m: int, n: int, items: list[Item]) -> None:
    expected = [_item_hash(it, BIG.nodes) for it in items]
    assert consistency_proof(m, n, BIG.getter(n)) == expected


# ---------------------------------------------------------------------------
# Argument validation
# ---------------------------------------------------------------------------


def test_invalid_arguments() -> None:
    get = BIG.getter(300)
    for index, size in [(0, 0), (1, 1), (8, 7), (-1, 5), (0, -1)]:
        with pytest.raises(ValueError):
            inclusion_proof(index, size, get)
    for m, n in [(5, 0), (9, 8), (-1, 3), (-2, -1)]:
        with pytest.raises(ValueError):
            consistency_proof(m, n, get)
    with pytest.raises(ValueError):
        root_at(-1, get)
    for start, end in [(-1, 3), (5, 4), (1, 4), (2, 5), (4, 9), (3, 5)]:
        with pytest.raises(ValueError):
            subtree_hash(start, end, get)
    with pytest.raises(ValueError):
        CompactRange(3, [SOME_HASH])
    with pytest.raises(ValueError):
        CompactRange(-1, [])
    with pytest.raises(ValueError):
        CompactRange(1, [b"short"])
    with pytest.raises(ValueError):
        CompactRange.from_bytes(3, SOME_HASH)
    with pytest.raises(ValueError):
        CompactRange().append(b"not a hash")


def test_crafted_size_confusion_is_rejected() -> None:
    # Leaf 1 of a 2-leaf tree presented as the only leaf of a 1-leaf tree.
    assert not verify_inclusion(BIG.leaves[1], 0, 1, [BIG.leaves[0]], BIG.roots[2])


def test_verifiers_never_raise_on_bad_input() -> None:
    leaf, root = BIG.leaves[3], BIG.roots[10]
    assert not verify_inclusion(leaf, 10, 10, [], root)
    assert not verify_inclusion(leaf, -1, 10, [], root)
    assert not verify_inclusion(leaf, 0, -5, [], root)
    assert not verify_consistency(-1, 10, root, root, [])
    assert not verify_consistency(11, 10, root, root, [])
    assert not verify_consistency(3, 10, root, root, [b"x"])


# ---------------------------------------------------------------------------
# CompactRange
# ---------------------------------------------------------------------------


def test_compact_range_nodes_are_exactly_the_perfect_subtrees() -> None:
    n = len(BIG.leaves)
    expected = {(level, index) for level in range(n.bit_length()) for index in range(n >> level)}
    assert set(BIG.nodes) == expected
    for (level, index), h in BIG.nodes.items():
        lo = index << level
        assert h == naive_mth(BIG.leaves[lo : lo + (1 << level)])


def test_compact_range_serialization_and_copy() -> None:
    for size in [0, 1, 2, 3, 7, 8, 100, 255, 256, 300]:
        cr = BIG.ranges[size]
        assert cr.size == size
        assert len(cr.hashes) == size.bit_count()
        blob = cr.to_bytes()
        assert len(blob) == 32 * size.bit_count()
        again = CompactRange.from_bytes(size, blob)
        assert again == cr
        assert again.root() == cr.root() == BIG.roots[size]
        dup = cr.copy()
        if size < len(BIG.leaves):
            dup.append(BIG.leaves[size])
            assert dup.root() == BIG.roots[size + 1]
            assert cr.size == size and cr.root() == BIG.roots[size]
    # Frontier from stored nodes equals the incrementally built one.
    for size in range(len(BIG.leaves) + 1):
        frontier = []
        pos = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                frontier.append(BIG.nodes[(level, pos >> level)])
                pos += 1 << level
        assert CompactRange(size, frontier) == BIG.ranges[size]


# ---------------------------------------------------------------------------
# Exhaustive small-tree checks against the naive RFC recursion
# ---------------------------------------------------------------------------

SMALL = 40


def test_exhaustive_small_trees() -> None:
    leaves = BIG.leaves
    for n in range(1, SMALL + 1):
        get = BIG.getter(n)
        root = BIG.roots[n]
        assert root == naive_mth(leaves[:n]) == root_at(n, get)
        for i in range(n):
            calls: list[tuple[int, int]] = []
            proof = inclusion_proof(i, n, BIG.getter(n, calls))
            assert proof == naive_path(i, leaves[:n])
            assert len(calls) <= 2 * n.bit_length()
            assert verify_inclusion(leaves[i], i, n, proof, root)
            for j in range(n):
                if j != i:
                    assert not verify_inclusion(leaves[i], j, n, proof, root)
        for m in range(0, n + 1):
            calls = []
            proof = consistency_proof(m, n, BIG.getter(n, calls))
            expected = [] if m == 0 else naive_subproof(m, leaves[:n], True)
            assert proof == expected
            assert len(calls) <= 2 * n.bit_length() + 1
            assert verify_consistency(m, n, BIG.roots[m], root, proof)
            if 0 < m < n:
                for m2 in range(1, n):
                    if m2 != m:
                        assert not verify_consistency(m2, n, BIG.roots[m], root, proof)


def test_subtree_hash_all_aligned_ranges() -> None:
    leaves = BIG.leaves
    n_total = 130
    get = BIG.getter(n_total)
    for start in range(0, n_total):
        for end in range(start, n_total + 1):
            n = end - start
            aligned = n == 0 or start % (1 << (n - 1).bit_length()) == 0
            if aligned:
                assert subtree_hash(start, end, get) == naive_mth(leaves[start:end])
            else:
                with pytest.raises(ValueError):
                    subtree_hash(start, end, get)


# ---------------------------------------------------------------------------
# Hypothesis property tests
# ---------------------------------------------------------------------------

MAX = len(BIG.leaves)


@st.composite
def size_and_index(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, MAX))
    return size, draw(st.integers(0, size - 1))


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(st.integers(1, MAX))
    return draw(st.integers(1, n)), n


def _flip(proof: list[bytes], i: int, byte: int, bit: int) -> list[bytes]:
    bad = list(proof)
    h = bytearray(bad[i])
    h[byte] ^= 1 << bit
    bad[i] = bytes(h)
    return bad


@settings(max_examples=300, deadline=None)
@given(size_and_index(), st.data())
def test_inclusion_property(si: tuple[int, int], data: st.DataObject) -> None:
    size, index = si
    calls: list[tuple[int, int]] = []
    proof = inclusion_proof(index, size, BIG.getter(size, calls))
    assert len(calls) <= 2 * size.bit_length()
    root = BIG.ranges[size].root()
    leaf = BIG.leaves[index]
    assert verify_inclusion(leaf, index, size, proof, root)
    assert root_at(size, BIG.getter(size)) == root
    # Tampering.
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        byte, bit = data.draw(st.integers(0, 31)), data.draw(st.integers(0, 7))
        assert not verify_inclusion(leaf, index, size, _flip(proof, i, byte, bit), root)
        assert not verify_inclusion(leaf, index, size, proof[:-1], root)
        assert not verify_inclusion(leaf, index, size, proof[1:], root)
    assert not verify_inclusion(leaf, index, size, [*proof, SOME_HASH], root)
    assert not verify_inclusion(leaf, index, size, [SOME_HASH, *proof], root)
    other = data.draw(st.integers(0, size - 1).filter(lambda j: j != index)) if size > 1 else None
    if other is not None:
        assert not verify_inclusion(leaf, other, size, proof, root)
        assert not verify_inclusion(BIG.leaves[other], index, size, proof, root)
    assert not verify_inclusion(leaf, index, size, proof, SOME_HASH)
    # Crafted extension: one more level on top of a correct path must not verify
    # against the correspondingly extended root (RFC 9162 "if sn is 0 ... fail").
    assert not verify_inclusion(leaf, index, size, [*proof, SOME_HASH], node_hash(SOME_HASH, root))
    assert not verify_inclusion(leaf_hash(b"nope"), index, size, proof, root)
    for desc, i2, n2, p2, r2, lf2 in inclusion_probes(index, size, proof, root, leaf):
        if desc in ("size * 2", "size // 2"):
            continue  # RFC 6962 paths can coincide across sizes; the STH binds size.
        assert not verify_inclusion(lf2, i2, n2, p2, r2), desc


@settings(max_examples=300, deadline=None)
@given(two_sizes(), st.data())
def test_consistency_property(mn: tuple[int, int], data: st.DataObject) -> None:
    m, n = mn
    calls: list[tuple[int, int]] = []
    proof = consistency_proof(m, n, BIG.getter(n, calls))
    assert len(calls) <= 2 * n.bit_length() + 1
    r1, r2 = BIG.ranges[m].root(), BIG.ranges[n].root()
    assert verify_consistency(m, n, r1, r2, proof)
    if m == n:
        assert proof == []
        assert not verify_consistency(m, n, r1, SOME_HASH, proof)
        return
    assert proof
    i = data.draw(st.integers(0, len(proof) - 1))
    byte, bit = data.draw(st.integers(0, 31)), data.draw(st.integers(0, 7))
    assert not verify_consistency(m, n, r1, r2, _flip(proof, i, byte, bit))
    assert not verify_consistency(m, n, SOME_HASH, r2, proof)
    assert not verify_consistency(m, n, r1, SOME_HASH, proof)
    assert not verify_consistency(m, n, r2, r1, proof)
    assert not verify_consistency(m, n, r1, r2, proof[:-1])
    assert not verify_consistency(m, n, r1, r2, [*proof, SOME_HASH])
    assert not verify_consistency(m, n, r1, r2, [SOME_HASH, *proof])
    # Crafted extension on top of a correct proof (RFC 9162 "if sn is 0 ... fail").
    ext_r1, ext_r2 = node_hash(SOME_HASH, r1), node_hash(SOME_HASH, r2)
    assert not verify_consistency(m, n, ext_r1, ext_r2, [*proof, SOME_HASH])
    # A proof between other sizes must not verify these tree heads.
    m2 = data.draw(st.integers(1, n - 1))
    if m2 != m:
        assert not verify_consistency(m, n, r1, r2, consistency_proof(m2, n, BIG.getter(n)))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=16), min_size=0, max_size=48), st.data())
def test_random_leaf_data(entries: list[bytes], data: st.DataObject) -> None:
    tree = Tree([leaf_hash(e) for e in entries])
    n = len(entries)
    assert tree.roots[n] == naive_mth(tree.leaves) == root_at(n, tree.getter(n))
    for size in range(n + 1):
        assert tree.roots[size] == naive_mth(tree.leaves[:size])
    if n == 0:
        return
    index = data.draw(st.integers(0, n - 1))
    proof = inclusion_proof(index, n, tree.getter(n))
    assert proof == naive_path(index, tree.leaves)
    assert verify_inclusion(tree.leaves[index], index, n, proof, tree.roots[n])
    m = data.draw(st.integers(0, n))
    cproof = consistency_proof(m, n, tree.getter(n))
    assert verify_consistency(m, n, tree.roots[m], tree.roots[n], cproof)
