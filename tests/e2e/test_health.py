"""ringmgr health on the real lab: healthy, a stopped server, a stale ring, metrics;
bad recon answers (an error page, garbage, a skewed clock, a partial answer) put
between ringmgr and the lab's real recon by a small relay."""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli

REPO = Path(__file__).resolve().parents[2]


def ringmgr(*args, env, check=None):
    """In process (so --json is checked against docs/schema/health.json)."""
    r = run_cli(None, *args, env=env)
    r.returncode = r.exit_code
    if check is not None:
        assert r.exit_code == check, (r.exit_code, r.stdout, r.stderr, r.exception)
    return r


def tree_sums(path) -> dict:
    out = {}
    for root, _, files in os.walk(path):
        for f in files:
            p = Path(root) / f
            out[str(p)] = hashlib.md5(p.read_bytes()).hexdigest()
    return out


@pytest.mark.lab(nodes=3, disks=1, part_power=6)
def test_health_of_the_lab(lab_cluster, tmp_path):
    env = lab_cluster.env
    r = ringmgr("health", "--json", env=env, check=1)   # no replication pass yet
    doc = json.loads(r.stdout)
    assert {p["check"] for p in doc["problems"]} == {
        "replication/object", "replication/container", "replication/account"}
    assert all("has not reported a finished pass" in w for w in doc["warnings"])
    lab_cluster.replicate()
    prom = tmp_path / "ringmgr.prom"
    r = ringmgr("health", "--prometheus", str(prom), env=env, check=0)
    assert "3 node(s), 9 server(s): healthy" in r.stdout
    assert "s01" in r.stdout and "ok" in r.stdout
    from prometheus_client.parser import text_string_to_metric_families

    fams = {f.name: f for f in text_string_to_metric_families(prom.read_text())}
    ups = {(s.labels["node"], s.labels["server"]): s.value for s in fams["ringmgr_recon_up"].samples}
    assert ups == {(n, k): 1.0 for n in ("s01", "s02", "s03")
                   for k in ("account", "container", "object")}
    assert {s.labels["ring"] for s in fams["ringmgr_ring_md5_match"].samples} == {
        "account", "container", "object", "object-1"}

    lab_cluster.stop_node("s02")
    before = tree_sums(lab_cluster.builder_dir)
    r = ringmgr("health", "--json", "--prometheus", str(prom), env=env, check=2)
    doc = json.loads(r.stdout)
    assert doc["exit_code"] == 2
    assert sorted({p["node"] for p in doc["problems"]}) == ["s02"]
    assert len(doc["errors"]) == 3 and all(
        e.startswith("s02: ") and "does not answer recon: connection refused" in e
        for e in doc["errors"])
    assert doc["nodes"]["s01"]["replication"]["object"]["end"] is not None
    assert doc["nodes"]["s03"]["rings"]["object"]["state"] == "ok"
    text = prom.read_text()
    assert 'ringmgr_recon_up{node="s02",server="object"} 0.0' in text
    assert 'ringmgr_recon_up{node="s01",server="object"} 1.0' in text
    assert tree_sums(lab_cluster.builder_dir) == before

    r = ringmgr("health", "s01", env=env, check=0)    # only the node asked about
    assert "s02" not in r.stdout and "1 node(s), 3 server(s)" in r.stdout
    lab_cluster.start_node("s02")

    # a ring the node did not get: a warning naming node and ring
    ring = Path(lab_cluster.node("s03").swift_dir) / "object-1.ring.gz"
    ring.write_bytes(ring.read_bytes() + b"\0")
    r = ringmgr("health", env=env, check=1)
    assert "warning: s03: object-1.ring.gz differs from the admin host's" in r.stdout


def test_health_bad_input_is_one_line_and_writes_nothing(tmp_path):
    cfg = tmp_path / "ringmgr.toml"
    cfg.write_text(f'[cluster]\nbuilder_dir = "{tmp_path}"\n')
    env = {**os.environ, "PYTHONPATH": str(REPO), "RINGMGR_LOG": str(tmp_path / "log")}
    r = ringmgr("--config", str(cfg), "health", "s09", env=env, check=2)
    assert r.stderr.strip().splitlines()[-1].startswith("ringmgr: error: unknown node 's09'")
    notmine = tmp_path / "metrics.txt"
    notmine.write_text("precious\n")
    r = ringmgr("--config", str(cfg), "health", "--prometheus", str(notmine), env=env,
                check=2)
    assert "not a metrics file ringmgr wrote" in r.stderr
    assert notmine.read_text() == "precious\n"


class Relay:
    """An HTTP relay in front of each lab node's recon port (on the node's own address,
    another port): it passes the real answer through, or alters it as ``mode[ip]``
    says -- what a load balancer's error page, a broken server or a skewed clock look
    like to ringmgr."""

    def __init__(self, ips, target_port, modes):
        self.servers = []
        relay = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                ip = self.server.server_address[0]
                mode = modes.get(ip)
                if mode == "error_page":
                    return self._send(503, b"<html><body><h1>503 Service Unavailable</h1>"
                                           b"\n</body></html>")
                if mode == "garbage":
                    return self._send(200, b"\x89PNG\r\n garbage")
                with urllib.request.urlopen(f"http://{ip}:{target_port}{self.path}",
                                            timeout=5) as r:
                    body = r.read()
                if mode == "skew" and self.path == "/recon/time":
                    body = json.dumps(json.loads(body) + 3600).encode()
                if mode == "partial" and self.path == "/recon/diskusage":
                    return self._send(500, b"Internal Server Error")
                self._send(200, body)

            def _send(self, status, body):
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        first = ThreadingHTTPServer((ips[0], 0), H)
        self.port = first.server_port
        self.servers = [first] + [ThreadingHTTPServer((ip, self.port), H) for ip in ips[1:]]
        for s in self.servers:
            threading.Thread(target=s.serve_forever, daemon=True).start()
        self.relay = relay

    def close(self):
        for s in self.servers:
            s.shutdown()
            s.server_close()


@pytest.mark.lab(nodes=4, disks=1, part_power=6)
def test_bad_recon_answers(lab_cluster, tmp_path):
    lab_cluster.replicate()
    ips = [n.ip for n in lab_cluster.nodes]
    modes = {ips[0]: "error_page", ips[1]: "garbage", ips[2]: "skew", ips[3]: "partial"}
    relay = Relay(ips, 16200, modes)
    try:
        cfg = tmp_path / "relayed.toml"
        cfg.write_text(lab_cluster.config_path.read_text().replace(
            "[recon]", f"[recon]\nports = {{ object = {relay.port} }}"))
        before = tree_sums(lab_cluster.builder_dir)
        r = ringmgr("--config", str(cfg), "health", "--json", env=lab_cluster.env, check=2)
        doc = json.loads(r.stdout)
        by_node = {}
        for p in doc["problems"]:
            by_node.setdefault(p["node"], []).append(p)
        assert sorted(by_node) == ["s01", "s02", "s03", "s04"]
        s01 = {p["message"] for p in by_node["s01"]}
        assert all("HTTP 503: '<html><body><h1>503 Service Unavailable</h1> </body></html>'"
                   in m for m in s01) and len(s01) == 11
        assert all("not JSON: " in p["message"] for p in by_node["s02"])
        assert len(by_node["s03"]) == 1 and re.fullmatch(
            r"s03: clock is \+360\d\.\d s off the admin host's \(more than "
            r"\[recon\]\.max_clock_skew, 5 s\)", by_node["s03"][0]["message"])
        assert [(p["severity"], p["check"]) for p in by_node["s04"]] == [("error",
                                                                         "diskusage")]
        assert "HTTP 500" in by_node["s04"][0]["message"]
        assert all("\n" not in p["message"] for p in doc["problems"])
        assert doc["nodes"]["s04"]["replication"]["object"]["end"] is not None
        assert tree_sums(lab_cluster.builder_dir) == before
    finally:
        relay.close()
