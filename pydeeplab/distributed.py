"""Many images: the same per-image work in this process, in local worker processes, or on a Dask cluster.

``pydeeplab segment`` and ``pydeeplab evaluate`` split their images into
partitions and hand each to a task function (:func:`segment_partition`,
:func:`evaluate_partition_task`); where the task runs is an :class:`Executor`:

* :class:`InlineExecutor` (``--jobs 1``): here, with the segmenter already loaded;
* :class:`PoolExecutor` (``--jobs N``): N spawned processes of this machine
  (the standard library's process pool, so local runs need no Dask);
* :class:`DaskExecutor` (``--scheduler ADDRESS``): the workers of a Dask
  distributed cluster (``pip install pydeeplab[dask]``), started with Dask's
  own ``dask scheduler`` / ``dask worker`` or any deployment of them.

Every process that runs tasks keeps one :class:`pydeeplab.Segmenter` per model
(:func:`worker_segmenter`, keyed by the model file's SHA-256 and the run's
options), so a worker loads the model once however many partitions it gets. A
Dask run also ships the model's bytes to every worker once, so workers need
not see the model file; images and output folders must be visible to the
workers under the same paths (a shared file system).

At most a few partitions per worker are in flight at a time, so the driver's
memory stays flat however long the list of images. Results are integers
(confusion matrices) or files written atomically, so a run gives the same
result bit for bit wherever its tasks ran and in whatever order they finished.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import write_bytes
from .errors import ModelError


#: Seconds to wait for a Dask scheduler to answer before giving up.
CONNECT_TIMEOUT = 30.0


class SchedulerError(RuntimeError):
    """A Dask scheduler that cannot be used (dask missing, address unreachable); the message says which."""


@dataclass(frozen=True)
class ModelSpec:
    """What a worker needs to build the same segmenter as the driver: the model file and the options."""

    path: str
    sha256: str
    backend: str = "numba"
    num_threads: int | None = None
    keep_aspect: bool = False
    #: the Segmenter's keyword settings (mean, std, labels, output, resample) as hashable pairs
    settings: tuple = ()

    @classmethod
    def of(cls, segmenter, num_threads: int | None = None) -> ModelSpec:
        """The spec of a loaded :class:`pydeeplab.Segmenter` (``num_threads``: kernel threads per worker)."""
        digest = segmenter.info.sha256 or hashlib.sha256(Path(segmenter.path).read_bytes()).hexdigest()
        settings = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in segmenter.settings.items())
        return cls(str(Path(segmenter.path).resolve()), digest, segmenter.backend, num_threads,
                   segmenter.keep_aspect, settings)


_SEGMENTERS: dict[ModelSpec, Any] = {}
_SEGMENTERS_LOCK = threading.Lock()  # a Dask worker may run several tasks at once in threads


def worker_segmenter(spec: ModelSpec, content: bytes | None = None):
    """This process's :class:`pydeeplab.Segmenter` for ``spec``, loaded on first use.

    The model is read from ``spec.path`` when that file has the expected
    SHA-256; otherwise from ``content`` (the model's bytes), saved once per
    machine under the temporary folder. Raises :class:`ModelError` when neither fits.
    """
    with _SEGMENTERS_LOCK:
        seg = _SEGMENTERS.get(spec)
        if seg is None:
            from .segment import Segmenter

            seg = Segmenter(_model_file(spec, content), backend=spec.backend, num_threads=spec.num_threads,
                            keep_aspect=spec.keep_aspect, **dict(spec.settings))
            _SEGMENTERS[spec] = seg
        return seg


@contextmanager
def remembered(spec: ModelSpec, segmenter) -> Iterator[None]:
    """Within the block, ``segmenter`` (already loaded by the driver) is the one this process uses for ``spec``."""
    with _SEGMENTERS_LOCK:
        previous = _SEGMENTERS.get(spec)
        _SEGMENTERS[spec] = segmenter
    try:
        yield
    finally:
        with _SEGMENTERS_LOCK:
            if previous is None:
                _SEGMENTERS.pop(spec, None)
            else:
                _SEGMENTERS[spec] = previous


def _model_file(spec: ModelSpec, content: bytes | None) -> Path:
    p = Path(spec.path)
    try:
        if p.is_file() and hashlib.sha256(p.read_bytes()).hexdigest() == spec.sha256:
            return p
    except OSError:
        pass
    if content is None:
        raise ModelError(f"{p}: this worker cannot read the model (or the file differs from the driver's, "
                         f"SHA-256 {spec.sha256})")
    if hashlib.sha256(content).hexdigest() != spec.sha256:
        raise ModelError(f"the model bytes received do not have SHA-256 {spec.sha256}")
    # Named after the digest's folder and the original file name, so the model keeps its name in summaries.
    local = Path(tempfile.gettempdir()) / "pydeeplab-models" / spec.sha256[:32] / p.name
    if not (local.is_file() and local.stat().st_size == len(content)):
        local.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(local, content)
    return local


# -- the task functions: module-level, so that workers import them by name -----------------------


def segment_partition(jobs: Sequence, spec: ModelSpec, protected: frozenset[str], content: bytes | None = None) -> list:
    """Run :func:`pydeeplab.segment.run_job` on each job; a list of :class:`pydeeplab.segment.JobResult`."""
    from .segment import run_job

    seg = worker_segmenter(spec, content)
    return [run_job(seg, job, protected) for job in jobs]


def evaluate_partition_task(samples: Sequence, spec: ModelSpec, lookup, content: bytes | None = None):
    """Run :func:`pydeeplab.evaluate.evaluate_partition` with this worker's segmenter."""
    from .evaluate import evaluate_partition

    return evaluate_partition(worker_segmenter(spec, content), samples, lookup)


# -- executors ------------------------------------------------------------------------------------


class Executor:
    """Where tasks run: ``submit`` a function, wait for the first results, ``close``."""

    workers: int = 1

    def share(self, content: bytes) -> Any:
        """A handle to pass to tasks instead of ``content`` (None: tasks read the model file themselves)."""
        return None

    def submit(self, fn: Callable, *args: Any) -> Any:
        raise NotImplementedError

    def wait_first(self, futures: set) -> set:
        """The futures of ``futures`` that are done, waiting until there is at least one."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InlineExecutor(Executor):
    """Runs each task at once in this process (tasks find the driver's segmenter via :func:`remembered`)."""

    def submit(self, fn: Callable, *args: Any) -> concurrent.futures.Future:
        fut: concurrent.futures.Future = concurrent.futures.Future()
        try:
            fut.set_result(fn(*args))
        except Exception as exc:  # delivered like a remote failure
            fut.set_exception(exc)
        return fut

    def wait_first(self, futures: set) -> set:
        return set(futures)


class PoolExecutor(Executor):
    """``workers`` processes of this machine, spawned (Numba's thread pool does not survive a fork)."""

    def __init__(self, workers: int):
        import multiprocessing

        self.workers = workers
        self._pool = concurrent.futures.ProcessPoolExecutor(max_workers=workers,
                                                            mp_context=multiprocessing.get_context("spawn"))

    def submit(self, fn: Callable, *args: Any) -> concurrent.futures.Future:
        return self._pool.submit(fn, *args)

    def wait_first(self, futures: set) -> set:
        return concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_COMPLETED).done

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor(Executor):
    """The workers of the Dask distributed scheduler at ``address`` (e.g. ``tcp://10.0.0.5:8786``)."""

    def __init__(self, address: str, timeout: float | None = None):
        try:
            from distributed import Client
        except ImportError:
            raise SchedulerError("--scheduler needs Dask distributed: pip install 'pydeeplab[dask]'") from None
        try:
            self.client = Client(address, timeout=CONNECT_TIMEOUT if timeout is None else timeout,
                                 set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise SchedulerError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        self.workers = max(1, sum(self.client.nthreads().values()))
        from distributed import as_completed

        # Tied to this client's event loop: Dask's module-level wait() would look for a default client.
        self._done = as_completed(loop=self.client.loop)

    def share(self, content: bytes) -> Any:
        # Sent once to every worker; tasks then receive the worker's own copy, not a new transfer.
        return self.client.scatter(content, broadcast=True, hash=True)

    def submit(self, fn: Callable, *args: Any) -> Any:
        # pure=False: every partition is its own task even when two look alike.
        fut = self.client.submit(fn, *args, pure=False)
        self._done.add(fut)
        return fut

    def wait_first(self, futures: set) -> set:
        done = {next(self._done)}
        done.update(self._done.next_batch(block=False))
        return done

    def close(self) -> None:
        self.client.close()


def make_executor(jobs: int = 1, scheduler: str | None = None) -> Executor:
    """The executor for ``--jobs`` / ``--scheduler``: Dask when a scheduler is named, else local."""
    if scheduler:
        return DaskExecutor(scheduler)
    return PoolExecutor(jobs) if jobs > 1 else InlineExecutor()


def partition(items: Sequence, workers: int, size: int | None = None) -> list[list]:
    """``items`` in consecutive partitions: ``size`` each, by default about four per worker, at most 8 items."""
    n = len(items)
    if size is None:
        size = max(1, min(8, -(-n // (4 * max(1, workers)))))
    return [list(items[i: i + size]) for i in range(0, n, size)]


def run_partitions(executor: Executor, fn: Callable, partitions: Iterable[list], *args: Any,
                   window: int | None = None) -> Iterator[tuple[list, Any, BaseException | None]]:
    """Submit ``fn(partition, *args)`` per partition; yield (partition, result, error) as each finishes.

    At most ``window`` (default: 2 per worker) are submitted and not yet
    collected at a time. A task that raised (or whose worker died) gives its
    exception as ``error`` and None as result; the others go on.
    """
    window = window or max(2, 2 * executor.workers)
    todo = iter(partitions)
    pending: dict[Any, list] = {}

    def fill() -> None:
        while len(pending) < window:
            part = next(todo, None)
            if part is None:
                return
            pending[executor.submit(fn, part, *args)] = part

    fill()
    while pending:
        for fut in executor.wait_first(set(pending)):
            part = pending.pop(fut)
            try:
                result, error = fut.result(), None
            except Exception as exc:  # remote failure: reported with the partition's items
                result, error = None, exc
            yield part, result, error
        fill()


def default_threads(jobs: int, scheduler: str | None, threads: int | None) -> int | None:
    """Kernel threads per worker: as asked, else the cores shared by local jobs, else 1 on a cluster
    (Dask runs one task per worker thread: parallelism comes from the workers)."""
    if threads is not None:
        return threads
    if scheduler:
        return 1
    if jobs > 1:
        return max(1, (os.cpu_count() or 1) // jobs)
    return None


# -- the two drivers -----------------------------------------------------------------------------


def evaluate_dataset(segmenter, dataset, jobs: int = 1, scheduler: str | None = None,
                     threads: int | None = None, progress: bool = False,
                     on_broken: Callable[[str], None] | None = None):
    """Evaluate ``segmenter`` on ``dataset`` (:class:`pydeeplab.datasets.Dataset`): a :class:`DatasetResult`.

    ``dataset.lookup`` must map its masks to the segmenter's class ids (see
    :func:`pydeeplab.datasets.check_label_set`). Runs here (``jobs`` 1), in
    ``jobs`` local processes, or on the Dask cluster at ``scheduler``; the
    confusion matrix is the same int64 sum in every case. Raises
    :class:`SchedulerError` when a task fails for another reason than a broken
    file (e.g. a worker that cannot load the model). ``on_broken`` is called
    with the message of each broken sample as soon as its partition is back.
    """
    import numpy as np
    from tqdm import tqdm

    from .evaluate import DatasetResult, PartitionResult

    c = len(segmenter.class_names)
    total = PartitionResult(np.zeros((c, c), dtype=np.int64))
    spec = ModelSpec.of(segmenter, default_threads(jobs, scheduler, threads))
    with ExitStack() as stack:
        executor = stack.enter_context(make_executor(min(jobs, max(1, len(dataset.samples))), scheduler))
        bar = stack.enter_context(tqdm(total=len(dataset.samples), desc="evaluate", unit="image",
                                       disable=None if progress else True, leave=False))
        content = executor.share(Path(spec.path).read_bytes()) if scheduler else None
        if isinstance(executor, InlineExecutor):
            stack.enter_context(remembered(spec, segmenter))
        parts = partition(dataset.samples, executor.workers)
        for part, result, error in run_partitions(executor, evaluate_partition_task, parts, spec,
                                                  dataset.lookup, content):
            if error is not None:
                raise SchedulerError(f"evaluating {len(part)} images from {part[0].image} failed on a worker: "
                                     f"{type(error).__name__}: {error}") from error
            total.add(result)
            if on_broken is not None:
                for message in result.broken:
                    on_broken(message)
            bar.update(len(part))
    return DatasetResult(model=segmenter.info.name, dataset=f"{dataset.layout} {dataset.root}", split=dataset.split,
                         label_set=dataset.label_set, class_names=tuple(segmenter.class_names),
                         confusion=total.confusion, images=total.images, broken=total.broken)


def segment_jobs(segmenter, jobs: list, workers: int = 1, scheduler: str | None = None,
                 threads: int | None = None, protected: frozenset[str] | None = None) -> Iterator:
    """Run ``jobs`` (:class:`pydeeplab.segment.Job`), yielding a :class:`JobResult` per job as each completes.

    Here (``workers`` 1), in local processes, or on the Dask cluster at
    ``scheduler``; every output is written once, atomically, by whoever runs
    its job. Inputs are never written (nor the resolved paths in ``protected``,
    by default the jobs' inputs).
    """
    from .segment import JobResult

    if protected is None:
        protected = frozenset(str(j.input.resolve()) for j in jobs)
    for d in {p.parent for j in jobs for p in j.outputs.values()}:
        d.mkdir(parents=True, exist_ok=True)
    if not jobs:
        return
    spec = ModelSpec.of(segmenter, default_threads(workers, scheduler, threads))
    local_workers = 1 if scheduler else min(workers, len(jobs))
    with ExitStack() as stack:
        executor = stack.enter_context(make_executor(local_workers, scheduler))
        content = executor.share(Path(spec.path).read_bytes()) if scheduler else None
        if isinstance(executor, InlineExecutor):
            stack.enter_context(remembered(spec, segmenter))
        # One job per task: an image's outputs are written as soon as it is done (what --resume relies on).
        for part, results, error in run_partitions(executor, segment_partition, partition(jobs, 1, 1), spec,
                                                   protected, content):
            if error is not None:
                for job in part:
                    yield JobResult(job, error=f"{job.input}: worker failed: {type(error).__name__}: {error}")
            else:
                yield from results
