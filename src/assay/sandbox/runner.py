"""Candidates x tests execution matrix for function tasks, with behaviour signatures.

One sandboxed harness process per batch of candidates (harness.py, a fork server inside the
sandbox), never one process per (candidate, test) pair. Before anything runs:

- identical candidate programs (same AST) and identical tests run once; results map back;
- a test `assert f(X) <op> Y` with one replayable call is split into the call `f(X)` and a
  check on its result, so the call's output is the candidate's signature on input X and the
  verdict at the same time (one evaluation of f per input and candidate);
- results are cached per candidate by content hash (program, entry point, limits, harness
  version), per unit (call output, check, whole test), on disk under `cache_dir` (or in memory
  when it is None); a second evaluate of the same pairs runs nothing.

Timeouts count CPU time inside the sandbox (a wall-clock deadline of 3x catches sleepers),
so a loaded machine does not turn slow tests into timeouts. Hanging candidates stay cheap
without mislabelling fast tests: once a candidate has timed out `k_reduce` times (default
1), its remaining items get `reduced_timeout_s` (default min(timeout, 0.02 s)) instead of
the full timeout. Every test still runs; only a test needing more than 0.02 s of CPU on a
candidate already seen to hang reads "timeout" where the full timeout might have let it
finish. Measured on 20 tasks of the CodeGen-16B HumanEval pool (79,100 pairs, 1 s timeout):
not one outcome or signature entry differs from running every item with the full timeout,
and the children's CPU time drops from 245 s to 30 s. A candidate that hangs on all of its
50 inputs costs ~2 s instead of 50 s.

Peer-relative limits (EvalPlus sets a test's limit from the reference solution's time; with no
reference we use the candidates themselves): everything runs first with `peer_floor_s` of CPU
per item (default 0.5 s). A test's limit is then `peer_factor` (10) x the slowest program
that finished it in that first pass, at least the floor, at most the timeout, or the full
timeout when fewer than `peer_quorum` (half) of the programs that ran it, or fewer than three,
finished it. Timeouts owed more than they had run again under their limit. So a hang on a test that most programs
answer in microseconds costs the floor, not the timeout, while a test that is slow for most
programs, or a task with a single candidate, keeps the full timeout. A finish that took more
CPU than its limit (known from the cache of another evaluate) reads as a timeout, so results do
not depend on what the cache holds. `peer_factor=None` turns this off (the hidden-test scorer
does). Measured on the whole CodeGen-16B pool in benches/results/exec_peer_limits.md.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from assay.asserts import call_inputs, split_call_check
from assay.errors import UserError
from assay.sandbox.base import Limits, Sandbox
from assay.sandbox.quota import bounded_workspace
from assay.store import read_json, write_json
from assay.types import Budget, Candidate, Evidence, Task, TestCase

HARNESS_PATH = Path(__file__).with_name("harness.py")
HARNESS_SRC = HARNESS_PATH.read_text(encoding="utf-8")
# Any change to the harness changes every cache key.
HARNESS_VERSION = hashlib.sha256(HARNESS_SRC.encode()).hexdigest()[:16]
LOAD_ERROR_OUT = "!LoadError"
# Peer-relative CPU limits (see the module docstring); calibrated in benches/exec_peer_limits.py.
PEER_FACTOR = 10.0
PEER_FLOOR_S = 0.5
PEER_QUORUM = 0.5
PEER_MIN = 3  # fewer finishers than this set no limit: one fast program says little about a test


def _h(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@functools.lru_cache(maxsize=1 << 16)
def _norm_program(src: str) -> str:
    """Hash of the program's AST: programs that differ only in comments, blank lines or
    formatting behave the same and run once (a syntax error keeps the exact text)."""
    try:
        return _h("ast:" + ast.dump(ast.parse(src)))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return _h("src:" + src)


@dataclass
class _Plan:
    """What to run for one task: shared tables of calls, checks and whole-test sources."""

    entry_point: str
    calls: list[str] = field(default_factory=list)
    checks: list[tuple[str, str, str | None]] = field(default_factory=list)  # (args, check, expected)
    execs: list[str] = field(default_factory=list)
    call_index: dict[str, int] = field(default_factory=dict)
    check_index: dict[tuple[str, str, str | None], int] = field(default_factory=dict)
    exec_index: dict[str, int] = field(default_factory=dict)
    test_unit: dict[str, tuple[str, int]] = field(default_factory=dict)  # tid -> ("k"|"x", idx)
    hashed: dict[str, str] = field(default_factory=dict)

    def call(self, args: str) -> int:
        if args not in self.call_index:
            self.call_index[args] = len(self.calls)
            self.calls.append(args)
        return self.call_index[args]

    def add_test(self, test: TestCase) -> None:
        split = split_call_check(test.source, self.entry_point)
        if split is not None:
            self.call(split[0])
            if split not in self.check_index:
                self.check_index[split] = len(self.checks)
                self.checks.append(split)
            self.test_unit[test.id] = ("k", self.check_index[split])
        else:
            src = test.source
            if src not in self.exec_index:
                self.exec_index[src] = len(self.execs)
                self.execs.append(src)
            self.test_unit[test.id] = ("x", self.exec_index[src])

    # unit keys: (a hash of) what one cached value is the result of
    def _key(self, unit: str) -> str:
        k = self.hashed.get(unit)
        if k is None:
            k = self.hashed[unit] = _h(unit)[:32]
        return k

    def out_key(self, call_idx: int) -> str:
        return self._key("o\0" + self.calls[call_idx])

    def check_key(self, check_idx: int) -> str:
        a, c, e = self.checks[check_idx]
        return self._key("k\0" + a + "\0" + c + "\0" + (e if e is not None else "\1"))

    def exec_key(self, exec_idx: int) -> str:
        return self._key("x\0" + self.execs[exec_idx])


@dataclass
class _Record:
    """Cached results of one distinct candidate program under one configuration."""

    key: str
    load: str | None = None
    units: dict[str, Any] = field(default_factory=dict)  # hashed unit key -> value
    # per call / whole-test unit: [CPU s it used (None: timed out or died), CPU limit it ran under]
    ran: dict[str, list] = field(default_factory=dict)
    dirty: bool = False

    def get(self, key: str) -> Any:
        return self.units.get(key)

    def put(self, key: str, value: Any) -> None:
        self.units[key] = value
        self.dirty = True


@dataclass
class _Work:
    plan: _Plan
    records: dict[str, _Record]  # program norm key -> record
    programs: dict[str, str]  # program norm key -> content
    cand_norm: dict[str, str]  # cid -> program norm key
    limits: dict[str, float] = field(default_factory=dict)  # unit key -> CPU limit (default: the timeout)
    why: dict[str, str] = field(default_factory=dict)  # unit key -> how a peer limit was set


class Runner:
    """Run function-task candidates against tests and inputs inside a Sandbox."""

    def __init__(self, sandbox: Sandbox, *, test_timeout_s: float = 3.0, memory_mb: int = 1024,
                 workers: int = 2, cache_dir: str | Path | None = None, budget: Budget | None = None,
                 load_timeout_s: float | None = None, reduced_timeout_s: float | None = None,
                 k_reduce: int = 1, max_batch: int = 40, peer_factor: float | None = PEER_FACTOR,
                 peer_floor_s: float = PEER_FLOOR_S, peer_quorum: float = PEER_QUORUM) -> None:
        self.sandbox = sandbox
        self.test_timeout_s = float(test_timeout_s)
        self.load_timeout_s = float(load_timeout_s if load_timeout_s is not None else test_timeout_s)
        self.reduced_timeout_s = float(reduced_timeout_s if reduced_timeout_s is not None
                                       else min(self.test_timeout_s, 0.02))
        self.k_reduce = k_reduce
        # peer-relative limits are on when they can be tighter than the timeout
        self.peer_factor = peer_factor if peer_factor and peer_floor_s < self.test_timeout_s else None
        self.peer_floor_s = float(peer_floor_s)
        self.peer_quorum = float(peer_quorum)
        self.memory_mb = memory_mb
        self.workers = max(1, workers)
        self.max_batch = max(1, max_batch)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.budget = budget
        self._mem_cache: dict[str, _Record] = {}
        self._lock = threading.Lock()
        self.sandbox_runs = 0  # batches actually executed (tests and benchmarks read it)
        self.stats: list[dict[str, Any]] = []  # per executed candidate: items, seconds, forks
        self.harness_cpu_s = 0.0  # CPU of the harness parents themselves (not their children)

    def without_peer_limits(self, test_timeout_s: float | None = None) -> "Runner":
        """A Runner on the same sandbox, cache and budget where every test gets the full
        timeout: for scoring with hidden tests, which must not depend on the other candidates."""
        return Runner(self.sandbox, test_timeout_s=test_timeout_s or self.test_timeout_s,
                      memory_mb=self.memory_mb, workers=self.workers, cache_dir=self.cache_dir,
                      budget=self.budget, reduced_timeout_s=self.reduced_timeout_s,
                      k_reduce=self.k_reduce, max_batch=self.max_batch, peer_factor=None)

    # ---------------------------------------------------------------- public API

    def evaluate(self, task: Task, candidates: list[Candidate], tests: list[TestCase],
                 inputs: list[str] | None = None) -> Evidence:
        """Outcome of every test on every candidate, and each candidate's outputs on `inputs`
        (default: the replayable entry-point calls found in `tests`)."""
        return self.evaluate_many([(task, candidates, tests, inputs)])[0]

    def evaluate_many(self, jobs: list[tuple[Task, list[Candidate], list[TestCase], list[str] | None]]
                      ) -> list[Evidence]:
        """`evaluate` for several tasks at once, sharing the worker pool across them."""
        works = []
        all_inputs = []
        for task, candidates, tests, inputs in jobs:
            ep = self._entry_point(task)
            if inputs is None:
                inputs = _dedupe(a for t in tests for a in call_inputs(t.source, ep))
            plan = _Plan(ep)
            for args in inputs:
                plan.call(args)
            for t in tests:
                plan.add_test(t)
            works.append(self._prepare(plan, candidates))
            all_inputs.append(list(inputs))
        self._execute(works)
        return [self._evidence(task, candidates, tests, inputs, w)
                for (task, candidates, tests, _), inputs, w in zip(jobs, all_inputs, works)]

    def outputs(self, task: Task, candidates: list[Candidate], inputs: list[str]) -> dict[str, list[str]]:
        """Each candidate's output (repr capped at 300 chars, "!ExcName", "!timeout", or
        "!LoadError") on each input (an argument list as Python source)."""
        plan = _Plan(self._entry_point(task))
        for args in inputs:
            plan.call(args)
        work = self._prepare(plan, candidates)
        self._execute([work])
        return {c.id: self._signature(work, c, inputs) for c in candidates}

    # ---------------------------------------------------------------- planning

    def _entry_point(self, task: Task) -> str:
        if task.kind != "function":
            raise ValueError(f"Runner runs function tasks only, not {task.kind!r} ({task.id})")
        if not task.entry_point:
            raise UserError(f"task {task.id} has no entry_point; give the function name to call.")
        return task.entry_point

    def _config_key(self, ep: str) -> str:
        peer = [self.peer_factor, self.peer_floor_s, self.peer_quorum] if self.peer_factor else None
        return json.dumps([HARNESS_VERSION, ep, self.test_timeout_s, self.load_timeout_s,
                           self.reduced_timeout_s, self.k_reduce, self.memory_mb, peer])

    def _prepare(self, plan: _Plan, candidates: list[Candidate]) -> _Work:
        programs: dict[str, str] = {}
        cand_norm: dict[str, str] = {}
        for c in candidates:
            if not c.valid:
                continue
            norm = _norm_program(c.content)
            cand_norm[c.id] = norm
            programs.setdefault(norm, c.content)
        conf = self._config_key(plan.entry_point)
        records = {norm: self._load_record(_h(conf + "\0" + norm)) for norm in programs}
        return _Work(plan, records, programs, cand_norm)

    def _missing(self, plan: _Plan, rec: _Record, limit_of: dict[str, float] | float
                 ) -> dict[str, Any] | None:
        """The harness job entry for what `rec` lacks under the CPU limits `limit_of` (one
        for all units, or per unit key), or None if everything it needs is cached. A cached
        timeout under a smaller limit is lacking, unless the program is already known to hang
        (`k_reduce` timeouts under their full limits), as the harness would have cut it short."""
        if rec.load is not None:
            return None

        def lim(key: str) -> float:
            return limit_of if isinstance(limit_of, float) else limit_of.get(key, self.test_timeout_s)

        def short(key: str) -> bool:  # timed out under less than it is owed now
            ran = rec.ran.get(key)
            return ran is None or ran[1] < lim(key) - 1e-9

        timeouts = [k for k in self._unit_keys(plan) if self._timed_out(rec, k)]
        hangs = sum(not short(k) for k in timeouts) >= self.k_reduce
        rerun = set() if hangs else {k for k in timeouts if short(k)}
        checks_of: dict[int, list[int]] = {i: [] for i in range(len(plan.calls))}
        for k, (args, _, _) in enumerate(plan.checks):
            i = plan.call_index[args]
            if rec.get(plan.check_key(k)) is None or plan.out_key(i) in rerun:
                checks_of[i].append(k)
        calls = [[i, ks, lim(plan.out_key(i))] for i, ks in checks_of.items()
                 if ks or rec.get(plan.out_key(i)) is None or plan.out_key(i) in rerun]
        execs = [[x, lim(plan.exec_key(x))] for x in range(len(plan.execs))
                 if rec.get(plan.exec_key(x)) is None or plan.exec_key(x) in rerun]
        if not calls and not execs:
            return None
        return {"calls": calls, "execs": execs}

    @staticmethod
    def _unit_keys(plan: _Plan) -> list[str]:
        return [plan.out_key(i) for i in range(len(plan.calls))] + \
            [plan.exec_key(x) for x in range(len(plan.execs))]

    @staticmethod
    def _timed_out(rec: _Record, key: str) -> bool:
        v = rec.get(key)
        return v == "!timeout" or (isinstance(v, list) and v[0] == "timeout")

    def _peer_limits(self, w: _Work) -> None:
        """Each unit's CPU limit from the programs that finished it within the floor (the first
        pass): `peer_factor` x the slowest of them, at least `peer_floor_s`, at most the timeout;
        the full timeout when fewer than `peer_quorum` of the programs that ran it, or fewer than
        PEER_MIN programs, did. Slower finishes (cached from other evaluates) do not count, so a
        limit does not depend on what the cache holds."""
        T = self.test_timeout_s
        floor = self.peer_floor_s
        loaded = [r for r in w.records.values() if r.load is None]
        for key in self._unit_keys(w.plan):
            times = [ran[0] for r in loaded
                     if (ran := r.ran.get(key)) is not None and ran[0] is not None and ran[0] <= floor]
            n_ran = sum(r.get(key) is not None for r in loaded)
            if len(times) < PEER_MIN or len(times) < self.peer_quorum * n_ran:
                continue
            slowest = max(times)
            L = min(T, max(floor, self.peer_factor * slowest))
            if L < T:
                w.limits[key] = L
                w.why[key] = (f"this test's limit is {L:g}s of CPU: {self.peer_factor:g}x the slowest of the "
                              f"{len(times)} programs that finished it within {floor:g}s ({slowest * 1000:.1f} ms), "
                              f"at least {floor:g}s; the timeout is {T:g}s")

    # ---------------------------------------------------------------- execution

    def _execute(self, works: list[_Work]) -> None:
        if self.peer_factor:  # a first pass with the floor as every item's limit sets the peer limits
            self._execute_missing(works, lambda w: self.peer_floor_s)
            for w in works:
                self._peer_limits(w)
        self._execute_missing(works, lambda w: w.limits)  # no peer limit: the full timeout

    def _execute_missing(self, works: list[_Work], limits: Callable[[_Work], dict[str, float] | float]) -> None:
        entries = [(w, norm, m) for w in works for norm, rec in w.records.items()
                   if (m := self._missing(w.plan, rec, limits(w))) is not None]
        if not entries:
            return
        # contiguous slices (few tasks per batch), a multiple of `workers` of them so that no
        # worker idles at the end of a single-task evaluate
        n_batches = self.workers * math.ceil(len(entries) / (self.max_batch * self.workers))
        size = math.ceil(len(entries) / n_batches)
        batches = [entries[i:i + size] for i in range(0, len(entries), size)]
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for done in pool.map(self._run_batch, batches):
                for w, norm in done:
                    self._store_record(w.records[norm])

    def _limits(self, n_items: int, n_cands: int) -> Limits:
        per_item = 3 * self.test_timeout_s + 0.25  # harness.WALL_FACTOR
        per_cand = 3 * self.load_timeout_s + 0.75
        wall = 10.0 + n_cands * per_cand + n_items * per_item
        return Limits(wall_s=wall, cpu_s=wall, memory_mb=self.memory_mb + 512, pids=64,
                      output_bytes=256 << 20,
                      env={"PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"})

    def _run_batch(self, entries: list[tuple[_Work, str, dict[str, Any]]], retry: bool = True
                   ) -> list[tuple[_Work, str]]:
        task_of: dict[int, int] = {}
        tasks = []
        for w, _, _ in entries:
            if id(w) not in task_of:
                task_of[id(w)] = len(tasks)
                p = w.plan
                tasks.append({"entry_point": p.entry_point, "calls": p.calls,
                              "checks": [[c, e] for _, c, e in p.checks], "execs": p.execs})
        job = {
            "timeout": self.test_timeout_s,
            "load_timeout": self.load_timeout_s,
            "reduced_timeout": self.reduced_timeout_s,
            "k_reduce": self.k_reduce,
            "memory_mb": self.memory_mb,
            "tasks": tasks,
            "candidates": [dict(m, task=task_of[id(w)], src=w.programs[norm]) for w, norm, m in entries],
        }
        n_items = sum(len(m["calls"]) + len(m["execs"]) for _, _, m in entries)
        limits = self._limits(n_items, len(entries))
        with bounded_workspace(limits.workspace_mb, prefix="assay-exec-") as ws:
            (ws / "harness.py").write_text(HARNESS_SRC, encoding="utf-8")
            (ws / "job.json").write_text(json.dumps(job), encoding="utf-8")
            res = self.sandbox.run([self.sandbox.python(), "-B", "harness.py", "job.json"], ws, limits)
        with self._lock:
            self.sandbox_runs += 1
        if self.budget is not None:
            self.budget.charge_sandbox(res.duration_s)
        got: dict[int, dict[str, Any]] = {}
        for line in res.stdout.splitlines():
            if line.startswith("{"):
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue  # a line cut by a kill
                if "harness_cpu" in obj:
                    with self._lock:
                        self.harness_cpu_s += obj["harness_cpu"]
                else:
                    got[obj["i"]] = obj
        done = []
        for i, (w, norm, _) in enumerate(entries):
            if i in got:
                self._absorb(w.plan, w.records[norm], got[i])
                done.append((w, norm))
        rest = [e for i, e in enumerate(entries) if i not in got]
        if rest:
            if retry and got:
                done += self._run_batch(rest, retry=False)
            elif res.timed_out:
                for w, norm, m in rest:  # reported, but not written to the disk cache
                    self._absorb(w.plan, w.records[norm], _all_timeout(m, limits.wall_s))
            else:
                raise RuntimeError(
                    f"the test harness failed in the {self.sandbox.name} sandbox (exit code "
                    f"{res.exit_code}, {res.killed_reason or ''}): {res.stderr[-2000:]}")
        return done

    def _absorb(self, plan: _Plan, rec: _Record, obj: dict[str, Any]) -> None:
        with self._lock:
            self.stats.append({"t": obj.get("t"), "cpu": obj.get("cpu"), "forks": obj.get("forks"), "load": obj.get("load"),
                               "items": len(obj["calls"]) + len(obj["execs"]),
                               "timeouts": sum(c[1] == "!timeout" for c in obj["calls"])
                               + sum(x[1] == "timeout" for x in obj["execs"])})
            if obj.get("load") is not None:
                rec.load = obj["load"]
                rec.dirty = True
                return
            for call_idx, out, checks, cpu, limit in obj["calls"]:
                rec.put(plan.out_key(call_idx), out)
                rec.ran[plan.out_key(call_idx)] = [cpu, limit]
                for check_idx, outcome, msg in checks:
                    rec.put(plan.check_key(check_idx), [outcome, msg])
            for exec_idx, outcome, msg, cpu, limit in obj["execs"]:
                rec.put(plan.exec_key(exec_idx), [outcome, msg])
                rec.ran[plan.exec_key(exec_idx)] = [cpu, limit]

    # ---------------------------------------------------------------- cache

    def _cache_path(self, key: str) -> Path:
        assert self.cache_dir is not None
        return self.cache_dir / key[:2] / f"{key}.json"

    def _load_record(self, key: str) -> _Record:
        with self._lock:
            if key in self._mem_cache:
                return self._mem_cache[key]
        rec = _Record(key)
        if self.cache_dir is not None:
            path = self._cache_path(key)
            if path.exists():
                try:
                    data = read_json(path)
                    rec = _Record(key, load=data.get("load"), units=data.get("units", {}),
                                  ran=data.get("ran", {}))
                except (ValueError, OSError):
                    rec = _Record(key)  # unreadable cache file: recompute and rewrite
        else:
            with self._lock:
                rec = self._mem_cache.setdefault(key, rec)
        return rec

    def _store_record(self, rec: _Record) -> None:
        if self.cache_dir is None or not rec.dirty:
            return
        with self._lock:
            data = {"load": rec.load, "units": dict(rec.units), "ran": dict(rec.ran)}
            rec.dirty = False
        write_json(self._cache_path(rec.key), data)

    # ---------------------------------------------------------------- evidence

    def _signature(self, work: _Work, c: Candidate, inputs: list[str]) -> list[str]:
        rec = work.records.get(work.cand_norm.get(c.id, ""))
        if rec is None or rec.load is not None:
            return [LOAD_ERROR_OUT] * len(inputs)
        plan = work.plan
        return [self._result(work, rec, plan.out_key(plan.call_index[a])) for a in inputs]

    def _result(self, work: _Work, rec: _Record, key: str, unit: str | None = None) -> Any:
        """The cached value of `unit` (default: `key` itself; a check's `key` is its call),
        as it reads under this evaluate's limit for `key`: a cached result that took more CPU
        than that limit reads as a timeout, and a timeout under a peer limit says why."""
        value = rec.get(unit or key)
        limit = work.limits.get(key, self.test_timeout_s)
        ran = rec.ran.get(key)
        if ran is not None and ran[0] is not None and ran[0] > 1.05 * limit + 0.005:
            msg = f"took {ran[0]:.2f}s of CPU, over its limit of {limit:g}s"
            value = "!timeout" if isinstance(value, str) else ["timeout", msg]
        if key in work.why and isinstance(value, list) and value[0] == "timeout":
            value = [value[0], f"{value[1]} ({work.why[key]})"]
        return value

    def _evidence(self, task: Task, candidates: list[Candidate], tests: list[TestCase],
                  inputs: list[str], work: _Work) -> Evidence:
        ev = Evidence(task_id=task.id, candidate_ids=[c.id for c in candidates], tests=list(tests),
                      inputs=list(inputs))
        plan = work.plan
        for c in candidates:
            rec = work.records.get(work.cand_norm.get(c.id, ""))
            row: dict[str, str] = {}
            msgs: dict[str, str] = {}
            load = (c.error or "invalid candidate") if rec is None else rec.load
            if load is not None:
                ev.load_errors[c.id] = load
                for t in tests:
                    row[t.id] = "error"
                    msgs[t.id] = "candidate failed to load: " + load
            else:
                for t in tests:
                    kind, idx = plan.test_unit[t.id]
                    if kind == "k":
                        call_key = plan.out_key(plan.call_index[plan.checks[idx][0]])
                        outcome, msg = self._result(work, rec, call_key, plan.check_key(idx))
                    else:
                        outcome, msg = self._result(work, rec, plan.exec_key(idx))
                    row[t.id] = outcome
                    if outcome != "pass":
                        msgs[t.id] = msg
            ev.outcomes[c.id] = row
            if msgs:
                ev.messages[c.id] = msgs
            ev.signatures[c.id] = self._signature(work, c, inputs)
        return ev


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _all_timeout(missing: dict[str, Any], wall_s: float) -> dict[str, Any]:
    # limit 1e9: these are final for this evaluate (no second pass reruns them); they are
    # reported but never written to the disk cache
    msg = f"the sandbox run hit its {wall_s:.0f}s limit before this ran"
    return {"load": None,
            "calls": [[i, "!timeout", [[k, "timeout", msg] for k in ks], None, 1e9]
                      for i, ks, _ in missing["calls"]],
            "execs": [[x, "timeout", msg, None, 1e9] for x, _ in missing["execs"]]}
