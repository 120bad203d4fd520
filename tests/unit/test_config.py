"""ringmgr.toml validation: every error names the file and the key."""

from pathlib import Path

import pytest

from ringmgr.config import load_config
from ringmgr.errors import ConfigError

BASE = """
[cluster]
builder_dir = "rings"

[nodes.s01]
ip = "10.0.0.1"
zone = 1
devices = { sdb = 4000.0 }
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "ringmgr.toml"
    p.write_text(text)
    return p


def test_full_example_loads(tmp_path):
    p = write(tmp_path, """
[cluster]
builder_dir = "rings"
rings = ["account", "object"]
ports = { account = 6202, container = 6201, object = 6200 }
push = true
swift_conf = "/etc/swift/swift.conf"

[ssh]
user = "admin"
port = 2222
identity_file = "keys/id"
known_hosts = "/root/.ssh/known_hosts"
parallel = 4

[defaults]
swift_dir = "/etc/swift"
mount_root = "/srv/node"
fstab = "fstab"
owner = "swift:swift"

[nodes.s01]
host = "s01.example.com"
ssh_port = 22
ip = "10.0.1.1"
region = 1
zone = 2
devices = { sdb = 4000.0, sdc = 4000 }
rings.account.devices = { sda = 200.0 }
block_devices = { sdb = "/dev/loop3" }

[proxies.p01]
host = "p01.example.com"

[openstack]
openrc = "/root/openrc"
nova_db = "mysql+pymysql://nova:secret@controller/nova"
""")
    c = load_config(p)
    assert c.cluster.builder_dir == (tmp_path / "rings").resolve()
    assert c.cluster.rings == ("account", "object")
    assert c.cluster.push is True
    assert c.cluster.port_for("object-3") == 6200
    assert c.ssh.identity_file == (tmp_path / "keys/id").resolve()
    assert c.ssh.port == 2222 and c.ssh.parallel == 4
    n = c.nodes["s01"]
    assert n.host == "s01.example.com" and n.zone == 2
    assert n.devices == {"sdb": 4000.0, "sdc": 4000.0}
    assert n.devices_for("account") == {"sda": 200.0}
    assert n.devices_for("object") == {"sdb": 4000.0, "sdc": 4000.0}
    assert n.block_device("sdb") == "/dev/loop3" and n.block_device("sdc") == "/dev/sdc"
    assert n.fstab == str((tmp_path / "fstab").resolve())
    assert c.proxies["p01"].swift_dir == "/etc/swift"
    assert c.openstack.nova_db.startswith("mysql+pymysql://")


def test_defaults_apply_to_nodes(tmp_path):
    c = load_config(write(tmp_path, BASE.replace("[nodes.s01]", '[defaults]\nowner = "root:root"\n'
                                                 'mount_root = "/mnt/d"\n\n[nodes.s01]')))
    assert c.nodes["s01"].owner == "root:root"
    assert c.nodes["s01"].mount_root == "/mnt/d"
    assert c.nodes["s01"].host == "s01"  # default: the node's name


@pytest.mark.parametrize("text, key", [
    (BASE + "\n[bogus]\nx = 1\n", "bogus"),
    (BASE.replace('builder_dir = "rings"', 'builder_dir = "rings"\nbuilderdir = "x"'),
     "cluster.builderdir"),
    (BASE.replace("zone = 1", 'zone = "one"'), "nodes.s01.zone"),
    (BASE.replace("sdb = 4000.0", 'sdb = "big"'), "nodes.s01.devices.sdb"),
    (BASE.replace("sdb = 4000.0", "sdb = -1.0"), "nodes.s01.devices.sdb"),
    (BASE + "mount_rot = \"/srv\"\n", "nodes.s01.mount_rot"),
    (BASE + "\n[nodes.s02]\nip = \"10.0.0.1\"\n", "nodes.s02.ip"),
    (BASE + "\n[nodes.s03]\nzone = 1\n", "nodes.s03.ip"),
    (BASE + "\n[ssh]\nport = true\n", "ssh.port"),
    (BASE + "\n[ssh]\nparallel = 0\n", "ssh.parallel"),
    (BASE + "\n[proxies.p1]\nip = \"1.2.3.4\"\n", "proxies.p1.ip"),
    (BASE + 'mount_options = "noatime,nobarrier"\n', "nodes.s01.mount_options"),
    (BASE + 'fstab_by = "path"\n', "nodes.s01.fstab_by"),
    (BASE + 'reboot_command = []\n', "nodes.s01.reboot_command"),
    (BASE + 'reboot_command = "reboot"\n', "nodes.s01.reboot_command"),
    (BASE + "rings.object.weights = { sdb = 1.0 }\n", "nodes.s01.rings.object.weights"),
    ("[nodes.s01]\nip = \"1.1.1.1\"\n", "cluster.builder_dir"),
    (BASE + "\n[cluster.extra]\n", "cluster.extra"),
    # non-finite numbers (TOML has inf and nan; 1e309 parses as inf), ports, names
    (BASE.replace("sdb = 4000.0", "sdb = 1e309"), "nodes.s01.devices.sdb"),
    (BASE.replace("sdb = 4000.0", "sdb = nan"), "nodes.s01.devices.sdb"),
    (BASE.replace('builder_dir = "rings"', 'builder_dir = "rings"\nlock_timeout = inf'),
     "cluster.lock_timeout"),
    (BASE.replace('builder_dir = "rings"', 'builder_dir = ""'), "cluster.builder_dir"),
    (BASE.replace('builder_dir = "rings"', 'builder_dir = "rings"\nrings = ["object-x"]'),
     "cluster.rings"),
    (BASE.replace('builder_dir = "rings"', 'builder_dir = "rings"\nports = { object = 70000 }'),
     "cluster.ports.object"),
    (BASE + "\n[ssh]\nport = 0\n", "ssh.port"),
    (BASE + "ssh_port = 65536\n", "nodes.s01.ssh_port"),
    (BASE + "\n[proxies.p1]\nssh_port = 99999\n", "proxies.p1.ssh_port"),
    (BASE.replace('ip = "10.0.0.1"', 'ip = ""'), "nodes.s01.ip"),
    (BASE + 'swift_dir = ""\n', "nodes.s01.swift_dir"),
    # values that reach commands and fstab on a node
    (BASE + 'mount_options = "noatime\\nLABEL=evil / xfs defaults 0 0"\n',
     "nodes.s01.mount_options"),
    (BASE + 'mount_options = "noatime nofail"\n', "nodes.s01.mount_options"),
    (BASE + 'mount_options = "noatime,,nofail"\n', "nodes.s01.mount_options"),
    (BASE + 'mount_options = ""\n', "nodes.s01.mount_options"),
    (BASE + 'mount_options = "noatime#x"\n', "nodes.s01.mount_options"),
    (BASE + 'mount_root = "srv/node"\n', "nodes.s01.mount_root"),
    (BASE + 'mount_root = "/"\n', "nodes.s01.mount_root"),
    (BASE + 'mount_root = "/srv/../etc"\n', "nodes.s01.mount_root"),
    (BASE + 'mount_root = "/srv/no de"\n', "nodes.s01.mount_root"),
    (BASE + 'mount_root = "/srv/node\\n"\n', "nodes.s01.mount_root"),
    (BASE.replace("[nodes.s01]", '[defaults]\nmount_root = "-rf"\n\n[nodes.s01]'),
     "defaults.mount_root"),
    (BASE + 'fstab = "/etc/fs tab"\n', "nodes.s01.fstab"),
    (BASE + 'owner = "swift swift"\n', "nodes.s01.owner"),
    (BASE + 'owner = "swift:swift:x"\n', "nodes.s01.owner"),
    (BASE + 'owner = "-R"\n', "nodes.s01.owner"),
    (BASE.replace("[nodes.s01]", '[defaults]\nowner = "a;b"\n\n[nodes.s01]'), "defaults.owner"),
    (BASE + '\n[proxies.p1]\nowner = "x y"\n', "proxies.p1.owner"),
    (BASE + 'block_devices = { sdb = "sdb" }\n', "nodes.s01.block_devices.sdb"),
    (BASE + 'block_devices = { sdb = "/srv/disk.img" }\n', "nodes.s01.block_devices.sdb"),
    (BASE + 'block_devices = { sdb = "/dev/../etc/passwd" }\n', "nodes.s01.block_devices.sdb"),
    (BASE + 'block_devices = { sdb = "/dev/sdb -o x" }\n', "nodes.s01.block_devices.sdb"),
    (BASE + 'block_devices = { "s b" = "/dev/sdb" }\n', "nodes.s01.block_devices.s b"),
    (BASE + 'mkfs_options = ["-i", "/dev/sda"]\n', "nodes.s01.mkfs_options"),
    (BASE + 'mkfs_options = ["-i size=1024"]\n', "nodes.s01.mkfs_options"),
    (BASE + 'mkfs_options = ["-L", "x"]\n', "nodes.s01.mkfs_options"),
    (BASE + 'mkfs_options = ["-m", "uuid=1"]\n', "nodes.s01.mkfs_options"),
    (BASE + 'transport = "kube ctl"\n', "nodes.s01.transport"),
    (BASE + "transport = 1\n", "nodes.s01.transport"),
    (BASE + '\n[proxies.p1]\ntransport = ""\n', "proxies.p1.transport"),
])
def test_bad_config_names_file_and_key(tmp_path, text, key):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert str(p) in msg and f"{key}:" in msg
    assert "\n" not in msg


@pytest.mark.parametrize("extra", [
    'mount_options = "noatime,nofail,logbufs=8,context=system_u:object_r:swift_data_t:s0"\n',
    'owner = "swift"\nmount_root = "/srv/node/"\n',
    'owner = "1000:1000"\nblock_devices = { sdb = "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4" }\n',
    'block_devices = { sdb = "/dev/disk/by-path/pci-0000:00:1f.2-ata-1" }\n',
    'mkfs_options = ["-i", "size=1024", "-d", "agcount=32,su=64k,sw=4", "-l", "logdev=/dev/sdc"]\n',
])
def test_node_values_that_are_fine(tmp_path, extra):
    load_config(write(tmp_path, BASE + extra))


def test_not_toml(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[cluster\nbuilder_dir = 1"))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_warning_for_node_ip_without_devices(tmp_path):
    from ringmgr.rings.status import ring_warnings
    from tests.helpers.small_rings import build_ring

    c = load_config(write(tmp_path, BASE + '\n[nodes.s09]\nip = "10.0.0.9"\n'))
    ring = build_ring(nodes=3)  # devices at 127.0.0.1-3 only
    w = [x for x in ring_warnings(c, {"object": ring}, []) if "s09" in x]
    assert len(w) == 1 and "nodes.s09.ip" in w[0] and str(c.path) in w[0]
    assert "not yet added" in w[0]


def test_config_lookup_order(tmp_path, monkeypatch):
    """--config, else $RINGMGR_CONFIG, else ./ringmgr.toml, else /etc/ringmgr/ringmgr.toml."""
    from ringmgr.config import find_config_path

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RINGMGR_CONFIG", raising=False)
    assert find_config_path(None) == Path("/etc/ringmgr/ringmgr.toml")
    write(tmp_path, BASE)
    assert find_config_path(None) == Path("ringmgr.toml")
    monkeypatch.setenv("RINGMGR_CONFIG", "/x/env.toml")
    assert find_config_path(None) == Path("/x/env.toml")
    assert find_config_path("given.toml") == Path("given.toml")


def test_config_that_is_a_directory(tmp_path):
    with pytest.raises(ConfigError, match="Is a directory") as e:
        load_config(tmp_path)
    assert str(tmp_path) in str(e.value)


# -- what describes rings: [rings.NAME], device tables, a node's ring table ---------------

RINGS_OK = BASE.replace('builder_dir = "rings"', 'builder_dir = "rings"\n'
                        'replication_ports = { object = 6210 }') + """\
meta = "rack 1"
replication_ip = "10.1.0.1"
rings.object.port = 6300
rings.account.devices = { sda = { weight = 10.0, zone = 3, meta = "ssd" } }
rings.container.replication_port = 6299

[nodes.s02]
ip = "10.0.0.2"
zone = 2
devices = { sdb = { weight = 1.5, port = 6400, replication_port = 6401, region = 2 } }

[rings.object]
part_power = 18
replicas = 2.5
min_part_hours = 24
overload = 0.1

[rings.account]
part_power = 10
"""


def test_device_tables_and_ring_settings_resolve(tmp_path):
    c = load_config(write(tmp_path, RINGS_OK))
    s01, s02 = c.node("s01"), c.node("s02")
    assert s01.device_fields("object", "sdb", 6200) == {
        "region": 1, "zone": 1, "ip": "10.0.0.1", "port": 6300, "replication_ip": "10.1.0.1",
        "replication_port": 6210, "device": "sdb", "weight": 4000.0, "meta": "rack 1"}
    assert s01.device_fields("account", "sda", 6202) == {
        "region": 1, "zone": 3, "ip": "10.0.0.1", "port": 6202, "replication_ip": "10.1.0.1",
        "replication_port": 6202, "device": "sda", "weight": 10.0, "meta": "ssd"}
    assert s01.device_fields("container", "sdb", 6201)["replication_port"] == 6299
    assert s02.device_fields("object", "sdb", 6200) == {
        "region": 2, "zone": 2, "ip": "10.0.0.2", "port": 6400, "replication_ip": "10.0.0.2",
        "replication_port": 6401, "device": "sdb", "weight": 1.5, "meta": ""}
    assert s02.devices == {"sdb": 1.5} and s01.devices_for("account") == {"sda": 10.0}
    assert s01.devices_for("object") == {"sdb": 4000.0}  # a port alone overrides no devices
    assert c.ring_settings["object"].replicas == 2.5
    assert c.ring_settings["account"].replicas is None
    assert c.cluster.replication_ports == {"object": 6210}


@pytest.mark.parametrize("text, key", [
    (BASE.replace("sdb = 4000.0", "sdb = { port = 6200 }"), "nodes.s01.devices.sdb.weight"),
    (BASE.replace("sdb = 4000.0", "sdb = { weight = 1.0, colour = 1 }"),
     "nodes.s01.devices.sdb.colour"),
    (BASE.replace("sdb = 4000.0", "sdb = { weight = 1.0, port = 70000 }"),
     "nodes.s01.devices.sdb.port"),
    (BASE.replace("sdb = 4000.0", 'sdb = { weight = 1.0, zone = "two" }'),
     "nodes.s01.devices.sdb.zone"),
    (BASE.replace("sdb = 4000.0", 'sdb = { weight = -1.0 }'), "nodes.s01.devices.sdb.weight"),
    (BASE.replace("sdb = 4000.0", 'sdb = { weight = 1.0, replication_ip = "" }'),
     "nodes.s01.devices.sdb.replication_ip"),
    (BASE + "rings.object.port = 0\n", "nodes.s01.rings.object.port"),
    (BASE + 'rings.object.port = "6200"\n', "nodes.s01.rings.object.port"),
    (BASE + "meta = 5\n", "nodes.s01.meta"),
    (BASE + "\n[rings.object]\npart_power = 40\n", "rings.object.part_power"),
    (BASE + "\n[rings.object]\nreplicas = 0.5\n", "rings.object.replicas"),
    (BASE + "\n[rings.object]\nmin_part_hours = 256\n", "rings.object.min_part_hours"),
    (BASE + "\n[rings.object]\noverload = -0.1\n", "rings.object.overload"),
    (BASE + "\n[rings.object]\nzones = 3\n", "rings.object.zones"),
    (BASE + "\n[rings.objects]\npart_power = 3\n", "rings.objects"),
    (BASE.replace('builder_dir = "rings"', 'builder_dir = "rings"\n'
                  'replication_ports = { object = 0 }'), "cluster.replication_ports.object"),
    (BASE.replace('builder_dir = "rings"', 'builder_dir = "rings"\n'
                  'ports = { objekt = 6200 }'), "cluster.ports.objekt"),
])
def test_bad_ring_description_names_file_and_key(tmp_path, text, key):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert str(p) in msg and f"{key}:" in msg and "\n" not in msg


def test_transport_per_host_from_defaults_and_refused_when_unknown(tmp_path):
    """``transport``: a node's or proxy's own, else [defaults]', else none (the factory
    picks local or ssh by address); a name no transport has is a config error naming
    the key it was set by (checked where executors are made: exec/factory.py)."""
    from ringmgr.exec.factory import TRANSPORTS, check_transports

    text = BASE.replace("[nodes.s01]", '[defaults]\ntransport = "ssh"\n\n[nodes.s01]') + (
        '\n[nodes.s02]\nip = "10.0.0.2"\ntransport = "local"\n\n[proxies.p1]\n')
    c = load_config(write(tmp_path, text))
    assert {n: h.transport for n, h in c.hosts().items()} == {
        "s01": "ssh", "s02": "local", "p1": "ssh"}
    assert c.nodes["s01"].transport_key == "defaults.transport"
    assert c.nodes["s02"].transport_key == "nodes.s02.transport"
    check_transports(c)
    assert load_config(write(tmp_path, BASE)).nodes["s01"].transport is None

    for text, key in ((BASE + 'transport = "kubectl"\n', "nodes.s01.transport"),
                      (BASE.replace("[nodes.s01]", '[defaults]\ntransport = "kubectl"\n\n'
                                                   '[nodes.s01]'), "defaults.transport"),
                      (BASE + '\n[proxies.p1]\ntransport = "kubectl"\n',
                       "proxies.p1.transport")):
        p = write(tmp_path, text)
        c = load_config(p)           # the form is right: the name is the factory's to know
        with pytest.raises(ConfigError) as e:
            check_transports(c)
        assert str(e.value) == (f"{p}: {key}: unknown transport 'kubectl' (known: "
                                f"{', '.join(sorted(TRANSPORTS))})")


@pytest.mark.parametrize("text, words", [
    ('canary = "2"\n', "cluster.canary: must be an integer, not a string"),
    ('push = 1\n', "cluster.push: must be a boolean, not an integer"),
])
def test_a_wrong_type_is_named_in_plain_english(tmp_path, text, words):
    p = write(tmp_path, BASE.replace("[cluster]\n", "[cluster]\n" + text))
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert words in str(e.value), str(e.value)
