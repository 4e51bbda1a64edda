"""Where per-task work runs: a local thread pool (default) or Ray on a cluster.

Tasks are independent, so a batch run is a map over tasks. Threads suffice locally because
the heavy work happens in model servers and sandboxed subprocesses, not in this process.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Callable, Iterable, Iterator, TypeVar

from assay.errors import UserError

T = TypeVar("T")
R = TypeVar("R")


def map_unordered(fn: Callable[[T], R], items: Iterable[T], workers: int = 1,
                  executor: str = "local") -> Iterator[tuple[T, R | BaseException]]:
    """Yield (item, result or exception) as each finishes; one failure does not stop the rest."""
    items = list(items)
    if executor == "ray":
        yield from _ray_map(fn, items)
        return
    if executor != "local":
        raise UserError(f"unknown executor {executor!r}; choose 'local' or 'ray'.")
    if workers <= 1:
        for item in items:
            try:
                yield item, fn(item)
            except Exception as e:  # reported per item by the caller
                yield item, e
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(fn, item): item for item in items}
        for fut in as_completed(futures):
            item = futures[fut]
            exc = fut.exception()
            yield item, exc if exc is not None else fut.result()


def _ray_map(fn: Callable[[T], R], items: list[T]) -> Iterator[tuple[T, R | BaseException]]:
    try:
        import ray
    except ImportError:
        raise UserError("the ray executor needs Ray: pip install 'assay[ray]'.") from None
    if not ray.is_initialized():
        ray.init(address="auto" if _ray_cluster_address() else None, ignore_reinit_error=True,
                 log_to_driver=False)
    remote = ray.remote(fn)
    refs = {remote.remote(item): item for item in items}
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        ref = done[0]
        try:
            yield refs[ref], ray.get(ref)
        except Exception as e:
            yield refs[ref], e


def _ray_cluster_address() -> str | None:
    import os

    return os.environ.get("RAY_ADDRESS")
