"""MultiLoader: read a dataset in several processes without a framework DataLoader.

Each worker process iterates the whole dataset with ``WORKER`` and
``NUM_WORKERS`` set in its environment (so ``split_by_worker`` gives it its
own shards) and sends the samples back through a bounded multiprocessing
queue. ppwebdataset 0.2.86 used ZMQ sockets for this; this version needs
only the standard library and keeps the same names.

Samples cross the process boundary pickled, between this process and the
children it started; no data from elsewhere is unpickled.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import pickle
import queue
import traceback
import weakref

logger = logging.getLogger(__name__)

the_protocol = pickle.HIGHEST_PROTOCOL

all_pids: weakref.WeakSet[object] = weakref.WeakSet()

# How long the loader waits on the queue before checking that workers are alive.
_POLL_SECONDS = 0.5


class EOF:
    """Marks the end of one worker's stream (``EOF(index=i)``)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


class WorkerError:
    """A worker's exception, sent to the loader, which raises it."""

    def __init__(self, index, exn, text):
        self.index = index
        self.exn = exn
        self.text = text


def reader(dataset, sockname, index, num_workers):
    """Worker body: iterate ``dataset`` and put each pickled sample on queue ``sockname``.

    (The parameter keeps upstream's name; it is a multiprocessing queue here.)
    """
    os.environ["WORKER"] = str(index)
    os.environ["NUM_WORKERS"] = str(num_workers)
    out = sockname
    try:
        for sample in dataset:
            # Pickle here, not in the queue's feeder thread, so failures are reported.
            out.put(pickle.dumps(sample, protocol=the_protocol))
    except BaseException as exn:
        text = traceback.format_exc()
        try:
            payload = pickle.dumps(WorkerError(index, exn, text), protocol=the_protocol)
        except Exception:
            payload = pickle.dumps(WorkerError(index, None, text), protocol=the_protocol)
        out.put(payload)
    out.put(pickle.dumps(EOF(index=index), protocol=the_protocol))


class MultiLoader:
    """Iterate ``dataset`` in ``workers`` processes and yield the samples as they arrive.

    The order across workers is not deterministic. A worker exception is
    re-raised in the loader (with the worker's traceback), and a worker that
    dies without finishing raises RuntimeError. Stopping the iteration early
    (``break``) terminates the workers. ``prefix`` is accepted for
    compatibility and unused; ``queue_size`` bounds the samples in flight and
    ``context`` picks the multiprocessing start method.
    """

    def __init__(
        self,
        dataset,
        workers=4,
        verbose=False,
        nokill=False,
        prefix="/tmp/_multi-",
        *,
        queue_size=None,
        context=None,
    ):
        if workers < 1:
            raise ValueError(f"MultiLoader needs at least one worker, got {workers}")
        self.dataset = dataset
        self.workers = workers
        self.verbose = verbose
        self.nokill = nokill
        self.prefix = prefix
        self.queue_size = queue_size or 16 * workers
        self.context = context
        self.pids = []
        self.socket = None

    def kill(self):
        """Terminate the workers of the current iteration, if any."""
        for proc in self.pids:
            if proc is None:
                continue
            if proc.is_alive():
                if self.verbose:
                    logger.info("terminating worker pid %s", proc.pid)
                proc.terminate()
            proc.join(5.0)
        self.pids = []
        if self.socket is not None:
            self.socket.cancel_join_thread()
            self.socket.close()
        self.socket = None

    def __iter__(self):
        if not self.nokill:
            self.kill()
        ctx = mp.get_context(self.context)
        q = ctx.Queue(maxsize=self.queue_size)
        procs = [
            ctx.Process(target=reader, args=(self.dataset, q, i, self.workers), daemon=True)
            for i in range(self.workers)
        ]
        self.pids = procs
        self.socket = q
        all_pids.update(procs)
        for proc in procs:
            proc.start()
        return self._results(q, procs)

    def _results(self, q, procs):
        running = set(range(len(procs)))
        quiet = {}
        try:
            while running:
                try:
                    data = q.get(timeout=_POLL_SECONDS)
                except queue.Empty:
                    self._check_alive(procs, running, quiet)
                    continue
                msg = pickle.loads(data)
                if isinstance(msg, EOF):
                    if self.verbose:
                        logger.info("MultiLoader worker %d finished", msg.index)
                    running.discard(msg.index)
                    procs[msg.index].join(5.0)
                elif isinstance(msg, WorkerError):
                    summary = repr(msg.exn) if msg.exn is not None else "see traceback"
                    err = RuntimeError(f"MultiLoader worker {msg.index} failed: {summary}\n{msg.text}")
                    if msg.exn is not None:
                        raise err from msg.exn
                    raise err
                else:
                    yield msg
        finally:
            for proc in procs:
                if proc.is_alive():
                    proc.terminate()
                proc.join(5.0)
            q.cancel_join_thread()
            q.close()
            if self.socket is q:
                self.socket = None
                self.pids = []

    @staticmethod
    def _check_alive(procs, running, quiet):
        for i in sorted(running):
            proc = procs[i]
            if proc.is_alive():
                continue
            # A normal exit queues EOF first; give it a few polls to arrive.
            quiet[i] = quiet.get(i, 0) + 1
            if proc.exitcode != 0 or quiet[i] > 10:
                raise RuntimeError(
                    f"MultiLoader worker {i} (pid {proc.pid}) exited with code {proc.exitcode} "
                    "before finishing its data"
                )


__all__ = ["EOF", "MultiLoader", "WorkerError", "reader"]
