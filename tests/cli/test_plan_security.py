"""Plan files are data with an HMAC, never code: a plan carrying a pickle payload, one
edited after saving, one made on another cluster, one of the old pickle format, or one
naming a bad ring is refused with one line, exit 2, and nothing runs or changes."""

import base64
import hashlib
import json
import os
import pickle
import stat
import zlib

import pytest

from tests.helpers.checksums import checksums
from tests.helpers.cli import run_cli
from tests.helpers.ringfactory import make_cluster


@pytest.fixture(autouse=True)
def audit_log(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("RINGMGR_LOG", str(tmp_path_factory.mktemp("log") / "audit.log"))


def saved_plan(cluster, tmp_path):
    tmp_path.mkdir(parents=True, exist_ok=True)
    plan = tmp_path / "plan.json"
    r = run_cli(cluster.config, "remove-node", "s02", "--plan-out", str(plan), "--seed", "3")
    assert r.exit_code == 0, r.output
    return plan


class Marker:
    """Unpickling this creates a file: proof that a plan's content was executed."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def one_line_refusal(r):
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("ringmgr: error:"), r.output
    assert "Traceback" not in r.output
    return lines[0]


def sign(cluster, body):
    from ringmgr.rings.plan_format import plan_key, seal

    return seal(body, plan_key(cluster.builder_dir / ".ringmgr"))


def inject(doc, marker, resign=None):
    payload = pickle.dumps({"devs": Marker(marker)}, protocol=2)
    res = doc["body"]["results"]["object"]
    res["data"] = base64.b64encode(zlib.compress(payload)).decode()
    res["md5"] = hashlib.md5(payload).hexdigest()
    if "sha256" in doc:                   # the old format's unkeyed checksum
        canon = json.dumps(doc["body"], sort_keys=True, separators=(",", ":"))
        doc["sha256"] = hashlib.sha256(canon.encode()).hexdigest()
    if resign:
        doc.update(resign(doc["body"]))
    return doc


@pytest.mark.parametrize("dry_run", [True, False])
def test_plan_with_a_pickle_payload_is_refused_and_nothing_runs(cluster, tmp_path, dry_run):
    plan = saved_plan(cluster, tmp_path)
    marker = tmp_path / "pwned"
    plan.write_text(json.dumps(inject(json.loads(plan.read_text()), marker)))
    before = checksums(cluster.builder_dir)
    r = run_cli(cluster.config, "apply", str(plan), *(["--dry-run"] if dry_run else ["--yes"]))
    line = one_line_refusal(r)
    assert "changed after it was saved" in line
    assert not marker.exists()
    assert checksums(cluster.builder_dir) == before


@pytest.fixture
def cluster_options():
    return {"subdir": "c"}


def test_pickle_payload_signed_with_the_real_key_is_still_only_data(cluster, tmp_path):
    """Even someone who can read the plan key gets no code run: builders in a plan are
    JSON data, a pickle there is just not a builder."""
    plan = saved_plan(cluster, tmp_path)
    marker = tmp_path / "pwned"
    doc = inject(json.loads(plan.read_text()), marker, resign=lambda b: sign(cluster, b))
    plan.write_text(json.dumps(doc))
    before = checksums(cluster.builder_dir)
    r = run_cli(cluster.config, "apply", str(plan), "--dry-run")
    line = one_line_refusal(r)
    assert "object builder in the plan is corrupt" in line
    assert not marker.exists()
    assert checksums(cluster.builder_dir) == before


def test_plan_edited_after_saving_is_refused(cluster, tmp_path):
    plan = saved_plan(cluster, tmp_path)
    doc = json.loads(plan.read_text())
    doc["body"]["description"] = "something harmless"
    plan.write_text(json.dumps(doc))
    before = checksums(cluster.builder_dir)
    line = one_line_refusal(run_cli(cluster.config, "apply", str(plan), "--yes"))
    assert "changed after it was saved" in line and str(plan) in line
    assert checksums(cluster.builder_dir) == before


def test_plan_from_another_cluster_is_refused(cluster, tmp_path):
    """Same rings byte for byte (same seed, same layout), another builder_dir: the other
    cluster's key does not match."""
    other = make_cluster(tmp_path / "other")
    plan = saved_plan(other, tmp_path)
    before = checksums(cluster.builder_dir)
    line = one_line_refusal(run_cli(cluster.config, "apply", str(plan), "--yes"))
    assert "made for another cluster" in line
    assert checksums(cluster.builder_dir) == before


def test_plan_key_is_created_0600_once_and_reused(cluster, tmp_path):
    key = cluster.builder_dir / ".ringmgr" / "plan.key"
    assert not key.exists()
    saved_plan(cluster, tmp_path)
    st = os.lstat(key)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    data = key.read_bytes()
    plan = saved_plan(cluster, tmp_path / "again")
    assert key.read_bytes() == data
    assert run_cli(cluster.config, "apply", str(plan), "--yes").exit_code == 0


def test_plan_key_readable_by_others_or_a_symlink_is_refused(cluster, tmp_path):
    plan = saved_plan(cluster, tmp_path)
    key = cluster.builder_dir / ".ringmgr" / "plan.key"
    os.chmod(key, 0o644)
    before = checksums(cluster.builder_dir)
    line = one_line_refusal(run_cli(cluster.config, "apply", str(plan), "--yes"))
    assert "plan.key" in line and "chmod 600" in line
    os.chmod(key, 0o600)
    real = tmp_path / "elsewhere.key"
    os.rename(key, real)
    os.symlink(real, key)
    line = one_line_refusal(run_cli(cluster.config, "apply", str(plan), "--yes"))
    assert "plan.key" in line and "not a regular file" in line
    assert checksums(cluster.builder_dir) == before


def test_old_format_plan_is_refused_with_the_fix(cluster, tmp_path):
    plan = tmp_path / "old.json"
    plan.write_text(json.dumps({"format": "ringmgr-plan", "format_version": 1,
                                "body": {}, "sha256": "0" * 64}))
    line = one_line_refusal(run_cli(cluster.config, "apply", str(plan), "--yes"))
    assert "format version 1" in line and "--plan-out" in line


@pytest.mark.parametrize("where", ["results", "base"])
def test_bad_ring_name_inside_a_signed_plan_is_refused(cluster, tmp_path, where):
    plan = saved_plan(cluster, tmp_path)
    doc = json.loads(plan.read_text())
    section = doc["body"][where]
    section["../../etc/passwd"] = section.pop("object")
    doc.update(sign(cluster, doc["body"]))
    plan.write_text(json.dumps(doc))
    before = checksums(cluster.builder_dir)
    line = one_line_refusal(run_cli(cluster.config, "apply", str(plan), "--yes"))
    assert "ring name" in line and "../../etc/passwd" in line
    assert checksums(cluster.builder_dir) == before


def test_plan_file_holds_no_pickle(cluster, tmp_path):
    plan = saved_plan(cluster, tmp_path)
    doc = json.loads(plan.read_text())
    assert doc["format_version"] == 2 and "hmac" in doc and "sha256" not in doc
    for res in doc["body"]["results"].values():
        builder = json.loads(zlib.decompress(base64.b64decode(res["data"])))
        assert builder["part_power"] == 6
