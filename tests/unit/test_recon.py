"""The recon client: parsers on real lab answers (tests/data/recon/), the [recon]
config section, and sweeps against a running lab (real recon middleware)."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ringmgr.config import load_config
from ringmgr.errors import ConfigError
from ringmgr.live import recon_parse as rp
from ringmgr.live.recon import ReconClient, Server, decode

DATA = Path(__file__).resolve().parents[1] / "data" / "recon"


def sample(name: str):
    return json.loads((DATA / f"lab-{name}.json").read_text())


# --- parsers, on answers captured from the lab ------------------------------------------
def test_object_replication_minutes_become_a_start():
    p = rp.parse_replication("object", sample("replication_object"))
    assert p.end == 1796192729.158647
    assert p.duration == pytest.approx(4.78665033976237e-05 * 60)
    assert p.start == pytest.approx(p.end - p.duration)
    assert p.failures == 0


def test_container_replication_start_comes_from_the_stats():
    p = rp.parse_replication("container", sample("replication_container"))
    assert p.start == 1796192729.102413      # replication_stats.start, not last - time
    assert p.duration == 0.000400543212890625  # seconds for db replicators
    p = rp.parse_replication("account", sample("replication_account"))
    assert p.start == 1796192729.4426475


@pytest.mark.parametrize("name,kind", [("replication_object-never", "object"),
                                       ("replication_container-never", "container")])
def test_no_pass_yet_is_none_not_an_error(name, kind):
    p = rp.parse_replication(kind, sample(name))
    assert (p.start, p.end, p.duration) == (None, None, None)


def test_the_other_samples():
    assert rp.parse_reconstruction(sample("reconstruction_object")).end is None
    du = rp.parse_diskusage(sample("diskusage"))
    assert sorted(d.device for d in du) == ["sdb", "sdc"] and not any(d.mounted for d in du)
    assert rp.parse_unmounted(sample("unmounted")) == ["sdb", "sdc"]
    assert rp.parse_async(sample("async")) is None
    assert rp.parse_quarantined(sample("quarantined")) == {"objects": 0, "containers": 0,
                                                           "accounts": 0}
    md5s = rp.parse_md5s(sample("ringmd5"))
    assert set(md5s) == {"account.ring.gz", "container.ring.gz", "object.ring.gz",
                         "object-1.ring.gz"}
    assert list(rp.parse_md5s(sample("swiftconfmd5"), "swiftconfmd5")) == ["swift.conf"]
    assert rp.parse_relinker(sample("relinker")) == []
    assert rp.parse_time(sample("time")) > 1.7e9
    assert rp.parse_driveaudit(sample("driveaudit")) is None
    assert rp.parse_version(sample("version")) == "2.38.3"


def test_mounted_diskusage_and_percent():
    du = rp.parse_diskusage([{"device": "sdb", "mounted": True, "size": 1000,
                              "used": 250, "avail": 750}])
    assert du[0].percent == 25.0


def test_relinker_progress_without_policies():
    devs = rp.parse_relinker({"devices": {"sdb": {"parts_done": 3, "total_parts": 8,
                                                  "step": "relink"},
                                          "sdc": {"parts_done": 8, "total_parts": 8,
                                                  "step": "cleanup"}}, "workers": None})
    assert [(d.device, d.policy, d.step, d.finished) for d in devs] == [
        ("sdb", None, "relink", False), ("sdc", None, "cleanup", True)]


def _relinker(name):
    """Answers of swift's recon middleware during a real relinker run
    (sim/capture_relinker.py: two policies, four devices, swift 2.38.3)."""
    return json.loads((DATA / f"relinker-{name}.json").read_text())


# (sample, per policy (policy, step, devices, done), the health column, unfinished entries)
RELINKER_CASES = [
    ("relink-midway", [(0, "relink", 4, 4), (1, "relink", 4, 0)],
     "policy 0: relink done; policy 1: relinking, 0/4 devices done", [("sde", 1)]),
    ("relink-done", [(0, "relink", 4, 4), (1, "relink", 4, 4)],
     "policy 0: relink done; policy 1: relink done", []),
    ("cleanup-midway", [(0, "cleanup", 4, 4), (1, "cleanup", 4, 0)],
     "policy 0: cleanup done; policy 1: cleaning up, 0/4 devices done", [("sdb", 1)]),
    ("cleanup-done", [(0, "cleanup", 4, 4), (1, "cleanup", 4, 4)],
     "policy 0: cleanup done; policy 1: cleanup done", []),
]


@pytest.mark.parametrize("name,policies,cell,unfinished", RELINKER_CASES)
def test_relinker_per_policy_on_real_answers(name, policies, cell, unfinished):
    from ringmgr.live.health import relinker_cell

    entries = rp.parse_relinker(_relinker(name))
    by = rp.relinker_by_policy(entries)
    assert [(p["policy"], p["step"], p["devices"], p["devices_done"]) for p in by] == policies
    assert relinker_cell(by) == cell
    assert [(e.device, e.policy) for e in entries if not e.finished] == unfinished
    # the device-level totals swift writes beside the policies are not an entry
    assert all(e.policy is not None for e in entries)
    assert {e.step for e in entries} == {name.split("-")[0]}


def test_relinker_never_run_and_bad_policy_keys():
    from ringmgr.live.health import relinker_cell

    assert relinker_cell(rp.relinker_by_policy(rp.parse_relinker(sample("relinker")))) == "-"
    with pytest.raises(rp.ReconParseError, match="is not an index"):
        rp.parse_relinker({"devices": {"sdb": {"policies": {"gold": {}}}}})
    with pytest.raises(rp.ReconParseError, match="policy 1 parts_done"):
        rp.parse_relinker({"devices": {"sdb": {"policies": {"1": {"parts_done": "x"}}}}})


@pytest.mark.parametrize("check,body,words", [
    ("replication/object", [], "expected a JSON object"),
    ("replication/object", {"replication_last": "soon"}, "not a number"),
    ("replication/container", {"x": 1}, "no replication_last"),
    ("diskusage", {"device": "sdb"}, "expected a JSON list"),
    ("diskusage", [{"mounted": True}], "without a device name"),
    ("diskusage", [{"device": "sdb", "mounted": True, "size": ""}], "not a number"),
    ("ringmd5", {"/x/object.ring.gz": "zz"}, "is not an md5"),
    ("time", "noon", "not a number"),
    ("time", -5, "not a clock reading"),
    ("quarantined", {"objects": 1}, "no containers key"),
    ("async", {"async_pending": float("nan")}, "not a number"),
])
def test_wrong_shapes_are_one_line_errors(check, body, words):
    err, value = decode(check, 200, json.dumps(body).encode())
    assert value is None and words in err and "\n" not in err


def test_error_pages_and_garbage():
    err, _ = decode("time", 503, b"<html>\n<body>Service Unavailable</body></html>")
    assert err.startswith("HTTP 503: '<html> <body>Service") and "\n" not in err
    err, _ = decode("time", 200, b"<html>oops</html>")
    assert err.startswith("not JSON: '<html>oops")
    err, _ = decode("time", 200, b"\xff\xfe")
    assert err.startswith("not JSON")


# --- [recon] config -------------------------------------------------------------------
BASE = """[cluster]
builder_dir = "/tmp/x"
"""


def _load(tmp_path, text):
    p = tmp_path / "ringmgr.toml"
    p.write_text(text)
    return load_config(p)


def test_recon_config_defaults_and_values(tmp_path):
    c = _load(tmp_path, BASE)
    assert (c.recon.scheme, c.recon.timeout, c.recon.concurrency) == ("http", 5.0, 64)
    assert (c.cluster.ring_reload, c.cluster.full_percent) == (15.0, 90.0)
    c = _load(tmp_path, BASE + 'ring_reload = 1\n[recon]\nscheme = "https"\ntimeout = 2\n'
                               'connect_timeout = 0.5\nconcurrency = 8\n'
                               'ports = { object = 6000 }\nmax_clock_skew = 2\n')
    assert c.recon.ports == {"object": 6000} and c.recon.connect_timeout == 0.5
    assert c.cluster.ring_reload == 1.0 and c.recon.max_clock_skew == 2.0


@pytest.mark.parametrize("extra,key", [
    ('[recon]\nscheme = "ftp"\n', "recon.scheme"),
    ("[recon]\ntimeout = 0\n", "recon.timeout"),
    ("[recon]\nconcurrency = 0\n", "recon.concurrency"),
    ("[recon]\nports = { proxy = 80 }\n", "recon.ports.proxy"),
    ("[recon]\nports = { object = 70000 }\n", "recon.ports.object"),
    ("[recon]\ntimout = 3\n", "recon.timout"),
    ("full_percent = 120\n", "cluster.full_percent"),
])
def test_bad_recon_config_names_the_key(tmp_path, extra, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        _load(tmp_path, BASE + extra)


# --- sweeps -----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Config:
    """The two config parts the client reads, for the tiny servers below."""

    def __init__(self, timeout=1.0):
        from ringmgr.config import ReconConfig

        self.recon = ReconConfig(timeout=timeout, connect_timeout=1.0, concurrency=4)


def _serve(handler_body):
    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            status, body = handler_body(self.path)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test_one_server_failing_does_not_stop_the_sweep():
    """A recon that answers an HTML error page, one that answers nothing (refused) and
    a good one: each gets its own one-line result."""
    bad = _serve(lambda path: (502, b"<html><h1>Bad Gateway</h1></html>"))
    good = _serve(lambda path: (200, json.dumps(1796192720.5).encode()))
    try:
        servers = [Server("s01", "object", "127.0.0.1", bad.server_port),
                   Server("s02", "object", "127.0.0.1", good.server_port),
                   Server("s03", "object", "127.0.0.1", _free_port())]
        sweep = ReconClient(_Config().recon).sweep([(s, "time") for s in servers])
        r1, r2, r3 = (sweep.get(s, "time") for s in servers)
        assert r1.error.startswith("HTTP 502")
        assert r2.ok and r2.value == 1796192720.5
        assert r3.error == "unreachable: connection refused"
        assert list(sweep.unreachable()) == [servers[2]]
    finally:
        bad.shutdown()
        good.shutdown()


def test_health_table_and_metrics_show_the_relinker_per_policy(tmp_path):
    """The node's relinker entries as assess fills them, through the text table and
    the node_exporter metrics (a policy label per device)."""
    from prometheus_client.parser import text_string_to_metric_families

    from ringmgr.live.health import Report, render
    from ringmgr.live.prometheus import write_textfile

    entries = rp.parse_relinker(_relinker("relink-midway"))
    node = {"servers": {}, "replication": {}, "devices": [], "unmounted": [],
            "mount_check": True, "async_pending": None, "quarantined": None, "rings": {},
            "swift_conf": None, "clock_skew": None, "drive_audit_errors": None,
            "relinker": [{"device": e.device, "policy": e.policy, "step": e.step,
                          "parts_done": e.parts_done, "total_parts": e.total_parts,
                          "finished": e.finished} for e in entries],
            "relinker_policies": rp.relinker_by_policy(entries)}
    rep = Report(nodes={"s01": node}, servers=1, checked_at=1.0)
    header, row = render(rep).splitlines()[:2]
    assert header.split()[-1] == "relinker"
    assert row.endswith("policy 0: relink done; policy 1: relinking, 0/4 devices done")
    prom = tmp_path / "h.prom"
    write_textfile(str(prom), rep)
    fams = {f.name: f for f in text_string_to_metric_families(prom.read_text())}
    samples = {(s.labels["device"], s.labels["policy"]): s.value
               for s in fams["ringmgr_relinker_parts_done_ratio"].samples}
    assert samples[("sdb", "0")] == 1.0 and ("sde", "1") not in samples   # 0 of 0 parts


class _Counting(ThreadingHTTPServer):
    """An HTTP/1.1 recon stand-in that counts the connections made to it."""

    daemon_threads = True

    def __init__(self, answer, *, chunked=False, close_silently=False):
        self.connections = 0
        server = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                server.connections += 1
                super().setup()

            def do_GET(self):
                body = answer(self.path)
                self.send_response(200)
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i in range(0, len(body), 3):
                        part = body[i:i + 3]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                if close_silently:      # closes without saying so (a kept-alive limit)
                    self.close_connection = True

            def log_message(self, *a):
                pass

        super().__init__(("127.0.0.1", 0), H)
        threading.Thread(target=self.serve_forever, daemon=True).start()


CHECKS11 = ("replication/object", "reconstruction/object", "diskusage", "unmounted",
            "async", "quarantined", "ringmd5", "swiftconfmd5", "relinker", "time",
            "driveaudit")


def _answers(path):
    return json.dumps(sample(path.removeprefix("/recon/").replace("/", "_"))).encode()


@pytest.mark.parametrize("chunked", [False, True])
def test_a_servers_checks_share_kept_alive_connections(chunked):
    from ringmgr.live.recon_http import PER_SERVER

    srv = _Counting(_answers, chunked=chunked)
    try:
        s = Server("s01", "object", "127.0.0.1", srv.server_port)
        sweep = ReconClient(_Config().recon).sweep([(s, c) for c in CHECKS11])
        assert all(sweep.get(s, c).ok for c in CHECKS11), [
            sweep.get(s, c).error for c in CHECKS11]
        assert sweep.get(s, "time").value == rp.parse_time(sample("time"))
        assert srv.connections <= PER_SERVER
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_connection_the_server_closed_is_opened_again():
    srv = _Counting(_answers, close_silently=True)
    try:
        s = Server("s01", "object", "127.0.0.1", srv.server_port)
        sweep = ReconClient(_Config().recon).sweep([(s, c) for c in CHECKS11])
        assert all(sweep.get(s, c).ok for c in CHECKS11)
        assert srv.connections == len(CHECKS11)
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_hung_server_costs_about_two_timeouts_not_one_per_check():
    """It accepts connections (the kernel's backlog) and never answers."""
    import time

    from ringmgr.config import ReconConfig

    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(64)
    try:
        s = Server("s01", "object", "127.0.0.1", hung.getsockname()[1])
        t0 = time.monotonic()
        cfg = ReconConfig(timeout=0.5, connect_timeout=1.0, concurrency=16)
        sweep = ReconClient(cfg).sweep([(s, c) for c in CHECKS11])
        took = time.monotonic() - t0
        assert all(sweep.get(s, c).error == "no answer within 0.5 s" for c in CHECKS11)
        assert took < 2.0, took      # one check alone, then the other ten at once
        assert not sweep.unreachable()
    finally:
        hung.close()
