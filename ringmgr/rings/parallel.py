"""Simulate independent rings in parallel processes.

A rebalance is pure Python and holds the GIL, so rings only run side by side in
separate processes.  Workers are forked (``fork`` start method): they inherit the
loaded builders through copy-on-write memory instead of receiving them pickled, and
send back only the result (``to_dict()`` of the rebalanced copy: a few arrays, a few
MB even at part power 18).  Processes are used only when it pays: more than one ring
to simulate, more than one CPU, and at least one ring big enough
(``PARALLEL_MIN_ASSIGNMENTS``) that its rebalance dwarfs a fork.

Results are the same as ``engine.simulate``'s: the same seed, the same code
(``engine.simulate_ring``), on a copy of the same builder.

No worker outlives ringmgr or keeps its lock: each one closes the descriptors through
which it inherited a flock (the builder_dir lock belongs to the open file, so a child
holding a copy would keep it after its parent died), asks the kernel to kill it when
its parent dies (``PR_SET_PDEATHSIG``), and the parent kills its workers when it is
interrupted instead of waiting for their rebalances.
"""

from __future__ import annotations

import os
import sys
import time

from ringmgr.rings.engine import ChangeSet, Outcome, simulate_ring

# a part power 14 ring with 3 replicas; below this a rebalance takes well under a second
PARALLEL_MIN_ASSIGNMENTS = 3 * 2 ** 14

_SHARED: dict = {}  # set in forked workers only (the builders they inherited)


def cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def worth_parallel(builders: dict, changes: ChangeSet, workers: int | None = None) -> bool:
    names = [n for n in changes.rings if n in builders]
    if len(names) < 2 or (workers or cpus()) < 2:
        return False
    if os.environ.get("RINGMGR_NO_PARALLEL"):
        return False
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        return False
    return any(_assignments(builders[n]) >= PARALLEL_MIN_ASSIGNMENTS for n in names)


def _assignments(b) -> int:
    return int(b.parts * b.replicas)


def simulate_all(builders: dict, changes: ChangeSet, seed: int, *,
                 pretend_gate_open: bool = False, progress=None,
                 workers: int | None = None, validate: bool = True) -> dict[str, Outcome]:
    """``engine.simulate`` with independent rings in parallel processes when worth it.

    ``progress(name)`` is called as a ring starts; ``progress.done(name, seconds,
    parts_moved)``, if the callable has it, as it finishes.
    """
    names = [n for n in changes.rings]
    if not worth_parallel(builders, changes, workers):
        out = {}
        for name in names:
            t0 = time.monotonic()
            if progress:
                progress(name)
            out[name] = simulate_ring(name, builders[name], changes.rings[name], seed,
                                      pretend_gate_open, validate)
            _done(progress, name, time.monotonic() - t0, out[name].parts_moved)
        return out
    # one more worker than CPUs: with 3 rings on 2 CPUs, all three share both CPUs
    # instead of the third ring running alone on one while the other idles
    return _simulate_forked(builders, changes, seed, pretend_gate_open, progress,
                            min(workers or cpus() + 1, len(names)), validate)


def _simulate_forked(builders, changes, seed, pretend, progress, workers, validate=True):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from swift.common.ring import RingBuilder

    # biggest first, so the longest rebalance starts at once
    names = sorted(changes.rings, key=lambda n: -_assignments(builders[n]))
    ctx = multiprocessing.get_context("fork")
    out = {}
    started = {}
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init,
                               initargs=(builders, os.getpid()))
    try:
        futures = {}
        for name in names:
            started[name] = time.monotonic()
            if progress:
                progress(name)
            futures[pool.submit(_work, name, changes.rings[name], seed, pretend, validate)] = name
        for fut in as_completed(futures):
            name = futures[fut]
            fields, after_dict = fut.result()
            after = RingBuilder.from_dict(after_dict)
            out[name] = Outcome(name, builders[name], after, **fields)
            _done(progress, name, time.monotonic() - started[name], out[name].parts_moved)
    except BaseException:
        _kill_workers(pool)
        raise
    pool.shutdown(wait=True)
    return {n: out[n] for n in changes.rings}


def _kill_workers(pool) -> None:
    """Interrupted (Ctrl-C, SIGTERM, an error): end the workers now, by their pids."""
    for proc in list(getattr(pool, "_processes", {}).values()):
        try:
            proc.kill()
        except (OSError, ValueError):
            pass
    pool.shutdown(wait=True, cancel_futures=True)


def _init(builders, parent: int):
    # with fork, initargs are inherited, not pickled
    from ringmgr.rings.lock import release_inherited_flocks

    die_with_parent(parent)
    release_inherited_flocks()
    _SHARED.clear()
    _SHARED.update(builders)


def die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies; exit at once if the
    parent already died before the request was made."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)


def _work(name, change, seed, pretend, validate=True):
    o = simulate_ring(name, _SHARED[name], change, seed, pretend, validate)
    fields = {"parts_moved": o.parts_moved, "balance": o.balance,
              "removed_devs": o.removed_devs, "gate_seconds_left": o.gate_seconds_left,
              "changed": o.changed, "blocked": o.blocked, "refusal": o.refusal,
              "rebalanced": o.rebalanced, "note": o.note, "edited": o.edited,
              "layout_dispersion": o.layout_dispersion}
    return fields, o.after.to_dict()


def _done(progress, name, seconds, moved):
    done = getattr(progress, "done", None)
    if done:
        done(name, seconds, moved)


def progress_printer(stream=None):
    """Per ring progress on stderr: started, and done with its time and moves."""
    stream = stream or sys.stderr

    def p(ring: str):
        print(f"simulating {ring} ...", file=stream, flush=True)

    def done(ring: str, seconds: float, moved: int):
        print(f"simulated {ring}: {moved} replica moves in {seconds:.1f} s",
              file=stream, flush=True)

    p.done = done
    return p
