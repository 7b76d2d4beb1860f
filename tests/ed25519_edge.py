"""Test-only Ed25519 arithmetic (RFC 8032 §5.1, pure Python, slow) to build the signatures that
real signers never produce: small-order and mixed-order points, non-canonical encodings, S >= L.

Every case is built from first principles here and then judged by both libraries, so the tests
that use it do not depend on any published vector file.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)

Point = tuple[int, int, int, int]   # extended coordinates (X, Y, Z, T)
IDENTITY: Point = (0, 1, 1, 0)


def _inv(x: int) -> int:
    return pow(x, P - 2, P)


def add(a: Point, b: Point) -> Point:
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % P
    bb = (y1 + x1) * (y2 + x2) % P
    cc = 2 * t1 * t2 * D % P
    dd = 2 * z1 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def mul(s: int, point: Point) -> Point:
    out = IDENTITY
    while s:
        if s & 1:
            out = add(out, point)
        point = add(point, point)
        s >>= 1
    return out


def affine(point: Point) -> tuple[int, int]:
    x, y, z, _ = point
    zi = _inv(z)
    return x * zi % P, y * zi % P


def same(a: Point, b: Point) -> bool:
    return affine(a) == affine(b)


def recover_x(y: int, sign: int) -> int | None:
    if y >= P:
        return None
    x2 = (y * y - 1) * _inv(D * y * y + 1) % P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        return None
    if (x & 1) != sign:
        x = P - x
    return x


def point(x: int, y: int) -> Point:
    return (x, y, 1, x * y % P)


def decode(data: bytes) -> Point | None:
    """RFC 8032 §5.1.3 decoding (canonical encodings only)."""
    n = int.from_bytes(data, "little")
    y = n & ((1 << 255) - 1)
    x = recover_x(y, n >> 255)
    return None if x is None else point(x, y)


def encode(pt: Point) -> bytes:
    x, y = affine(pt)
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


BASE = point(recover_x(4 * _inv(5) % P, 0) or 0, 4 * _inv(5) % P)


def order(pt: Point) -> int | None:
    """The order of a point of the torsion subgroup (1, 2, 4 or 8); None for any other."""
    for k in (1, 2, 4, 8):
        if same(mul(k, pt), IDENTITY):
            return k
    return None


def challenge(r: bytes, a: bytes, message: bytes) -> int:
    return int.from_bytes(hashlib.sha512(r + a + message).digest(), "little") % L


def torsion_mul(h: int, t: Point) -> Point:
    """h·T for a point T of the torsion subgroup (its order divides 8)."""
    return mul(h % 8, t)


def _torsion() -> list[Point]:
    """The eight points of order dividing 8 (L times any curve point lands there)."""
    rng = random.Random(8)
    found: dict[tuple[int, int], Point] = {}
    while len(found) < 8:
        y = rng.randrange(P)
        x = recover_x(y, 0)
        if x is not None:
            t = mul(L, point(x, y))
            found[affine(t)] = t
    return [found[k] for k in sorted(found)]


TORSION = _torsion()


def non_canonical(pt: Point) -> list[bytes]:
    """The other encodings of a point: y + p (when it fits in 255 bits), and the sign bit
    set on x = 0."""
    x, y = affine(pt)
    out = []
    if y + P < 2**255:
        out.append(((y + P) | ((x & 1) << 255)).to_bytes(32, "little"))
    if x == 0:
        out.append((y | (1 << 255)).to_bytes(32, "little"))
    return out


@dataclass(frozen=True)
class Case:
    """One signature to judge, with the class of edge case it stands for."""

    kind: str
    public: bytes
    signature: bytes
    message: bytes


def _sign(a: int, public: bytes, message: bytes, r: int, extra_r: Point | None = None) -> bytes:
    big_r = mul(r, BASE)
    if extra_r is not None:
        big_r = add(big_r, extra_r)
    rb = encode(big_r)
    return rb + ((r + challenge(rb, public, message) * a) % L).to_bytes(32, "little")


def edge_cases(seed: int = 18) -> Iterator[Case]:
    """Every class of Ed25519 edge case we know to build, each at least once."""
    rng = random.Random(seed)
    for _ in range(3):   # honest signatures and their S >= L twins
        a = rng.randrange(1, L)
        public = encode(mul(a, BASE))
        message = rng.randbytes(40)
        sig = _sign(a, public, message, rng.randrange(L))
        yield Case("honest", public, sig, message)
        s = int.from_bytes(sig[32:], "little")
        yield Case("S + L (non-canonical S)", public, sig[:32] + (s + L).to_bytes(32, "little"),
                   message)
        yield Case("S with the top bits set", public,
                   sig[:32] + (s | (0b111 << 253)).to_bytes(32, "little"), message)
        # R = identity: a key holder's signature with nonce 0 (S = h·a)
        rb = encode(IDENTITY)
        sig0 = rb + (challenge(rb, public, message) * a % L).to_bytes(32, "little")
        yield Case("R = identity (small order), prime-order key", public, sig0, message)
    for t in TORSION:   # small-order public keys, under which forgeries need no secret
        ab = encode(t)
        for rt in TORSION:
            rb = encode(rt)
            for k in range(64):
                message = bytes([k]) * 8
                if same(add(rt, torsion_mul(challenge(rb, ab, message), t)), IDENTITY):
                    yield Case(f"small-order key ({order(t)}), small-order R ({order(rt)}), "
                               "S = 0", ab, rb + bytes(32), message)
                    break
        r = rng.randrange(L)
        rb = encode(mul(r, BASE))
        for k in range(256):
            message = bytes([k, 1])
            if same(torsion_mul(challenge(rb, ab, message), t), IDENTITY):
                yield Case(f"small-order key ({order(t)}), prime-order R", ab,
                           rb + r.to_bytes(32, "little"), message)
                break
        for nab in non_canonical(t):   # the same keys, encoded otherwise
            for rt in TORSION:
                for rb in (encode(rt), *non_canonical(rt)):
                    for k in range(64):
                        message = bytes([k]) * 8
                        if same(add(rt, torsion_mul(challenge(rb, nab, message), t)),
                                IDENTITY):
                            kind = "canonical" if rb == encode(rt) else "non-canonical"
                            yield Case(f"non-canonical small-order key, {kind} small-order R",
                                       nab, rb + bytes(32), message)
                            break
        for nrb in non_canonical(t):   # a non-canonical R under a small-order key
            for k in range(64):
                message = bytes([k]) * 8
                if same(add(t, torsion_mul(challenge(nrb, ab, message), t)), IDENTITY):
                    yield Case("small-order key, non-canonical small-order R", ab,
                               nrb + bytes(32), message)
                    break
    for t in TORSION[1:]:   # mixed-order keys aB + T: cofactorless holds only when hT = 0
        a = rng.randrange(1, L)
        public = encode(add(mul(a, BASE), t))
        r = rng.randrange(L)
        rb = encode(mul(r, BASE))
        wanted = {True: 1, False: 1}
        for k in range(256):
            if not any(wanted.values()):
                break
            message = bytes([k, 2])
            h = challenge(rb, public, message)
            holds = same(torsion_mul(h, t), IDENTITY)
            if wanted[holds]:
                wanted[holds] -= 1
                yield Case(f"mixed-order key (torsion {order(t)}), "
                           f"{'cofactorless equation holds' if holds else 'only cofactored'}",
                           public, rb + ((r + h * a) % L).to_bytes(32, "little"), message)
        for tr in TORSION[1:]:   # mixed-order R with a mixed-order key: hT_A + T_R = 0
            rb = encode(add(mul(r, BASE), tr))
            for k in range(256):
                message = bytes([k, 3])
                h = challenge(rb, public, message)
                if same(add(tr, torsion_mul(h, t)), IDENTITY):
                    yield Case("mixed-order key, mixed-order R, cofactorless holds", public,
                               rb + ((r + h * a) % L).to_bytes(32, "little"), message)
                    break
        a = rng.randrange(1, L)   # mixed-order R under a prime-order key: never holds
        public = encode(mul(a, BASE))
        message = rng.randbytes(16)
        yield Case("mixed-order R, prime-order key", public,
                   _sign(a, public, message, rng.randrange(L), t), message)
    found = 0
    while found < 4:   # 32 bytes that are no curve point
        public = rng.randbytes(32)
        if decode(public) is None and not non_canonical_decodes(public):
            found += 1
            yield Case("public key not on the curve", public, rng.randbytes(64), b"m")


def non_canonical_decodes(data: bytes) -> bool:
    n = int.from_bytes(data, "little")
    y = n & ((1 << 255) - 1)
    return y >= P and recover_x(y - P, n >> 255) is not None
