"""swift.conf texts for tests (the sections swift reads: [swift-hash] and the storage
policies), and a cluster's [cluster].swift_conf pointed at one."""

from __future__ import annotations

from pathlib import Path

GOLD = """[swift-hash]
swift_hash_path_suffix = ringmgr-tests

[storage-policy:0]
name = gold
default = yes
"""

# policy 1 replicated (object-1 a replicated ring)
REPLICATED = GOLD + """
[storage-policy:1]
name = silver
"""


def erasure_coded(name: str, ndata: int, nparity: int) -> str:
    """GOLD, and policy 1 (the object-1 ring) erasure coded NDATA+NPARITY."""
    return GOLD + f"""
[storage-policy:1]
name = {name}
policy_type = erasure_coding
ec_type = liberasurecode_rs_vand
ec_num_data_fragments = {ndata}
ec_num_parity_fragments = {nparity}
"""


EC21 = erasure_coded("ec21", 2, 1)
EC42 = erasure_coded("ec42", 4, 2)


def with_swift_conf(cluster, text: str) -> Path:
    """``text`` as swift.conf beside the cluster, named by its [cluster].swift_conf."""
    conf = cluster.root / "swift.conf"
    conf.write_text(text)
    cfg = cluster.config.read_text()
    cluster.config.write_text(cfg.replace("[cluster]\n", f'[cluster]\nswift_conf = "{conf}"\n', 1))
    return conf
