"""Test harness that runs INSIDE the sandbox (stdlib only; copied into the workspace).

Usage: python harness.py job.json  -> one JSON line per candidate on stdout.

A fork server: for each candidate it forks a child that sets rlimits, silences
stdin/stdout/stderr, execs the candidate program as module "candidate", then runs the
candidate's work items (calls on inputs, each with the assert checks built on that call;
and whole test sources) with a per-item timeout. The child streams one JSON line per item
over a dedicated pipe. The parent enforces a wall-clock deadline per item, SIGKILLs a child
that swallows the alarm (or sleeps), marks that item timed out and forks a fresh child for
the rest.

Each item may carry its own CPU limit (the Runner's peer-relative limits); every reported item
says the CPU it used (null when it timed out or died) and the limit it ran under, so a cached
timeout can be told apart from one that a larger limit might still let finish.

Timeouts count CPU time (ITIMER_PROF), so a loaded machine does not turn slow-but-correct
tests into timeouts; the parent's wall-clock deadline (WALL_FACTOR x the timeout) catches
code that blocks without using CPU. After a candidate has timed out `k_reduce` times, its
remaining items get `reduced_timeout` (fast items are unaffected; only items needing more
than that on a candidate already seen to hang are labelled timeout).

Job (JSON): timeout, load_timeout, reduced_timeout, k_reduce, memory_mb,
tasks [{"entry_point", "calls": [args_src], "checks": [[check_src, expected_src|null]],
        "execs": [test_src]}],
candidates [{"task": task_idx, "src", "calls": [[call_idx, [check_idx...], limit|null]],
              "execs": [[exec_idx, limit|null]]}]   (limit null: the job's timeout).
Output line: {"i", "load": null|msg,
"calls": [[call_idx, out, [[check_idx, outcome, msg]], cpu|null, limit]],
"execs": [[exec_idx, outcome, msg, cpu|null, limit]], "t": wall s, "cpu": child cpu s, "forks"}.
"""

import builtins
import gc
import json
import os
import resource
import select
import signal
import sys
import time
import traceback
import types

# `python harness.py` puts this script's folder first on sys.path: the batch's workspace, which
# every candidate in the batch can write. A module one candidate leaves there must not be what a
# later candidate of the batch imports.
if sys.path and os.path.realpath(sys.path[0] or ".") == os.path.dirname(os.path.realpath(__file__)):
    del sys.path[0]

# Modules candidates commonly import: loaded once here, shared by every forked child.
for _m in ("typing", "math", "re", "collections", "itertools", "functools", "heapq",
           "bisect", "string", "hashlib", "fractions", "decimal", "statistics", "random"):
    try:
        __import__(_m)
    except ImportError:
        pass

RESULT_VAR = "__assay_r__"
CALL_FN = "__assay_f__"
OUT_CAP = 300

# Own references, taken before any candidate code runs (candidates may delete builtins or
# monkeypatch modules inside their child).
_repr, _len, _isinstance, _str, _type, _bool, _round = repr, len, isinstance, str, type, bool, round
_dict, _exec, _eval, _compile, _callable = dict, exec, eval, compile, callable
_BaseException, _Exception, _AssertionError = BaseException, Exception, AssertionError
_SyntaxError = SyntaxError
_os_write, _os_exit, _dup2, _open, _close = os.write, os._exit, os.dup2, os.open, os.close
_setitimer, _signal, _SIGPROF, _ITIMER_PROF = signal.setitimer, signal.signal, signal.SIGPROF, signal.ITIMER_PROF
_setrlimit = resource.setrlimit
_dumps = json.dumps
_extract_tb = traceback.extract_tb
_sha1 = __import__("hashlib").sha1
_monotonic = time.monotonic
_process_time = time.process_time
_ModuleType = types.ModuleType
_sys_modules = sys.modules


class _Timeout(BaseException):
    """Raised by the alarm; a BaseException so `except Exception` in candidates lets it pass."""


_fired = [False]


def _on_alarm(signum, frame):
    _fired[0] = True
    raise _Timeout()


def _arm(seconds):
    _fired[0] = False
    _signal(_SIGPROF, _on_alarm)
    _setitimer(_ITIMER_PROF, seconds)


def _disarm():
    _setitimer(_ITIMER_PROF, 0)


def _cap(text):
    if _len(text) <= OUT_CAP:
        return text
    # keep outputs comparable: a cut repr carries a hash of the whole one
    return text[: OUT_CAP - 16] + "...#" + _sha1(text.encode("utf-8", "replace")).hexdigest()[:12]


def _safe_repr(value):
    try:
        r = _repr(value)
        if not _isinstance(r, _str):
            return "!ReprError"
        return _cap(r)
    except _Timeout:
        raise
    except _BaseException:
        return "!ReprError"


def _exc_line(e):
    try:
        msg = _str(e)
    except _BaseException:
        msg = ""
    name = _type(e).__name__
    line = name + ": " + msg if msg else name
    return line[:OUT_CAP]


def _test_line(e, src_lines):
    """Source line of the test where exception `e` surfaced, if it came from the test."""
    try:
        frames = [f for f in _extract_tb(e.__traceback__) if f.filename == "<test>"]
        if frames and 0 < frames[-1].lineno <= _len(src_lines):
            return src_lines[frames[-1].lineno - 1].strip()[:200]
    except _Exception:  # a traceback we cannot read: the message just has no line
        return ""
    return ""


class Child:
    """Runs inside the forked child: load the candidate, run items, report over `fd`."""

    def __init__(self, fd, job, task, codes):
        self.fd = fd
        self.job = job
        self.task = task
        self.codes = codes

    def send(self, obj):
        data = (_dumps(obj) + "\n").encode("utf-8", "replace")
        while data:
            n = _os_write(self.fd, data)
            data = data[n:]

    def load(self, src, timeout):
        """Exec the candidate as module "candidate"; return (namespace, entry fn) or error text."""
        ep = self.task["entry_point"]
        mod = _ModuleType("candidate")
        ns = mod.__dict__
        ns["__builtins__"] = builtins
        _sys_modules["candidate"] = mod
        try:
            _arm(timeout)
            try:
                code = _compile(src, "<candidate>", "exec")
                _exec(code, ns)
            finally:
                _disarm()
        except _Timeout:
            return None, "timed out while loading (%gs)" % timeout
        except _SyntaxError as e:
            return None, "SyntaxError: %s (line %s)" % (e.msg, e.lineno)
        except _BaseException as e:
            if _fired[0]:
                return None, "timed out while loading (%gs)" % timeout
            return None, _exc_line(e)
        fn = ns.get(ep)
        if fn is None or not _callable(fn):
            return None, "entry point %r is not defined at module level" % ep
        return ns, None

    def run_call(self, ns, fn, call_idx, check_ids, timeout):
        task = self.task
        code = self.codes["calls"][call_idx]
        label = task["entry_point"] + "(" + task["calls"][call_idx][:150] + ")"
        env = _dict(ns)
        env["candidate"] = fn
        env[CALL_FN] = fn
        checks = []
        try:
            _arm(timeout)
            try:
                result = _eval(code, env)
                if _fired[0]:
                    raise _Timeout()
                out = _safe_repr(result)
                env[RESULT_VAR] = result
                for ci in check_ids:
                    checks.append(self.check(env, ci, label, out))
            finally:
                _disarm()
        except _Timeout:
            out = "!timeout"
            msg = "%s timed out after %gs" % (label, timeout)
            done = {c[0] for c in checks}
            checks = [c for c in checks] + [[ci, "timeout", msg] for ci in check_ids if ci not in done]
            return out, checks
        except _BaseException as e:
            if _fired[0]:
                return "!timeout", [[ci, "timeout", "%s timed out after %gs" % (label, timeout)] for ci in check_ids]
            out = "!" + _type(e).__name__
            outcome = "fail" if _isinstance(e, _AssertionError) else "error"
            msg = label + " raised " + _exc_line(e)
            return out, [[ci, outcome, msg] for ci in check_ids]
        return out, checks

    def check(self, env, ci, label, out):
        check_src, expected_src = self.task["checks"][ci]
        code, exp_code = self.codes["checks"][ci]
        try:
            ok = _bool(_eval(code, env))
        except _Timeout:
            raise
        except _BaseException as e:
            return [ci, "error", "%s returned %s; the check raised %s" % (label, out, _exc_line(e))]
        if ok:
            return [ci, "pass", ""]
        if exp_code is not None:
            try:
                exp = _safe_repr(_eval(exp_code, env))
            except _Timeout:
                raise
            except _BaseException:
                exp = expected_src[:150]
            return [ci, "fail", "%s returned %s, expected %s" % (label, out, exp)]
        return [ci, "fail", "%s returned %s; failed: assert %s" % (label, out, check_src.replace(RESULT_VAR, label)[:200])]

    def run_exec(self, ns, fn, exec_idx, timeout):
        code = self.codes["execs"][exec_idx]
        env = _dict(ns)
        env["candidate"] = fn
        try:
            _arm(timeout)
            try:
                _exec(code, env)
                if _fired[0]:
                    raise _Timeout()
            finally:
                _disarm()
        except _Timeout:
            return "timeout", "test timed out after %gs" % timeout
        except _BaseException as e:
            if _fired[0]:
                return "timeout", "test timed out after %gs" % timeout
            line = _test_line(e, self.task["execs"][exec_idx].splitlines())
            if _isinstance(e, _AssertionError):
                detail = _exc_line(e)
                if detail == "AssertionError" and line:
                    detail = "assertion failed: " + line
                return "fail", detail
            return "error", _exc_line(e) + (" (at: " + line + ")" if line else "")
        return "pass", ""

    def main(self, cand, items, hung):
        job = self.job
        ns, err = self.load(cand["src"], job["load_timeout"])
        self.send(["L", err])
        if err is not None:
            return
        fn = ns[self.task["entry_point"]]
        for item in items:
            t = _timeout(job, hung, item)
            c0 = _process_time()
            if item[0] == "c":
                out, checks = self.run_call(ns, fn, item[1], item[2], t)
                timed_out = out == "!timeout"
                self.send(["c", item[1], out, checks, None if timed_out else _round(_process_time() - c0, 5), t])
            else:
                outcome, msg = self.run_exec(ns, fn, item[1], t)
                timed_out = outcome == "timeout"
                self.send(["x", item[1], outcome, msg, None if timed_out else _round(_process_time() - c0, 5), t])
            hung += timed_out


def _child_setup(job, items):
    os.setpgid(0, 0)
    mem = job["memory_mb"] * 1024 * 1024
    try:
        _setrlimit(resource.RLIMIT_AS, (mem, mem))
    except (ValueError, OSError):
        pass
    cpu = int(job["load_timeout"] + sum(_limit(job, item) for item in items)) + 2
    try:
        _setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    except (ValueError, OSError):
        pass
    devnull = _open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        _dup2(devnull, fd)
    _close(devnull)
    sys.setrecursionlimit(1000)


def _compile_items(task):
    """Compile shared test code once in the parent; children inherit it through fork."""
    codes = {"calls": [], "checks": [], "execs": []}
    for args in task["calls"]:
        try:
            codes["calls"].append(compile("%s(%s)" % (CALL_FN, args), "<input>", "eval"))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            codes["calls"].append(compile("(_ for _ in ()).throw(SyntaxError('bad input'))", "<input>", "eval"))
    for check_src, expected_src in task["checks"]:
        try:
            code = compile(check_src, "<test>", "eval")
            exp = compile(expected_src, "<test>", "eval") if expected_src is not None else None
        except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
            code, exp = compile("(_ for _ in ()).throw(SyntaxError(%r))" % str(e), "<test>", "eval"), None
        codes["checks"].append((code, exp))
    for src in task["execs"]:
        try:
            codes["execs"].append(compile(src, "<test>", "exec"))
        except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
            msg = "test does not compile: %s" % (e,)
            codes["execs"].append(compile("raise SyntaxError(%r)" % msg, "<test>", "exec"))
    return codes


WALL_FACTOR = 3.0


def _limit(job, item):
    """The item's own CPU limit, else the job's timeout."""
    return item[-1] if item[-1] is not None else job["timeout"]


def _timeout(job, hung, item):
    t = _limit(job, item)
    return min(t, job["reduced_timeout"]) if hung >= job["k_reduce"] else t


def _wall(t):
    """Wall-clock deadline for an item with CPU timeout t (slack for a loaded machine)."""
    return WALL_FACTOR * t + 0.25


def _kill(pid):
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass


def _reap(pid, res):
    try:
        _, status, usage = os.wait4(pid, 0)
    except ChildProcessError:
        return "exited"
    res["cpu"] += usage.ru_utime + usage.ru_stime
    if os.WIFSIGNALED(status):
        return "killed by signal %d" % os.WTERMSIG(status)
    return "exited with code %d" % os.WEXITSTATUS(status)


def run_candidate(job, all_codes, index, cand):
    """Run all items of one candidate, restarting children as needed; return its result line."""
    task = job["tasks"][cand["task"]]
    codes = all_codes[cand["task"]]
    items = [("c", ci, checks, lim) for ci, checks, lim in cand.get("calls", [])]
    items += [("x", xi, lim) for xi, lim in cand.get("execs", [])]
    res = {"i": index, "load": None, "calls": [], "execs": [], "t": 0.0, "cpu": 0.0, "forks": 0}
    started = _monotonic()
    pos = 0
    hung = 0
    loaded_once = False
    while True:
        r, w = os.pipe()
        res["forks"] += 1
        pid = os.fork()
        if pid == 0:  # child
            os.close(r)
            try:
                hi = os.dup2(w, 200 + (os.getpid() % 700))
                os.close(w)
                _child_setup(job, items[pos:])
                Child(hi, job, task, codes).main(cand, items[pos:], hung)
            finally:
                _os_exit(0)
        os.close(w)
        buf = b""
        loaded = False
        killed = False
        deadline = _monotonic() + _wall(job["load_timeout"])
        eof = False
        while not eof:
            wait = deadline - _monotonic()
            if wait <= 0:
                _kill(pid)
                killed = True
                break
            ready, _, _ = select.select([r], [], [], wait)
            if not ready:
                continue
            chunk = os.read(r, 1 << 16)
            if not chunk:
                eof = True
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    msg = json.loads(line)
                except ValueError:  # the candidate wrote into our pipe: treat as a crash
                    _kill(pid)
                    eof = True
                    break
                if msg[0] == "L":
                    loaded = True
                    if msg[1] is not None:
                        res["load"] = msg[1] if not loaded_once else "candidate failed to reload: " + msg[1]
                else:
                    if msg[0] == "c":
                        res["calls"].append(msg[1:])
                        timed_out = msg[2] == "!timeout"
                    else:
                        res["execs"].append(msg[1:])
                        timed_out = msg[2] == "timeout"
                    hung += timed_out
                    pos += 1
                if pos < _len(items):
                    deadline = _monotonic() + _wall(_timeout(job, hung, items[pos]))
        os.close(r)
        if killed:
            _kill(pid)
        status = _reap(pid, res)
        _kill(pid)  # grandchildren left in its process group
        if res["load"] is not None:
            break
        if not loaded:
            res["load"] = ("timed out while loading (%gs)" % job["load_timeout"]) if killed \
                else "the process died while loading (%s)" % status
            break
        loaded_once = True
        if pos >= _len(items):
            break
        # the child died or hung on items[pos]: record it and continue in a fresh child
        item = items[pos]
        t = _timeout(job, hung, item)
        if killed:
            outcome, out, msg = "timeout", "!timeout", "timed out after %gs (killed at %gs wall-clock)" % (t, _wall(t))
        else:
            outcome, out, msg = "error", "!ProcessDied", "the candidate process died (%s)" % status
        if item[0] == "c":
            label = task["entry_point"] + "(" + task["calls"][item[1]][:150] + ")"
            res["calls"].append([item[1], out, [[ci, outcome, label + ": " + msg] for ci in item[2]], None, t])
        else:
            res["execs"].append([item[1], outcome, msg, None, t])
        hung += outcome == "timeout"
        pos += 1
        if pos >= _len(items):
            break
    res["t"] = round(_monotonic() - started, 4)
    res["cpu"] = round(res["cpu"], 4)
    return res


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        job = json.load(f)
    codes = [_compile_items(task) for task in job["tasks"]]
    gc.collect()
    gc.freeze()
    out = sys.stdout
    for index, cand in enumerate(job["candidates"]):
        res = run_candidate(job, codes, index, cand)
        out.write(json.dumps(res) + "\n")
        out.flush()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.write(json.dumps({"harness_cpu": round(usage.ru_utime + usage.ru_stime, 4)}) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
