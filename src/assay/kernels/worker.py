"""The process that builds or checks ONE candidate (`python -m assay.kernels.worker spec.json`).

Runs inside a sandboxed subprocess whose cwd is the candidate's build directory. It reads a
nonce from stdin before any candidate code is loaded and prints its result as one line
`@@ASSAY-RESULT <nonce> <json>` on stdout, which it keeps to itself (the candidate's fd 1 goes
to stderr). In eval mode it also prints `@@ASSAY-PHASE <nonce> <side>`
before each step (`reference`, `candidate-init`, `candidate`, `timing`), so that a process killed
with no result (out of memory, say) can be blamed on the side that was running. Modes:

- compile: import the candidate (load_inline builds at import time) and construct ModelNew.
- eval: correctness protocol, then (when asked) timing of candidate and baselines in this
  same process, then an optional torch.profiler summary.

The candidate runs in this process, so behind the static gate two checks watch it here (they
raise the cost of forging a verdict; code that runs in-process can never be fully contained):
an audit hook (PEP 578, which cannot be removed) ends the process with `@@ASSAY-TAMPER` when
candidate code reaches for a frame (whose locals hold the nonce), the garbage collector's object
lists, ctypes or /proc; and a tripwire compares what the verdict relies on (the harness's
functions, torch's callables and nn classes, the problem module, torch's numeric settings,
sys.stdout) with how it was before the candidate loaded, after every candidate call and timing
measurement, so a patch is seen before the reference runs under it. Results are written with
os.write as it was before the candidate loaded. A third check, the op census, counts the ATen ops
the candidate's untimed calls dispatch (its C++ too): an op beyond allocation, views, copies, what
the policy allows and a budget of Python's operators is torch compute the gate could not see in
the source, and fails the verdict as `gate` (`torch-compute`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import random
import re
import statistics
import sys
import traceback
import types
from pathlib import Path
from typing import Any

MARK = "@@ASSAY-RESULT"
PHASE = "@@ASSAY-PHASE"
TAMPER = "@@ASSAY-TAMPER"
TAMPER_EXIT = 86
DEFAULT_TOL = {"float32": 1e-4, "float64": 1e-7, "float16": 1e-2, "bfloat16": 2e-2}
# Outputs are compared this many elements at a time: a whole-tensor float64 diff of a 2 GiB fp32
# output took ~20 GiB of temporaries and ran the H200 out of memory with 8 evaluations beside it.
COMPARE_CHUNK = 1 << 24


def _load(path: str, name: str):
    """The module in the file `path`, run from its source: never from a __pycache__ beside it,
    which an earlier process in the workspace could have written."""
    mod = types.ModuleType(name)
    mod.__file__ = str(path)
    sys.modules[name] = mod
    exec(compile(Path(path).read_bytes(), str(path), "exec"), mod.__dict__)
    return mod


def _tb(limit: int = 4000) -> str:
    text = traceback.format_exc()
    return text if len(text) <= limit else "...\n" + text[-limit:]


def _flat(x: Any) -> list:
    if isinstance(x, (list, tuple)):
        return [y for e in x for y in _flat(e)]
    return [x]


def draw_inputs(prob, seed: int, device) -> list:
    """The problem's inputs drawn after `seed`, on `device`, in a fork of torch's generators (the
    CPU's, and the device's own where get_inputs draws there): after it, what a candidate can read
    of them (torch.initial_seed(), the generator's state) is what it was before, not `seed`. The
    seeds are secret: the one timing's checked call is picked by, read in that measurement, told
    a kernel which timed call to do the work in (tests/kernels/candidates/cheat_seed_reader.py)."""
    import torch

    cuda = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(seed)
        for index in cuda:  # that device's generator, not the current device's: only it is forked
            torch.cuda.default_generators[index].manual_seed(seed)
        return _to(list(prob.get_inputs()), device)


def _to(x: Any, device):
    import torch

    if isinstance(x, torch.Tensor):
        return x.to(device)
    if isinstance(x, (list, tuple)):
        return type(x)(_to(e, device) for e in x)
    return x


def _clone(xs: list) -> list:
    import torch

    return [x.clone() if isinstance(x, torch.Tensor) else x for x in xs]


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ATen's internal spellings of an op, reduced to the op (see aten_base).
_ATEN_PREFIXES = ("native_", "cudnn_", "mkldnn_", "miopen_", "slow_", "thnn_", "fused_", "fbgemm_")
_ATEN_SUFFIXES = ("_with_indices", "_forward", "_for_cpu", "_legit_no_training", "_legit_functional",
                  "_legit_no_stats", "_legit", "_impl_index", "_activation", "_overrideable", "_nd")


def aten_base(op: str) -> str:
    """The op an ATen overload computes, as the gate names ops: `relu_` is relu, `_softmax` is
    softmax, `native_layer_norm` is layer_norm, `max_pool2d_with_indices` is max_pool2d,
    `cudnn_convolution` and `conv2d` are convolution, `_scaled_dot_product_flash_attention` is
    scaled_dot_product_attention."""
    b, before = op, None
    while b != before:
        before, b = b, b.strip("_")
        b = next((b[len(p):] for p in _ATEN_PREFIXES if b.startswith(p)), b)
        b = next((b[: -len(s)] for s in _ATEN_SUFFIXES if b.endswith(s)), b)
    if re.search(r"conv(olution|_|\d|$)", b):
        return "convolution"
    if "attention" in b:
        return "scaled_dot_product_attention"
    return "interpolate" if b.startswith("upsample") else b


class Tally:
    """What the op census saw over a run of forward calls: how often each ATen op (by its
    `aten_base` name) ran, and, call by call, how many elements each op's outputs held."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.forwards: list[dict[str, int]] = []  # one per forward call: op -> elements out

    def count(self, name: str, elements: int) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        last = self.forwards[-1]  # census() opens one per forward call before any op runs
        last[name] = last.get(name, 0) + elements

    def busiest(self, names) -> dict[str, int]:
        """Of the forward call whose ops in `names` produced the most elements, those ops' elements."""
        best = max(self.forwards, key=lambda f: sum(v for n, v in f.items() if n in names), default={})
        return {n: v for n, v in best.items() if n in names}


def op_census(allowed: frozenset[str] = frozenset()):
    """A maker of context managers, each one forward call, that count into a Tally, by
    `aten_base` name, the ATen ops dispatched while it is on (a TorchDispatchMode), on any device
    that holds data (work moved to the CPU and back is still ATen's; a meta tensor holds none):
    those of C++ extension code too (`at::relu`, however it is spelt: an alias, a macro, `using
    namespace at`, a source string built at run time, all go through the dispatcher), which the
    gate only reads as text. What a torch function named in `allowed` (the --allow-op names)
    dispatches, from Python, is that function's (`einsum` runs as `bmm`) and is not counted. Made
    before the candidate loads."""
    import torch
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode

    depth = [0]  # allowed torch functions under way

    class AllowedCalls(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            mine = getattr(func, "__name__", "") in allowed
            depth[0] += mine
            try:
                return func(*args, **(kwargs or {}))
            finally:
                depth[0] -= mine

    class Census(TorchDispatchMode):
        def __init__(self, into: Tally) -> None:
            super().__init__()
            self.into = into

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            ns, _, rest = str(func).partition(".")
            outs = [t for t in _flat(out) if isinstance(t, torch.Tensor)]
            if ns == "aten" and not depth[0] and any(
                    isinstance(t, torch.Tensor) and t.device.type != "meta"
                    for t in _flat(list(args) + list(kwargs.values())) + outs):
                self.into.count(aten_base(rest.split(".")[0]), sum(t.numel() for t in outs))
            return out

    @contextlib.contextmanager
    def census(into: Tally):
        into.forwards.append({})
        with AllowedCalls(), Census(into):
            yield

    with census(Tally()):  # the first use imports what rebinds torch.manual_seed: now, not in the candidate's call
        torch.zeros(1).add(1)
    return census


def census_found(seen: Tally, permitted) -> str | None:
    """What the census saw that the kernel should have computed (any op not `permitted`), or None."""
    bad = sorted(n for n in seen.calls if n not in permitted)
    if not bad:
        return None
    return ("the candidate's forward dispatched ATen compute ops (from Python, or from its C++ through the "
            "dispatcher): " + ", ".join(f"{n} ({seen.calls[n]} call{'s' * (seen.calls[n] > 1)})" for n in bad)
            + "; the kernel must do the main computation")


def operator_math(seen: Tally, ref: Tally, out_elements: int, permitted, operators) -> str | None:
    """Python's operators (`+`, `*`, `>`, abs(), ...) are glue the census lets through, up to a
    point: the most elementwise operator math one candidate call may do is what the reference's
    does beside its compute ops (nothing, where the reference computes with operators alone: then
    all of it is the kernel's to do) plus half an output. Past that, torch computed the answer
    beside the kernel: `(x + abs(x)) * 0.5` is a ReLU, `a * s` beside a token launch is a scaling.
    Says what was seen, or None."""
    mine = seen.busiest(operators)
    done = sum(mine.values())
    ref_does_compute = any(n not in permitted for n in ref.calls)
    ref_share = sum(ref.busiest(operators).values()) if ref_does_compute else 0
    if done <= ref_share + out_elements / 2:
        return None
    where = (f"the reference's own operators reach {ref_share} elements a call" if ref_does_compute else
             "the reference computes with operators alone, so all of it is the kernel's to do")
    return (f"one call of the candidate's forward did tensor arithmetic with Python operators on {done} elements ("
            + ", ".join(f"{n} {mine[n]}" for n in sorted(mine)) + f"), against an output of {out_elements} elements; "
            f"{where}: the kernel must do the main computation, operators are only glue")


# Audit events through which Python code gets hold of a frame (and from it, through f_back and
# f_locals, which are not audited, every caller's locals), of every live object, or of memory.
_GUARDED_EVENTS = frozenset({"sys._getframe", "sys._current_frames", "sys._current_exceptions", "sys.settrace",
                             "sys.setprofile", "gc.get_objects", "gc.get_referrers", "gc.get_referents",
                             "code.__new__"})
_GUARDED_ATTRS = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_code", "__code__"})


def audit_guard(candidate_file: str, out_fd: int = 1):
    """An audit hook that ends the process, saying what and where, when such an event is asked
    for by the candidate's own code: the nearest frame that is not the standard library's
    (inspect or logging asking on someone's behalf pass the request to their caller). Torch and
    triton use some of these internally; their own requests pass."""
    import os
    import sys
    import sysconfig

    names = {candidate_file, os.path.abspath(candidate_file)}
    std = tuple({f(sysconfig.get_paths()[k]) + os.sep for k in ("stdlib", "platstdlib")
                 for f in (os.path.normpath, os.path.realpath)})
    inside = [False]
    write, leave, getframe = os.write, os._exit, sys._getframe

    def library(filename: str) -> bool:
        return filename.startswith("<frozen") or (filename.startswith(std) and "-packages" not in filename)

    def hook(event: str, args: tuple) -> None:
        if inside[0]:
            return
        if event == "object.__getattr__":
            if len(args) < 2 or args[1] not in _GUARDED_ATTRS:
                return
        elif event == "open":
            if not str(args[0] if args else "").startswith("/proc/"):
                return
        elif event not in _GUARDED_EVENTS and not event.startswith("ctypes."):
            return
        inside[0] = True
        try:
            frame = getframe(1)
            while frame is not None and library(frame.f_code.co_filename):
                frame = frame.f_back
            if frame is not None and frame.f_code.co_filename in names:
                what = {"object.__getattr__": f".{args[1]}" if len(args) > 1 else "",
                        "open": f"open({args[0]!r})" if args else ""}.get(event, event)
                write(out_fd, f"\n{TAMPER} line {frame.f_lineno} of the candidate asked for {what}\n".encode())
                leave(TAMPER_EXIT)
        finally:
            inside[0] = False

    return hook


# Environment variables a kernel may set: what its own build reads (load_inline reads them then),
# and CUDA_LAUNCH_BLOCKING, which a debugging leftover sets and CUDA read when it started, before.
# Any other change is watched: torch, inductor, triton, cuBLAS and cuDNN read some lazily, after
# the candidate loads (NVIDIA_TF32_OVERRIDE at cuBLAS's first use, TORCHDYNAMO_DISABLE and
# TRITON_INTERPRET when the compile baseline is made).
SETTABLE_ENV = frozenset("TORCH_CUDA_ARCH_LIST MAX_JOBS CC CXX CUDAHOSTCXX CFLAGS CXXFLAGS LDFLAGS "
                         "CUDA_LAUNCH_BLOCKING".split())


def _setting_getters(torch) -> dict[str, Any]:
    """Getters of torch's process-wide settings that change what the reference computes, or how
    fast, where this torch has them (attention backends and the BLAS library came in 2.x
    releases), plus the tables of hooks every nn.Module call runs (a forward hook can rewrite any
    output)."""
    calls: dict[str, Any] = {}
    for space, names in ((torch, "get_default_dtype get_float32_matmul_precision are_deterministic_algorithms_enabled "
                                 "is_deterministic_algorithms_warn_only_enabled get_num_threads get_num_interop_threads "
                                 "is_autocast_enabled is_anomaly_enabled get_default_device"),
                         (torch.backends.cuda, "flash_sdp_enabled mem_efficient_sdp_enabled math_sdp_enabled "
                                               "cudnn_sdp_enabled fp16_bf16_reduction_math_sdp_allowed "
                                               "preferred_blas_library preferred_linalg_library")):
        for name in names.split():
            get = getattr(space, name, None)
            try:
                get()
            except Exception:  # absent, or not answerable on this build: not watched
                continue
            calls[f"{space.__name__}.{name}()"] = get
    hooks = torch.nn.modules.module
    for name, val in list(vars(hooks).items()):
        if name.startswith("_global_") and isinstance(val, dict):
            calls[f"torch.nn.modules.module.{name}"] = lambda n=name, _tuple=tuple, _vars=vars: _tuple(_vars(hooks)[n])
    for device_type in ("cpu", "cuda"):
        try:
            torch.is_autocast_enabled(device_type)
        except Exception:
            continue
        calls[f"torch.is_autocast_enabled({device_type!r})"] = (
            lambda d=device_type, f=torch.is_autocast_enabled: f(d))
    return calls


def tripwire(spaces: dict[str, Any], data: dict[str, Any] | None = None):
    """`(changed, rebase)`. `changed()` names the first callable of `spaces` (name -> module or
    class; builtins always), plain value of `data` (name -> module: the problem's shape
    constants), torch setting or hook table, or environment variable (but SETTABLE_ENV) that is not
    what it was at the last `rebase()` (the first is made here), else None. Built before
    candidate code runs, and uses nothing a candidate could swap afterwards."""
    import builtins
    import os
    import types

    import torch

    _vars, _callable, _isinstance, _getattr, _list, _module = vars, callable, isinstance, getattr, list, types.ModuleType
    _repr, plain = repr, (int, float, bool, str, tuple, list, dict)
    data = dict(data or {})
    spaces = dict(spaces, builtins=builtins)
    calls = {"sys.stdout": lambda: sys.stdout, **_setting_getters(torch)}
    environ, settable = os.environ, SETTABLE_ENV
    flags = [("torch.backends.cuda.matmul", torch.backends.cuda.matmul,
              ("allow_tf32", "allow_fp16_reduced_precision_reduction", "allow_bf16_reduced_precision_reduction")),
             ("torch.backends.cudnn", torch.backends.cudnn, ("allow_tf32", "benchmark", "deterministic", "enabled")),
             ("torch.backends.mkldnn", torch.backends.mkldnn, ("enabled",)),
             ("torch.backends.opt_einsum", torch.backends.opt_einsum, ("enabled", "strategy"))]
    objects: dict[str, Any] = {}  # compared by identity
    values: dict[str, Any] = {}  # compared by value

    def read() -> tuple[dict[str, Any], dict[str, Any]]:
        objs: dict[str, Any] = {}
        for space, obj in spaces.items():
            for key, val in _list(_vars(obj).items()):
                if _callable(val) or _isinstance(val, _module):
                    objs[f"{space}.{key}"] = val
        vals = {name: _repr(get()) for name, get in calls.items()}  # values kept as their reprs
        for space, obj in data.items():
            for key, val in _list(_vars(obj).items()):
                if _isinstance(val, plain) and not key.startswith("__"):
                    vals[f"{space}.{key}"] = _repr(val)[:4096]
        for prefix, obj, attrs in flags:
            for a in attrs:
                vals[f"{prefix}.{a}"] = _repr(_getattr(obj, a, None))
        for key, val in _list(environ.items()):
            if key not in settable:
                vals[f"os.environ[{key!r}]"] = _repr(val)
        return objs, vals

    def rebase() -> None:
        objs, vals = read()
        objects.clear()
        objects.update(objs)
        values.clear()
        values.update(vals)

    def changed() -> str | None:
        objs, vals = read()
        for key, val in objects.items():
            if objs.get(key) is not val:
                return key
        for key, val in values.items():
            if vals.get(key) != val:
                return f"{key} (was {val}, now {vals.get(key)})"
        for key, val in vals.items():
            if key not in values:
                return f"{key} (was unset, now {val})"
        return None

    rebase()
    return changed, rebase


def _tol(t, tol: float | None) -> float:
    return tol if tol is not None else DEFAULT_TOL.get(str(t.dtype).replace("torch.", ""), 1e-4)


def answered_before(before: Any, after: Any, got: Any, tol: float | None) -> bool:
    """True when `got` is the output for the inputs as they were before a change: wherever the
    right output moved from `before` to `after` beyond doubt (over 4 tolerances), `got` is within
    one of `before`, and it moved somewhere. A kernel that computes, however loosely, is near
    `after` there."""
    import torch

    b, a, g = _flat(before), _flat(after), _flat(got)
    if not len(b) == len(a) == len(g):
        return False
    moved_somewhere = False
    for x, y, z in zip(b, a, g):
        if not all(isinstance(v, torch.Tensor) for v in (x, y, z)):
            continue
        if x.shape != y.shape or x.shape != z.shape or x.dtype != z.dtype or x.device != z.device:
            return False
        t = _tol(x, tol) if x.is_floating_point() else 0.0
        for xc, yc, zc in _chunks(x, y, z):
            if x.is_floating_point():
                moved = ~torch.isclose(xc, yc, atol=4 * t, rtol=4 * t, equal_nan=True)
                near = torch.isclose(zc, xc, atol=t, rtol=t, equal_nan=True)
            else:
                moved, near = xc != yc, zc == xc
            if bool(moved.any()):
                if not bool(near[moved].all()):
                    return False
                moved_somewhere = True
    return moved_somewhere


def _chunks(*tensors):
    """The same COMPARE_CHUNK-element slices of equally shaped tensors, flattened."""
    flat = [t.reshape(-1) for t in tensors]
    for start in range(0, flat[0].numel(), COMPARE_CHUNK):
        yield tuple(f[start:start + COMPARE_CHUNK] for f in flat)


def _mismatch(a, b, t: float) -> str | None:
    """None if float tensors `a` (expected) and `b` are allclose (atol=rtol=t), else how many
    elements are not and where the largest error is (NaN counts as an infinite error)."""
    import torch

    if all(torch.allclose(x, y, atol=t, rtol=t) for x, y in _chunks(a, b)):
        return None
    bad, worst, worst_at, rel = 0, -1.0, 0, 0.0
    for i, (x, y) in enumerate(_chunks(a, b)):
        bad += int((~torch.isclose(x, y, atol=t, rtol=t)).sum())
        x64, y64 = x.double(), y.double()
        diff = torch.nan_to_num((x64 - y64).abs(), nan=math.inf)
        at = int(diff.argmax())
        if float(diff[at]) > worst:
            worst, worst_at = float(diff[at]), i * COMPARE_CHUNK + at
        rel = max(rel, float((diff / x64.abs().clamp_min(1e-12)).max()))
    idx = [int(v) for v in torch.unravel_index(torch.tensor(worst_at), a.shape)] if a.dim() else []
    flat_a, flat_b = a.reshape(-1), b.reshape(-1)
    return (f"mismatch: {bad} of {a.numel()} elements outside atol=rtol={t:g}; "
            f"max abs error {worst:.4g} at index {idx} (expected "
            f"{float(flat_a[worst_at]):.6g}, got {float(flat_b[worst_at]):.6g}); "
            f"max rel error {rel:.4g}")


def compare(ref: Any, got: Any, tol: float | None) -> str | None:
    """None if `got` matches `ref` (allclose with atol=rtol=tol per dtype), else what differs."""
    import torch

    r, g = _flat(ref), _flat(got)
    if len(r) != len(g):
        return f"output has {len(g)} tensors, expected {len(r)}"
    for i, (a, b) in enumerate(zip(r, g)):
        where = f"output[{i}] " if len(r) > 1 else "output "
        if not isinstance(a, torch.Tensor):
            if isinstance(b, torch.Tensor) or a != b:
                return f"{where}is {b!r}, expected {a!r}"
            continue
        if not isinstance(b, torch.Tensor):
            return f"{where}is a {type(b).__name__}, expected a tensor"
        if tuple(a.shape) != tuple(b.shape):
            return f"{where}shape {tuple(b.shape)}, expected {tuple(a.shape)}"
        if a.dtype != b.dtype:
            return f"{where}dtype {b.dtype}, expected {a.dtype}"
        if b.device != a.device:
            return f"{where}on {b.device}, expected {a.device}"
        if not a.is_floating_point():
            if not torch.equal(a, b):
                n = int((a != b).sum())
                return f"{where}differs in {n} of {a.numel()} elements (exact match needed for {a.dtype})"
            continue
        differs = _mismatch(a, b, _tol(a, tol))
        if differs:
            return where + differs
    return None


def reference_change(first: Any, later: Any) -> float:
    """The smallest atol=rtol at which a kernel that always returned `first` (the reference's
    output on one input) would pass for `later` (its output on another): 0 when they are equal,
    inf when they differ in shape, dtype or any exact value. Small means the problem's output
    hardly depends on its inputs."""
    import torch

    a, b = _flat(first), _flat(later)
    if len(a) != len(b):
        return math.inf
    worst = 0.0
    for x, y in zip(a, b):
        if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
            if isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor) or x != y:
                return math.inf
            continue
        if x.shape != y.shape or x.dtype != y.dtype:
            return math.inf
        if not x.is_floating_point() or x.numel() == 0:
            if not torch.equal(x, y):
                return math.inf
            continue
        for xc, yc in _chunks(x, y):  # in slices: fp64 copies of a whole output are 4x an fp32 one
            x64, y64 = xc.double(), yc.double()
            need = float(((y64 - x64).abs() / (1.0 + x64.abs())).max())
            worst = max(worst, need if need == need else math.inf)  # NaN: not a constant
    return worst


def _same(xs: list, ys: list) -> bool:
    import torch

    for x, y in zip(xs, ys):
        if isinstance(x, torch.Tensor):
            if x.shape != y.shape:
                return False
            for xc, yc in _chunks(x, y):  # in slices: nan_to_num copies
                if not torch.equal(xc.nan_to_num(0.0) if x.is_floating_point() else xc,
                                   yc.nan_to_num(0.0) if y.is_floating_point() else yc):
                    return False
    return True


def _problem_broken(what: str, trial: int | None = None) -> dict:
    """The verdict when the reference side (Model, get_inputs, get_init_inputs) raised: `error`,
    the problem's fault (or its shrunken shapes'), never the candidate's; or, where it ran out of
    device memory, the device's (other processes on it, or a problem too big for it)."""
    if type(sys.exc_info()[1]).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError
        why = ("ran out of device memory, so no candidate can be checked against this problem here (other "
               "processes hold the device's memory, or the problem is too big for it; not the kernel's fault)")
    else:
        why = ("raised, so no candidate can be checked against this problem (the problem file, or the shapes "
               "--shrink gave it, is at fault, not the kernel)")
    return {"status": "error", "trial": trial, "message": f"{what} {why}:\n{_tb()}"}


def _build_reference(prob, device, seed: int):
    """The reference Model and the init inputs it was built from (ModelNew gets the same ones)."""
    import torch

    torch.manual_seed(seed)
    init = _to(list(prob.get_init_inputs()), device)
    torch.manual_seed(seed)
    return prob.Model(*init).to(device), init


def _nothing(*_: Any) -> None:
    pass


class Tampered(BaseException):
    """Raised by the tripwire's check: a BaseException, so the `except Exception` around
    candidate calls does not file it as the candidate's runtime error."""


def correctness(prob, ref, new, device, spec: dict, phase=_nothing, watch=_nothing,
                census=contextlib.nullcontext, ref_census=contextlib.nullcontext) -> dict:
    """The correctness protocol; `phase(side)` announces each step, every candidate call runs
    inside `census()` (see op_census), every reference call inside `ref_census()`, and `watch()`
    (the tripwire check) runs after each candidate call, before the reference can run again. A
    correct verdict carries `output_elements`, the size of the reference's output."""
    import torch

    trials, seed, tol = int(spec.get("trials", 5)), int(spec["input_seed"]), spec.get("tolerance")

    def reference(inputs: list):
        phase("reference")
        args = _clone(inputs)
        with ref_census():
            out = ref(*args)
        _sync(device)
        return out

    def candidate(inputs: list):
        phase("candidate")
        with census():
            out = new(*inputs)
        _sync(device)  # the candidate's asynchronous faults surface here, not in the reference
        watch()
        return out

    # Whether a kernel returning the reference's first output, whatever its input, would pass:
    # then the problem cannot tell computing from not computing (KernelBench has such problems).
    first_ref, constant_passes, change = None, trials > 1, 0.0
    for t in range(trials):
        phase("reference")
        try:
            inputs = draw_inputs(prob, seed + 1 + t, device)
        except Exception:
            return _problem_broken("the problem's get_inputs()", t)
        order = "reference first" if t % 2 == 0 else "candidate first"
        cand_in = _clone(inputs)
        with torch.no_grad():
            ref_again = None  # trial 0's second reference output; alive, like ref_out, while the candidate runs
            try:
                if t % 2 == 0:
                    ref_out = reference(inputs)
                    if t == 0:  # a reference that disagrees with itself cannot judge anyone
                        ref_again = reference(inputs)
                        drift = compare(ref_out, ref_again, tol)
                        if drift:
                            return {"status": "error", "trial": t, "message": (
                                f"the reference Model gives different outputs for the same inputs ({drift}): "
                                "it is random (dropout in training mode?), so no candidate can be checked "
                                "against it")}
            except Exception:
                return _problem_broken(f"the reference Model on trial {t} (before the candidate ran)", t)
            try:
                new_out = candidate(cand_in)  # ref_out stays alive: its memory cannot be handed back
            except Exception as e:
                status = "compile" if "CompilationError" in type(e).__name__ else "runtime"
                return {"status": status, "trial": t, "message": f"trial {t} ({order}) raised:\n{_tb()}"}
            del ref_again
            if t % 2 == 1:
                try:
                    ref_out = reference(inputs)
                except Exception:
                    return _problem_broken(f"the reference Model on trial {t} (after the candidate ran)", t)
            diff = compare(ref_out, new_out, tol)
            if diff:
                return {"status": "mismatch", "trial": t, "message": f"trial {t} ({order}): {diff}"}
            if t == 0:
                first_ref = ref_out
            else:
                constant_passes = constant_passes and compare(ref_out, first_ref, tol) is None
                change = max(change, reference_change(first_ref, ref_out))
            if not _same(cand_in, inputs):  # `inputs` went to no call: each got its own copy
                return {"status": "mutated", "trial": t,
                        "message": f"trial {t}: the candidate changed its input tensors in place"}
            again_in = _clone(inputs)
            del inputs  # one input set less at the peak; cand_in stays, so again_in has its own address
            try:
                again = candidate(again_in)
            except Exception:
                return {"status": "runtime", "trial": t, "message": f"trial {t} second call raised:\n{_tb()}"}
            diff = compare(new_out, again, tol)
            if diff:
                return {"status": "nondeterministic", "trial": t,
                        "message": f"trial {t}: calling the candidate twice on the same input gave "
                                   f"different results: {diff}"}
        del ref_out, new_out, again, again_in
    return {"status": "correct", "trials": trials, "constant_passes": constant_passes,
            "reference_change": change if trials > 1 and math.isfinite(change) else None,
            "output_elements": sum(x.numel() for x in _flat(first_ref) if isinstance(x, torch.Tensor))}


def _input_bytes(xs: list) -> int:
    import torch

    return sum(x.numel() * x.element_size() for x in xs if isinstance(x, torch.Tensor))


def _refill(bufs: list, values: list) -> list:
    """Writes `values` into the tensors `bufs` (where shape and dtype agree) through `.data`, so
    that each keeps its identity, address and version counter: a cache keyed on any of those
    cannot see the change. Returns a copy of the arguments a call now sees, for the reference."""
    import torch

    for b, v in zip(bufs, values):
        if (isinstance(b, torch.Tensor) and isinstance(v, torch.Tensor) and b.shape == v.shape
                and b.dtype == v.dtype and (cut := _distinct(b)) is not None):
            b.data[cut].copy_(v[cut])
    return _clone(list(bufs))  # after every write: two arguments may share memory


def _distinct(t) -> tuple | None:
    """The index that cuts each broadcast (stride 0) dimension of `t` to its first element, so
    that `t[cut]` holds each of its memory elements once and can be written (a write through all
    of an `expand`ed input raises); None where `t[cut]` still overlaps itself (as_strided windows),
    so no element of it can be changed alone."""
    cut = tuple(slice(0, 1) if t.stride(d) == 0 else slice(None) for d in range(t.dim()))
    view, reach = t[cut], 0
    for stride, size in sorted((view.stride(d), view.size(d)) for d in range(view.dim()) if view.size(d) > 1):
        if stride <= reach:
            return None
        reach += (size - 1) * stride
    return cut


MIX_MIN, MIX_SHARE = 32, 1024  # the mixed call changes max(32, n/1024) of an input's n elements


def _positions(values: list, seed: int, count) -> list:
    """Per input, `count(n)` places among its n distinct elements (drawn after `seed`), as
    (`_distinct`'s cut, an index into the cut tensor already on its device), or None where it has
    none to change (not a tensor, empty, or overlapping itself). Drawn before timing, so a write
    among the timed calls moves nothing between host and device."""
    import torch

    rng = random.Random(seed)
    places = []
    for v in values:
        cut = _distinct(v) if isinstance(v, torch.Tensor) and v.numel() else None
        if cut is None:
            places.append(None)
            continue
        shape = v[cut].shape
        at = torch.tensor(_draw_places(shape.numel(), count(shape.numel()), rng), dtype=torch.long)
        places.append((cut, tuple(ix.to(v.device) for ix in torch.unravel_index(at, shape))))
    return places


def _draw_places(n: int, k: int, rng: random.Random) -> list[int]:
    """k places among n, none twice before all n are drawn: two nudges at one element can repeat
    inputs (a bool flipped twice the same way). random.sample takes O(k) for a large n, where a
    torch permutation takes O(n) (0.1 s for 2**22 elements, per input and measurement)."""
    picks: list[int] = []
    while len(picks) < k:
        picks += rng.sample(range(n), min(n, k - len(picks)))
    return picks


def _one(place, i: int):
    """The i-th of the places `_positions` drew for one input."""
    return place if place is None else (place[0], tuple(ix[i:i + 1] for ix in place[1]))


def _write_at(bufs: list, values: list, places: list, pools: list | None = None) -> list:
    """Writes in place (through `.data`, as `_refill` does) at `places` of each tensor of `bufs` the
    values `values` has there, or, given `pools` (per input, a 1-D tensor of values it may take at
    its one place), the first of its pool that differs from the old value; a bool is flipped. A
    value drawn again is often the old one: a bool half the time, an integer in [0, C) one time in
    C (a 0-dim input's pool is its one drawn value). Returns what undoes it.
    Only device work: nothing here waits for the device, so no timed call's place shows as an idle
    queue."""
    import torch

    undo = []
    for j, (b, v, place) in enumerate(zip(bufs, values, places)):
        if (place is None or not isinstance(b, torch.Tensor) or b.shape != v.shape or b.dtype != v.dtype
                or _distinct(b) != place[0]):
            continue
        cut, at = place
        into = b.data[cut]
        old = into[at] if at else into.clone()  # indexing by tensors copies; a 0-dim input has no index
        if b.dtype == torch.bool:
            into[at] = ~old
        elif pools is None:
            into[at] = v[cut][at]
        else:  # argmax picks the first differing value, or the pool's first where none differs
            first = (pools[j] != old.reshape(-1)).int().argmax(0, keepdim=True)
            into[at] = pools[j].gather(0, first).reshape(old.shape)
        undo.append((j, into, at, old))
    return undo


def _undo(undo: list) -> None:
    for _, into, at, old in reversed(undo):
        into[at] = old


def _snapshot(xs: list) -> list:
    """A copy of the arguments in which the places `_write_at` writes can be written too: a
    broadcast dimension stays broadcast (one copy of each memory element, as `_distinct` cuts it);
    an overlapping tensor, which is never written, is copied whole."""
    import torch

    out = []
    for x in xs:
        if isinstance(x, torch.Tensor):
            cut = _distinct(x)
            x = x.clone() if cut is None else x[cut].clone().expand(x.shape)
        out.append(x)
    return out


def _shares_memory(xs: list) -> bool:
    """True when two of the tensor arguments are views of one storage: a write through one shows in
    the other, which a per-argument copy cannot repeat. Host-only (no device sync)."""
    import torch

    ptrs = [x.untyped_storage().data_ptr() for x in xs if isinstance(x, torch.Tensor) and x.numel()]
    return len(ptrs) != len(set(ptrs))


def _written(undo: list) -> list:
    """Per write `_write_at` made: (argument, place, value before, value now), copies of the few
    elements, enough to make the same change in a `_snapshot` (`_rewrite`)."""
    return [(j, at, old, into[at] if at else into.clone()) for j, into, at, old in undo]


def _rewrite(snap: list, written: list, now: bool) -> None:
    """Puts `written`'s values now (or, `now` False, before) in their places in `snap`."""
    for j, at, old, new in (written if now else reversed(written)):
        snap[j].data[_distinct(snap[j])][at] = new if now else old


def _shapes_only(values: list) -> list:
    """`values` with each tensor replaced by its shape and dtype, all that `_write_at` reads of it
    when given pools: the tensor's memory is let go."""
    import torch

    return [types.SimpleNamespace(shape=v.shape, dtype=v.dtype) if isinstance(v, torch.Tensor) else v for v in values]


class TimedChecks:
    """The checks hidden among one candidate measurement's timed calls, each at a place drawn from
    `picks` (secret random numbers), so a kernel cannot tell a checked call from the others:
    - `audit(args)`, an extra untimed call (under the op census) before one timed call;
    - the renewed call: its buffers first get all-new values, in place (`_refill`), so a cache keyed
      on the tensor, its address or its version answers stale; its output is checked, and its
      time too (`slow_when_inputs_change`: a cache that sees the change works only there);
    - the mixed call: a few of its buffers' elements get new values, in place (`mix`), so a cache
      keyed on sampled values answers with the output of the values before, which is checked for.
      These inputs are outside what get_inputs() draws (a symmetric matrix is no longer symmetric),
      so a kernel may rightly get them wrong: only an output that is the old values' counts;
    - every other timed call: one element of each input gets a new value just before it and its
      old one back just after (`after`), so no two timed calls see the same input values, and a
      cache keyed on all of them (a checksum) must work in every one. One element, undone, so a
      cache keyed on a sample still holds the output of the values the mixed call starts from;
    - one of those, the nudge-checked call, is checked as the mixed one is: a cache keyed on a
      sample dense enough to see the mixed call's changes (one value in 16, say) misses its one
      changed element (15 times in 16) and answers with the output of the values before.
    The two in-place checks keep a copy of the inputs from before the change and the few values
    written (`_change`), not a second copy."""

    def __init__(self, prob, device, picks, trials: int, audit) -> None:
        renew, audit_at, mix_seed, mix_place = [next(picks) for _ in range(4)]
        self.trials, self.audit = trials, audit
        self.renewed_at, self.audit_at = renew % trials, audit_at % trials
        self.mixed_at = (self.renewed_at + 1 + mix_place % (trials - 1)) % trials if trials > 1 else -1
        nudged = [i for i in range(trials) if i not in (self.renewed_at, self.mixed_at)]
        # drawn after a secret seed, as the other places are
        self.nudge_checked_at = nudged[random.Random(mix_seed + 2).randrange(len(nudged))] if nudged else -1
        self.fresh = draw_inputs(prob, renew, device)
        self.mix_values = draw_inputs(prob, mix_seed, device) if self.mixed_at >= 0 else []
        self.mix_at = _positions(self.mix_values, mix_seed, lambda n: min(n, max(MIX_MIN, n // MIX_SHARE)))
        self.nudge_at = _positions(self.mix_values, mix_seed + 1, lambda n: trials)
        self.nudge_pools = [None if p is None else v[p[0]][p[1]].reshape(-1)  # the values drawn at its places
                            for v, p in zip(self.mix_values, self.nudge_at)]
        self.kept: dict[int, Any] = {i: None for i in (self.renewed_at, self.mixed_at, self.nudge_checked_at)
                                     if i >= 0}
        self.seen: dict[int, Any] = {}
        self.undo: list = []

    def before(self, i: int, args: list) -> None:
        if i == self.audit_at:
            self.audit(args)
        if i == self.renewed_at:
            self.seen[i] = _refill(args, self.fresh)
            self.fresh = None  # a whole input set's memory, no longer needed
        elif i == self.mixed_at:
            self.seen[i], _ = self._change(args, lambda: _write_at(args, self.mix_values, self.mix_at))
            self.mix_values = _shapes_only(self.mix_values)  # the later nudges need none of its memory
        else:
            pools = [p if p is None else p.roll(-i) for p in self.nudge_pools]  # this call's own value first
            places = [_one(place, i) for place in self.nudge_at]
            if i == self.nudge_checked_at:
                self.seen[i], self.undo = self._change(args, lambda: _write_at(args, self.mix_values, places, pools))
            else:
                self.undo = _write_at(args, self.mix_values, places, pools)

    @staticmethod
    def _change(args: list, write) -> tuple[tuple, list]:
        """Makes the change `write()` (a `_write_at`) in place. Returns what the check needs to
        remake the inputs before and after it (a copy from before, and the values written, or,
        where two arguments share memory, a copy from after too) and what undoes the change."""
        before = _snapshot(list(args))
        undo = write()
        if _shares_memory(args):
            return (before, None, _clone(list(args))), undo
        return (before, _written(undo), None), undo

    def after(self, i: int, args: list) -> None:
        _undo(self.undo)
        self.undo = []

    def wrong(self, ref, tol, mode: str) -> str | None:
        """What the checked calls' outputs show wrong, or None."""
        k = self.renewed_at
        diff = compare(ref(*self.seen.pop(k)), self.kept.pop(k), tol)  # popped: an input set and an output less
        if diff:
            return f"timed call {k + 1} of {self.trials} ({mode} time): {diff}"
        for k in (self.mixed_at, self.nudge_checked_at):
            if k >= 0 and (stale := self._answered_before(k, ref, tol)):
                return f"timed call {k + 1} of {self.trials} ({mode} time), {stale}"
        return None

    def _answered_before(self, k: int, ref, tol) -> str | None:
        """Whether call `k`, whose inputs changed in place just before it, returned the output for
        the values before the change (said how), or None."""
        import torch

        (before, written, after), got = self.seen.pop(k), self.kept.pop(k)
        if written is not None:
            _rewrite(before, written, now=True)
        right = ref(*(before if after is None else after))
        diff = compare(right, got, tol)
        if not diff:
            return None
        if written is not None:
            _rewrite(before, written, now=False)
        if not answered_before(ref(*before), right, got, tol):
            return None
        # counted only for the message: on the copy path it compares two whole input sets
        changed = (sum(int((old != new).sum()) for _, _, old, new in written) if written is not None else
                   sum(int((a != b).sum()) for a, b in zip(before, after) if isinstance(a, torch.Tensor)))
        return (f"after {changed} of its input elements got new values in place, returned the output for the "
                f"values before: {diff}")

    def renewed_time(self, times: list[float], mode: str) -> list:
        """[the renewed call's time, the median of the calls on repeated inputs, the timing mode].
        The mixed call is not one of those: a cache that samples many values sees its changes and
        works there too, and with a few timed calls it would lift the median towards the renewed
        call's time (5 calls: a median of 4, one of them slow for sure, a second one often)."""
        rest = [t for i, t in enumerate(times) if i not in (self.renewed_at, self.mixed_at)]
        return [times[self.renewed_at], statistics.median(rest) if rest else None, mode]


def timing_module():
    """timing.py: the copy beside this script in a workspace (run with python -I, whose sys.path
    holds no workspace), else assay's own."""
    copy = Path(__file__).with_name("assay_kernel_timing.py")
    if Path(__file__).name == "assay_kernel_worker.py" and copy.is_file():
        return _load(str(copy), "assay_kernel_timing")
    from assay.kernels import timing
    return timing


def timing(prob, ref, new, device, spec: dict, T, watch=_nothing, rebase=_nothing, picks=(),
           census=contextlib.nullcontext) -> dict:
    """Candidate and baselines timed in turn by `T` (kernels/timing.py, imported before the
    candidate loaded); `watch()` after each measurement, `rebase()` after torch.compile's first
    run (dynamo rebinds a few torch callables on it). Each of the candidate's measurements hides
    its checks (`TimedChecks`) among its timed calls: a kernel that does the work only when it is
    checked cannot know which calls count, one that answers repeated inputs from a cache answers
    stale where their values change in place, and one that counts its calls cannot hand the timed
    ones to torch and be itself in every censused one. Where the calls with new input values were
    slow in every measurement (`T.slow_when_inputs_change`), a few more measurements of the
    candidate confirm it or show it was noise. After timing, timing's own buffers get new values
    and one more censused call is checked."""
    import torch

    ts = spec["timing"]
    seed = int(spec["input_seed"])
    backend = T.CudaBackend(str(device)) if device.type == "cuda" else T.WallBackend()
    first = draw_inputs(prob, seed + 1000, device)
    budget = int(ts.get("rotate_bytes", 2 << 30))
    nsets = max(1, min(int(ts.get("rotate", 4)), budget // max(1, _input_bytes(first))))
    arg_sets = [first] + [draw_inputs(prob, seed + 1000 + i, device) for i in range(1, nsets)]
    fns: dict[str, Any] = {"candidate": new, "eager": ref}
    notes = []
    if "compile" in ts.get("baselines", []):
        try:
            compiled = torch.compile(ref)
            with torch.no_grad():
                compiled(*_clone(first))
            rebase()
            fns["compile"] = compiled
        except Exception as e:  # a baseline that cannot compile is reported, not fatal
            notes.append(f"torch.compile baseline failed: {type(e).__name__}: {str(e)[:300]}")
    out: dict[str, Any] = {"rotated_input_sets": nsets, "notes": notes, "backend": type(backend).__name__}
    runs: dict[str, dict[str, list]] = {n: {"device": [], "synced": []} for n in fns}
    trials, tol, pick = int(ts.get("trials", 100)), spec.get("tolerance"), iter(picks)

    def audit(args: list) -> None:
        with census():
            new(*args)
        watch()

    def measure(name: str, mode: str) -> list[float] | str:
        """One measurement's times; for the candidate, a str instead when its hidden checks found it wrong."""
        checks = TimedChecks(prob, device, pick, trials, audit) if name == "candidate" else None
        times = T.measure(fns[name], arg_sets, backend, mode=mode, warmup=int(ts.get("warmup", 10)), trials=trials,
                          before=checks.before if checks else None, after=checks.after if checks else None,
                          kept=checks.kept if checks else None)
        watch()
        if checks:
            wrong = checks.wrong(ref, tol, mode)
            if wrong:
                return wrong
            out.setdefault("checked_calls", []).append(checks.renewed_time(times, mode))
        return times

    modes = ts.get("modes", ["device", "synced"])
    with torch.no_grad():
        for _ in range(int(ts.get("repeats", 1))):
            for name in fns:  # interleaved so drift hits every callable alike
                for mode in modes:
                    times = measure(name, mode)
                    if isinstance(times, str):
                        out["wrong_while_timed"] = times
                        return out
                    runs[name][mode].append(T.Stats.of(times).as_dict())
        if T.slow_when_inputs_change(out.get("checked_calls", [])):  # a cache, or noise in every measurement
            for _ in range(T.CONFIRM_SLOW_MEASUREMENTS):  # only these calls' times count: not in `runs`
                for mode in modes:
                    times = measure("candidate", mode)
                    if isinstance(times, str):
                        out["wrong_while_timed"] = times
                        return out
        # A cache keyed on the input tensors would now return stale results: same buffers, new values.
        now = _refill(arg_sets[0], draw_inputs(prob, seed + 2000, device))
        with census():  # on timing's own buffers: a kernel that hands work to ATen once timed does so here
            got = new(*arg_sets[0])
        watch()
        diff = compare(ref(*now), got, tol)
    out["runs"] = runs
    out["stale_after_timing"] = diff
    return out


def profile_summary(new, prob, device, spec: dict) -> str:
    import torch
    from torch.profiler import ProfilerActivity, profile

    xs = draw_inputs(prob, int(spec["input_seed"]) + 3000, device)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch.no_grad(), profile(activities=acts) as prof:
        for _ in range(3):
            new(*xs)
        _sync(device)
    keys = ["device_time_total", "cuda_time_total"] if device.type == "cuda" else []
    for key in keys + ["cpu_time_total"]:  # the GPU column's name changed across torch versions
        try:
            return prof.key_averages().table(sort_by=key, row_limit=8)[:3000]
        except (KeyError, AttributeError, ValueError):
            continue
    return ""


def _watched(torch, prob, T) -> dict[str, Any]:
    """The namespaces whose callables the verdict relies on (see `tripwire`)."""
    spaces: dict[str, Any] = {"torch": torch, "torch.Tensor": torch.Tensor, "torch.nn.functional": torch.nn.functional,
                              "torch.linalg": torch.linalg, "torch.fft": torch.fft, "torch.special": torch.special,
                              "torch.cuda": torch.cuda, "torch.random": torch.random, "problem": prob,
                              "worker": sys.modules[__name__], "timing": T, "json": json,
                              "random": random, "random.Random": random.Random}  # draws the timed checks' places
    base = getattr(torch._C, "TensorBase", None) or getattr(torch._C, "_TensorBase", None)
    if base is not None:
        spaces["torch._C.TensorBase"] = base
    for name, val in vars(torch.nn).items():
        if isinstance(val, type):
            spaces[f"torch.nn.{name}"] = val
    for name, val in vars(prob).items():
        if isinstance(val, type):
            spaces[f"problem.{name}"] = val
    for name, val in vars(sys.modules[__name__]).items():  # Tally's methods keep the census's counts
        if isinstance(val, type):
            spaces[f"worker.{name}"] = val
    from torch.overrides import TorchFunctionMode  # the census's modes stand on these
    from torch.utils._python_dispatch import TorchDispatchMode
    spaces.update({"TorchFunctionMode": TorchFunctionMode, "TorchDispatchMode": TorchDispatchMode})
    return spaces


def main() -> None:
    nonce = sys.stdin.readline().strip()
    import os

    for key in ("TORCH_EXTENSIONS_DIR", "TRITON_CACHE_DIR", "HOME", "LIBRARY_PATH"):
        if key in os.environ and not os.path.isabs(os.environ[key]):
            os.environ[key] = os.path.abspath(os.environ[key])
    spec = json.loads(Path(sys.argv[1]).read_text())
    write, dumps = os.write, json.dumps  # as they are before candidate code runs
    # The protocol keeps stdout to itself: fd 1 (print, C printf, a kernel's printf) now goes to
    # stderr, so a candidate's output can neither crowd the result line out of the capped stdout
    # nor be mistaken for it.
    sys.stdout.flush()
    proto = os.dup(1)
    os.dup2(2, 1)

    def say(text: str) -> None:
        data = text.encode()
        while data:
            data = data[write(proto, data):]

    def emit(obj: dict) -> None:
        say(f"\n{MARK} {nonce} {dumps(obj)}\n")

    def phase(side: str) -> None:
        say(f"\n{PHASE} {nonce} {side}\n")

    try:
        import torch
    except ImportError:
        emit({"status": "error", "message": "torch is not installed in the sandbox's Python"})
        return
    device = torch.device(spec.get("device", "cpu"))
    try:
        prob = _load(spec["problem_file"], "reference_problem")
    except Exception:
        emit({"status": "error", "message": f"the problem file failed to load:\n{_tb()}"})
        return
    T = timing_module()
    if device.type == "cuda" and torch.cuda.is_available():
        try:  # before the tripwire's first look: initialising CUDA is torch's change, not the candidate's
            torch.cuda.init()
        except Exception:
            emit({"status": "error", "message": f"initialising CUDA failed in the evaluation process:\n{_tb()}"})
            return
    # before the tripwire's first look: the census's first use rebinds torch.manual_seed
    census = (op_census(frozenset(spec["census"]["allowed_calls"])) if spec.get("census")
              else lambda into: contextlib.nullcontext())
    changed, rebase = tripwire(_watched(torch, prob, T), data={"problem": prob})
    urandom = os.urandom  # held before candidate code runs: one that swaps os.urandom cannot reach it
    picks = (int.from_bytes(urandom(4), "little") for _ in itertools.count())  # as many as TimedChecks takes
    # The test inputs' seed, secret unless pinned: one a candidate can know (KernelBench fixes its
    # seeds) tells it the inputs it will be checked on, whose answers it could work out ahead where
    # no census looks (tests/kernels/candidates/cheat_predicted_inputs.py). The models are still
    # built after spec["seed"]: a candidate must make the reference's weights.
    if spec.get("input_seed") is None:
        spec["input_seed"] = int.from_bytes(os.urandom(4), "little")
    drawn_from = spec["input_seed"]  # for the verdict, which says how to draw the same inputs again

    def watch() -> None:
        what = changed()
        if what:
            raise Tampered(what)

    sys.addaudithook(audit_guard(spec["candidate_file"], proto))
    try:
        try:
            cand = _load(spec["candidate_file"], "candidate")
        except Exception:
            watch()
            emit({"status": "compile", "message": f"the candidate failed to import/build:\n{_tb(8000)}"})
            return
        watch()
        if spec["mode"] == "compile":
            built = {"status": "built"}
            try:
                torch.manual_seed(int(spec.get("seed", 42)))
                cand.ModelNew(*list(prob.get_init_inputs()))
            except Exception:
                text = _tb(8000)
                if "Error building extension" in text or "ninja" in text.lower():
                    built = {"status": "compile", "message": f"building the extension failed:\n{text}"}
            watch()
            emit(built)
            return
        emit({**_evaluate(prob, cand, device, spec, phase, watch, rebase, T, picks, census),
              "input_seed": drawn_from})
    except Tampered as e:
        emit({"status": "tamper", "message": (
            f"after candidate code ran, {e} was no longer what it was before: the candidate changed the "
            "harness, torch, or the problem it is judged against")})


def _evaluate(prob, cand, device, spec: dict, phase, watch, rebase, T, picks, census) -> dict:
    import torch

    if device.type == "cuda" and not torch.cuda.is_available():  # the machine's fault, not the candidate's
        return {"status": "error", "message": f"CUDA is not available to the evaluation process ({device}): "
                                              "no GPU or driver is visible in the sandbox"}
    seed = int(spec.get("seed", 42))
    phase("reference")
    try:
        ref, init = _build_reference(prob, device, seed)
    except Exception:
        return _problem_broken("building the reference Model")
    phase("candidate-init")
    try:
        torch.manual_seed(seed)
        new = cand.ModelNew(*_clone(init)).to(device)  # its own copies: the reference may hold the originals
    except Exception:
        watch()
        return {"status": "runtime", "message": f"constructing ModelNew failed:\n{_tb()}"}
    watch()
    rules = spec.get("census") or {}
    permitted, operators = frozenset(rules.get("permitted", ())), frozenset(rules.get("operators", ()))
    in_trials, by_reference, after_timing = Tally(), Tally(), Tally()

    def computed_by_torch(when: str, seen: Tally, out_elements: int) -> dict | None:
        found = census_found(seen, permitted) or operator_math(seen, by_reference, out_elements, permitted, operators)
        return {"status": "gate", "rules": ["torch-compute"], "message": f"{when}, {found}"} if found else None

    result = correctness(prob, ref, new, device, spec, phase, watch, lambda: census(in_trials),
                         lambda: census(by_reference))
    out_elements = result.pop("output_elements", 0)
    if result["status"] == "correct":
        result = computed_by_torch("in the correctness trials", in_trials, out_elements) or result
    if result["status"] == "correct" and spec.get("timing"):
        phase("timing")  # both sides run, interleaved; a death there stays the candidate's
        try:
            result["timing"] = timing(prob, ref, new, device, spec, T, watch, rebase, picks,
                                      lambda: census(after_timing))
            when = "in untimed calls among and after the timed ones (not in the correctness trials)"
            result = computed_by_torch(when, after_timing, out_elements) or result
        except Exception:
            result = {"status": "runtime", "message": f"the timing run raised:\n{_tb()}"}
    watch()
    # Last, and unwatched: the verdict is settled, and a profiler may rebind what it instruments.
    if result["status"] == "correct" and spec.get("profile"):
        try:
            result["profile"] = profile_summary(new, prob, device, spec)
        except Exception as e:
            result["profile"] = f"profiler failed: {type(e).__name__}: {e}"
    return result


if __name__ == "__main__":
    main()
