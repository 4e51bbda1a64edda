"""Timing: the same loop for reference and candidate, in the same process.

Two times per callable, both in milliseconds per call:

- `device`: like `triton.testing.do_bench`: each call is queued behind an L2 flush, between
  two CUDA events on the current stream, with no host sync per call; one device-wide sync at
  the end. Measures the kernels, not the launch overhead.
- `synced`: KernelBench's per-call time: flush, wait for the device, start event, call, a
  device-wide `synchronize()` (so work on any stream is counted), end event. The GPU is idle
  when the start event is recorded, so the host's launch cost is inside the window, as it is in
  KernelBench's loop without a flush (its flushed loop queues the call behind the flush, which
  hides up to the flush's length of launch cost). Includes launch and sync latency, which is
  why KernelBench's small-kernel speedups sit closer to 1.

fast_p uses `synced` by default (comparable with KernelBench's published numbers);
`--timing device` switches it. A large gap between the two (synced much slower than device)
means work escaped the timed stream, and is flagged.

Python's garbage collector waits while the calls are timed (as `timeit` does): a full
collection in a process holding torch and Triton takes about 0.1 s, which a timed call would
carry.

The loop only needs a backend with `event()`, `synchronize()` and `flush()`, so the control
flow and arithmetic are tested on CPU with a fake clock; `CudaBackend` is the real one.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

REVIEW_SPEEDUP = 10.0  # speedups above this are flagged for a human to look at
CHECKED_CALL_SLOWER = 3.0  # the checked timed call (new input values) this much slower than the rest is flagged
# measurements per mode added to confirm that flag: one slow call in each of a few measurements can
# be the host's noise (a preemption inside a 10 microsecond call), in each of several more it is not
CONFIRM_SLOW_MEASUREMENTS = 2


class Event(Protocol):
    def record(self) -> None: ...
    def elapsed_time(self, end: "Event") -> float: ...


class Backend(Protocol):
    def event(self) -> Event: ...
    def synchronize(self) -> None: ...
    def flush(self) -> None: ...


@dataclass
class Stats:
    median: float
    mean: float
    std: float
    min: float
    n: int

    @classmethod
    def of(cls, times: Sequence[float]) -> "Stats":
        if not times:
            raise ValueError("no timings")
        return cls(statistics.median(times), statistics.fmean(times),
                   statistics.pstdev(times) if len(times) > 1 else 0.0, min(times), len(times))

    def as_dict(self) -> dict[str, float]:
        return {"median_ms": self.median, "mean_ms": self.mean, "std_ms": self.std,
                "min_ms": self.min, "n": self.n}


def measure(fn: Callable[..., Any], arg_sets: Sequence[Sequence[Any]], backend: Backend, *,
            mode: str = "device", warmup: int = 10, trials: int = 100,
            before: Callable[[int, Sequence[Any]], None] | None = None,
            after: Callable[[int, Sequence[Any]], None] | None = None,
            kept: dict[int, Any] | None = None) -> list[float]:
    """Per-call times (ms) of `fn` over `trials` calls, rotating through `arg_sets`. Before timed
    call i, outside any timed window, `before(i, args)` may give its arguments new values or make
    calls of its own; after it (after its end event), `after(i, args)` may undo that. The outputs
    of the timed calls whose indices are keys of `kept` are put there, to be checked afterwards.
    Every argument set gets at least one of the `warmup` calls, so no timed call is a first use."""
    if mode not in ("device", "synced"):
        raise ValueError(f"unknown timing mode {mode!r}")
    if not arg_sets:
        raise ValueError("need at least one argument set")
    r = len(arg_sets)
    for i in range(max(warmup, r)):
        fn(*arg_sets[i % r])
    backend.synchronize()
    times: list[float] = []
    kept = {} if kept is None else kept
    before = before or (lambda i, args: None)
    after = after or (lambda i, args: None)

    collecting = gc.isenabled()
    gc.disable()  # a full collection in a process holding torch takes ~0.1 s: not inside a timed call
    try:
        if mode == "device":
            pairs = [(backend.event(), backend.event()) for _ in range(trials)]
            for i, (s, e) in enumerate(pairs):
                before(i, arg_sets[i % r])
                backend.flush()
                s.record()
                out = fn(*arg_sets[i % r])
                e.record()
                after(i, arg_sets[i % r])
                if i in kept:
                    kept[i] = out
                out = None  # its memory is free for the next call's output, as in a plain loop
            backend.synchronize()
            times = [s.elapsed_time(e) for s, e in pairs]
        else:
            for i in range(trials):
                s, e = backend.event(), backend.event()
                before(i, arg_sets[i % r])
                backend.flush()
                backend.synchronize()  # the GPU is idle at the start event, so the launch cost counts
                s.record()
                out = fn(*arg_sets[i % r])
                backend.synchronize()
                e.record()
                backend.synchronize()
                after(i, arg_sets[i % r])
                times.append(s.elapsed_time(e))
                if i in kept:
                    kept[i] = out
                out = None
    finally:
        if collecting:
            gc.enable()
    return times


def cv(values: Sequence[float]) -> float:
    """Coefficient of variation (population std / mean); 0 for one value."""
    if len(values) < 2:
        return 0.0
    m = statistics.fmean(values)
    return statistics.pstdev(values) / m if m else math.inf


def speedup(ref_ms: float | None, new_ms: float | None) -> float | None:
    if not ref_ms or not new_ms or new_ms <= 0:
        return None
    return ref_ms / new_ms


def escaped_stream(device_ms: float, synced_ms: float, overhead_ms: float = 0.1) -> bool:
    """True when the synced time is far above the device time: work ran outside the timed stream.
    `overhead_ms` allows for what synced time adds to a legitimate call: its launch cost (tens of
    microseconds for a Python launcher such as Triton's) and the sync's latency."""
    return synced_ms > 2.0 * device_ms + overhead_ms


def slow_when_inputs_change(checked: Sequence[Sequence[Any]], floor_ms: float = 0.02) -> float | None:
    """`checked` holds, per measurement, the time of the call whose inputs had just been given
    new values and the median of the calls on repeated inputs (then, optionally, the mode).
    Returns the smallest ratio of the two when, in every measurement, that call was over
    CHECKED_CALL_SLOWER times and `floor_ms` slower; else None. A kernel that does the work only
    for inputs it has not seen (a cache keyed on their values) is fast on timing's repeated inputs
    and slow there; an honest kernel's time does not care, and a noisy call in every measurement
    is rare, and rarer still once the worker adds CONFIRM_SLOW_MEASUREMENTS more per mode."""
    if not checked:
        return None
    for ms, others, *_ in checked:
        if not others or ms < CHECKED_CALL_SLOWER * others or ms - others < floor_ms:
            return None
    return min(ms / others for ms, others, *_ in checked)


def time_on_new_inputs(checked: Sequence[Sequence[Any]], mode: str) -> float | None:
    """The median time, in `mode`, of the calls whose inputs had just been given new values (the
    entries of `checked` that name their mode): what a kernel that caches by input values costs
    when it must work."""
    times = [c[0] for c in checked if len(c) > 2 and c[2] == mode]
    return statistics.median(times) if times else None


class WallEvent:
    """A CPU stand-in for a CUDA event (host wall clock); used for CPU dry runs and tests."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.t: float | None = None

    def record(self) -> None:
        self.t = self.clock()

    def elapsed_time(self, end: "WallEvent") -> float:
        if self.t is None or end.t is None:
            raise RuntimeError("event not recorded")
        return (end.t - self.t) * 1000.0


class WallBackend:
    """Host-clock backend: on CPU every op is synchronous, so device == synced up to noise."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock

    def event(self) -> WallEvent:
        return WallEvent(self.clock)

    def synchronize(self) -> None:
        pass

    def flush(self) -> None:
        pass


class CudaBackend:
    """CUDA events on the current stream; the flush zeroes a 256 MB buffer (H200 L2 is 50 MB)."""

    def __init__(self, device: str, flush_mb: int = 256) -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.cache = torch.empty(flush_mb * 1024 * 1024, dtype=torch.int8, device=self.device)

    def event(self):
        return self.torch.cuda.Event(enable_timing=True)

    def synchronize(self) -> None:
        self.torch.cuda.synchronize(self.device)

    def flush(self) -> None:
        self.cache.zero_()
