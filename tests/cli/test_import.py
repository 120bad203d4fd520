"""ringmgr import: builders made by swift-ring-builder, odd ones included (a port per
device, meta, a replication network, a device in another zone or region, overload,
fractional replicas, nodes in some rings only), described by a ringmgr.toml that loads
and gives back every device field of every builder; then the same config builds the
same rings with `ringmgr create`.  Bad input: exit 2, one line, nothing changed."""

import json
import shutil
import subprocess

import pytest
from swift.common.ring import RingBuilder

from ringmgr.config import load_config
from ringmgr.rings.desired import describe_differences
from tests.helpers.checksums import checksums
from tests.helpers.cli import run_cli

SRB = shutil.which("swift-ring-builder")
pytestmark = pytest.mark.skipif(SRB is None, reason="swift-ring-builder not installed")

FIELDS = ("ip", "port", "replication_ip", "replication_port", "device", "weight", "zone",
          "region", "meta")


def srb(builder, *args):
    p = subprocess.run([SRB, str(builder), *map(str, args)], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL)
    assert p.returncode in (0, 1), (args, p.stdout, p.stderr)
    return p


def make(d, ring, create, devices, *settings):
    path = d / f"{ring}.builder"
    srb(path, "create", *create)
    for value, weight in devices:
        srb(path, "add", value, weight)
    for s in settings:
        srb(path, *s)
    srb(path, "rebalance", "3")
    return path


@pytest.fixture(scope="module")
def odd_template(tmp_path_factory):
    """Four rings made by swift-ring-builder, every odd field somewhere (made once)."""
    d = tmp_path_factory.mktemp("odd") / "swift"
    d.mkdir()
    ssd = [("r1z1-127.0.9.1:6202/sda", "10"), ("r1z2-127.0.9.2:6202/sda", "10"),
           ("r2z3-127.0.9.3:6202/sda_ssd rack 3", "10")]
    make(d, "account", ("6", "3", "1"), ssd)
    make(d, "container", ("6", "3", "1"), [(v.replace("6202", "6201"), w) for v, w in ssd])
    make(d, "object", ("7", "2.5", "2"), [
        ("r1z1-127.0.9.1:6200R127.0.10.1:6220/sdb_rack 1", "100"),
        ("r1z1-127.0.9.1:6200R127.0.10.1:6220/sdc_rack 1", "100"),
        ("r1z2-127.0.9.2:6200R127.0.10.2:6220/sdb", "100"),
        ("r1z5-127.0.9.2:6200R127.0.10.2:6220/sdc", "50.5"),   # one disk in another zone
        ("r2z3-127.0.9.3:6200R127.0.10.3:6220/sdb", "100"),
        ("r1z4-127.0.9.4:6210/sdb", "100"),                    # a port per device
        ("r1z4-127.0.9.4:6211/sdc", "100"),
        ("r1z4-127.0.9.4:6212/sdd", "1e-05"),
    ], ("set_overload", "0.05"))
    make(d, "object-1", ("5", "2", "0"), [
        ("r1z1-127.0.9.1:6300R127.0.10.1:6300/sdb", "200"),
        ("r1z2-127.0.9.2:6300R127.0.10.2:6300/sdb", "200"),
        ("r2z3-127.0.9.3:6300R127.0.10.3:6300/sdb", "300")])
    return d


@pytest.fixture
def odd(odd_template, tmp_path, monkeypatch):
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path / "audit.log"))
    monkeypatch.delenv("RINGMGR_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    d = tmp_path / "swift"
    shutil.copytree(odd_template, d)
    return d


def rows(builder) -> list:
    return sorted(tuple(d[k] for k in FIELDS) for d in builder.devs if d is not None)


def config_rows(config, ring) -> list:
    out = []
    for node in config.nodes.values():
        for dev in node.devices_for(ring):
            f = node.device_fields(ring, dev, config.cluster.port_for(ring))
            out.append(tuple(f[k] for k in FIELDS))
    return sorted(out)


def test_import_describes_every_field_and_create_builds_the_same(odd, tmp_path):
    before = checksums(odd)
    r = run_cli(None, "--json", "import", str(odd))
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["nodes"] == 4 and doc["devices"] == 3 + 3 + 8 + 3
    assert doc["rings"] == ["account", "container", "object", "object-1"]
    assert checksums(odd) == before  # read only
    text = run_cli(None, "import", str(odd)).stdout
    assert text.strip() == doc["config"].strip()
    cfg = tmp_path / "ringmgr.toml"
    cfg.write_text(text)
    config = load_config(cfg)
    builders = {r: RingBuilder.load(str(odd / f"{r}.builder")) for r in doc["rings"]}
    for ring, b in builders.items():
        assert config_rows(config, ring) == rows(b), ring
        s = config.ring_settings[ring]
        assert (s.part_power, s.replicas, s.min_part_hours, s.overload) == \
            (b.part_power, b.replicas, b.min_part_hours, b.overload)
    assert describe_differences(config, builders) == []
    # the odd fields are said where they belong, not repeated per device
    assert "ports = { account = 6202, container = 6201, object = 6200, object-1 = 6300 }\n" \
        "replication_ports = { object = 6220 }\n" in text
    assert '[nodes.127-0-9-1]\nhost = "127.0.9.1"\nip = "127.0.9.1"\nregion = 1\nzone = 1\n' \
        'replication_ip = "127.0.10.1"\n' in text
    assert "[nodes.127-0-9-4.rings.object]\nport = 6210\n" in text
    assert "sdd = { weight = 1e-05, port = 6212, replication_port = 6212 }" in text
    assert "sdc = { weight = 50.5, zone = 5 }" in text
    # the same config builds the same rings from nothing
    new = tmp_path / "new"
    new.mkdir()
    cfg.write_text(text.replace(f'builder_dir = "{odd}"', f'builder_dir = "{new}"'))
    r = run_cli(None, "--config", str(cfg), "create", "--yes", "--seed", "1")
    assert r.exit_code in (0, 1), r.output
    for ring, b in builders.items():
        made = RingBuilder.load(str(new / f"{ring}.builder"))
        assert rows(made) == rows(b), ring
        assert (made.part_power, made.replicas, made.min_part_hours, made.overload) == \
            (b.part_power, b.replicas, b.min_part_hours, b.overload)
        assert subprocess.run([SRB, str(new / f"{ring}.builder"), "validate"]).returncode == 0


def test_a_node_in_some_rings_with_other_disks_gets_ring_overrides(odd, tmp_path):
    text = run_cli(None, "import", str(odd)).stdout
    node4 = text[text.index("[nodes.127-0-9-4]"):]
    assert "[nodes.127-0-9-4.rings.account.devices]\n\n[" in node4  # in no account ring
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    node = load_config(cfg).node("127-0-9-4")
    assert node.devices_for("account") == {} and node.devices_for("object-1") == {}
    assert set(node.devices_for("object")) == {"sdb", "sdc", "sdd"}


def test_output_file_is_never_overwritten_without_force(odd, tmp_path):
    out = tmp_path / "ringmgr.toml"
    assert run_cli(None, "import", str(odd), "-o", str(out)).exit_code == 0
    first = out.read_text()
    load_config(out)
    srb(odd / "object.builder", "set_weight", "127.0.9.1/sdb", "90", "--yes")
    r = run_cli(None, "import", str(odd), "-o", str(out))
    assert r.exit_code == 2 and "exists" in r.output and out.read_text() == first
    assert run_cli(None, "import", str(odd), "-o", str(out), "--force").exit_code == 0
    assert "sdb = { weight = 90.0, " in out.read_text()
    for target in (odd / "object.builder", odd / "backups" / "x.toml",
                   odd / ".ringmgr" / "c.toml"):
        target.parent.mkdir(exist_ok=True)
        before = checksums(odd)
        r = run_cli(None, "import", str(odd), "-o", str(target), "--force")
        assert r.exit_code == 2 and r.output.strip().splitlines()[-1].startswith(
            "ringmgr: error: -o"), r.output
        assert checksums(odd) == before


def test_pending_removals_are_left_out_and_said(odd, tmp_path):
    srb(odd / "object.builder", "remove", "127.0.9.4/sdd", "--yes")
    r = run_cli(None, "--json", "import", str(odd))
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert any("marked for removal" in w for w in doc["warnings"])
    assert "sdd" not in doc["config"]


@pytest.mark.parametrize("damage, expect", [
    ("empty", "no *.builder files in"),
    ("missing", "does not exist or is not a directory"),
    ("replication", "the builders disagree on the address of 127.0.9.1/sda: replication "
                    "ip 127.0.9.1 in account, 127.0.10.9 in container"),
    ("twice", "127.0.9.1 has two devices named sda"),
])
def test_bad_input_exit_2_one_line_nothing_changed(odd, tmp_path, damage, expect):
    target = odd
    if damage == "empty":
        target = tmp_path / "empty"
        target.mkdir()
        (target / "account.ring.gz.bak").write_bytes(b"x")
    elif damage == "missing":
        target = tmp_path / "nowhere"
    elif damage == "replication":
        srb(odd / "container.builder", "set_info", "--ip", "127.0.9.1", "--device", "sda",
            "--change-replication-ip", "127.0.10.9", "--yes")
    else:
        srb(odd / "account.builder", "add", "r1z1-127.0.9.1:6299/sda", "10")
    before = (checksums(odd), checksums(target) if target.exists() else None)
    r = run_cli(None, "import", str(target))
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("ringmgr: error: ") and expect in lines[0]
    assert (checksums(odd), checksums(target) if target.exists() else None) == before
