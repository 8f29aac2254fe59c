"""Dataset descriptors: JSON files listing shards with their sample counts.

A descriptor looks like::

    {
      "wids_version": 1,
      "name": "my-dataset",                  # optional
      "base": "https://host/data/",          # optional; default: the descriptor's directory
      "shardlist": [{"url": "shard-000.tar", "nsamples": 1000,
                     "md5sum": "...", "filesize": 123}, ...],
      "datasets": [                          # optional sub-datasets
        {"name": "extra", "shardlist": [...]},
        {"source_url": "other.json", "weight": 0.5}
      ]
    }

Relative shard URLs are resolved against ``base``, or against the directory of
the file they were read from. A ``source_url`` may not point at a descriptor
that has a ``source_url`` of its own.

Shard URLs read from a remote descriptor (any source that is not a local path)
are marked as data (``ppwebdataset._settings.DataURL``): a ``pipe:`` URL among
them runs only with ``PPWDS_ALLOW_PIPE=1``.
"""

from __future__ import annotations

import copy
import io
import json
import operator
import os
import posixpath
from urllib.parse import urlparse, urlunparse

from ppwebdataset import _settings

from .wids_dl import download_and_open, fetch_bytes


def urldir(url):
    """The directory part of a URL or path (``"a/b/c.json"`` → ``"a/b"``)."""
    parsed = urlparse(url)
    if len(parsed.scheme) == 1:  # a Windows drive letter, not a scheme
        return os.path.dirname(url)
    return parsed._replace(path=posixpath.dirname(parsed.path)).geturl()


def urlmerge(base, url):
    """Resolve ``url`` against ``base`` like ``os.path.join`` on the path part.

    Scheme and host come from ``url`` when it has them, else from ``base``; an
    absolute path in ``url`` replaces the base path; query and fragment come from
    ``url`` only.
    """
    parsed_base = urlparse(base)
    parsed_url = urlparse(url)
    if parsed_url.scheme and parsed_url.scheme != parsed_base.scheme:
        return url
    if parsed_url.path.startswith("/"):
        path = parsed_url.path
    elif parsed_base.path or parsed_url.path:
        path = posixpath.normpath(posixpath.join(parsed_base.path, parsed_url.path))
    else:
        path = ""
    return urlunparse(
        (
            parsed_url.scheme or parsed_base.scheme,
            parsed_url.netloc or parsed_base.netloc,
            path,
            parsed_url.params,
            parsed_url.query,
            parsed_url.fragment,
        )
    )


def check_shards(shards):
    """Checks that ``shards`` is a list of dicts, each with a ``url`` and an int ``nsamples``."""
    if not isinstance(shards, list):
        raise ValueError(f"a shardlist must be a list, got {type(shards).__name__}")
    for i, shard in enumerate(shards):
        if not isinstance(shard, dict):
            raise ValueError(f"shardlist entry {i} must be a dict, got {shard!r}")
        if "url" not in shard or not isinstance(shard["url"], str):
            raise ValueError(f"shardlist entry {i} has no 'url' string: {shard!r}")
        n = shard.get("nsamples")
        try:
            ok = not isinstance(n, bool) and operator.index(n) >= 0
        except TypeError:
            ok = False
        if not ok:
            raise ValueError(f"shardlist entry {i} ({shard['url']}) needs a non-negative int 'nsamples'")
    return shards


def set_all(shards, key, value):
    """Sets ``key`` to ``value`` on every dict that does not have it (no-op for None)."""
    if value is None:
        return
    for x in shards:
        if key not in x:
            x[key] = value


def load_remote_dsdesc_raw(source):
    """Reads a descriptor from a path, URL or open stream, without resolving it."""
    if isinstance(source, io.IOBase) or hasattr(source, "read"):
        data = source.read()
    else:
        data = fetch_bytes(os.fspath(source))
    try:
        desc = json.loads(data)
    except ValueError as e:
        raise ValueError(f"dataset descriptor {source!r} is not valid JSON: {e}") from None
    if not isinstance(desc, dict):
        raise ValueError(f"dataset descriptor {source!r} must be a JSON object")
    return desc


def rebase_shardlist(shardlist, base):
    """Resolves every shard URL against ``base`` (in place)."""
    if base is None:
        return shardlist
    for shard in shardlist:
        shard["url"] = urlmerge(base, shard["url"])
    return shardlist


def _check_version(desc, where):
    if "wids_version" not in desc:
        raise ValueError(f"no 'wids_version' in dataset descriptor {where}")
    if desc["wids_version"] != 1:
        raise ValueError(f"unknown wids_version {desc['wids_version']!r} in dataset descriptor {where}")


def resolve_dsdesc(dsdesc, *, options=None, base=None):
    """Flattens a descriptor into one resolved ``shardlist``.

    ``base`` is where relative URLs of the top level resolve to; a ``base`` key in
    the descriptor, itself resolved against ``base``, takes precedence. Sub-dataset
    shards get ``dataset`` (the sub-dataset name), ``weight`` and ``source_url``.
    The input is not modified.
    """
    if not isinstance(dsdesc, dict):
        raise ValueError("a dataset descriptor must be a dict")
    dsdesc = copy.deepcopy(dict(dsdesc, **(options or {})))
    _check_version(dsdesc, dsdesc.get("name", ""))
    own_base = dsdesc.get("base")
    if own_base is not None:
        base = urlmerge(base, own_base) if base else own_base
    shardlist = check_shards(dsdesc.get("shardlist", []))
    rebase_shardlist(shardlist, base)
    set_all(shardlist, "weight", dsdesc.get("weight"))
    set_all(shardlist, "name", dsdesc.get("name"))
    datasets = dsdesc.get("datasets", [])
    if not isinstance(datasets, list):
        raise ValueError("'datasets' in a dataset descriptor must be a list")
    for component in datasets:
        if not isinstance(component, dict):
            raise ValueError(f"'datasets' entries must be dicts, got {component!r}")
        weight = component.get("weight")
        source_url = None
        if "source_url" in component:
            source_url = component["source_url"]
            if base:
                source_url = urlmerge(base, source_url)
            component = load_remote_dsdesc_raw(source_url)
            if "source_url" in component:
                raise ValueError(f"double indirection in dataset description {source_url}")
        if "shardlist" not in component:
            raise ValueError(f"no shardlist in sub-dataset {source_url or component.get('name')!r}")
        sub = check_shards(copy.deepcopy(component["shardlist"]))
        subbase = component.get("base")
        if source_url is not None:
            here = urldir(source_url)
            subbase = urlmerge(here, subbase) if subbase else here
        elif subbase is not None and base:
            subbase = urlmerge(base, subbase)
        elif subbase is None:
            subbase = base
        rebase_shardlist(sub, subbase)
        if source_url is not None and _settings.is_remote(source_url):
            mark_from_data(sub, source_url)
        set_all(sub, "weight", weight)
        set_all(sub, "source_url", source_url)
        set_all(sub, "dataset", component.get("name"))
        shardlist.extend(sub)
    if len(shardlist) == 0:
        raise ValueError("no shards found in the dataset descriptor")
    dsdesc["shardlist"] = shardlist
    return dsdesc


def mark_from_data(shardlist, origin):
    """Mark every shard URL as read from ``origin`` (see the module docs); in place."""
    for shard in shardlist:
        shard["url"] = _settings.from_data(shard["url"], str(origin))
    return shardlist


def load_dsdesc_and_resolve(source, *, options=None, base=None):
    """:func:`load_remote_dsdesc_raw` followed by :func:`resolve_dsdesc`."""
    desc = resolve_dsdesc(load_remote_dsdesc_raw(source), base=base, options=options)
    if _settings.is_remote(source):
        mark_from_data(desc["shardlist"], source)
    return desc


__all__ = [
    "check_shards",
    "download_and_open",
    "load_dsdesc_and_resolve",
    "load_remote_dsdesc_raw",
    "rebase_shardlist",
    "resolve_dsdesc",
    "set_all",
    "urldir",
    "urlmerge",
]
