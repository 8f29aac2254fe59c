"""A small least-recently-used mapping that calls a handler for every value it drops."""

from __future__ import annotations

from collections import OrderedDict


class LRUCache:
    """A dict-like cache holding at most ``capacity`` entries.

    Reading an entry makes it the most recent one. When an insertion goes over
    capacity, the least recently used entry is removed and passed to
    ``release_handler(key, value)`` (e.g. to close an open shard).
    """

    def __init__(self, capacity: int, release_handler=None):
        if capacity < 1:
            raise ValueError(f"LRUCache capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.cache: OrderedDict = OrderedDict()
        self.release_handler = release_handler

    def __getitem__(self, key):
        """The value for ``key`` (now the most recent), or None when absent."""
        value = self.cache.get(key)
        if value is not None:
            self.cache.move_to_end(key)
        return value

    def get(self, key, default=None):
        value = self.cache.get(key, default)
        if key in self.cache:
            self.cache.move_to_end(key)
        return value

    def __setitem__(self, key, value):
        if key in self.cache:
            old = self.cache[key]
            self.cache.move_to_end(key)
            self.cache[key] = value
            if old is not value and self.release_handler is not None:
                self.release_handler(key, old)
            return
        self.cache[key] = value
        while len(self.cache) > self.capacity:
            old_key, old_value = self.cache.popitem(last=False)
            if self.release_handler is not None:
                self.release_handler(old_key, old_value)

    def __delitem__(self, key):
        if key in self.cache:
            value = self.cache.pop(key)
            if self.release_handler is not None:
                self.release_handler(key, value)

    def __len__(self):
        return len(self.cache)

    def __contains__(self, key):
        return key in self.cache

    def items(self):
        return self.cache.items()

    def keys(self):
        return self.cache.keys()

    def values(self):
        return self.cache.values()

    def clear(self):
        """Drops every entry, calling the release handler for each."""
        while self.cache:
            key, value = self.cache.popitem(last=False)
            if self.release_handler is not None:
                self.release_handler(key, value)

    def __del__(self):
        # The handler may be gone during interpreter shutdown; nothing useful to do then.
        try:
            self.clear()
        except Exception:
            pass


__all__ = ["LRUCache"]
