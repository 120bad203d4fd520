"""increase-part-power opens one SSH connection per node for the whole run and closes
them all at the end, also after an error: real sshd hosts on loopback."""

import pytest

from ringmgr.config import load_config
from ringmgr.ops import partpower_nodes as pn
from ringmgr.ops.partpower_env import Env


@pytest.fixture
def cfg(sshd_hosts, tmp_path):
    return load_config(sshd_hosts.write_config(tmp_path / "ringmgr.toml", tmp_path))


def object_nodes(cfg):
    return {n.name: pn.ObjectNode(n, {"object": ["sdb"]}) for n in cfg.nodes.values()}


def poll(env, nodes):
    """One poll of every node, as the relinker phases make it."""
    states = pn.parallel(env.config, nodes, lambda on: pn.relinker_state(
        on, env.executor(on.node), lambda ip, port, what: {}, "op-1", "relink",
        ["object"]))
    for name, st in states.items():
        assert not isinstance(st, Exception), f"{name}: {st}"
        assert st["state"] == "none", st
    return {name: env.executor(on.node)._conn.transport for name, on in nodes.items()}


def test_every_poll_reuses_the_nodes_one_connection_and_close_ends_them(cfg):
    nodes = object_nodes(cfg)
    with Env(cfg, ["object"]) as env:
        first = poll(env, nodes)
        for _ in range(3):
            assert poll(env, nodes) == first, "a poll opened a new connection"
        assert all(t.is_active() for t in first.values())
    assert not any(t.is_active() for t in first.values()), "a connection outlived the run"


def test_the_connections_are_closed_after_an_error(cfg):
    nodes = object_nodes(cfg)
    transports = {}
    with pytest.raises(KeyboardInterrupt):
        with Env(cfg, ["object"]) as env:
            transports = poll(env, nodes)
            raise KeyboardInterrupt
    assert transports and not any(t.is_active() for t in transports.values())


def test_a_dropped_connection_is_opened_again_on_the_next_poll(cfg):
    nodes = object_nodes(cfg)
    with Env(cfg, ["object"]) as env:
        first = poll(env, nodes)
        name = next(iter(nodes))
        first[name].close()          # the node rebooted, a NAT forgot the connection
        again = poll(env, nodes)
        assert again[name] is not first[name] and again[name].is_active()
        assert all(again[n] is first[n] for n in nodes if n != name)
