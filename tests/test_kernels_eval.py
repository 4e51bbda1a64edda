"""The correctness protocol end to end on CPU: Triton kernels under TRITON_INTERPRET=1, a C++
load_inline extension, and candidates that are wrong or cheat in ways only a run can show.
Needs the `kernels` extra (torch + triton)."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="kernel-mode tests need torch: pip install -e '.[kernels]'")
pytest.importorskip("triton", reason="kernel-mode tests need triton (interpreter mode on CPU)")

from assay.kernels.evaluate import EvalConfig, KernelEvaluator, source_hash  # noqa: E402
from assay.kernels.gate import GatePolicy  # noqa: E402
from assay.kernels.problem import load_problem  # noqa: E402
from assay.kernels.toolkit import cuda_home  # noqa: E402

HERE = Path(__file__).parent / "kernels"
CAND = HERE / "candidates"


def src(name: str) -> str:
    return (CAND / f"{name}.py").read_text()


@pytest.fixture(scope="module")
def relu():
    return load_problem(HERE / "problems" / "level1" / "1_ReLU.py", shrink=256)


@pytest.fixture(scope="module")
def ev(tmp_path_factory):
    cfg = EvalConfig(device="cpu", cache_dir=str(tmp_path_factory.mktemp("kcache")), policy=GatePolicy(allow_cpp=True),
                     compile_workers=2)
    return KernelEvaluator(cfg)


@pytest.fixture(scope="module")
def timed_ev(tmp_path_factory):
    cfg = EvalConfig(device="cpu", cache_dir=str(tmp_path_factory.mktemp("kcache_t")), timing=True, warmup=1,
                     timing_trials=3, baselines=("eager",), policy=GatePolicy(allow_cpp=True))
    return KernelEvaluator(cfg)


def test_many_candidates_right_wrong_and_cheating(ev, relu):
    items = [("legit", src("legit_triton_relu")), ("wrong", src("wrong_triton_relu")),
             ("empty", src("cheat_empty_reuse")), ("mutates", src("wrong_mutates_input")),
             ("fallback", src("cheat_try_fallback"))]
    verdicts = ev.evaluate_many(relu, items)
    assert [x.candidate_id for x in verdicts] == [cid for cid, _ in items]  # input order kept
    v = {x.candidate_id: x for x in verdicts}
    assert v["legit"].correct and "5 trials" in v["legit"].message
    assert v["wrong"].status == "mismatch"
    assert "max abs error" in v["wrong"].message and "at index [" in v["wrong"].message
    assert "max rel error" in v["wrong"].feedback()
    # uninitialised memory: the reference output is kept alive, so the allocator cannot hand it back
    assert v["empty"].status == "mismatch"
    assert v["mutates"].status == "mutated"
    assert v["fallback"].status == "gate" and v["fallback"].gate_rules == ["torch-compute", "try-except"]


def test_result_cache_is_caught_at_run_time_even_past_the_gate(ev, relu):
    cheat = src("cheat_result_cache")
    assert ev.build(relu, cheat)["ok"]
    r = ev.check(relu, cheat)  # bypass the gate: new random inputs each trial expose the cache
    assert r["status"] == "mismatch" and r["message"].startswith("trial 1")


def test_pointer_cache_is_caught_after_timing(timed_ev, relu):
    cheat = src("cheat_pointer_cache")
    assert timed_ev.build(relu, cheat)["ok"]
    r = timed_ev.check(relu, cheat)
    timed = r.get("timing", {})
    stale = timed.get("wrong_while_timed") or timed.get("stale_after_timing")
    # caught one of three ways, depending on where the allocator puts each trial's inputs: fresh
    # values at an old address (mismatch), a repeat call answered from another trial's entry
    # (nondeterministic), or the timing run's refilled buffers (the checked timed call's, or after)
    assert r["status"] in ("mismatch", "nondeterministic") or stale, r
    legit = timed_ev.evaluate(relu, src("legit_triton_relu"), "legit")
    assert legit.correct and legit.timing["rotated_input_sets"] == 4 and legit.new_ms > 0
    assert not legit.review, legit.review  # its checked timed calls (new input values) took no longer
    assert set(legit.speedups) == {"eager/synced", "eager/device", "compile/synced", "compile/device"}


@pytest.mark.parametrize("cheat, says", [
    ("cheat_forged_verdict", "line 28 of the candidate asked for sys._getframe"),
    ("cheat_patch_reference", "torch.relu was no longer what it was before"),
    ("cheat_stdout_rewrite", "sys.stdout"),
    ("cheat_global_hook", "torch.nn.modules.module._global_forward_hooks (was (), now (0,))"),
])
def test_a_candidate_that_reaches_into_the_harness_is_caught_past_the_gate(ev, relu, cheat, says):
    # all are wrong kernels that the process they run in would otherwise call correct
    source = src(cheat)
    v = ev.evaluate_built(relu, source, cheat, ev.build(relu, source))  # the gate rejects them all
    assert v.status == "tamper" and says in v.message, v.message
    assert "reached into the evaluation harness" in v.feedback()


@pytest.mark.parametrize("line, says", [
    # TF32 would loosen the reference's matmuls too, and so the comparison; torch keeps the flag
    # and the precision setting in step, and whichever is read first is named
    ("torch.backends.cuda.matmul.allow_tf32 = True", ("allow_tf32 (was False, now True)",
                                                      "precision() (was 'highest', now 'high')")),
    # smaller inputs for both sides: a kernel wrong only at the real size would pass
    ("torch.sys.modules['reference_problem'].dim = 8", ("problem.dim (was 256, now 8)",)),
    # a slower reference: attention without its flash kernel
    ("torch.backends.cuda.enable_flash_sdp(False)", ("torch.backends.cuda.flash_sdp_enabled() (was True, now False)",)),
    # read after the candidate loads: by cuBLAS at its first matmul, by dynamo at the first compile
    ("import os\nos.environ['TORCHDYNAMO_DISABLE'] = '1'", ("os.environ['TORCHDYNAMO_DISABLE'] (was unset, now '1')",)),
    # the op census's counts and the mode it runs as: emptied, torch compute would pass
    ("torch.sys.modules['__main__'].Tally.count = lambda *a: None", ("worker.Tally.count was no longer",)),
    ("torch.utils._python_dispatch.TorchDispatchMode.__torch_dispatch__ = None",
     ("TorchDispatchMode.__torch_dispatch__ was no longer",)),
    # the places the mixed call changes, known: a cache keyed on them would see its change
    ("import random\nrandom.Random.sample = lambda self, population, k: list(population[:k])",
     ("random.Random.sample was no longer",)),
])
def test_a_candidate_that_changes_what_both_sides_run_under_is_caught(ev, relu, line, says):
    source = src("legit_triton_relu") + "\n" + line + "\n"
    v = ev.evaluate_built(relu, source, "setting", ev.build(relu, source))  # the gate passes only os.environ
    assert v.status == "tamper" and any(s in v.message for s in says), v.message


def test_the_candidate_gets_its_own_copies_of_the_init_inputs(ev, tmp_path):
    # the reference keeps its init tensor; a candidate zeroing that tensor in place would make the
    # reference return zeros, which is all this kernel returns
    (tmp_path / "1_Scale.py").write_text(
        "import torch\nimport torch.nn as nn\n\n\nclass Model(nn.Module):\n    def __init__(self, w):\n"
        "        super().__init__()\n        self.w = w\n\n    def forward(self, x):\n        return x * self.w\n\n\n"
        "def get_inputs():\n    return [torch.randn(8, 16)]\n\n\ndef get_init_inputs():\n    return [torch.ones(16)]\n")
    source = src("cheat_constant_output").replace("    def __init__(self):\n        super().__init__()\n",
                                                  "    def __init__(self, w):\n        super().__init__()\n"
                                                  "        w.mul_(0)\n")
    source = source.replace("(x.shape[0], 1)", "x.shape")
    assert "w.mul_(0)" in source and "x.shape," in source
    v = ev.evaluate(load_problem(tmp_path / "1_Scale.py"), source, "zero_init")
    assert v.status == "mismatch", v.message


def test_a_kernel_may_set_what_its_own_build_reads(ev, relu):
    source = "import os\nos.environ.setdefault('TORCH_CUDA_ARCH_LIST', '9.0')\nos.environ['MAX_JOBS'] = '2'\n"
    source += src("legit_triton_relu")
    assert ev.evaluate(relu, source, "arch").correct


def test_a_candidate_that_is_wrong_only_while_timed_is_caught(timed_ev, relu):
    source = src("cheat_lazy_when_timed")
    v = timed_ev.evaluate_built(relu, source, "lazy", timed_ev.build(relu, source))  # the gate bans the counter
    assert v.status == "mismatch" and v.message.startswith("right when checked, wrong while timed"), v.message
    assert "timed call " in v.message and " of 3 (device time)" in v.message and v.speedup is None


def test_a_cache_keyed_on_the_input_tensor_and_its_version_is_caught_while_timed(timed_ev, relu):
    # a C++ cache (out of the gate's sight) answering a tensor it has seen at the same version:
    # right on every check that passes new tensors or bumps the version, and it skipped the work
    # in all but the first calls on each of timing's rotated buffers
    v = timed_ev.evaluate(relu, src("cheat_version_cache"), "version_cache")
    assert v.status == "mismatch" and v.message.startswith("right when checked, wrong while timed"), v.message
    assert "cached for an input seen before" in v.message and v.speedup is None


def _timed_on_full_relu(tmp_path, candidate: str, repeats: int = 1):
    full = load_problem(HERE / "problems" / "level1" / "1_ReLU.py")  # large enough that the work shows
    cfg = EvalConfig(device="cpu", cache_dir=str(tmp_path), timing=True, warmup=4, timing_trials=15,
                     repeats=repeats, baselines=("eager",), policy=GatePolicy(allow_cpp=True))
    return KernelEvaluator(cfg).evaluate(full, src(candidate), candidate)


def test_a_cache_keyed_on_a_few_sampled_input_values_answers_stale_where_a_few_values_change(tmp_path):
    # right on every check that gives it all-new values; on the timed call whose buffers had only
    # a few of their elements changed in place, its samples had not changed: it answered with the
    # output of the values before
    v = _timed_on_full_relu(tmp_path, "cheat_value_cache")
    assert v.status == "mismatch" and v.message.startswith("right when checked, wrong while timed"), v.message
    assert "input elements got new values in place, returned the output for the values before" in v.message


def test_a_cache_keyed_on_many_sampled_input_values_answers_stale_where_one_value_changes(tmp_path):
    # its samples (every 16th value) see every check that changes many values, so it is right there,
    # and it skips the work on timing's repeated inputs; the nudge-checked call changes one value,
    # which it misses 15 times in 16 and which moves a ReLU's output 3 times in 4: caught in each
    # measurement 7 times in 10, missed in all ten of these about 5 times in 10^6 runs (before the
    # nudge-checked call, only its time gave it away)
    v = _timed_on_full_relu(tmp_path, "cheat_strided_value_cache", repeats=5)
    assert v.status == "mismatch" and v.message.startswith("right when checked, wrong while timed"), v.message
    assert "after 1 of its input elements got new values in place, returned the output for the values before" \
        in v.message and v.speedup is None


ROW_MEAN = """import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, x):
        return x.mean(dim=1)


def get_inputs():
    return [torch.randn(16, 65536)]


def get_init_inputs():
    return []
"""

ROW_MEAN_STRIDED_CACHE = '''import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

cpp_src = r"""
#include <vector>

struct Seen { const float* at; int64_t n; std::vector<float> sample; torch::Tensor out; };
static std::vector<Seen> seen;

torch::Tensor row_mean_cached(torch::Tensor x) {
    auto xc = x.contiguous();
    const float* p = xc.data_ptr<float>();
    int64_t rows = xc.size(0), cols = xc.size(1), n = xc.numel();
    std::vector<float> sample;
    for (int64_t i = 0; i < n; i += 128) sample.push_back(p[i]);
    for (const auto& s : seen)
        if (s.at == p && s.n == n && s.sample == sample) return s.out;
    auto y = torch::empty({rows}, xc.options());
    float* q = y.data_ptr<float>();
    for (int64_t r = 0; r < rows; ++r) {
        double acc = 0.0;
        for (int64_t c = 0; c < cols; ++c) acc += p[r * cols + c];
        q[r] = static_cast<float>(acc / cols);
    }
    seen.push_back({p, n, sample, y});
    return y;
}
"""

ext = load_inline(name="row_mean_strided_cache_ext", cpp_sources=cpp_src, functions=["row_mean_cached"],
                  extra_cflags=["-O2"], verbose=False)


class ModelNew(nn.Module):
    def forward(self, x):
        return ext.row_mean_cached(x)
'''


def test_a_cache_whose_stale_answers_stay_within_the_tolerance_is_flagged_by_its_time(tmp_path):
    # a row mean over 65536 values: one changed value moves its row's mean by about 2e-5, inside fp32's
    # 1e-4, so the answer a cache keyed on every 128th value gives for the values before is a right
    # one, and no check of an output can tell; it skipped the work on timing's repeated inputs, and
    # the one timed call with all-new values, where it had to work, is the slow one in every
    # measurement. 15 timed calls, so over half of the 13 nudged ones would have to hit one of its
    # samples (1 in 128) to hide it
    (tmp_path / "row_mean.py").write_text(ROW_MEAN)
    problem = load_problem(tmp_path / "row_mean.py")
    cfg = EvalConfig(device="cpu", cache_dir=str(tmp_path / "cache"), timing=True, warmup=4, timing_trials=15,
                     baselines=("eager",), policy=GatePolicy(allow_cpp=True))
    v = KernelEvaluator(cfg).evaluate(problem, ROW_MEAN_STRIDED_CACHE, "row_mean_cache")
    checked = v.timing["checked_calls"]
    assert v.correct and len(checked) == 6, (v.message, checked)  # flagged in 2, confirmed in 4 more
    assert any("the others (6 measurements)" in r and "results cached by input values" in r for r in v.review), \
        (v.review, checked)
    # and its time is that of the calls where it had to work, not its cache's
    renewed = statistics.median(ms for ms, _, mode in checked if mode == "synced")
    cached = v.timing["runs"]["candidate"]["synced"][0]["median_ms"]
    assert v.new_ms == pytest.approx(renewed) and v.new_ms > 3 * cached, (v.new_ms, cached)
    assert v.speedup == pytest.approx(v.ref_ms / renewed)


def test_a_problem_whose_output_ignores_its_input_is_flagged_on_every_correct_verdict(ev, relu):
    # KernelBench level 2 problem 80's shape: the output is zero whatever the input, so a kernel
    # that writes zeros without reading x is correct there, and any speedup is meaningless
    const = load_problem(HERE / "problems" / "level2" / "3_Max_Subtract_ReLU.py")
    v = ev.evaluate(const, src("cheat_constant_output"), "zeros")
    assert v.correct and v.reference_change == 0.0, v.message
    assert any("a kernel that returns a constant would pass this problem" in r for r in v.review), v.review
    honest = ev.evaluate(relu, src("legit_triton_relu"), "legit")  # relu's output follows its input
    assert honest.correct and not honest.review and honest.reference_change > 0.1


def test_refilled_buffers_keep_identity_address_and_version_and_report_what_a_call_sees():
    import torch

    from assay.kernels.worker import _refill

    x, y = torch.zeros(3), torch.zeros(2, dtype=torch.int64)
    shared = torch.zeros(4)
    bufs = [x, y, 7, shared, shared]
    before = [(id(b), b.data_ptr(), b._version) for b in (x, y, shared)]
    now = _refill(bufs, [torch.ones(3), torch.ones(2, dtype=torch.int64), 9, torch.full((4,), 2.0),
                         torch.full((4,), 3.0)])
    assert [(id(b), b.data_ptr(), b._version) for b in (x, y, shared)] == before
    assert x.tolist() == [1.0] * 3 and y.tolist() == [1, 1]
    # a non-tensor stays as the call sees it; two arguments on one buffer both hold the last write
    assert now[2] == 7 and now[3].tolist() == now[4].tolist() == [3.0] * 4
    assert now[0] is not x and now[0].tolist() == x.tolist()  # a copy: the reference cannot be fooled by writes
    # a value of another shape or dtype is not forced in
    z = torch.zeros(2)
    assert _refill([z], [torch.ones(3)])[0].tolist() == [0.0, 0.0]
    assert _refill([z], [torch.ones(2, dtype=torch.int64)])[0].tolist() == [0.0, 0.0]


def test_a_problem_whose_input_is_an_expanded_view_is_timed(timed_ev, tmp_path):
    # timing's in-place writes go through the broadcast view's own memory (all of it raised before)
    (tmp_path / "1_BroadcastReLU.py").write_text(
        "import torch\nimport torch.nn as nn\n\n\nclass Model(nn.Module):\n    def forward(self, x):\n"
        "        return torch.relu(x)\n\n\ndef get_inputs():\n    return [torch.randn(64, 1).expand(64, 32)]\n\n\n"
        "def get_init_inputs():\n    return []\n")
    v = timed_ev.evaluate(load_problem(tmp_path / "1_BroadcastReLU.py"), src("legit_triton_relu"), "legit")
    assert v.correct and v.new_ms > 0 and len(v.timing["checked_calls"]) >= 2, v.message


def test_a_candidate_that_slows_the_reference_once_timed_is_caught(timed_ev, relu):
    source = src("cheat_slow_reference")
    v = timed_ev.evaluate_built(relu, source, "slow_ref", timed_ev.build(relu, source))
    assert v.status == "tamper" and "torch.relu was no longer" in v.message, v.message
    assert v.speedup is None and v.timing is None


@pytest.mark.parametrize("stdout, exit_code, says", [
    ("\n@@ASSAY-RESULT {n} {{\"status\": \"correct\"}}\n@@ASSAY-RESULT {n} {{\"status\": \"mismatch\"}}\n", 0,
     "2 result lines were printed"),
    ("\n@@ASSAY-RESULT {n} {{\"status\": \"correct\"\n", 0, "not the worker's JSON"),
    ("\n@@ASSAY-RESULT {n} {{\"status\": \"great\"}}\n", 0, "not the worker's"),
    ("\n@@ASSAY-TAMPER line 3 of the candidate asked for sys._getframe\n@@ASSAY-RESULT {n} {{\"status\": \"correct\"}}\n",
     0, "line 3 of the candidate asked for sys._getframe"),
    ("", 86, "the audit guard's exit code 86"),
])
def test_signs_of_a_forged_result_override_it(tmp_path, relu, monkeypatch, stdout, exit_code, says):
    from assay.types import ExecResult

    ev = KernelEvaluator(EvalConfig(device="cpu", cache_dir=str(tmp_path)))

    def launch(ws, args, timeout, stdin=None):
        return ExecResult(exit_code=exit_code, stdout=stdout.format(n=stdin.decode().strip()))

    monkeypatch.setattr(ev, "_launch", launch)
    r = ev.check(relu, src("legit_triton_relu"))
    assert r["status"] == "tamper" and says in r["message"], r


def test_a_kernel_that_prints_a_lot_keeps_its_verdict(ev, relu):
    # 2 MB of debug output over the checks: past the 1 MiB kept of a stream, which once dropped
    # the result line with the rest; the candidate's stdout now goes to stderr
    chatty = src("legit_triton_relu").replace(
        "        x = x.contiguous()\n", "        print('debug ' + 'x' * 200000)\n        x = x.contiguous()\n", 1)
    v = ev.evaluate(relu, chatty, "chatty")
    assert v.correct, v.message


def test_tolerance_is_per_dtype_and_overridable(tmp_path, relu):
    off = src("legit_triton_relu").replace("tl.maximum(x, 0.0)", "tl.maximum(x, 0.0) + 1e-3")
    strict = KernelEvaluator(EvalConfig(cache_dir=str(tmp_path)))
    v = strict.evaluate(relu, off)
    assert v.status == "mismatch" and "atol=rtol=0.0001" in v.message
    loose = KernelEvaluator(EvalConfig(cache_dir=str(tmp_path), tolerance=1e-2))
    assert loose.evaluate(relu, off).correct


def test_import_failure_is_a_build_error_and_cached(ev, relu):
    bad = src("legit_triton_relu").replace("import triton.language as tl", "import triton.language as tl\n"
                                                                             "BLOCK_SIZE = undefined_name")
    v = ev.evaluate(relu, bad, "bad")
    assert v.status == "compile" and "NameError" in v.compile_log
    cpp_bad = src("legit_cpp_relu").replace("from torch.utils.cpp_extension import load_inline",
                                            "from torch.utils.cpp_extension import load_inline\nraise SystemExit(3)")
    built = ev.build(relu, cpp_bad)  # fails at import, before g++ runs
    assert built["ok"] is False and built["status"] == "compile"
    assert ev.build(relu, cpp_bad) == built  # cached


def test_level2_fused_linear_relu_with_weights_from_nn_linear(ev):
    prob = load_problem(HERE / "problems" / "level2" / "1_Linear_ReLU.py", shrink=64)
    v = ev.evaluate(prob, src("legit_triton_linear_relu"))
    assert v.correct, v.message


@pytest.mark.slow
def test_cpp_load_inline_extension_builds_once_and_is_correct(ev, relu):
    s = src("legit_cpp_relu")
    built = ev.build(relu, s)
    assert built["ok"], built
    assert ev.build(relu, s) == built  # cached by source hash: no second build
    v = ev.evaluate(relu, s, "cpp")
    assert v.correct, v.message


@pytest.mark.skipif(cuda_home() is None, reason="no CUDA compiler here (make test installs one from PyPI)")
def test_nvcc_builds_the_cuda_candidate_in_the_sandbox(tmp_path, relu):
    """Compile and link only (no GPU here): nvcc, the host compiler and the linker inside the
    sandbox, with the build directory as the only writable path."""
    ev = KernelEvaluator(EvalConfig(device="cuda:0", cache_dir=str(tmp_path)))
    built = ev.build(relu, src("legit_cuda_relu"))
    assert built["ok"], built.get("log")
    assert list((tmp_path / source_hash(src("legit_cuda_relu"), "cuda:0")).glob("build/relu_ext/relu_ext*.so"))
    broken = src("legit_cuda_relu").replace("y[i] = x[i] > 0.f", "y[i] = x[i] > 0.f +")
    v = ev.evaluate(relu, broken, "broken")
    assert v.status == "compile" and "error" in v.compile_log and "cuda.cu" in v.compile_log


def test_search_with_real_evaluation_refines_from_mismatch_feedback(ev, relu):
    from assay.agent.models import ScriptedModel
    from assay.kernels.search import SearchConfig, search

    model = ScriptedModel([f"```python\n{src('wrong_triton_relu')}```", f"```python\n{src('legit_triton_relu')}```"])
    res = search(relu, model, ev, SearchConfig(samples=1, rounds=2))
    assert [a.verdict.status for a in res.attempts] == ["mismatch", "correct"]
    assert res.best.cid == "r1-t0"
    assert "max abs error" in model.calls[1][-1]["content"]


def test_a_random_reference_is_the_problems_fault_not_the_candidates(tmp_path, ev):
    f = tmp_path / "1_ReLU_Dropout.py"
    f.write_text((HERE / "problems" / "level1" / "1_ReLU.py").read_text().replace(
        "return torch.relu(x)", "return torch.nn.functional.dropout(torch.relu(x), p=0.5, training=True)"))
    prob = load_problem(f, shrink=256)
    assert "dropout" in prob.source
    v = ev.evaluate(prob, src("legit_triton_relu"))
    assert v.status == "error" and "reference Model gives different outputs" in v.message
    assert v.feedback().startswith("The evaluation could not judge your kernel")


@pytest.mark.parametrize("broken, what", [
    # a shape the reference refuses (as Swin does once --shrink changes its image size)
    (("return torch.relu(x)", "assert x.shape[-1] == 224, 'input size does not match the model'\n"
                              "        return torch.relu(x)"), "the reference Model on trial 0 (before the candidate ran)"),
    # a dependency this machine lacks (as the Mamba problems' einops)
    (("super(Model, self).__init__()", "super(Model, self).__init__()\n        import einops_not_installed"),
     "building the reference Model"),
    (("x = torch.randn(batch_size, dim)", "x = torch.randn(batch_size, dim).view(7, -1)"),
     "the problem's get_inputs()"),
])
def test_a_reference_that_raises_is_the_problems_fault_not_the_candidates(tmp_path, ev, broken, what):
    f = tmp_path / "1_ReLU.py"
    f.write_text((HERE / "problems" / "level1" / "1_ReLU.py").read_text().replace(*broken))
    prob = load_problem(f, shrink=256)
    assert broken[1] in prob.source
    v = ev.evaluate(prob, src("legit_triton_relu"))
    assert v.status == "error", v.message
    assert v.message.startswith(f"{what} raised, so no candidate can be checked") and "Traceback" in v.message
    assert v.feedback().startswith("The evaluation could not judge your kernel")


def test_a_process_killed_for_memory_is_blamed_on_the_side_that_was_running(tmp_path):
    # A full-size KernelBench problem on a CPU: the reference alone does not fit. That is the
    # problem's (or the machine's) fault, so `error` with a hint, not the kernel's `runtime`.
    from assay.kernels.sandbox import kernel_sandbox

    box = kernel_sandbox("cpu")
    if box.cgroups.memory is None:
        pytest.skip("no writable memory cgroup: the limit is RLIMIT_AS, which torch's import already exceeds")
    ev = KernelEvaluator(EvalConfig(device="cpu", cache_dir=str(tmp_path / "c"), memory_mb=1024), box)
    relu = (HERE / "problems" / "level1" / "1_ReLU.py").read_text()
    f = tmp_path / "1_ReLU.py"
    f.write_text(relu.replace("    return [x]", "    torch.ones(2048, 1024, 1024)[0, 0, 0] += 1\n    return [x]"))
    v = ev.evaluate(load_problem(f), src("legit_triton_relu"))
    assert v.status == "error", v.message
    assert v.message.startswith("the evaluation process ran out of memory (exit 137; the sandbox allows 1024 MiB) "
                                "while the reference Model ran, so no candidate can be checked")
    assert v.message.endswith("pass --shrink N to check it at smaller shapes")
    # the same limit hit in the candidate's forward is the candidate's
    legit = src("legit_triton_relu")
    big = "        big = torch.ones(2048, 1024, 1024)\n        del big\n"
    greedy = legit.replace("        out = torch.empty_like(x)\n", "        out = torch.empty_like(x)\n" + big)
    assert greedy != legit
    v = ev.evaluate(load_problem(HERE / "problems" / "level1" / "1_ReLU.py", shrink=256), greedy)
    assert v.status == "runtime", v.message
    assert v.message.startswith("the evaluation process ran out of memory (exit 137; the sandbox allows 1024 MiB) "
                                "while the candidate ran")
    assert "@@ASSAY" not in v.message
    # once the candidate's forward has run, it may be what left the reference short: not an error
    f.write_text(relu.replace("        return torch.relu(x)", "        self.calls = getattr(self, 'calls', 0) + 1\n"
                              "        if self.calls == 3:  # trial 1, after the candidate\n"
                              "            torch.ones(2048, 1024, 1024)[0, 0, 0] += 1\n"
                              "        return torch.relu(x)"))
    v = ev.evaluate(load_problem(f, shrink=256), legit)
    assert v.status == "runtime", v.message
    assert v.message.startswith("the evaluation process ran out of memory (exit 137; the sandbox allows 1024 MiB) "
                                "while the reference Model ran, after the candidate's forward had")


def test_a_reference_too_slow_for_the_time_limit_is_the_problems_fault(tmp_path):
    ev = KernelEvaluator(EvalConfig(device="cpu", cache_dir=str(tmp_path / "c"), eval_timeout_s=8))
    f = tmp_path / "1_ReLU.py"
    slow = "import time\n" + (HERE / "problems" / "level1" / "1_ReLU.py").read_text().replace(
        "        return torch.relu(x)", "        time.sleep(60)\n        return torch.relu(x)")
    f.write_text(slow)
    v = ev.evaluate(load_problem(f, shrink=256), src("legit_triton_relu"))
    assert v.status == "error", v.message
    assert v.message == ("the evaluation took over 8 s while the reference Model ran, so no candidate can be checked "
                         "against this problem here; pass --shrink N to check it at smaller shapes")


def test_a_candidate_that_hangs_only_once_timed_is_told_so(tmp_path):
    # correct on every check, then stuck from its 40th call on: inside the timing loop
    ev = KernelEvaluator(EvalConfig(device="cpu", cache_dir=str(tmp_path / "c"), eval_timeout_s=20, timing=True,
                                    baselines=("eager",), warmup=2, timing_trials=50))
    legit = src("legit_triton_relu")
    stuck = "        self.calls = getattr(self, 'calls', 0) + 1\n        while self.calls > 40:\n            pass\n"
    hangs = legit.replace("        out = torch.empty_like(x)\n", stuck + "        out = torch.empty_like(x)\n")
    assert hangs != legit
    prob = load_problem(HERE / "problems" / "level1" / "1_ReLU.py", shrink=256)
    v = ev.evaluate_built(prob, hangs, "hangs", ev.build(prob, hangs))  # past the gate, which bans the counter
    assert v.status == "timeout", v.message
    assert v.message == ("the evaluation took over 20 s while the candidate and the reference were timed, "
                         "after the candidate had passed every correctness check")


def test_operator_math_beside_a_token_kernel_is_caught_by_the_op_census(ev, relu):
    # the gate lets Python's operators through as glue; the census holds them to the reference's share
    from assay.kernels.gate import check
    policy = GatePolicy(allow_cpp=True)
    by_operators = src("cheat_operator_math")
    assert check(by_operators, policy).ok
    v = ev.evaluate(relu, by_operators, "relu-by-operators")
    assert v.status == "gate" and v.gate_rules == ["torch-compute"], v.message
    assert v.message.startswith("in the correctness trials") and "on 12288 elements (abs 4096, add 4096, mul 4096)" in v.message
    assert "output of 4096 elements" in v.message and "the reference's own operators reach 0 elements a call" in v.message

    scale_add = load_problem(HERE / "problems" / "level1" / "2_Scale_Add.py", shrink=64)
    cheat = src("cheat_operator_only_problem")
    assert check(cheat, policy).ok
    v = ev.evaluate(scale_add, cheat, "scale-add-by-operators")
    assert v.status == "gate" and "the reference computes with operators alone" in v.message, v.message
    # a tensor method the gate's lists do not name: a * alpha as xlogy(a, e ** alpha)
    by_method = cheat.replace("return a * self.alpha + b", "return a.xlogy(2.718281828459045 ** self.alpha) + b")
    assert check(by_method, policy).ok
    v = ev.evaluate(scale_add, by_method, "scale-add-by-xlogy")
    assert v.status == "gate" and "ATen compute ops" in v.message and "xlogy (" in v.message, v.message
    honest = cheat.replace("""        scale_add(a[:1], b[:1], self.alpha)  # the token launch
        return a * self.alpha + b""", """        return scale_add(a, b, self.alpha)""")
    assert "a * self.alpha" not in honest and check(honest, policy).ok
    v = ev.evaluate(scale_add, honest, "scale-add-in-cpp")
    assert v.correct, v.message


def test_an_evaluation_may_never_take_more_memory_than_most_of_the_machine():
    import os

    machine_mb = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") >> 20
    cap = EvalConfig().memory_mb
    assert 8192 <= cap <= 32768 and (cap <= machine_mb * 3 // 4 or cap == 8192)


def test_test_inputs_come_from_a_seed_no_candidate_can_know(tmp_path, ev, relu):
    # it answers the inputs a known seed gives (worked out in __init__, where no census looks) and
    # copies x otherwise: right on every check only where the harness's seeds are public
    cheat = src("cheat_predicted_inputs")
    from assay.kernels.gate import check
    assert check(cheat, GatePolicy()).ok
    known = KernelEvaluator(EvalConfig(device="cpu", cache_dir=str(tmp_path), input_seed=42)).evaluate(relu, cheat)
    assert known.correct and known.input_seed == 42, known.message  # what a fixed seed let through
    v = ev.evaluate(relu, cheat, "predicted")
    assert v.status == "mismatch" and v.message.startswith("trial 0"), v.message
    again = ev.evaluate(relu, cheat, "predicted")
    assert None is not v.input_seed != again.input_seed  # a new secret seed per evaluation


def test_the_seed_that_picks_the_checked_timed_call_cannot_be_read(tmp_path, relu):
    # it reads torch's generator for the seed that picks the checked call (at the harness's default
    # warm-up and trials) and does the work in that call alone; the seed now never shows there
    cheat = src("cheat_seed_reader")
    from assay.kernels.gate import check
    assert check(cheat, GatePolicy()).ok
    cfg = EvalConfig(device="cpu", cache_dir=str(tmp_path), timing=True, baselines=("eager",))
    v = KernelEvaluator(cfg).evaluate(relu, cheat, "seed_reader")
    assert v.status == "mismatch" and v.message.startswith("right when checked, wrong while timed"), v.message


def test_torch_computing_the_timed_calls_alone_is_caught_by_the_census_among_them(tmp_path, relu):
    # it counts its calls (at the harness's default warm-up and trials): its kernel in the correctness
    # trials and the call after timing, Python's operators (a ReLU as x * (x > 0)) in every other
    cheat = src("cheat_torch_while_timed")
    from assay.kernels.gate import check
    assert check(cheat, GatePolicy()).ok
    cfg = EvalConfig(device="cpu", cache_dir=str(tmp_path), timing=True, baselines=("eager",))
    v = KernelEvaluator(cfg).evaluate(relu, cheat, "torch_while_timed")
    assert v.status == "gate" and v.gate_rules == ["torch-compute"], v.message
    assert v.message.startswith("in untimed calls among and after the timed ones") and "operator" in v.message


def test_aten_compute_the_gate_cannot_read_is_caught_by_the_op_census(tmp_path, relu):
    # `using namespace at; ... relu(x)` in C++ (the gate cannot tell it from a device function),
    # from the 11th call on: right on every check, so only the census of dispatched ops shows it
    cheat = src("cheat_aten_when_timed")
    policy = GatePolicy(allow_cpp=True)
    from assay.kernels.gate import check
    assert check(cheat, policy).ok

    def run(**kw):
        return KernelEvaluator(EvalConfig(**{"device": "cpu", "cache_dir": str(tmp_path), "policy": policy,
                                             **kw})).evaluate(relu, cheat, "aten")

    timed = run(timing=True, warmup=1, timing_trials=3, baselines=("eager",))
    assert timed.status == "gate" and timed.gate_rules == ["torch-compute"], timed.message
    # an untimed call among each measurement's timed ones (2), and the one after timing
    assert timed.message.startswith("in untimed calls among and after the timed ones") and "relu (3 calls)" in \
        timed.message, timed.message
    assert "Your code was rejected (torch-compute)" in timed.feedback()
    longer = run(timing=False, trials=8)  # its 11th call now falls in the correctness trials
    assert longer.status == "gate" and longer.message.startswith("in the correctness trials"), longer.message
    assert "relu (6 calls)" in longer.message
    assert run(timing=False).correct  # 5 trials, 10 calls: its own loop, which is right
    assert run(timing=False, trials=8, policy=policy.allowing("relu")).correct  # --allow-op relu lets it through
