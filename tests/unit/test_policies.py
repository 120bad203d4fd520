"""swift.conf storage policies: table-driven parsing, quorum numbers as swift has them."""

from __future__ import annotations

import pytest

from ringmgr.errors import ConfigError
from ringmgr.rings.policies import (load_policies, majority_quorum, parse_swift_conf,
                                    policy_for_ring, quorum_size)
from tests.helpers.swift_conf import EC42

SWIFT_CONF = EC42 + """
[storage-policy:2]
name = ec-dup
policy_type = erasure_coding
ec_type = isa_l_rs_vand
ec_num_data_fragments = 3
ec_num_parity_fragments = 2
ec_duplication_factor = 2
"""


def test_parse_policies_and_rings():
    p = parse_swift_conf(SWIFT_CONF)
    assert sorted(p) == ["object", "object-1", "object-2"]
    assert not p["object"].is_ec and p["object"].name == "gold"
    ec = p["object-1"]
    assert (ec.ec_ndata, ec.ec_nparity, ec.ec_duplication_factor) == (4, 2, 1)
    assert ec.write_quorum(6) == 5 and ec.read_minimum() == 4
    dup = p["object-2"]
    assert dup.unique_fragments == 5 and dup.write_quorum(10) == 8
    assert "3+2 x2" in dup.describe()


def test_quorum_matches_swift():
    from swift.common.utils import quorum_size as swift_quorum

    for n in range(1, 12):
        assert quorum_size(n) == swift_quorum(n)


def test_replicated_verdict_quorum_is_swifts_and_majority_the_stricter_option():
    p = policy_for_ring({}, "object")
    table = {1: (1, 1), 2: (2, 1), 3: (2, 2), 4: (3, 2), 5: (3, 3), 6: (4, 3)}
    for n, (majority, swift) in table.items():
        assert majority_quorum(n) == n // 2 + 1 == majority
        assert p.write_quorum(n) == p.swift_write_quorum(n) == quorum_size(n) == swift
        assert p.write_quorum(n, "majority") == majority
    ec = parse_swift_conf(SWIFT_CONF)["object-1"]
    assert ec.write_quorum(6) == ec.swift_write_quorum(6) == 5 > ec.ec_ndata


@pytest.mark.parametrize("conf,ec_quorum", [
    ("[storage-policy:1]\npolicy_type = erasure_coding\nec_type = jerasure_rs_vand\n"
     "ec_num_data_fragments = 10\nec_num_parity_fragments = 4\n", 11),
])
def test_ec_quorum_matches_swift_policy(conf, ec_quorum):
    from swift.common.storage_policy import ECStoragePolicy

    ours = parse_swift_conf(conf)["object-1"]
    # pyeclib (with liberasurecode) comes with swift: no EC backend is a broken setup
    theirs = ECStoragePolicy(1, "x", ec_type="liberasurecode_rs_vand",
                             ec_ndata=ours.ec_ndata, ec_nparity=ours.ec_nparity)
    assert ours.write_quorum(14) == theirs.quorum == ec_quorum


def test_no_policy_sections_means_replicated_policy_0():
    p = parse_swift_conf("[swift-hash]\nswift_hash_path_prefix = x\n")
    assert list(p) == ["object"] and not p["object"].is_ec


def test_rings_without_policy_are_replicated():
    p = parse_swift_conf(SWIFT_CONF)
    assert not policy_for_ring(p, "account").is_ec
    assert not policy_for_ring(p, "object-7").is_ec
    assert policy_for_ring({}, "container").describe() == "replicated"


@pytest.mark.parametrize("conf,message", [
    ("[storage-policy:x]\nname = a\n", "policy index"),
    ("[storage-policy:1]\npolicy_type = weird\n", "unknown policy_type 'weird'"),
    ("[storage-policy:1]\npolicy_type = erasure_coding\nec_type = a\n"
     "ec_num_parity_fragments = 2\n", "ec_num_data_fragments is required"),
    ("[storage-policy:1]\npolicy_type = erasure_coding\nec_type = a\n"
     "ec_num_data_fragments = 0\nec_num_parity_fragments = 2\n", "must be a positive"),
    ("[storage-policy:1]\npolicy_type = erasure_coding\n"
     "ec_num_data_fragments = 4\nec_num_parity_fragments = 2\n", "ec_type is required"),
    ("not an ini file", "not a valid swift.conf"),
])
def test_bad_swift_conf_is_a_config_error(conf, message):
    with pytest.raises(ConfigError, match=message):
        parse_swift_conf(conf, "/etc/swift/swift.conf")


def test_load_policies(tmp_path):
    assert load_policies(None) == {}
    path = tmp_path / "swift.conf"
    path.write_text(SWIFT_CONF)
    assert load_policies(path)["object-1"].is_ec
    with pytest.raises(ConfigError, match="not found"):
        load_policies(tmp_path / "missing.conf")
