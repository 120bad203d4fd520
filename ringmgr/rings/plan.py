"""Saved plans: one simulated ring change, written to a file and applied exactly later.

A plan file is one JSON document::

    {"format": "ringmgr-plan", "format_version": 2,
     "body": {"created", "argv", "description", "change", "seed",
              "base":    {ring: {"id", "version", "md5"}},     # every ring loaded
              "reports": {ring: <CONTRACT simulation report>},
              "results": {ring: {"md5", "version", "data"}},   # changed rings only
              "messages", "schedule"},
     "key_id": "<which builder_dir's key>", "hmac": "<HMAC-SHA256 of the body>"}

``results[ring].data`` is ``base64(zlib(JSON))`` of the resulting builder's
``to_dict()``, arrays included (``plan_format``): data, never a pickle.  ``md5`` is of
the builder file ``RingStore.commit`` writes for the decoded builder (the pickle of
its decoded ``to_dict()``), so ``apply`` installs byte for byte what was planned.  The
HMAC, keyed by builder_dir's ``.ringmgr/plan.key``, refuses a plan edited after saving
or made for another cluster before any of it is used.  Format version 1 (pickled
builders, an unkeyed sha256) is refused.

``schedule`` (gradual plans only) lists the later steps as advice; they depend on time
passing and are simulated again when their turn comes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import pickle
import time
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ringmgr.errors import BuilderError, Refused, UsageError
from ringmgr.rings.files import check_output, md5_file, write_output
from ringmgr.rings.devices import dev_definition

FORMAT = "ringmgr-plan"
FORMAT_VERSION = 2


class PlanError(UsageError):
    """The plan file is missing, truncated, corrupt or of another format (exit 2)."""


class StalePlan(Refused):
    """A base builder changed since the plan was made (exit 2: re-plan)."""


def builder_data(builder) -> tuple[str, bytes]:
    """The builder as a plan carries it (JSON text), and the builder file bytes that
    ``apply`` will install for it (the pickle of its decoded ``to_dict()``)."""
    from ringmgr.rings.plan_format import builder_dict, encode

    if builder._id is None:
        builder._id = uuid.uuid4().hex
    text = json.dumps(encode(builder.to_dict()), separators=(",", ":"))
    return text, pickle.dumps(builder_dict(json.loads(text)), protocol=2)


def plan_key_for_saving(state_dir) -> bytes:
    """builder_dir's plan key, made on the first --plan-out (PlanError if it cannot be)."""
    from ringmgr.rings.plan_format import PlanKeyError, plan_key

    try:
        return plan_key(state_dir, create=True)
    except PlanKeyError as e:
        raise PlanError(f"--plan-out: {e}") from None


def builder_md5s(store, names=None) -> dict:
    """ring -> md5 of its builder file now (taken before loading, for a plan's base);
    ``names``: these rings (None for a ring ``create`` makes), else every ring."""
    return {name: md5_file(store.files(name).builder)
            for name in (store.discover() if names is None else names)}


@dataclass
class Plan:
    description: str
    change: dict
    seed: int | None
    base: dict
    reports: dict
    results: dict
    argv: list = field(default_factory=list)
    messages: list = field(default_factory=list)
    schedule: list = field(default_factory=list)
    created: float = field(default_factory=time.time)

    # -- building ----------------------------------------------------------------
    @classmethod
    def from_result(cls, base_md5: dict, result, argv, schedule=None,
                    load=None) -> "Plan":
        """A plan from a ``service.ChangeResult`` of a dry run.  ``base_md5`` (ring ->
        md5 of its builder file) must be taken BEFORE the builders were loaded: if a
        file changed in between, the plan is refused as stale rather than applied.

        Every ring in ``base_md5`` becomes part of the base, also those the change
        does not touch (a node in only some rings): the plan was judged against all
        of them, so a change to any of them makes it stale.  ``load(ring)`` gives an
        untouched ring's builder for its id and version (md5 alone when None)."""
        results = {}
        base = {}
        for name in base_md5:
            if name not in result.outcomes:
                b = load(name) if load else None
                base[name] = {"id": getattr(b, "_id", None),
                              "version": getattr(b, "version", None),
                              "md5": base_md5[name]}
        for name, o in result.outcomes.items():
            base[name] = {"id": o.before._id, "version": o.before.version,
                          "md5": base_md5.get(name)}
            if not o.changed:
                continue
            text, data = builder_data(o.after)
            results[name] = {"md5": hashlib.md5(data).hexdigest(),
                             "version": o.after.version,
                             "parts_moved": result.reports[name]["parts_moved"],
                             "data": base64.b64encode(zlib.compress(text.encode(), 1))
                             .decode()}
        return cls(description=result.changes.description,
                   change=result.changes.to_json(), seed=result.seed, base=base,
                   reports=result.reports, results=results, argv=list(argv),
                   messages=list(result.messages), schedule=list(schedule or []))

    def body(self) -> dict:
        return {"created": self.created, "argv": self.argv, "description": self.description,
                "change": self.change, "seed": self.seed, "base": self.base,
                "reports": self.reports, "results": self.results,
                "messages": self.messages, "schedule": self.schedule}

    # -- files -------------------------------------------------------------------
    def dumps(self, key: bytes) -> bytes:
        from ringmgr.rings.plan_format import seal

        # through JSON once, so the HMAC is of exactly what a reader will parse
        body = json.loads(json.dumps(self.body(), default=_json_default))
        doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "body": body,
               **seal(body, key)}
        return (json.dumps(doc, indent=1, default=_json_default) + "\n").encode()

    def save(self, path, key, *, force: bool = False, protected=()) -> None:
        """Write the plan sealed with ``key()`` to ``path``: never over a builder, ring
        or ringmgr's own files, over an existing file only with ``force``; ``key()`` is
        called once the path is known good, so a bad --plan-out creates no key."""
        check_output(path, force=force, option="--plan-out", protected=protected)
        write_output(path, self.dumps(key()), force=force, option="--plan-out",
                     protected=protected)

    @classmethod
    def load(cls, path, key_dir) -> "Plan":
        """Read and authenticate a plan; ``key_dir`` holds this builder_dir's plan key
        (``builder_dir/.ringmgr``)."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise PlanError(f"plan file {path} does not exist")
        except OSError as e:
            raise PlanError(f"plan file {path} is unreadable ({e.strerror})")
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise PlanError(f"plan file {path} is truncated or corrupt (not valid JSON); "
                            f"make the plan again with --plan-out")
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise PlanError(f"{path} is not a ringmgr plan file")
        version = doc.get("format_version")
        if version == 1:
            raise PlanError(f"plan file {path} has format version 1 (an older ringmgr, "
                            f"builders stored as pickles): this ringmgr never unpickles a "
                            f"plan; make the plan again with --plan-out")
        if version != FORMAT_VERSION:
            raise PlanError(f"{path}: plan format version {version!r} is not supported "
                            f"(this ringmgr reads {FORMAT_VERSION}); make the plan again "
                            f"with --plan-out")
        _check_seal(path, doc, key_dir)
        body = doc.get("body")
        try:
            plan = cls(description=body["description"], change=body["change"],
                       seed=body["seed"], base=body["base"], reports=body["reports"],
                       results=body["results"], argv=body.get("argv", []),
                       messages=body.get("messages", []),
                       schedule=body.get("schedule", []), created=body["created"])
        except (KeyError, TypeError):
            raise PlanError(f"plan file {path} lacks required fields")
        _check_ring_names(path, plan)
        return plan

    # -- applying ----------------------------------------------------------------
    def result_dict(self, ring: str):
        """A fresh decoding of the ring's planned builder (its ``to_dict()``)."""
        from ringmgr.rings.plan_format import BadData, builder_dict

        r = self.results[ring]
        try:
            text = zlib.decompress(base64.b64decode(r["data"], validate=True))
            return builder_dict(json.loads(text))
        except (ValueError, zlib.error, KeyError, TypeError, RecursionError, BadData):
            raise PlanError(f"plan: the {ring} builder in the plan is corrupt "
                            f"(not a builder's data); nothing was written")

    def result_bytes(self, ring: str) -> bytes:
        """The builder file ``apply`` writes for ``ring``, checked against its md5."""
        data = pickle.dumps(self.result_dict(ring), protocol=2)
        if hashlib.md5(data).hexdigest() != self.results[ring].get("md5"):
            raise PlanError(f"plan: the {ring} builder does not match its recorded md5")
        return data

    def result_builders(self) -> dict:
        """name -> RingBuilder, exactly as simulated."""
        from swift.common.ring import RingBuilder

        out = {}
        for ring in self.results:
            self.result_bytes(ring)
            try:
                b = RingBuilder.from_dict(self.result_dict(ring))
            except Exception as e:
                raise PlanError(f"plan: the {ring} builder cannot be loaded "
                                f"({type(e).__name__})")
            # the store pickles to_dict(): hand it a fresh decoding, whose pickle is
            # the planned bytes (from_dict(...).to_dict() can share objects differently)
            b.to_dict = lambda ring=ring: self.result_dict(ring)
            if hashlib.md5(pickle.dumps(b.to_dict(), protocol=2)).hexdigest() != \
                    self.results[ring]["md5"]:
                raise PlanError(f"plan: the {ring} builder does not re-serialise to the "
                                f"planned bytes; nothing was written")
            out[ring] = b
        return out

    def stale_reasons(self, store) -> list[str]:
        """Why the plan no longer fits the builders on disk ([] if it does)."""
        reasons = []
        for ring, ident in self.base.items():
            path = store.files(ring).builder
            md5 = md5_file(path)
            if ident.get("md5") is None:  # the plan creates this ring
                if md5 is not None or md5_file(store.files(ring).ring) is not None:
                    reasons.append(f"{ring} was created since the plan was made")
                continue
            if md5 is None:
                reasons.append(f"{ring}.builder is gone")
                continue
            if md5 != ident.get("md5"):
                try:
                    now = store.load(ring).version
                except BuilderError:
                    now = "?"
                reasons.append(f"{ring}.builder changed since the plan was made "
                               f"(version {ident.get('version')} -> {now})")
        for ring in self.results:
            if ring not in self.base:
                reasons.append(f"{ring}: the plan has a result but no base identity")
        return reasons


def apply_plan(config, path, *, dry_run: bool, confirm, show, argv, planned=None) -> dict:
    """Install a saved plan's builders (and rings) via ``RingStore.commit``.

    Refuses (exit 2) when any base builder changed since planning: a plan is exact
    only for the builders it was simulated on.  ``planned(current, builders, change)``
    is called once the plan is known to fit, before the dry run returns or the
    confirmation (the config follows the rings there).
    """
    from ringmgr.rings.report import render_text
    from ringmgr.rings.store import RingStore

    store = RingStore.from_config(config)
    plan = Plan.load(path, store.state_dir)
    store.refuse_if_pending()
    if not plan.results:
        raise PlanError(f"plan {path} changes no ring")
    builders = plan.result_builders()   # every builder decodes, before anything is shown
    show(f"plan {path}: {plan.description} (seed {plan.seed}, made "
         f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(plan.created))})")
    show(render_text({n: r for n, r in plan.reports.items() if n in plan.results}))
    with store.lock():
        stale = plan.stale_reasons(store)
        if stale:
            raise StalePlan("the plan no longer fits the builders: " + "; ".join(stale)
                            + ". Nothing was written; re-plan with --plan-out")
        new = [n for n in plan.results if plan.base.get(n, {}).get("md5") is None]
        current = {n: store.load(n) for n in plan.results if n not in new}
        removed = [dict(dev_definition(d), ring=n) for n, b in builders.items()
                   if n in current for d in _removed(current[n], b)]
        out = {"written": False, "plan": str(path), "change": plan.description,
               "seed": plan.seed, "rings": plan.reports, "steps": plan.schedule}
        if planned is not None:
            planned(current, builders, plan.change)
        if dry_run:
            return out
        confirm(f"Write the planned changes to {len(builders)} ring(s) in {store.dir}?")
        record = {
            "description": f"apply plan: {plan.description}",
            "argv": list(argv),
            "seed": plan.seed,
            "plan": {"path": str(Path(path).resolve()), "created": plan.created,
                     "argv": plan.argv},
            "rings": {n: {"version_before": current[n].version if n in current else None,
                          "parts_moved": plan.results[n].get("parts_moved")}
                      for n in builders},
            "removed_devices": removed,
            "change": plan.change,
        }
        rec = store.commit(builders, record, expected_md5={n: None for n in new})
        out.update(written=True, change_id=rec["id"])
        return out


def _removed(before, after) -> list[dict]:
    ids_after = {d["id"]: d for d in after.devs if d is not None}
    return [d for d in before.devs if d is not None and
            (d["id"] not in ids_after or
             (ids_after[d["id"]]["ip"], ids_after[d["id"]]["port"],
              ids_after[d["id"]]["device"]) != (d["ip"], d["port"], d["device"]))]


def _check_seal(path, doc: dict, key_dir) -> None:
    from ringmgr.rings.plan_format import PlanKeyError, check_seal, plan_key

    if not isinstance(doc.get("body"), dict):
        raise PlanError(f"plan file {path} lacks required fields")
    try:
        key = plan_key(key_dir)
    except PlanKeyError as e:
        if "does not exist" in str(e):
            raise PlanError(f"plan file {path} was made for another cluster (this "
                            f"builder_dir has no plan key, {e}): refused; make the plan "
                            f"here with --plan-out") from None
        raise PlanError(f"plan file {path} cannot be checked: {e}") from None
    why = check_seal(doc, key)
    if why == "other-key":
        raise PlanError(f"plan file {path} was made for another cluster (it is not "
                        f"sealed with this builder_dir's plan key): refused; make the "
                        f"plan here with --plan-out")
    if why:
        raise PlanError(f"plan file {path} was changed after it was saved (its HMAC "
                        f"does not match): refused; make the plan again with --plan-out")


def _check_ring_names(path, plan: "Plan") -> None:
    from ringmgr.rings.files import is_ring_name

    for section in (plan.base, plan.results, plan.reports):
        if not isinstance(section, dict):
            raise PlanError(f"plan file {path} lacks required fields")
        for name in section:
            if not is_ring_name(name):
                raise PlanError(f"plan file {path}: {name[:60]!r} is not a ring name "
                                f"(account, container, object, object-N): refused")


def _json_default(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
