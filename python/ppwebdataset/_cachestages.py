"""Caching stages: ``Cached`` (in memory) and ``LMDBCached``.

Private: re-exported by ``ppwebdataset.filters`` (see ``_curry``).
"""

from __future__ import annotations

import importlib
import os
import pickle
import types

from . import utils
from .utils import PipelineStage


class Cached(PipelineStage):
    """Stage: remember the first complete pass in memory and replay it afterwards.

    A pass that stops early is not cached. Each process (DataLoader worker)
    keeps its own cache of the samples it saw.
    """

    def __init__(self):
        super().__init__()
        self.cached = None

    def run(self, source):
        if self.cached is not None:
            yield from self.cached
            return
        temp = []
        for sample in source:
            temp.append(sample)
            yield sample
        self.cached = temp


_LMDB_ENVS: dict[str, object] = {}


class LMDBCached(PipelineStage):
    """Stage: cache a complete pass in an LMDB database and replay it on later runs.

    Samples are stored with ``pickler.dumps`` and read back with
    ``pickler.loads`` (``pickle`` by default): choosing this stage means
    trusting the database file, since unpickling can run code. Keep it in a
    directory only you can write to. Needs the optional ``lmdb`` package.

    Entries are keyed by rank, worker and position (not by ``__key__``, which
    repeats across shards), so each DataLoader worker caches and replays its
    own part, in the original order. The database is opened in the process
    that iterates, so the stage can be sent to workers.
    """

    def __init__(self, fname, map_size=1e12, pickler=pickle, chunksize=500):
        try:
            import lmdb  # noqa: F401
        except ImportError as exn:
            raise ImportError("LMDBCached needs the optional 'lmdb' package: pip install lmdb") from exn
        self.fname = os.fspath(fname)
        self.map_size = int(map_size)
        self.pickler = pickler
        self.chunksize = chunksize
        self._db = None
        self._pid = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_db"] = None
        state["_pid"] = None
        if isinstance(self.pickler, types.ModuleType):  # modules do not pickle; their names do
            state["pickler"] = ("module", self.pickler.__name__)
        return state

    def __setstate__(self, state):
        pickler = state.get("pickler")
        if isinstance(pickler, tuple) and len(pickler) == 2 and pickler[0] == "module":
            state["pickler"] = importlib.import_module(pickler[1])
        self.__dict__.update(state)

    @property
    def db(self):
        """The LMDB environment of this process (opened on first use)."""
        import lmdb

        pid = os.getpid()
        if self._db is None or self._pid != pid:
            # LMDB allows one open environment per file and process: share it.
            where = (os.path.realpath(self.fname), pid)
            env = _LMDB_ENVS.get(where)
            if env is None:
                env = lmdb.open(self.fname, readonly=False, map_size=self.map_size, subdir=True, lock=True)
                _LMDB_ENVS[where] = env
            self._db, self._pid = env, pid
        return self._db

    @staticmethod
    def _prefix():
        rank, world, worker, nworkers = utils.paddle_worker_info()
        return f"{world}.{rank}.{nworkers}.{worker}:".encode()

    def is_complete(self):
        """True when this rank/worker's part has been stored completely."""
        with self.db.begin(write=False) as txn:
            return txn.get(b"_" + self._prefix()) is not None

    def add_samples(self, samples):
        """Store ``(key, sample)`` pairs (keys are ``str``)."""
        with self.db.begin(write=True) as txn:
            for key, sample in samples:
                txn.put(key.encode(), self.pickler.dumps(sample))

    def run(self, source):
        prefix = self._prefix()
        if self.is_complete():
            with self.db.begin(write=False) as txn:
                cursor = txn.cursor()
                if cursor.set_range(prefix):
                    for key, value in cursor:
                        if not key.startswith(prefix):
                            break
                        yield self.pickler.loads(value)
            return
        self._clear(prefix)
        buffer = []
        for i, sample in enumerate(source):
            buffer.append((f"{prefix.decode()}{i:012d}", sample))
            if len(buffer) >= self.chunksize:
                self.add_samples(buffer)
                buffer = []
            yield sample
        if buffer:
            self.add_samples(buffer)
        with self.db.begin(write=True) as txn:
            txn.put(b"_" + prefix, b"1")

    def _clear(self, prefix):
        # Entries of an earlier, interrupted pass must not be replayed.
        with self.db.begin(write=True) as txn:
            cursor = txn.cursor()
            if cursor.set_range(prefix):
                while cursor.key().startswith(prefix):
                    if not cursor.delete():
                        break

    def close(self):
        """Close the database (it reopens on the next use)."""
        if self._db is not None:
            for where, env in list(_LMDB_ENVS.items()):
                if env is self._db:
                    del _LMDB_ENVS[where]
            self._db.close()
            self._db = None
