"""Storage policies from swift.conf: which object ring is replicated, which is
erasure coded, and how many replicas or fragments each needs to stay writable and
readable.

swift.conf is parsed with configparser, as swift itself does, without importing
swift's policy machinery (that loads rings and pyeclib).  A sample::

    [storage-policy:0]
    name = gold
    default = yes

    [storage-policy:1]
    name = ec104
    policy_type = erasure_coding
    ec_type = liberasurecode_rs_vand
    ec_num_data_fragments = 10
    ec_num_parity_fragments = 4

Policy 0 uses the ring ``object``, policy N the ring ``object-N``.  Account and
container rings are always replicated.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path

from ringmgr.errors import ConfigError

REPLICATION = "replication"
ERASURE_CODING = "erasure_coding"

__all__ = ["Policy", "parse_swift_conf", "load_policies", "policy_for_ring",
           "quorum_size", "majority_quorum", "REPLICATION", "ERASURE_CODING"]


def quorum_size(n: int) -> int:
    """swift.common.utils.quorum_size: successes a replicated write needs.

    (n + 1) // 2: 2 of 3, but 2 of 4 and 1 of 2 (swift counts a half of an even
    replica count as a quorum; the often quoted n // 2 + 1 differs for even n).
    """
    return (n + 1) // 2


def majority_quorum(n: int) -> int:
    """replicas // 2 + 1: a true majority, ok-to-stop's stricter option
    (``--quorum majority``).

    Never smaller than swift's ``quorum_size`` and larger for even counts (3 of 4,
    2 of 2): a 2-replica ring never passes it while one node is down.
    """
    return n // 2 + 1


@dataclass(frozen=True)
class Policy:
    """One storage policy (or the implicit replicated policy of account/container)."""

    index: int | None
    name: str
    policy_type: str = REPLICATION
    ec_type: str | None = None
    ec_ndata: int | None = None
    ec_nparity: int | None = None
    ec_duplication_factor: int = 1
    deprecated: bool = False

    @property
    def ring_name(self) -> str:
        if self.index is None:
            return self.name
        return "object" if self.index == 0 else f"object-{self.index}"

    @property
    def is_ec(self) -> bool:
        return self.policy_type == ERASURE_CODING

    @property
    def unique_fragments(self) -> int:
        return (self.ec_ndata or 0) + (self.ec_nparity or 0)

    def write_quorum(self, replicas: int, rule: str = "swift") -> int:
        """Primary replicas (fragments) that must stay reachable for ok-to-stop to call
        a partition with ``replicas`` safe.

        Replicated: swift's own ``quorum_size`` ((n + 1) // 2) by default, what the
        proxy needs for a write to succeed; ``rule="majority"``: n // 2 + 1, stricter
        for even n.  EC, under either rule: (ec_ndata + 1) x duplication factor,
        swift's ``ECStoragePolicy.quorum`` (every pyeclib scheme needs one parity
        fragment beyond the data fragments), stricter than ec_ndata.
        """
        if self.is_ec or rule == "swift":
            return self.swift_write_quorum(replicas)
        return max(majority_quorum(replicas), quorum_size(replicas))

    def swift_write_quorum(self, replicas: int) -> int:
        """What swift's proxy itself needs for a write to succeed (reported beside
        ``write_quorum``): quorum_size(n) replicated, ECStoragePolicy.quorum for EC."""
        if self.is_ec:
            return (self.ec_ndata + 1) * self.ec_duplication_factor
        return quorum_size(replicas)

    def read_minimum(self) -> int:
        """Distinct replicas (EC: distinct fragment indexes) needed to read."""
        return self.ec_ndata if self.is_ec else 1

    def describe(self) -> str:
        if self.is_ec:
            dup = (f" x{self.ec_duplication_factor}"
                   if self.ec_duplication_factor != 1 else "")
            return (f"erasure coded {self.ec_ndata}+{self.ec_nparity}{dup} "
                    f"({self.ec_type})")
        return "replicated"

    def to_json(self) -> dict:
        return {"index": self.index, "name": self.name, "policy_type": self.policy_type,
                "ec_type": self.ec_type, "ec_ndata": self.ec_ndata,
                "ec_nparity": self.ec_nparity,
                "ec_duplication_factor": self.ec_duplication_factor}


_DEFAULT = Policy(index=0, name="Policy-0")


def parse_swift_conf(text: str, source: str = "swift.conf") -> dict[str, Policy]:
    """swift.conf text -> {ring name: Policy} for the object policies it defines.

    Without any ``[storage-policy:N]`` section swift uses a replicated policy 0,
    and so does this.  Errors name ``source`` and the section.
    """
    cp = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        cp.read_string(text, source=source)
    except configparser.Error as e:
        raise ConfigError(f"{source}: not a valid swift.conf: {_one_line(e)}")
    policies: dict[str, Policy] = {}
    for section in cp.sections():
        if not section.startswith("storage-policy:"):
            continue
        idx_s = section.split(":", 1)[1]
        try:
            idx = int(idx_s)
            if idx < 0:
                raise ValueError
        except ValueError:
            raise ConfigError(f"{source}: [{section}]: policy index must be a "
                              f"non-negative integer")
        opts = cp[section]
        ptype = opts.get("policy_type", REPLICATION).strip()
        name = opts.get("name", f"Policy-{idx}").strip()
        deprecated = opts.get("deprecated", "no").strip().lower() in (
            "yes", "true", "1", "on", "t", "y")
        if ptype == REPLICATION:
            p = Policy(idx, name, REPLICATION, deprecated=deprecated)
        elif ptype == ERASURE_CODING:
            ndata = _positive_int(opts, "ec_num_data_fragments", source, section)
            nparity = _positive_int(opts, "ec_num_parity_fragments", source, section)
            dup = (_positive_int(opts, "ec_duplication_factor", source, section)
                   if "ec_duplication_factor" in opts else 1)
            ec_type = opts.get("ec_type")
            if not ec_type:
                raise ConfigError(f"{source}: [{section}]: ec_type is required for an "
                                  f"erasure_coding policy")
            p = Policy(idx, name, ERASURE_CODING, ec_type.strip(), ndata, nparity, dup,
                       deprecated)
        else:
            raise ConfigError(f"{source}: [{section}]: unknown policy_type {ptype!r} "
                              f"(known: {REPLICATION}, {ERASURE_CODING})")
        policies[p.ring_name] = p
    if not policies:
        policies["object"] = _DEFAULT
    return policies


def load_policies(path: str | os.PathLike | None) -> dict[str, Policy]:
    """The policies of the swift.conf at ``path``; None means 'not configured':
    every object ring is then treated as replicated (the caller should say so)."""
    if path is None:
        return {}
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"swift.conf {path} not found (set [cluster].swift_conf)")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read swift.conf {path}: {e}")
    return parse_swift_conf(text, str(path))


def policy_for_ring(policies: dict[str, Policy], ring: str) -> Policy:
    """The policy governing ``ring``: account/container and object rings without a
    policy in swift.conf are replicated."""
    if ring in policies:
        return policies[ring]
    if ring.startswith("object"):
        idx = 0 if ring == "object" else _ring_index(ring)
        return Policy(idx, f"Policy-{idx}" if idx is not None else ring)
    return Policy(None, ring)


def _ring_index(ring: str) -> int | None:
    try:
        return int(ring.split("-", 1)[1])
    except (IndexError, ValueError):
        return None


def _positive_int(opts, key, source, section) -> int:
    raw = opts.get(key)
    if raw is None:
        raise ConfigError(f"{source}: [{section}]: {key} is required for an "
                          f"erasure_coding policy")
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"{source}: [{section}]: {key} must be a positive integer, "
                          f"not {raw!r}")
    return value


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())
