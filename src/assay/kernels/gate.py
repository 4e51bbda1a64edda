"""Static gate: read a candidate `ModelNew` module's AST (never run it) and reject known
ways of faking a fast kernel before anything is built.

Every rejection names its rule. The Python part is checked on the AST; the C++/CUDA sources
handed to `load_inline` are plain strings to Python, so for them the gate looks for a few
forbidden API names (streams, threads, timers, ATen compute calls) token by token.

The gate cannot prove a candidate honest (the candidate runs in the same process as the
harness); the dynamic checks in the correctness worker catch what gets past it.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

RULES = {
    "syntax": "the candidate is not valid Python",
    "no-modelnew": "the candidate defines no class ModelNew",
    "try-except": "try/except (a fallback to the reference when the kernel fails) is not allowed",
    "reference-model": "the candidate subclasses, calls or imports the reference Model",
    "torch-compute": "the main computation is done with torch ops instead of the kernel",
    "stream-thread": "CUDA streams, threads or processes are not allowed",
    "timer": "touching timers, events, synchronisation or profilers is not allowed",
    "monkeypatch": "assigning attributes on torch/nn/F/triton modules is not allowed",
    "tensor-subclass": "tensor subclasses and __torch_function__/__torch_dispatch__ are not allowed",
    "output-cache": "state kept across calls (caches, globals, data_ptr/id keys) is not allowed",
    "dynamic-code": "exec/eval/getattr/open/sys.modules and similar introspection is not allowed",
    "forbidden-import": "this import is not allowed in a kernel candidate",
    "no-kernel": "no real kernel: need __global__ code passed to load_inline, or a @triton.jit "
                 "function that forward launches",
}

# Tensor ops ModelNew's forward path may call through torch (allocation, views, metadata).
DEFAULT_ALLOWED_OPS = frozenset("""
empty empty_like zeros zeros_like ones ones_like full full_like empty_strided new_empty new_zeros
new_ones new_full tensor as_tensor
view view_as reshape reshape_as contiguous flatten unflatten squeeze unsqueeze permute transpose t
expand expand_as narrow select split chunk unbind movedim as_strided
size shape numel dim stride is_contiguous element_size nelement
to cuda cpu float half bfloat16 double int long bool type type_as
device dtype get_device is_cuda requires_grad_ detach
cdiv next_power_of_2 Size
no_grad inference_mode is_grad_enabled is_tensor is_floating_point finfo iinfo is_available
""".split())

# Tensor *method* names that compute: `x.sum()` is torch compute even with no `torch.` prefix.
COMPUTE_METHODS = frozenset("""
matmul mm bmm addmm addbmm baddbmm mv dot outer einsum tensordot linear conv1d conv2d conv3d
conv_transpose1d conv_transpose2d conv_transpose3d softmax log_softmax relu relu_ gelu silu
sigmoid tanh exp exp_ log log_ sum mean max min amax amin var std norm prod argmax argmin
add add_ sub sub_ mul mul_ div div_ pow clamp clamp_ clip where abs sqrt rsqrt cumsum cumprod
sort topk logsumexp layer_norm batch_norm group_norm instance_norm dropout hardtanh leaky_relu
elu selu softplus mish hardswish hardsigmoid avg_pool1d avg_pool2d avg_pool3d max_pool1d
max_pool2d max_pool3d adaptive_avg_pool2d neg reciprocal square erf cos sin tril triu diag
scaled_dot_product_attention cross_entropy mse_loss nll_loss kl_div triplet_margin_loss
""".split())

ALLOWED_IMPORTS = frozenset({
    "torch", "triton", "math", "typing", "functools", "operator", "numbers", "dataclasses",
    "enum", "collections", "__future__", "os",
})
# Reachable under an allowed root but still forbidden.
FORBIDDEN_DOTTED = {
    "torch.cuda.Event": "timer", "torch.cuda.synchronize": "timer", "torch.cuda.Stream": "stream-thread",
    "torch.cuda.stream": "stream-thread", "torch.cuda.current_stream": "stream-thread",
    "torch.cuda.default_stream": "stream-thread", "torch.cuda.set_stream": "stream-thread",
    "torch.cuda.ExternalStream": "stream-thread", "torch.cuda.graph": "stream-thread",
    "torch.cuda.CUDAGraph": "stream-thread", "torch.Stream": "stream-thread",
    "torch.cuda.Event.elapsed_time": "timer", "torch.profiler": "timer", "torch.autograd.profiler": "timer",
    "torch.utils.benchmark": "timer", "triton.testing": "timer", "torch.cuda.nvtx": "timer",
    "torch.multiprocessing": "stream-thread", "torch.overrides": "tensor-subclass",
    "torch.utils._python_dispatch": "tensor-subclass", "torch.library": "tensor-subclass",
    "torch.Tensor._make_subclass": "tensor-subclass", "torch._C": "dynamic-code",
    "torch.ops": "torch-compute", "torch.compile": "torch-compute", "torch.jit": "torch-compute",
    "torch.func": "torch-compute", "torch.vmap": "torch-compute",
    "functools.lru_cache": "output-cache", "functools.cache": "output-cache",
    "os.system": "stream-thread", "os.fork": "stream-thread", "os.popen": "stream-thread",
    "os.spawnv": "stream-thread", "os.execv": "stream-thread", "os.kill": "stream-thread",
}
FORBIDDEN_BUILTINS = {
    "exec": "dynamic-code", "eval": "dynamic-code", "compile": "dynamic-code",
    "__import__": "dynamic-code", "getattr": "dynamic-code", "setattr": "monkeypatch",
    "delattr": "monkeypatch", "globals": "dynamic-code", "locals": "dynamic-code",
    "vars": "dynamic-code", "open": "dynamic-code", "id": "output-cache", "hash": "output-cache", "breakpoint": "dynamic-code",
}
FORBIDDEN_ATTRS = {
    "data_ptr": "output-cache", "_version": "output-cache", "untyped_storage": "output-cache",
    "storage": "output-cache", "__dict__": "dynamic-code", "__class__": "dynamic-code",
    "__subclasses__": "dynamic-code", "__globals__": "dynamic-code", "__code__": "dynamic-code",
    "__torch_function__": "tensor-subclass", "__torch_dispatch__": "tensor-subclass",
    "f_back": "dynamic-code", "f_globals": "dynamic-code",
}
MUTATING_METHODS = frozenset("append extend insert update setdefault add pop popitem clear __setitem__".split())

# In C++/CUDA source strings.
_SRC_RULES = [
    (re.compile(r"\b(cudaStreamCreate\w*|getStreamFromPool|cudaStreamBeginCapture|cudaGraph\w*)\b"),
     "stream-thread"),
    (re.compile(r"\b(std::thread|std::async|pthread_create|#\s*include\s*<thread>|fork\s*\()"),
     "stream-thread"),
    (re.compile(r"\b(cudaEvent\w*|clock_gettime|std::chrono|gettimeofday)\b"), "timer"),
    (re.compile(r"\bPy(Run|Import|Object_Call|Eval)\w*"), "dynamic-code"),
]
_ATEN_CALL = re.compile(r"\b(?:torch|at)::(?:native::)?([a-z_][a-z0-9_]*)\s*\(")


@dataclass(frozen=True)
class GatePolicy:
    backend: str | None = None  # "cuda" | "triton" | None (either)
    allowed_ops: frozenset[str] = DEFAULT_ALLOWED_OPS
    allow_cpp: bool = False  # accept a plain C++ load_inline function (CPU tests only)

    def allowing(self, *ops: str) -> "GatePolicy":
        return GatePolicy(self.backend, self.allowed_ops | frozenset(ops), self.allow_cpp)


@dataclass(frozen=True)
class Violation:
    rule: str
    line: int
    detail: str

    def __str__(self) -> str:
        return f"[{self.rule}] line {self.line}: {self.detail}"


@dataclass
class GateResult:
    violations: list[Violation] = field(default_factory=list)
    kernel: str | None = None  # "cuda" | "triton" | "cpp" when a real kernel was found

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def rules(self) -> list[str]:
        return sorted({v.rule for v in self.violations})

    def summary(self) -> str:
        if self.ok:
            return f"gate passed ({self.kernel} kernel)"
        return "gate rejected: " + "; ".join(str(v) for v in self.violations[:6])


def check(source: str, policy: GatePolicy | None = None) -> GateResult:
    """Run every rule over `source`; an empty violation list means the candidate may be built."""
    policy = policy or GatePolicy()
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        return GateResult([Violation("syntax", e.lineno or 0, str(e.msg))])
    return _Gate(tree, policy).run()


class _Gate:
    def __init__(self, tree: ast.Module, policy: GatePolicy) -> None:
        self.tree = tree
        self.policy = policy
        self.out: list[Violation] = []
        self.aliases: dict[str, str] = {}  # local name -> canonical dotted module/object
        self.consts: dict[str, str] = {}  # module-level name -> string constant
        self.funcs: dict[str, ast.FunctionDef] = {}  # module-level functions
        self.jit: set[str] = set()  # names of @triton.jit functions
        self.ext_names: set[str] = set()  # module names / self attrs bound to load_inline(...)
        self.module_names: set[str] = set()  # module-level assigned names (possible caches)
        self.kernels: set[str] = set()

    def add(self, rule: str, node: ast.AST | int, detail: str) -> None:
        line = node if isinstance(node, int) else getattr(node, "lineno", 0)
        self.out.append(Violation(rule, line, detail))

    # -- name resolution -------------------------------------------------------------------
    def dotted(self, node: ast.AST) -> str | None:
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        root = self.aliases.get(node.id)
        if root is None:
            return None
        return ".".join([root, *reversed(parts)])

    def const_str(self, node: ast.AST | None) -> str:
        if node is None:
            return ""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return self.consts.get(node.id, "")
        if isinstance(node, (ast.List, ast.Tuple)):
            return "\n".join(self.const_str(e) for e in node.elts)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self.const_str(node.left) + self.const_str(node.right)
        if isinstance(node, ast.JoinedStr):
            return "".join(v.value for v in node.values if isinstance(v, ast.Constant))
        return ""

    def is_load_inline(self, node: ast.AST) -> bool:
        return isinstance(node, ast.Call) and (self.dotted(node.func) or "").endswith(
            "cpp_extension.load_inline")

    # -- passes ----------------------------------------------------------------------------
    def run(self) -> GateResult:
        self.collect()
        # the last definition is the one that wins at run time
        model_new = next((n for n in reversed(self.tree.body) if isinstance(n, ast.ClassDef) and n.name == "ModelNew"),
                         None)
        if model_new is None:
            self.add("no-modelnew", 1, "define `class ModelNew(nn.Module)`")
        for node in ast.walk(self.tree):
            self.check_node(node)
        for s in (n for n in ast.walk(self.tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)):
            self.check_source_string(s)
        if model_new is not None:
            self.check_model_new(model_new)
        kernel = self.kernel_kind()
        if kernel is None and model_new is not None:
            want = {"cuda": "__global__ code in load_inline(cuda_sources=...)",
                    "triton": "a @triton.jit function launched from forward"}.get(self.policy.backend or "")
            self.add("no-kernel", model_new, want or RULES["no-kernel"])
        seen, uniq = set(), []
        for v in self.out:
            if (v.rule, v.line, v.detail) not in seen:
                seen.add((v.rule, v.line, v.detail))
                uniq.append(v)
        return GateResult(sorted(uniq, key=lambda v: (v.line, v.rule)), kernel)

    def collect(self) -> None:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.check_import(a.name, node)
                    if a.asname:
                        self.aliases[a.asname] = a.name
                    else:
                        self.aliases[a.name.split(".")[0]] = a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom):
                mod = "." * node.level + (node.module or "")
                self.check_import(mod, node)
                for a in node.names:
                    if a.name == "*":
                        self.add("forbidden-import", node, f"`from {mod} import *` hides what is used")
                        continue
                    self.aliases[a.asname or a.name] = f"{mod}.{a.name}"
                    self.check_dotted(f"{mod}.{a.name}", node)
        for node in self.tree.body:
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        self.module_names.add(t.id)
                        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                            self.consts[t.id] = node.value.value
                        elif node.value is not None and self.const_str(node.value):
                            self.consts[t.id] = self.const_str(node.value)
                        if self.is_load_inline(node.value):
                            self.ext_names.add(t.id)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                self.module_names.add(node.target.id)
            elif isinstance(node, ast.FunctionDef):
                self.funcs[node.name] = node
                if any(self.is_jit_decorator(d) for d in node.decorator_list):
                    self.jit.add(node.name)
        for node in ast.walk(self.tree):  # self.ext = load_inline(...), or = a module-level extension
            if isinstance(node, ast.Assign) and (self.is_load_inline(node.value) or (
                    isinstance(node.value, ast.Name) and node.value.id in self.ext_names)):
                for t in node.targets:
                    if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                        self.ext_names.add("self." + t.attr)

    def is_jit_decorator(self, d: ast.AST) -> bool:
        target = d.func if isinstance(d, ast.Call) else d
        name = self.dotted(target) or ""
        return name in ("triton.jit", "triton.autotune", "triton.heuristics") or name.endswith("triton.jit")

    def check_import(self, mod: str, node: ast.AST) -> None:
        root = mod.split(".")[0]
        if mod.startswith(".") or root not in ALLOWED_IMPORTS:
            rule = "stream-thread" if root in ("threading", "_thread", "multiprocessing", "concurrent",
                                               "asyncio", "subprocess") else (
                "timer" if root in ("time", "timeit", "cProfile", "profile") else "forbidden-import")
            self.add(rule, node, f"import of {mod!r}")
        else:
            self.check_dotted(mod, node)

    def check_dotted(self, name: str, node: ast.AST) -> None:
        for bad, rule in FORBIDDEN_DOTTED.items():
            if name == bad or name.startswith(bad + "."):
                self.add(rule, node, f"use of {name}")
                return

    def check_node(self, node: ast.AST) -> None:
        if isinstance(node, (ast.Try, getattr(ast, "TryStar", ast.Try))) and node.handlers:
            self.add("try-except", node, "a try/except block (fallback path)")
        elif isinstance(node, ast.With):
            for item in node.items:
                expr = item.context_expr
                name = self.dotted(expr.func if isinstance(expr, ast.Call) else expr) or ""
                if name.endswith("suppress"):
                    self.add("try-except", node, "contextlib.suppress hides failures")
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            self.add("output-cache", node, f"`{type(node).__name__.lower()}` state across calls")
        elif isinstance(node, ast.Attribute):
            if node.attr in FORBIDDEN_ATTRS:
                self.add(FORBIDDEN_ATTRS[node.attr], node, f"use of .{node.attr}")
            name = self.dotted(node)
            if name:
                self.check_dotted(name, node)
                if name == "sys.modules" or name.endswith(".Tensor") and isinstance(node.ctx, ast.Store):
                    self.add("dynamic-code", node, name)
        elif isinstance(node, ast.Name):
            if node.id == "Model":
                self.add("reference-model", node, "reference to the reference `Model`")
            elif node.id in FORBIDDEN_BUILTINS and node.id not in self.aliases:
                self.add(FORBIDDEN_BUILTINS[node.id], node, f"use of builtin {node.id}()")
            elif node.id in ("__torch_function__", "__torch_dispatch__"):
                self.add("tensor-subclass", node, node.id)
            elif node.id in self.aliases:
                self.check_dotted(self.aliases[node.id], node)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name in ("__torch_function__", "__torch_dispatch__"):
                self.add("tensor-subclass", node, f"defines {node.name}")
            for d in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
                if isinstance(d, (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp)):
                    self.add("output-cache", d, f"{node.name}() has a mutable default argument (state across calls)")
            for d in node.decorator_list:
                name = self.dotted(d.func if isinstance(d, ast.Call) else d) or ""
                if name.startswith("functools.") and ("cache" in name):
                    self.add("output-cache", d, f"@{name} caches results")
        elif isinstance(node, ast.ClassDef):
            for b in node.bases:
                name = self.dotted(b) or (b.id if isinstance(b, ast.Name) else "")
                if name in ("torch.Tensor", "torch._C._TensorBase", "torch.nn.Parameter"):
                    self.add("tensor-subclass", node, f"class {node.name} subclasses {name}")
                if name.split(".")[-1] == "Model" or "reference" in name:
                    self.add("reference-model", node, f"class {node.name} subclasses the reference")
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for t in targets:
                for sub in ast.walk(t):
                    if (isinstance(sub, ast.Attribute) and self.dotted(sub.value) is not None
                            and self.dotted(sub) != "os.environ"):
                        self.add("monkeypatch", node, f"assigns {self.dotted(sub)}")
                        break
        elif isinstance(node, ast.ImportFrom) and node.module and "reference" in node.module:
            self.add("reference-model", node, f"imports {node.module}")

    def check_source_string(self, node: ast.Constant) -> None:
        text = node.value
        if len(text) < 20 or "(" not in text:
            return
        for rx, rule in _SRC_RULES:
            m = rx.search(text)
            if m:
                self.add(rule, node, f"{m.group(0)!r} in C++/CUDA source")
        for m in _ATEN_CALL.finditer(text):
            if m.group(1) not in self.policy.allowed_ops:
                self.add("torch-compute", node, f"ATen call {m.group(0).rstrip('(').strip()} in C++ source")

    # -- ModelNew --------------------------------------------------------------------------
    def check_model_new(self, cls: ast.ClassDef) -> None:
        methods = {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}
        torch_modules: set[str] = set()  # self.<attr> holding an nn.Module (its call is torch compute)
        init = methods.get("__init__")
        if init is not None:
            for node in ast.walk(init):
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                    inner = node.value  # nn.Linear(...).half().cuda(): look through the method chain
                    while (isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute)
                           and isinstance(inner.func.value, ast.Call)):
                        inner = inner.func.value
                    name = self.dotted(inner.func) or ""
                    if name.startswith("torch.nn.") and name not in ("torch.nn.Parameter",
                                                                     "torch.nn.ParameterList"):
                        for t in node.targets:
                            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                                torch_modules.add(t.attr)
        if "forward" not in methods:
            self.add("no-modelnew", cls, "ModelNew has no forward()")
            return
        # forward, plus the module functions and methods it reaches (not @triton.jit, not __init__)
        todo, seen = [methods["forward"]], set()
        self.reached_launch: set[str] = set()
        self.reached_ext = False
        while todo:
            fn = todo.pop()
            if id(fn) in seen:
                continue
            seen.add(id(fn))
            for node in ast.walk(fn):
                if isinstance(node, ast.Call):
                    f = node.func
                    if isinstance(f, ast.Name) and f.id in self.funcs and f.id not in self.jit:
                        todo.append(self.funcs[f.id])
                    elif (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "self"
                          and f.attr in methods and f.attr != "__init__"):
                        todo.append(methods[f.attr])
                self.check_forward_node(node, torch_modules)

    def _ext_receiver(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.ext_names
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            return "self." + node.attr in self.ext_names
        return False

    def check_forward_node(self, node: ast.AST, torch_modules: set[str]) -> None:
        allowed = self.policy.allowed_ops
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            self.add("torch-compute", node, "the @ operator (matmul) in the forward path")
        elif isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Subscript) and isinstance(f.value, ast.Name) and f.value.id in self.jit:
                self.reached_launch.add(f.value.id)
                return
            name = self.dotted(f)
            if name is not None:
                root = name.split(".")[0]
                if root == "torch" and name.split(".")[-1] not in allowed and not name.startswith(
                        ("torch.empty", "torch.float", "torch.int", "torch.bfloat", "torch.half", "torch.device",
                         "torch.Size", "torch.cuda.current_device", "torch.cuda.device")):
                    self.add("torch-compute", node, f"{name}() in the forward path")
                if name in ("triton.cdiv", "triton.next_power_of_2"):
                    return
            elif isinstance(f, ast.Attribute):
                if self._ext_receiver(f.value):
                    self.reached_ext = True
                    return
                if (isinstance(f.value, ast.Name) and f.value.id == "self" and f.attr in torch_modules):
                    self.add("torch-compute", node, f"self.{f.attr}(...) runs a torch nn module in forward")
                elif f.attr in COMPUTE_METHODS and f.attr not in allowed:
                    self.add("torch-compute", node, f".{f.attr}() in the forward path")
                elif f.attr in MUTATING_METHODS and isinstance(f.value, ast.Name) and f.value.id in self.module_names:
                    self.add("output-cache", node, f"{f.value.id}.{f.attr}() mutates module state from forward")
            elif isinstance(f, ast.Name) and f.id in self.funcs and f.id in self.jit:
                self.add("no-kernel", node, f"{f.id} is @triton.jit but called without a grid")
        elif isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                    if not (isinstance(node, ast.Assign) and (self.is_load_inline(node.value) or (
                            isinstance(node.value, ast.Name) and node.value.id in self.ext_names))):
                        self.add("output-cache", node, f"forward stores state in self.{t.attr}")
                elif isinstance(t, ast.Subscript):
                    base = t.value
                    while isinstance(base, (ast.Subscript, ast.Attribute)):
                        base = base.value
                    if isinstance(base, ast.Name) and (base.id in self.module_names or base.id == "self"):
                        self.add("output-cache", node, f"forward writes into {base.id}[...] (a cache)")

    def kernel_kind(self) -> str | None:
        if getattr(self, "reached_launch", None):
            kind = "triton"
        else:
            kind = None
        if getattr(self, "reached_ext", False):
            sources = [n for n in ast.walk(self.tree) if self.is_load_inline(n)]
            for call in sources:
                kw = {k.arg: k.value for k in call.keywords}
                cuda = self.const_str(kw.get("cuda_sources") or (call.args[2] if len(call.args) > 2 else None))
                cpp = self.const_str(kw.get("cpp_sources") or (call.args[1] if len(call.args) > 1 else None))
                if "__global__" in cuda and kind is None:
                    kind = "cuda"
                elif self.policy.allow_cpp and cpp.strip() and kind is None:
                    kind = "cpp"
        if kind == "cpp" and self.policy.backend in ("cuda", "triton"):
            return None
        if self.policy.backend and kind not in (self.policy.backend, "cpp"):
            return None
        return kind
