"""Kernel-mode pieces that need no torch: problem loading and shrinking, fast_p arithmetic,
the timing loop's control flow (fake clock and events), verdict arithmetic, the search loop."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from assay.errors import UserError
from assay.kernels import timing as T
from assay.kernels.evaluate import EvalConfig, KernelEvaluator, Verdict
from assay.kernels.metrics import fast_p, fast_p_table, geomean_speedup
from assay.kernels.problem import load_level, load_problem, parse_ids, shrink_source
from assay.kernels.search import Attempt, SearchConfig, extract_code, pick_best, search

PROBS = Path(__file__).parent / "kernels" / "problems"
CAND = Path(__file__).parent / "kernels" / "candidates"


# -- problems --------------------------------------------------------------------------------

def test_load_problem_reads_format_and_constants():
    p = load_problem(PROBS / "level1" / "1_ReLU.py")
    assert p.id == "level1/1_ReLU" and p.level == 1 and p.number == 1 and p.name == "ReLU"
    assert p.constants == {"batch_size": 16, "dim": 16384}


def test_shrink_clamps_large_shape_constants_only():
    p = load_problem(PROBS / "level2" / "1_Linear_ReLU.py", shrink=64)
    assert p.constants == {"batch_size": 64, "in_features": 64, "out_features": 64}
    src = "a = 3\nb = 100000  # big\nc = 2.5\n"
    assert shrink_source(src, 10) == "a = 3\nb = 10  # big\nc = 2.5\n"
    shapes = "input_shape = (32768,)\ngrid = [4, 4096, (9999,)]\nname = 'x' * 5000\n"
    assert shrink_source(shapes, 64) == "input_shape = (64,)\ngrid = [4, 64, (9999,)]\nname = 'x' * 5000\n"
    # KernelBench writes many sizes as arithmetic: M = 256 * 8 # 2048
    arith = "M = 256 * 8 # 2048\nK = 32 * 2\nP = 2 ** 20\nD = (16384 * 2, 3)\nf = 1.5 * 2\n"
    assert shrink_source(arith, 64) == "M = 64 # 2048\nK = 32 * 2\nP = 64\nD = (64, 3)\nf = 1.5 * 2\n"
    assert load_problem(PROBS / "level1" / "2_Scale_Add.py", shrink=32).constants["alpha"] == 0.5
    # and two names at once, as 24 KernelBench problems write their image size
    pair = "height, width = 256, 16\nc, (d, e) = 9999, (9999, 1)\n"
    assert shrink_source(pair, 64) == "height, width = 64, 16\nc, (d, e) = 64, (9999, 1)\n"
    # and chained, as 17 more do: one value shared by both names is clamped once
    chained = "height = width = 256\nh, w = a = 512, 7\n"
    assert shrink_source(chained, 64) == "height = width = 64\nh, w = a = 64, 7\n"


def test_shrink_keeps_a_size_divisible_by_the_constants_that_divided_it():
    # 12 heads split 768 but not 64; 3 groups split 480 and 240 but not 64 (KernelBench level 3)
    attention = "batch_size = 16\nmax_seqlen = 1024\nn_embd = 768\nn_head = 12\n"
    assert shrink_source(attention, 64) == "batch_size = 16\nmax_seqlen = 64\nn_embd = 48\nn_head = 12\n"
    shuffle = "in_channels, out_channels = 240, 480\ngroups = 3\nsize = (224, 7)\n"
    assert shrink_source(shuffle, 64) == "in_channels, out_channels = 63, 63\ngroups = 3\nsize = (63, 7)\n"
    # only divisors the size had count; where their multiples all pass the cap, it is the cap
    assert shrink_source("n = 1000\nk = 3\nd = 7 * 11\ne = 5\n", 64) == "n = 60\nk = 3\nd = 64\ne = 5\n"
    assert shrink_source("m = 180\ng = 36\nh = 20\n", 64) == "m = 64\ng = 36\nh = 20\n"


def test_chained_shape_constants_are_known_by_every_name(tmp_path):
    f = tmp_path / "5_Chained.py"
    f.write_text("class Model: pass\ndef get_inputs(): return []\ndef get_init_inputs(): return []\n"
                 "batch = 8\nheight = width = 256\n")
    assert load_problem(f).constants == {"batch": 8, "height": 256, "width": 256}
    assert load_problem(f, shrink=32).constants == {"batch": 8, "height": 32, "width": 32}


def test_bad_problem_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_problem(tmp_path / "nope.py")
    with pytest.raises(UserError, match=f"problem file {tmp_path} is not a file"):
        load_problem(tmp_path)
    f = tmp_path / "x.py"
    f.write_text("class Model: pass\n")
    with pytest.raises(UserError, match="get_inputs"):
        load_problem(f)


def test_a_build_cache_that_cannot_be_made_is_a_user_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match=r"cannot make the kernel build cache .*/file/cache \(Not a directory\); "
                                        r"pass --cache-dir or set ASSAY_KERNEL_CACHE"):
        KernelEvaluator(EvalConfig(cache_dir=str(tmp_path / "file" / "cache")))


def test_parse_ids_and_level_selection():
    assert parse_ids("1,2,5-7") == {1, 2, 5, 6, 7}
    assert parse_ids(None) is None
    with pytest.raises(UserError):
        parse_ids("3-1")
    with pytest.raises(UserError):
        parse_ids("a")
    assert [p.number for p in load_level(PROBS, 1)] == [1, 2]
    assert [p.id for p in load_level(PROBS, 1, {2})] == ["level1/2_Scale_Add"]
    with pytest.raises(UserError, match="no level3"):
        load_level(PROBS, 3)


# -- fast_p ----------------------------------------------------------------------------------

ROWS = [
    {"correct": True, "speedup": 2.0, "review": ["speedup 12.0x is over 10x: check it by hand"]},
    {"correct": True, "speedup": 0.5},
    {"correct": False, "speedup": 5.0, "review": ["..."]},  # wrong kernels never count, however fast
    {"correct": True, "speedup": 1.0},  # exactly 1.0 is not "faster than 1"
    {"correct": False, "speedup": None},
]


def test_fast_p_matches_kernelbench_definition():
    assert fast_p(ROWS, 0.0) == pytest.approx(3 / 5)
    assert fast_p(ROWS, 1.0) == pytest.approx(1 / 5)
    assert fast_p(ROWS, 2.0) == 0.0
    assert fast_p([], 1.0) == 0.0
    assert geomean_speedup(ROWS) == pytest.approx(math.exp((math.log(2) + math.log(0.5) + 0) / 3))
    assert geomean_speedup([{"correct": False, "speedup": 3.0}]) is None
    t = fast_p_table(ROWS)
    assert t["n"] == 5 and t["correct"] == 3 and t["fast_p"]["1.5"] == pytest.approx(1 / 5)
    assert t["flagged"] == 1  # counted in fast_p as KernelBench would, and said


def test_the_level_table_says_how_many_correct_kernels_were_flagged_for_review(tmp_path):
    from assay.commands.kernel import write_kernelbench_results

    rows = [{"problem_id": f"level1/{i}_P", "status": "correct" if r["correct"] else "mismatch", **r}
            for i, r in enumerate(ROWS, 1)]
    out = write_kernelbench_results(rows, tmp_path, level=1, model=None, cfg=EvalConfig(device="cpu"))
    md = out.with_suffix(".md").read_text()
    assert "| n | correct | flagged for review | fast_0 |" in md
    assert "\n| 5 | 3 | 1 | 0.60 | 0.20 | 0.20 | 0.00 | 1.00x |\n" in md, md
    assert "| level1/1_P | correct | 2.00x | speedup 12.0x is over 10x: check it by hand |" in md


# -- timing loop -----------------------------------------------------------------------------

class FakeGPU:
    """Records the order of operations; each kernel call takes `cost` ms of fake device time."""

    def __init__(self, cost: float = 2.0) -> None:
        self.now = 0.0
        self.cost = cost
        self.log: list[str] = []

    def event(self):
        gpu = self

        class E:
            t = None

            def record(self):
                gpu.log.append("record")
                self.t = gpu.now

            def elapsed_time(self, end):
                return end.t - self.t

        return E()

    def synchronize(self):
        self.log.append("sync")

    def flush(self):
        self.log.append("flush")
        self.now += 100.0  # the flush itself is never inside a timed window

    def fn(self, *args):
        self.log.append(f"call{args}")
        self.now += self.cost


def test_device_mode_flushes_before_each_call_and_syncs_once():
    g = FakeGPU()
    times = T.measure(g.fn, [(0,), (1,), (2,)], g, mode="device", warmup=2, trials=4)
    assert times == [2.0] * 4
    timed = g.log[g.log.index("sync") + 1:]
    assert timed.count("flush") == 4 and timed.count("sync") == 1 and timed[-1] == "sync"
    # rotated input buffers, and each call sits between a flush+record and a record
    assert timed[:4] == ["flush", "record", "call(0,)", "record"]
    assert [x for x in timed if x.startswith("call")] == ["call(0,)", "call(1,)", "call(2,)", "call(0,)"]
    # the outputs of chosen timed calls (not warm-up ones) are kept for checking, in both modes
    for mode in ("device", "synced"):
        kept: dict = {2: None, 3: None}
        T.measure(lambda x: ("out", x), [(0,), (1,), (2,)], g, mode=mode, warmup=2, trials=4, kept=kept)
        assert kept == {2: ("out", 2), 3: ("out", 0)}


def test_what_runs_before_or_after_a_timed_call_runs_outside_every_timed_window():
    # before(i, args) gives a checked call's buffers new values, or makes an extra censused call;
    # after(i, args) undoes a change
    for mode in ("device", "synced"):
        g = FakeGPU()

        def before(i, args, g=g):
            if i == 1:
                g.log.append(f"extra{args}")
                g.fn(*args)
            if i == 2:
                g.log.append(f"refill{args}")
            g.now += 50.0  # a census or a refill takes time: none of it may show in a time

        def after(i, args, g=g):
            g.log.append(f"undo{args}")
            g.now += 50.0

        times = T.measure(g.fn, [(0,), (1,), (2,)], g, mode=mode, warmup=3, trials=4, before=before, after=after)
        assert times == [2.0] * 4  # no timed window holds any of it
        timed = g.log[g.log.index("sync") + 1:]
        # once each, on the next timed call's buffers (not warm-up call 2's, which had the same buffers)
        assert [x for x in timed if x.startswith(("extra", "refill", "call", "undo"))] == \
            ["call(0,)", "undo(0,)", "extra(1,)", "call(1,)", "call(1,)", "undo(1,)", "refill(2,)", "call(2,)",
             "undo(2,)", "call(0,)", "undo(0,)"]
        assert [x for x in g.log[:g.log.index("sync")] if not x.startswith("call")] == []
        assert timed[timed.index("refill(2,)") + 1] == "flush"  # before the flush, so untimed
        for k, x in enumerate(timed):  # after the call's end event
            if x.startswith("undo"):
                assert timed[k - 1] == ("sync" if mode == "synced" else "record"), (mode, timed[k - 2:k + 1])


def test_synced_mode_syncs_the_device_before_the_end_event():
    g = FakeGPU(cost=1.5)
    times = T.measure(g.fn, [(0,)], g, mode="synced", warmup=1, trials=3)
    assert times == [1.5] * 3
    timed = g.log[g.log.index("sync") + 1:]
    assert timed[:7] == ["flush", "sync", "record", "call(0,)", "sync", "record", "sync"]
    with pytest.raises(ValueError):
        T.measure(g.fn, [(0,)], g, mode="wall")


def test_no_garbage_collection_runs_inside_a_timed_call():
    # a full collection in a worker holding torch and Triton took 78-130 ms (a 10 ms call timed at
    # 141 ms on the CPU dry run): as timeit does, the collector waits until the timed calls are over
    import gc

    collections: list[str] = []
    where = ["warm-up"]

    def note(phase, info):
        if phase == "start":
            collections.append(where[0])

    def cyclic_garbage(x):
        for _ in range(3000):  # past the collector's allocation threshold in every call
            a: list = []
            a.append(a)

    def before(i, args):
        where[0] = "timed"

    def after(i, args):
        where[0] = "between"

    gc.callbacks.append(note)
    try:
        for mode in ("device", "synced"):
            collections.clear()
            where[0] = "warm-up"
            T.measure(cyclic_garbage, [(0,)], FakeGPU(), mode=mode, warmup=2, trials=4, before=before, after=after)
            assert "warm-up" in collections and "timed" not in collections, (mode, collections)
            assert gc.isenabled()
        gc.disable()
        T.measure(cyclic_garbage, [(0,)], FakeGPU(), warmup=1, trials=1)
        assert not gc.isenabled()  # what it found, it leaves
        gc.enable()
        calls: list = []
        with pytest.raises(ZeroDivisionError):  # the first timed call raises
            T.measure(lambda x: calls.append(x) or 1 / (len(calls) == 1), [(0,)], FakeGPU(), warmup=1, trials=2)
        assert gc.isenabled() and len(calls) == 2
    finally:
        gc.callbacks.remove(note)
        gc.enable()


class QueuedGPU:
    """A host clock and a device queue, as CUDA has them: a launch costs the host `launch_ms`
    and queues work that starts when both the device and the launch are done; an event takes
    the device's time when the queue reaches it; synchronize() makes the host wait."""

    def __init__(self, launch_ms: float, kernel_ms: float, flush_ms: float) -> None:
        self.host = self.device = 0.0
        self.launch_ms, self.kernel_ms, self.flush_ms = launch_ms, kernel_ms, flush_ms

    def _queue(self, work_ms: float) -> float:
        self.host += self.launch_ms
        self.device = max(self.device, self.host) + work_ms
        return self.device

    def event(self):
        gpu = self

        class E:
            t = None

            def record(self):
                self.t = gpu._queue(0.0)

            def elapsed_time(self, end):
                return end.t - self.t

        return E()

    def synchronize(self):
        self.host = max(self.host, self.device)

    def flush(self):
        self._queue(self.flush_ms)

    def fn(self, *args):
        self._queue(self.kernel_ms)


def test_device_time_hides_the_launch_cost_and_synced_time_counts_it():
    # launch cost (0.02 ms) shorter than the flush (0.1 ms): queued behind the flush, the call's
    # launch is hidden; with the device idle at the start event it is not
    kw = dict(launch_ms=0.02, kernel_ms=0.05, flush_ms=0.1)
    g = QueuedGPU(**kw)
    device = T.measure(g.fn, [()], g, mode="device", warmup=1, trials=5)
    g = QueuedGPU(**kw)
    synced = T.measure(g.fn, [()], g, mode="synced", warmup=1, trials=5)
    assert device == pytest.approx([0.05] * 5)
    # start event, call and end event each cost one launch: 0.02 (call) + 0.05 (kernel) + 0.02 (end event)
    assert synced == pytest.approx([0.09] * 5)


def test_stats_cv_speedup_and_stream_escape():
    s = T.Stats.of([1.0, 2.0, 3.0, 10.0])
    assert (s.median, s.mean, s.min, s.n) == (2.5, 4.0, 1.0, 4)
    assert T.cv([1.0, 1.0, 1.0]) == 0.0 and T.cv([1.0]) == 0.0
    assert T.cv([0.98, 1.0, 1.02]) == pytest.approx(0.01633, rel=1e-3)
    assert T.speedup(2.0, 0.5) == 4.0 and T.speedup(None, 1.0) is None and T.speedup(1.0, 0.0) is None
    assert T.escaped_stream(device_ms=0.01, synced_ms=1.0) and not T.escaped_stream(1.0, 1.05)
    assert not T.escaped_stream(device_ms=0.01, synced_ms=0.07)  # a tiny kernel plus its launch cost


def test_wall_backend_measures_host_time():
    clock = iter(range(0, 1000)).__next__
    b = T.WallBackend(clock=lambda: float(clock()))
    times = T.measure(lambda: None, [()], b, mode="device", warmup=0, trials=3)
    assert all(t == pytest.approx(1000.0) for t in times)  # one tick (1 s) between the events


def _timing_result(cand_ms: float, eager_ms: float, *, device_ms: float | None = None, stale=None):
    runs = {n: {"device": [{"median_ms": (device_ms if n == "candidate" and device_ms else ms)}],
                "synced": [{"median_ms": ms}]}
            for n, ms in (("candidate", cand_ms), ("eager", eager_ms), ("compile", eager_ms / 2))}
    return {"runs": runs, "stale_after_timing": stale}


def test_verdict_speedups_review_flag_and_stale(tmp_path):
    ev = KernelEvaluator(EvalConfig(device="cuda:0", cache_dir=str(tmp_path)))
    v = Verdict("c", "correct")
    ev._apply_timing(v, _timing_result(0.5, 1.0))
    assert v.speedup == pytest.approx(2.0) and v.speedups["compile/synced"] == pytest.approx(1.0)
    assert not v.review and "speedup 2.00x" in v.message
    fast = Verdict("f", "correct")
    ev._apply_timing(fast, _timing_result(0.05, 1.0))
    assert fast.speedup == pytest.approx(20.0) and "over 10x" in fast.review[0]
    escaped = Verdict("e", "correct")
    ev._apply_timing(escaped, _timing_result(1.0, 1.0, device_ms=0.01))
    assert any("outside the timed stream" in r for r in escaped.review) and escaped.suspect
    assert not fast.suspect  # over 10x is for a human to check, not evidence
    stale = Verdict("s", "correct")
    ev._apply_timing(stale, _timing_result(0.5, 1.0, stale="output mismatch"))
    assert stale.status == "stale" and not stale.correct
    basis = KernelEvaluator(EvalConfig(device="cuda:0", cache_dir=str(tmp_path), timing_basis="device",
                                       baseline="compile"))
    d = Verdict("d", "correct")
    basis._apply_timing(d, _timing_result(1.0, 1.0, device_ms=0.25))
    assert d.speedup == pytest.approx(2.0)  # compile baseline 0.5 ms device / 0.25 ms


def test_a_timed_call_slow_only_when_its_inputs_change_is_flagged(tmp_path):
    assert T.slow_when_inputs_change([(1.5, 0.01), (1.6, 0.02)]) == pytest.approx(80.0)  # the smaller
    assert T.slow_when_inputs_change([(1.5, 0.01), (0.02, 0.01)]) is None  # one measurement says no
    assert T.slow_when_inputs_change([(0.004, 0.001)]) is None  # 4x, but 3 microseconds: noise
    assert T.slow_when_inputs_change([(1.0, 0.9)]) is None and T.slow_when_inputs_change([]) is None
    assert T.slow_when_inputs_change([(1.0, None)]) is None  # a measurement of one call has no others
    ev = KernelEvaluator(EvalConfig(device="cuda:0", cache_dir=str(tmp_path)))
    v, honest = Verdict("v", "correct"), Verdict("h", "correct")
    ev._apply_timing(v, {**_timing_result(0.05, 1.0), "checked_calls": [[1.2, 0.05, "device"], [1.1, 0.05, "synced"]]})
    ev._apply_timing(honest, {**_timing_result(0.5, 1.0),
                              "checked_calls": [[0.52, 0.5, "device"], [0.49, 0.5, "synced"]]})
    assert v.correct and any("cached by input values" in r and "22.0x" in r for r in v.review), v.review
    assert v.suspect and honest.correct and not honest.review and not honest.suspect
    # timed where it had to work, not on its cache: 1.0 ms eager over 1.1 ms, not over 0.05 ms
    assert v.new_ms == pytest.approx(1.1) and v.speedup == pytest.approx(1.0 / 1.1)
    assert v.speedups["eager/device"] == pytest.approx(1.0 / 1.2) and "speedup 0.91x" in v.message
    assert any("synced time 1.1000 ms, the others' median 0.0500 ms" in r for r in v.review), v.review
    assert honest.new_ms == pytest.approx(0.5) and honest.speedup == pytest.approx(2.0)  # its own median
    assert not any("over 10x" in r for r in v.review)  # 20x on the cache, under 1x where it works
    assert "Flagged for review: (1) each time its inputs" in v.feedback() and "(2)" not in v.feedback()
    both = Verdict("b", "correct")  # over 10x even where it works
    ev._apply_timing(both, {**_timing_result(0.005, 1.0),
                            "checked_calls": [[0.08, 0.005, "device"], [0.09, 0.005, "synced"]]})
    assert both.speedup == pytest.approx(1.0 / 0.09)
    assert "Flagged for review: (1) speedup 11.1x" in both.feedback() and "(2) each time its inputs" in both.feedback()
    assert "Flagged" not in honest.feedback()


def test_feedback_texts():
    assert "rejected (try-except): x" in Verdict("a", "gate", "x", gate_rules=["try-except"]).feedback()
    assert "failed to build" in Verdict("a", "compile", compile_log="error: expected ';'").feedback()
    assert "expected ';'" in Verdict("a", "compile", compile_log="error: expected ';'").feedback()
    assert "not correct (mismatch)" in Verdict("a", "mismatch", "max abs error 3").feedback()
    long = Verdict("a", "compile", compile_log="x" * 10000).feedback(limit=1000)
    assert len(long) < 1100


# -- search loop (fake evaluator: no torch) --------------------------------------------------

class FakeEvaluator:
    """Correct iff the source contains 'GOOD'; time from a `# ms=` comment."""

    def __init__(self):
        self.seen: list[list[str]] = []

    def evaluate_many(self, problem, items):
        self.seen.append([cid for cid, _ in items])
        out = []
        for cid, src in items:
            if "GOOD" in src:
                ms = float(src.split("ms=")[1].split()[0]) if "ms=" in src else None
                v = Verdict(cid, "correct", "ok", new_ms=ms, ref_ms=1.0 if ms else None,
                            speedup=(1.0 / ms) if ms else None)
            else:
                v = Verdict(cid, "mismatch", "max abs error 9.5 at index [0, 3]")
            out.append(v)
        return out


def block(body: str) -> str:
    return f"Here you go:\n```python\nclass ModelNew:\n    pass\n{body}\n```\n"


def test_search_feeds_back_errors_and_picks_fastest_correct():
    from assay.agent.models import ScriptedModel

    prob = load_problem(PROBS / "level1" / "1_ReLU.py")
    model = ScriptedModel([block("# bad"), "no code here", block("# GOOD ms=0.8"),  # round 0 (n=3)
                           block("# GOOD ms=0.5"), block("# still bad"), block("# GOOD ms=0.9")])
    ev = FakeEvaluator()
    res = search(prob, model, ev, SearchConfig(samples=3, rounds=2, workers=1))  # scripted: in order
    assert ev.seen[0] == ["r0-t0", "r0-t2"]  # the reply without code is never evaluated
    assert res.best.cid == "r1-t0" and res.best.verdict.new_ms == 0.5
    # round-1 prompts carry each trajectory's own feedback
    fb = [m[-1]["content"] for m in model.calls[1:]]
    assert "max abs error 9.5" in fb[0]
    assert "no ```python block" in fb[1]
    assert "Correct." in fb[2] and "faster" in fb[2]
    assert model.calls[0][1]["content"].count("class Model(nn.Module)") == 1
    assert [a.cid for a in res.attempts] == ["r0-t0", "r0-t1", "r0-t2", "r1-t0", "r1-t1", "r1-t2"]


def test_the_prompt_names_the_ops_allow_op_let_through():
    from assay.agent.models import ScriptedModel

    prob = load_problem(PROBS / "level1" / "1_ReLU.py")
    prompts = []
    for allowed in ((), ("conv2d", "linear")):
        model = ScriptedModel([block("# GOOD")])
        search(prob, model, FakeEvaluator(), SearchConfig(samples=1, rounds=1, workers=1, allowed_ops=allowed))
        prompts.append(model.calls[0][1]["content"])
    assert "Exception:" not in prompts[0] and "no sys, gc, inspect, frames" in prompts[0]
    assert "you may call these torch ops in forward, as functions or through their nn modules: conv2d, linear." \
        in prompts[1]


def test_search_stops_on_budget_and_pick_best_without_timing():
    from assay.agent.models import ScriptedModel
    from assay.types import Budget

    prob = load_problem(PROBS / "level1" / "1_ReLU.py")
    budget = Budget(calls=1)
    model = ScriptedModel([block("# GOOD"), block("# GOOD")], budget=budget)
    res = search(prob, model, FakeEvaluator(), SearchConfig(samples=2, rounds=3), budget)
    assert res.stopped and "call" in res.stopped
    assert res.best.cid == "r0-t0"  # untimed (CPU): the first correct one
    assert pick_best([]) is None
    a = Attempt("x", 0, 0, "", None, Verdict("x", "mismatch"))
    assert pick_best([a]) is None
    # the fastest correct kernel, unless its timing looks gamed and an honest one is correct
    fast = Attempt("fast", 0, 0, "", None, Verdict("fast", "correct", new_ms=0.1, suspect=True))
    slow = Attempt("slow", 0, 1, "", None, Verdict("slow", "correct", new_ms=0.5))
    slower = Attempt("slower", 1, 0, "", None, Verdict("slower", "correct", new_ms=0.9))
    assert pick_best([fast, slower, slow]).cid == "slow" and pick_best([fast, a]).cid == "fast"


def test_extract_code_takes_last_modelnew_block():
    text = "```python\nprint(1)\n```\n```python\nclass ModelNew: pass\n```\n```python\nclass ModelNew: x = 2\n```"
    assert extract_code(text) == "class ModelNew: x = 2\n"
    assert extract_code("nothing") is None
    assert extract_code("class ModelNew:\n    pass") == "class ModelNew:\n    pass\n"


def test_search_saves_every_round_and_a_rerun_resumes_without_model_or_evaluator(tmp_path):
    from assay.agent.models import CallRecorder, ScriptedModel
    from assay.store import RunStore

    prob = load_problem(PROBS / "level1" / "1_ReLU.py")
    store = RunStore(tmp_path, "kernel-run")

    def answer(messages):  # round 0: wrong; after a mismatch: right; after "Correct.": faster
        last = messages[-1]["content"]
        if "not correct" in last:
            return block("# GOOD ms=0.6")
        if "Correct." in last:
            return block("# GOOD ms=0.4")
        return block("# bad")

    model = ScriptedModel(answer, recorder=CallRecorder(store))
    ev = FakeEvaluator()
    first = search(prob, model, ev, SearchConfig(samples=2, rounds=3, workers=4), store=store)
    assert len(model.calls) == 1 + 2 + 2 and len(ev.seen) == 3
    assert first.best.cid == "r2-t0" and first.best.verdict.new_ms == 0.4
    task = store.task_dir(prob.id)
    assert sorted(p.name for p in (task / "trajectories").iterdir()) == ["round0.jsonl", "t0.jsonl", "t1.jsonl"]
    assert (task / "result.py").read_text() == first.best.source
    assert store.load(prob.id, "50_selection.json")["chosen"] == first.best.cid

    # the same command again: everything is read back; no model call, no evaluation
    again_model, again_ev = ScriptedModel([]), FakeEvaluator()
    again = search(prob, again_model, again_ev, SearchConfig(samples=2, rounds=3), store=store)
    assert again_model.calls == [] and again_ev.seen == []
    assert [a.to_dict() for a in again.attempts] == [a.to_dict() for a in first.attempts]
    assert again.best.cid == first.best.cid

    # a crash after the model answered round 2 but before its evaluation: the replies are kept
    (task / "40_round2_attempts.json").unlink()
    third_ev = FakeEvaluator()
    third = search(prob, ScriptedModel([]), third_ev, SearchConfig(samples=2, rounds=3), store=store)
    assert third_ev.seen == [["r2-t0", "r2-t1"]] and third.best.cid == first.best.cid


def test_a_search_with_no_correct_kernel_says_how_many_it_tried(tmp_path):
    from assay.agent.models import ScriptedModel
    from assay.store import RunStore

    prob = load_problem(PROBS / "level1" / "1_ReLU.py")
    for samples, rounds, said in ((1, 1, "no correct kernel in 1 attempt"), (2, 2, "no correct kernel in 4 attempts")):
        store = RunStore(tmp_path, f"none-{samples}")
        res = search(prob, ScriptedModel(lambda m: block("# bad")), FakeEvaluator(),
                     SearchConfig(samples=samples, rounds=rounds), store=store)
        assert res.best is None
        assert store.load(prob.id, "50_selection.json") == {"chosen": None, "tied": [], "rationale": said,
                                                             "speedup": None, "stopped": None}


def test_the_kernel_command_shows_which_round_is_under_way(tmp_path):
    from contextlib import contextmanager

    from assay.agent.models import ScriptedModel
    from assay.commands.kernel import _search_showing_rounds

    shown: list[str] = []

    class Screen:  # what the command does with its rich console: a spinner and printed lines
        @contextmanager
        def status(self, text):
            shown.append(f"spinner: {text}")
            yield self

        def update(self, text):
            shown.append(f"spinner: {text}")

        def print(self, text, **kw):
            shown.append(text)

    prob = load_problem(PROBS / "level1" / "1_ReLU.py")
    model = ScriptedModel(lambda m: block("# GOOD ms=0.5") if "not correct" in m[-1]["content"] else block("# bad"))
    res = _search_showing_rounds(Screen(), prob, model, FakeEvaluator(), SearchConfig(samples=1, rounds=2), None, None)
    assert res.best.cid == "r1-t0"
    assert [line.split(":")[0] if line.startswith("[") else line for line in shown] == [
        "spinner: level1/1_ReLU: round 1 of 2: asking the model, then building and checking",
        "[red]MISMATCH[/red] r0-t0",
        "spinner: level1/1_ReLU: round 2 of 2: asking the model, then building and checking",
        "[green]CORRECT[/green] r1-t0",
    ]


def test_search_keeps_the_replies_it_paid_for_when_the_budget_stops_a_round(tmp_path):
    from assay.agent.models import ScriptedModel
    from assay.store import RunStore
    from assay.types import Budget

    prob = load_problem(PROBS / "level1" / "1_ReLU.py")
    store = RunStore(tmp_path, "kernel-run")
    budget = Budget(calls=2)  # round 0, then one of the two round-1 calls
    model = ScriptedModel(lambda m: block("# bad"), budget=budget)
    res = search(prob, model, FakeEvaluator(), SearchConfig(samples=2, rounds=3, workers=1), budget, store=store)
    assert res.stopped and "call" in res.stopped
    assert [a.cid for a in res.attempts] == ["r0-t0", "r0-t1", "r1-t0"]  # the paid reply was evaluated
    # with more budget the same command goes on from round 2, asking both trajectories
    more = ScriptedModel(lambda m: block("# GOOD ms=0.5"))
    res2 = search(prob, more, FakeEvaluator(), SearchConfig(samples=2, rounds=3), store=store)
    assert len(more.calls) == 2 and [a.cid for a in res2.attempts][-2:] == ["r2-t0", "r2-t1"]
    assert res2.best.cid == "r2-t0" and res2.stopped is None


def test_search_stops_when_the_evaluation_cannot_judge_any_kernel(tmp_path):
    from assay.agent.models import ScriptedModel
    from assay.store import RunStore

    class BrokenMachine(FakeEvaluator):
        def evaluate_many(self, problem, items):
            self.seen.append([cid for cid, _ in items])
            return [Verdict(cid, "error", "CUDA is not available to the evaluation process") for cid, _ in items]

    prob = load_problem(PROBS / "level1" / "1_ReLU.py")
    store = RunStore(tmp_path, "kernel-run")
    model, ev = ScriptedModel(lambda m: block("# GOOD")), BrokenMachine()
    res = search(prob, model, ev, SearchConfig(samples=2, rounds=3), store=store)
    assert len(model.calls) == 1 and len(ev.seen) == 1  # no feedback round spent on a broken machine
    assert res.best is None and "could not judge any kernel: CUDA is not available" in res.stopped
    # once the machine is mended, the same command judges the saved replies without the model
    again = search(prob, ScriptedModel([]), FakeEvaluator(), SearchConfig(samples=2, rounds=1), store=store)
    assert again.best is not None and again.best.cid == "r0-t0" and again.stopped is None


@pytest.mark.parametrize("op,base", [
    ("relu_", "relu"), ("_softmax", "softmax"), ("_log_softmax", "log_softmax"), ("native_layer_norm", "layer_norm"),
    ("_native_batch_norm_legit_no_training", "batch_norm"), ("cudnn_batch_norm", "batch_norm"),
    ("max_pool2d_with_indices", "max_pool2d"), ("cudnn_convolution", "convolution"), ("conv2d", "convolution"),
    ("slow_conv_dilated2d", "convolution"), ("_scaled_dot_product_flash_attention", "scaled_dot_product_attention"),
    ("_addmm_activation", "addmm"), ("upsample_bilinear2d", "interpolate"), ("nll_loss_nd", "nll_loss"),
    ("empty_like", "empty_like"), ("_to_copy", "to_copy"), ("convert_indices_from_coo_to_csr",
                                                            "convert_indices_from_coo_to_csr"),
])
def test_op_census_names_aten_ops_as_the_gate_does(op, base):
    from assay.kernels.worker import aten_base
    assert aten_base(op) == base


def test_op_census_permits_glue_operators_and_what_allow_op_adds_only():
    from assay.kernels.gate import GatePolicy, census_permitted
    default = census_permitted(GatePolicy())
    assert not {"relu", "addmm", "convolution", "softmax", "sum", "batch_norm", "scaled_dot_product_attention",
                "heaviside", "xlogy", "relu6", "cat", "index"} & default  # an allowlist: unnamed ops compute
    assert {"add", "mul", "neg", "abs", "gt", "bitwise_and", "empty_like", "new_empty", "to_copy", "clone", "copy",
            "view", "set"} <= default
    allowed = census_permitted(GatePolicy().allowing("Conv2d", "linear", "BatchNorm2d"))
    assert {"convolution", "addmm", "mm", "batch_norm"} <= allowed and "relu" not in allowed


def test_op_census_counts_ops_on_any_device_that_holds_data():
    torch = pytest.importorskip("torch")
    from assay.kernels.gate import GatePolicy, census_permitted
    from assay.kernels.worker import Tally, census_found, op_census
    seen = Tally()
    census = op_census()
    x = torch.randn(4, 4)
    with census(seen):
        y = torch.relu(x).sum(0) + 1  # relu, sum: compute; add: an operator's glue
        torch.empty_like(x)
        torch.ones(2, device="meta").exp()  # shapes only, no data: not counted
    assert y.shape == (4,) and seen.calls == {"relu": 1, "sum": 1, "add": 1, "empty_like": 1}, seen.calls
    assert seen.forwards == [{"relu": 16, "sum": 4, "add": 4, "empty_like": 16}]  # elements out, per op
    found = census_found(seen, census_permitted(GatePolicy()))
    assert "relu (1 call)" in found and "sum (1 call)" in found and "add" not in found and "empty" not in found
    assert census_found(seen, census_permitted(GatePolicy().allowing("relu", "sum"))) is None
    with census(seen):
        x.heaviside(x)  # a tensor method none of the gate's lists names
    assert "heaviside (1 call)" in census_found(seen, census_permitted(GatePolicy().allowing("relu", "sum")))
    torch.relu(x)  # outside the census: not counted
    assert seen.calls["relu"] == 1


def test_operator_math_past_the_references_share_is_torch_computing_the_answer():
    torch = pytest.importorskip("torch")
    from assay.kernels.gate import OPERATOR_OPS, GatePolicy, census_permitted
    from assay.kernels.worker import Tally, op_census, operator_math
    permitted, census = census_permitted(GatePolicy()), op_census()
    x, w = torch.randn(8, 8), torch.randn(8, 8)

    def tally(*fns) -> Tally:
        t = Tally()
        for fn in fns:
            with census(t):
                fn()
        return t

    def judged(cand: Tally, ref: Tally):
        return operator_math(cand, ref, 64, permitted, OPERATOR_OPS)

    relu_ref = tally(lambda: torch.relu(x))
    by_operators = tally(lambda: x[:1] * 1, lambda: (x + abs(x)) * 0.5)  # a token call, then ReLU as operators
    found = judged(by_operators, relu_ref)
    assert found and "on 192 elements (abs 64, add 64, mul 64)" in found and "output of 64" in found
    assert "reference's own operators reach 0" in found
    assert judged(tally(lambda: x * (x > 0)), relu_ref)  # comparisons are operators too (gt 64 + mul 64)
    assert judged(tally(lambda: x[:4] * 2), relu_ref) is None  # 32 elements of glue: within half an output
    # a reference computing with operators alone leaves them all to the kernel: a * s beside a token launch
    scale_ref = tally(lambda: x * 0.5 + w)
    found = judged(tally(lambda: x * 0.5 + w), scale_ref)
    assert found and "the reference computes with operators alone" in found
    assert judged(tally(lambda: torch.empty_like(x)), scale_ref) is None  # the kernel's own buffer is not math
    # beside compute of its own (a matmul the kernel does), a reference's operators may stay in torch
    gemm_ref = tally(lambda: (x @ w) * 0.5 + w)
    assert judged(tally(lambda: torch.empty_like(x) * 0.5 + w), gemm_ref) is None
    assert judged(tally(lambda: (x + abs(x)) * 0.5 + w), gemm_ref)  # 256 elements against 128 + 32


def test_op_census_leaves_an_allowed_torch_call_its_own_aten_ops():
    torch = pytest.importorskip("torch")
    from assay.kernels.gate import GatePolicy, allowed_calls
    from assay.kernels.worker import Tally, op_census
    allowed = allowed_calls(GatePolicy().allowing("einsum", "Linear"))
    assert {"einsum", "linear"} <= allowed and "empty_like" not in allowed
    seen = Tally()
    census = op_census(allowed)
    x, lin = torch.randn(2, 3, 3), torch.nn.Linear(3, 3)
    with torch.no_grad(), census(seen):
        torch.einsum("bij,bjk->bik", x, x)  # runs as bmm, inside the allowed einsum
        lin(x)  # nn.Linear -> F.linear, allowed as Linear's functional name
        torch.bmm(x, x)  # bmm itself was not allowed
    assert seen.calls.get("bmm") == 1 and "addmm" not in seen.calls, seen.calls


def _module(source: str):
    """A problem as the worker holds it: its (shrunken) source, imported."""
    import types

    prob = types.ModuleType("problem")
    exec(source, prob.__dict__)
    return prob


def _relu_problem(shrink: int = 256):
    return _module(load_problem(Path(__file__).parent / "kernels" / "problems" / "level1" / "1_ReLU.py",
                                shrink=shrink).source)


def test_inputs_are_drawn_in_a_fork_of_the_generator_the_candidate_can_read():
    torch = pytest.importorskip("torch")
    from assay.kernels.worker import draw_inputs

    prob = _relu_problem()
    torch.manual_seed(42)  # the public seed the models are built after
    before = torch.get_rng_state()
    first, again = draw_inputs(prob, 123456, torch.device("cpu")), draw_inputs(prob, 123456, torch.device("cpu"))
    assert torch.equal(first[0], again[0]) and first[0].shape == (16, 256)  # the seed draws the same inputs
    assert not torch.equal(first[0], draw_inputs(prob, 123457, torch.device("cpu"))[0])
    assert torch.initial_seed() == 42 and torch.equal(torch.get_rng_state(), before)  # nothing of 123456 shows
    torch.manual_seed(123456)
    assert torch.equal(torch.randn(16, 256), first[0])  # as get_inputs draws after torch.manual_seed


def test_the_checks_among_the_timed_calls_catch_an_answer_for_values_that_changed_in_place():
    torch = pytest.importorskip("torch")
    from assay.kernels.worker import TimedChecks, draw_inputs

    prob, cpu, trials = _relu_problem(), torch.device("cpu"), 10
    nudge_checked = set()
    for secret in range(200):  # the four places are secret, within the timed calls; the three checked ones differ
        c = TimedChecks(prob, cpu, iter([secret * 7919 + j for j in range(4)]), trials, audit=None)
        checked = {c.renewed_at, c.mixed_at, c.nudge_checked_at}
        assert len(checked) == 3 and checked | {c.audit_at} <= set(range(trials))
        nudge_checked.add(c.nudge_checked_at)
    assert nudge_checked == set(range(trials))  # any call can be the nudge-checked one
    ref = torch.relu

    def run(fn, secret, on_mixed=lambda: None):
        audited, arg_sets = [], [draw_inputs(prob, s, cpu) for s in (1, 2)]
        c = TimedChecks(prob, cpu, iter([secret, secret + 1, secret + 2, secret + 3]), trials, audit=audited.append)

        def before(i, args):
            c.before(i, args)
            if i == c.mixed_at:
                on_mixed()

        T.measure(fn, arg_sets, T.WallBackend(), warmup=2, trials=trials, before=before, after=c.after, kept=c.kept)
        assert len(audited) == 1  # the census's extra call, once
        drawn = draw_inputs(prob, 1 + c.renewed_at % 2, cpu)[0]  # that buffer set's values before timing
        assert int((c.seen[c.renewed_at][0] != drawn).sum()) > 4000  # all new values there
        mixed, nudged = c.seen[c.mixed_at], c.seen[c.nudge_checked_at]  # the check lets go of them
        return c, c.wrong(ref, None, "device"), (mixed, nudged)

    for secret in (5, 6, 7):
        c, wrong, records = run(torch.relu, secret)
        assert wrong is None, wrong  # an honest kernel is right on every checked call
        # (a copy from before the change, the values written, no copy from after: the inputs share no memory)
        (_, mixed, no_copy), (_, nudged, no_copy_either) = records
        assert no_copy is None and no_copy_either is None
        assert 1 <= sum(int((old != new).sum()) for _, _, old, new in mixed) <= 32  # a few of 4096 elements
        assert sum(int((old != new).sum()) for _, _, old, new in nudged) == 1  # one

        memo = {}

        def sampled_cache(x, memo=memo):  # keyed on the address and three sampled values
            key = (x.data_ptr(), float(x[0, 0]), float(x[8, 128]), float(x[-1, -1]))
            if key not in memo:
                memo[key] = torch.relu(x)
            return memo[key]

        c, wrong, _ = run(sampled_cache, secret)
        assert wrong and wrong.startswith(f"timed call {c.mixed_at + 1} of {trials} (device time), after "), wrong
        assert "returned the output for the values before" in wrong

        state = {}

        def wrong_off_distribution(x):  # right on get_inputs' inputs, wrong on the mixed ones: not a cache
            return torch.relu(x) + (1.0 if state.pop("mixed", False) else 0.0)

        c, wrong, _ = run(wrong_off_distribution, secret, on_mixed=lambda: state.update(mixed=True))
        assert wrong is None and not state, wrong


def test_no_two_timed_calls_see_the_same_input_values():
    # so a cache keyed on all of them (a checksum) works in every timed call; and each nudge is
    # undone after its call, so the buffers hold what they held, but where the checked calls wrote
    torch = pytest.importorskip("torch")
    from assay.kernels.worker import TimedChecks, draw_inputs

    prob, cpu, trials, checked_before = _relu_problem(), torch.device("cpu"), 12, 0
    for secret in (5, 6, 7):
        arg_sets = [draw_inputs(prob, s, cpu) for s in (1, 2, 3)]
        drawn = [draw_inputs(prob, s, cpu) for s in (1, 2, 3)]
        c = TimedChecks(prob, cpu, iter([secret, secret + 1, secret + 2, secret + 3]), trials, audit=lambda args: None)
        seen, memo, inputs = [], {}, []

        def checksum_cache(x):  # keyed on every input value
            key = x.numpy().tobytes()
            seen.append(key)
            inputs.append(x.clone())
            if key not in memo:
                memo[key] = torch.relu(x)
            return memo[key]

        T.measure(checksum_cache, arg_sets, T.WallBackend(), warmup=3, trials=trials, before=c.before, after=c.after,
                  kept=c.kept)
        timed = seen[3:]
        assert len(timed) == trials and len(set(timed)) == trials  # all different
        assert not set(timed) & set(seen[:3])  # and none is a warm-up call's
        assert c.wrong(torch.relu, None, "device") is None  # it computed: right on both checked calls
        written = {c.renewed_at % 3, c.mixed_at % 3}
        for j in set(range(3)) - written:
            assert torch.equal(arg_sets[j][0], drawn[j][0]), j  # every nudge undone
        first_written = min(c.renewed_at, c.mixed_at)
        for i in range(first_written):  # before either checked call: one element off the drawn values
            assert int((inputs[3 + i] != drawn[i % 3][0]).sum()) == 1, i
        checked_before += first_written
    assert checked_before >= 3


def test_inputs_that_are_views_get_new_values_in_place_too():
    # a problem's get_inputs may hand out an expanded, a transposed or an overlapping view: a write
    # through all of an expanded one raises (it crashed timing), and a transposed one was left out
    # of the few-element changes. Each gets its new values in its own memory now, with identity,
    # address and version kept, and the undo puts back what was there; the overlapping one is left
    torch = pytest.importorskip("torch")
    from assay.kernels.worker import _positions, _refill, _undo, _write_at

    def overlapping():
        return torch.arange(10.0).as_strided((4, 3), (1, 1))

    def views(seed):
        g = torch.Generator().manual_seed(seed)
        return [torch.randn(4, 1, generator=g).expand(4, 5), torch.randn(5, 4, generator=g).t(), overlapping()]

    bufs, fresh = views(1), views(2)
    kept = [(id(b), b.data_ptr(), b._version) for b in bufs]
    now = _refill(bufs, fresh)
    assert torch.equal(bufs[0], fresh[0]) and torch.equal(bufs[1], fresh[1]) and bufs[1].stride() == (1, 4)
    assert torch.equal(bufs[2], overlapping()) and torch.equal(now[0], fresh[0])
    assert [(id(b), b.data_ptr(), b._version) for b in bufs] == kept
    before = [b.clone() for b in bufs]
    undo = _write_at(bufs, views(3), _positions(views(3), 7, lambda n: 3))
    changed = [int((b != o).sum()) for b, o in zip(bufs, before)]
    assert changed[0] % 5 == 0 and 5 <= changed[0] <= 15  # a broadcast element changes its whole row
    assert 1 <= changed[1] <= 3 and changed[2] == 0, changed
    _undo(undo)
    assert all(torch.equal(b, o) for b, o in zip(bufs, before))


def test_a_cache_keyed_on_sampled_values_of_a_transposed_input_answers_stale_where_a_few_change():
    torch = pytest.importorskip("torch")
    from assay.kernels.worker import TimedChecks, draw_inputs

    prob = _module("import torch\ndef get_inputs():\n    return [torch.randn(256, 16).t()]\n")
    cpu, trials, memo = torch.device("cpu"), 10, {}

    def sampled_cache(x):  # keyed on the address and three sampled values
        key = (x.data_ptr(), float(x[0, 0]), float(x[8, 128]), float(x[-1, -1]))
        if key not in memo:
            memo[key] = torch.relu(x)
        return memo[key]

    for secret in (5, 6, 7):
        memo.clear()
        arg_sets = [draw_inputs(prob, s, cpu) for s in (1, 2)]
        assert not arg_sets[0][0].is_contiguous()
        c = TimedChecks(prob, cpu, iter([secret, secret + 1, secret + 2, secret + 3]), trials, audit=lambda args: None)
        T.measure(sampled_cache, arg_sets, T.WallBackend(), warmup=2, trials=trials, before=c.before, after=c.after,
                  kept=c.kept)
        wrong = c.wrong(torch.relu, None, "device")
        assert wrong and "returned the output for the values before" in wrong, (secret, wrong)


@pytest.mark.parametrize("inputs, values", [
    # a bool drawn again is the old one half the time: a nudge flips it instead
    ("torch.rand(8, 32) > 0.5, torch.tensor(True)", {False, True}),
    # an integer in [0, 3) drawn again is the old one a third of the time: a nudge takes the first
    # value drawn for its input that differs from the old one, so it stays one get_inputs() can give
    ("torch.randint(0, 3, (16, 64)),", {0, 1, 2}),
])
def test_no_two_timed_calls_see_the_same_bool_or_integer_input_values(inputs, values):
    # so a cache keyed on every value (a checksum) of a problem with no float input works in every timed call
    torch = pytest.importorskip("torch")
    from assay.kernels.worker import TimedChecks, draw_inputs

    prob = _module(f"import torch\ndef get_inputs():\n    return [{inputs}]\n")
    cpu, trials = torch.device("cpu"), 12
    for secret in (5, 6, 7):
        arg_sets = [draw_inputs(prob, s, cpu) for s in (1, 2, 3)]
        c = TimedChecks(prob, cpu, iter([secret, secret + 1, secret + 2, secret + 3]), trials, audit=lambda *a: None)
        seen = []
        T.measure(lambda *xs: seen.append(tuple(x.clone() for x in xs)) or xs[0].clone(), arg_sets, T.WallBackend(),
                  warmup=3, trials=trials, before=c.before, after=c.after, kept=c.kept)
        as_bytes = [tuple(x.numpy().tobytes() for x in xs) for xs in seen]
        timed = as_bytes[3:]
        assert len(set(timed)) == trials and not set(timed) & set(as_bytes[:3]), secret
        assert all(len({xs[j] for xs in timed}) > 1 for j in range(len(timed[0])))  # a 0-dim input changes too
        assert {v for xs in seen for x in xs for v in x.flatten().tolist()} == values


def test_the_nudges_take_every_place_once_before_any_twice():
    # two nudges at one element repeat the inputs a bool flip (or a small integer) makes: 12 places
    # drawn independently among 32 share one in 9 of 10 draws
    torch = pytest.importorskip("torch")
    from assay.kernels.worker import TimedChecks

    prob = _module("import torch\ndef get_inputs():\n    return [torch.rand(4, 8) > 0.5, torch.rand(2, 3, 4).transpose(0, 2)]\n")
    for trials in (12, 32, 70):
        for secret in range(5):
            c = TimedChecks(prob, torch.device("cpu"), iter([secret, 1, 2, 3]), trials, audit=None)
            for _, at in c.nudge_at:
                flat = list(zip(*(ix.tolist() for ix in at)))
                n = 32 if len(at) == 2 else 24
                for start in range(0, trials, n):  # each run of n places is a permutation, the last one a part of one
                    chunk = flat[start:start + n]
                    assert len(set(chunk)) == len(chunk), (trials, secret, chunk)


def test_a_cache_that_sees_the_mixed_calls_changes_is_still_slow_only_against_its_repeated_inputs():
    # a cache sampling every 16th value works on the renewed call, on the mixed one (32 changed
    # elements) and on a nudged call now and then: the renewed call is compared with the calls on
    # repeated inputs only, so with 5 timed calls one unlucky nudge cannot hide it
    torch = pytest.importorskip("torch")
    from assay.kernels.worker import TimedChecks

    prob, trials = _relu_problem(), 5
    for secret in range(20):
        c = TimedChecks(prob, torch.device("cpu"), iter([secret, secret + 1, secret + 2, secret + 3]), trials,
                        audit=None)
        nudged = [i for i in range(trials) if i not in (c.renewed_at, c.mixed_at)]
        times = [2.0 if i in (c.renewed_at, c.mixed_at, nudged[0]) else 0.1 for i in range(trials)]
        checked = c.renewed_time(times, "device")
        assert checked == [2.0, 0.1, "device"], (checked, c.renewed_at, c.mixed_at)
        assert T.slow_when_inputs_change([checked]) == pytest.approx(20.0)
    two = TimedChecks(prob, torch.device("cpu"), iter([0, 1, 2, 3]), 2, audit=None)
    assert two.renewed_time([1.0, 0.1], "synced") == [1.0, None, "synced"]  # none on repeated inputs to compare with


@pytest.mark.parametrize("inputs", [
    "torch.randn(64, 64)",
    "torch.randn(64, 64).t()",
    "torch.randn(64, 1).expand(64, 256)",  # a nudge at one of its 64 elements changes a whole row
    "x, x",  # one tensor twice: a write through either shows in both
])
def test_a_cache_keyed_on_a_dense_sample_answers_stale_at_the_nudge_checked_call(inputs):
    # a cache keyed on the address and every 4th value sees the mixed call's changes (32 of them)
    # and works there, as on the renewed call, but misses the one element the nudge-checked call
    # changes 3 times in 4 and answers with the output for the values before. On a GPU, reading
    # every 4th 4-byte value still reads every 32-byte sector, so its calls on repeated inputs cost
    # an honest call's reads at least, and the calls it works in are not 3x slower: the time flag
    # cannot tell; this check does
    torch = pytest.importorskip("torch")
    from assay.kernels.worker import TimedChecks, _distinct, draw_inputs

    prob = _module(f"import torch\ndef get_inputs():\n    x = torch.randn(64, 64)\n    return [{inputs}]\n")
    cpu, trials = torch.device("cpu"), 10

    def ref(*xs):  # every changed value moves the output (under a ReLU, a negative one may stay negative)
        return sum(2 * x for x in xs)

    def run(kernel, secret):
        arg_sets = [draw_inputs(prob, s, cpu) for s in (1, 2)]
        c = TimedChecks(prob, cpu, iter([secret, secret + 1, secret + 2, secret + 3]), trials, audit=lambda a: None)
        T.measure(kernel, arg_sets, T.WallBackend(), warmup=2, trials=trials, before=c.before, after=c.after,
                  kept=c.kept)
        return c, c.wrong(ref, None, "device")

    caught = 0
    for secret in range(40):
        memo: dict = {}

        def dense_sample_cache(*xs, memo=memo):  # samples each input's own memory, as `_distinct` cuts it
            key = tuple((x.data_ptr(), x[_distinct(x)].reshape(-1)[::4].numpy().tobytes()) for x in xs)
            if key not in memo:
                memo[key] = ref(*xs)
            return memo[key]

        c, wrong = run(dense_sample_cache, secret)
        if wrong:
            assert wrong.startswith(f"timed call {c.nudge_checked_at + 1} of {trials} (device time), after "), wrong
            assert "returned the output for the values before" in wrong
            caught += 1
        c, right = run(ref, secret)
        assert right is None, (secret, right)  # an honest kernel, on the same inputs
    assert caught >= 20, caught  # 3 in 4 expected (fewer for the two inputs sharing memory: 9 in 16)


def test_timing_finds_a_dense_sample_cache_wrong_while_timed():
    torch = pytest.importorskip("torch")
    from assay.kernels import worker as W

    # six measurements (3 repeats, 2 modes), each with its nudge-checked call: a ReLU's output moves
    # there unless the changed value was negative before and after, so each catches it 9 times in 16
    prob, cpu, memo = _relu_problem(), torch.device("cpu"), {}
    spec = {"timing": {"trials": 12, "warmup": 2, "rotate": 2, "repeats": 3, "baselines": []}, "input_seed": 7,
            "tolerance": None}

    def dense_sample_cache(x):
        key = (x.data_ptr(), x.reshape(-1)[::4].numpy().tobytes())
        if key not in memo:
            memo[key] = torch.relu(x)
        return memo[key]

    out = W.timing(prob, torch.relu, dense_sample_cache, cpu, spec, T, picks=iter(range(1000, 2000)))
    assert "returned the output for the values before" in out.get("wrong_while_timed", ""), out
    honest = W.timing(prob, torch.relu, torch.relu, cpu, spec, T, picks=iter(range(1000, 2000)))
    assert "wrong_while_timed" not in honest and honest["stale_after_timing"] is None, honest


def test_a_slow_call_with_new_inputs_in_every_measurement_is_confirmed_in_more_before_it_counts():
    # one preemption of the host in a 10 microsecond call makes it 3x slower; in every measurement it
    # can still happen by chance (a KernelBench reference got flagged so on a CPU), in every one of
    # several more it does not: the flag needs those too, and a cache keyed on values passes them all
    torch = pytest.importorskip("torch")
    from assay.kernels import worker as W

    prob, cpu = _relu_problem(), torch.device("cpu")
    spec = {"timing": {"trials": 6, "warmup": 2, "rotate": 2, "baselines": []}, "input_seed": 7, "tolerance": None}

    def slow_on_new_values(slow_times: int):
        last: dict[int, torch.Tensor] = {}
        slow = [slow_times]

        def kernel(x):  # sleeps on the calls whose buffer got all-new values (the renewed ones)
            before = last.get(id(x))
            last[id(x)] = x.clone()
            if before is not None and int((before != x).sum()) > x.numel() // 2 and slow[0] > 0:
                slow[0] -= 1
                time.sleep(0.003)
            return torch.relu(x)
        return kernel

    for slow_times, flagged in ((2, False), (10**6, True)):
        out = W.timing(prob, torch.relu, slow_on_new_values(slow_times), cpu, spec, T,
                       picks=iter(range(1000, 2000)))
        checked = out["checked_calls"]
        assert len(checked) == 2 + 2 * T.CONFIRM_SLOW_MEASUREMENTS, checked  # flagged by the first two: confirmed
        assert (T.slow_when_inputs_change(checked) is not None) == flagged, checked
        assert [len(out["runs"]["candidate"][m]) for m in ("device", "synced")] == [1, 1]  # the rest count only there
    quiet = W.timing(prob, torch.relu, torch.relu, cpu, spec, T, picks=iter(range(1000, 2000)))
    first = quiet["checked_calls"][:2]  # more only where these two were flagged (noise, now and then)
    assert len(quiet["checked_calls"]) == (2 if T.slow_when_inputs_change(first) is None else 6), quiet


def test_the_checks_around_the_timed_calls_only_queue_device_work():
    """On a GPU, a value read back or a copy from the host between two timed calls drains the queue:
    that call's place would show (an idle stream at a checked call) and the write would not be
    like the reference's measurement. On the meta device (no data), reading a value back raises,
    and any host tensor in an op shows in the dispatch."""
    torch = pytest.importorskip("torch")
    from torch.utils._python_dispatch import TorchDispatchMode
    from assay.kernels.worker import TimedChecks, _flat, draw_inputs

    prob, meta, trials = _relu_problem(), torch.device("meta"), 10
    devices: set[str] = set()

    class Devices(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            devices.update(t.device.type for t in _flat(list(args) + list(kwargs.values()))
                           if isinstance(t, torch.Tensor))
            return func(*args, **kwargs)

    for secret in (5, 6, 7):
        audited = []
        c = TimedChecks(prob, meta, iter([secret, secret + 1, secret + 2, secret + 3]), trials, audit=audited.append)
        args = draw_inputs(prob, 1, meta)
        with Devices():
            for i in range(trials):
                c.before(i, args)
                c.after(i, args)
        assert set(c.seen) == {c.renewed_at, c.mixed_at, c.nudge_checked_at} and len(audited) == 1
        assert devices == {"meta"}, devices  # index, index_put, copy_ and clone on the inputs' device, nothing else


def test_only_an_output_for_the_values_before_a_change_counts_as_answered_from_before():
    torch = pytest.importorskip("torch")
    from assay.kernels.worker import answered_before, compare

    before = torch.zeros(100)
    after = before.clone()
    after[[3, 50, 97]] = 1.0
    loose = after + 1.5e-4  # computed, a little outside the tolerance everywhere
    assert compare(after, loose, None) and not answered_before(before, after, loose, None)
    stale = before + 0.5e-4  # a cached answer (within the tolerance of the old output)
    assert compare(after, stale, None) and answered_before(before, after, stale, None)
    partly = stale.clone()
    partly[50] = 1.0  # one moved element computed: not the old answer
    assert not answered_before(before, after, partly, None)
    assert not answered_before(before, before.clone(), stale, None)  # nothing moved: no evidence
    assert not answered_before(before, after, stale[:99], None)  # a wrong shape is another kind of wrong
    before[7] = after[7] = stale[7] = math.nan  # a NaN the output always had neither moved nor differs
    assert answered_before(before, after, stale, None)
    ints = torch.tensor([1, 2, 3])
    assert answered_before(ints, torch.tensor([1, 5, 3]), ints.clone(), None)
    assert answered_before([before, ints], [after, ints], [stale, ints], None)  # moved in one output of two


def test_the_worker_loads_the_problem_and_candidate_from_their_source_never_a_bytecode_cache(tmp_path):
    # a __pycache__ entry matching the source's size and mtime (which a process in the workspace
    # can set) is what importlib runs in place of the source
    import importlib.util
    import os
    from importlib._bootstrap_external import _code_to_timestamp_pyc

    from assay.kernels.worker import _load

    path = tmp_path / "problem_x.py"
    path.write_text("DIM = 256\n")
    st = os.stat(path)
    forged = _code_to_timestamp_pyc(compile("DIM = 8\n\n\n", str(path), "exec"), int(st.st_mtime), st.st_size)
    cached = Path(importlib.util.cache_from_source(str(path)))
    cached.parent.mkdir()
    cached.write_bytes(forged)
    spec = importlib.util.spec_from_file_location("forged_problem", path)
    plain = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plain)
    assert plain.DIM == 8  # the forgery works on a plain import
    assert _load(str(path), "reference_problem_from_source").DIM == 256


def test_outputs_are_compared_a_chunk_at_a_time_with_the_same_verdict_and_message(monkeypatch):
    # Whole-tensor float64 diffs of 2 GiB outputs ran the H200 out of memory; the chunked
    # comparison must say exactly what the whole-tensor one said, wherever the chunks fall.
    torch = pytest.importorskip("torch")
    import assay.kernels.worker as W

    gen = torch.Generator().manual_seed(3)
    ref = torch.randn(6, 50, generator=gen)
    ref[4, 10] = ref[5, 49] = 0.0
    got = ref.clone()
    got[0, 3] += 1e-3  # outside 1e-4, in the first chunks
    got[4, 10] = 2.5  # the largest error ...
    got[5, 49] = -2.5  # ... tied with one in a later chunk: the first one is named
    got[2, 7] = math.nan
    half = ref.half()
    got_half = half.clone()
    got_half[1, 1] += 0.5
    cases = [(ref, got), (ref, ref.clone()), (half, got_half), (ref[0, 0], got[0, 0] + 1),
             (ref[:0], got[:0]), (ref.abs(), (ref + 1e-6).abs())]
    before, after, stale = ref.clone(), ref.clone(), ref.clone()
    after[3, :] += 5.0
    whole = {}
    monkeypatch.setattr(W, "COMPARE_CHUNK", 1 << 24)
    whole = [W.compare(a, b, None) for a, b in cases] + [W.answered_before(before, after, stale, None),
                                                           W.answered_before(before, after, after, None)]
    assert whole[0] == ("output mismatch: 4 of 300 elements outside atol=rtol=0.0001; max abs error inf at "
                        f"index [2, 7] (expected {float(ref[2, 7]):.6g}, got nan); max rel error inf")
    assert whole[1] is None and whole[4] is None and whole[5] is None
    assert "1 of 300 elements outside atol=rtol=0.01" in whole[2] and "at index [1, 1]" in whole[2]
    assert "at index []" in whole[3] and whole[-2:] == [True, False]
    got[2, 7] = ref[2, 7]  # without the NaN the first of the two tied errors is named
    assert "max abs error 2.5 at index [4, 10]" in W.compare(ref, got, None)
    got[2, 7] = math.nan
    for chunk in (1, 7, 64):
        monkeypatch.setattr(W, "COMPARE_CHUNK", chunk)
        assert [W.compare(a, b, None) for a, b in cases] + [
            W.answered_before(before, after, stale, None), W.answered_before(before, after, after, None)] == whole
        got[2, 7] = ref[2, 7]
        assert "max abs error 2.5 at index [4, 10]" in W.compare(ref, got, None)
        got[2, 7] = math.nan


def test_a_reference_that_ran_out_of_device_memory_blames_the_device_not_the_problem():
    torch = pytest.importorskip("torch")
    from assay.kernels.worker import _problem_broken

    try:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB.")
    except torch.OutOfMemoryError:
        short = _problem_broken("the reference Model on trial 0", 0)
    try:
        raise ValueError("bad shape")
    except ValueError:
        broken = _problem_broken("the reference Model on trial 0", 0)
    assert short["status"] == broken["status"] == "error"
    assert "ran out of device memory" in short["message"] and "problem file" not in short["message"]
    assert "CUDA out of memory" in short["message"]  # the traceback is kept
    assert "the problem file, or the shapes --shrink gave it, is at fault" in broken["message"]
    assert "device memory" not in broken["message"]


def test_an_evaluation_holds_few_copies_of_its_inputs_while_the_candidate_runs():
    """Memory is what limits how many evaluations share a GPU: the first H200 run ran eight
    evaluations of 2 GiB problems at once and six ran out of its 141 GB. While the candidate
    runs, the correctness trials hold at most five input-sized tensors (the trial's inputs, the
    candidate's copy, the reference outputs it is checked against, its first output), and the
    timed calls seven (the timed inputs, and the three checked calls' copies and outputs: the
    changed-in-place ones keep a copy from before and the few values written, not a second
    copy), not the whole input sets drawn for checks already made."""
    torch = pytest.importorskip("torch")
    import gc
    import warnings

    from assay.kernels import timing as T
    from assay.kernels import worker as W

    prob, cpu = _relu_problem(), torch.device("cpu")
    n = W.draw_inputs(prob, 1, cpu)[0].numel()
    live: list[int] = []

    def kernel(x):  # counts the input-sized tensors alive (each storage once: a view is no copy)
        with warnings.catch_warnings():  # isinstance on torch's deprecated module attributes warns
            warnings.simplefilter("ignore", FutureWarning)
            live.append(len({t.untyped_storage().data_ptr() for t in gc.get_objects()
                             if isinstance(t, torch.Tensor) and t.numel() == n}))
        return torch.relu(x)

    verdict = W.correctness(prob, torch.relu, kernel, cpu, {"trials": 5, "input_seed": 7, "tolerance": None})
    assert verdict["status"] == "correct" and len(live) == 10, verdict
    assert max(live) <= 5, live  # 7 when a pristine copy was kept beside the inputs, which no call gets
    live.clear()
    spec = {"timing": {"trials": 12, "warmup": 2, "rotate": 1, "baselines": []}, "input_seed": 7, "tolerance": None}
    out = W.timing(prob, torch.relu, kernel, cpu, spec, T, picks=iter(range(1000, 2000)))
    assert "wrong_while_timed" not in out and len(out["checked_calls"]) >= 2, out
    # 9 when the drawn sets stayed after their checked calls (two checked calls then); 9 too when the two
    # checks of values changed in place copy the inputs both before and after the change
    assert max(live) <= 7, live
