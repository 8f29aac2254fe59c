//! `ShardIndex`: random access to the samples of one local, uncompressed tar shard.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use ppwds_core::index::{IndexSource, Member, OpenOptions, ShardIndex};
use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::errors::{to_pyerr, ShardContext};

/// Distinct extensions kept as ready-made Python strings; beyond this, strings are made per call.
const EXT_CACHE_LIMIT: usize = 4096;

type ExtCache = HashMap<Box<[u8]>, Py<PyString>, crate::fnv::FnvBuild>;

fn decode_name<'py>(py: Python<'py>, name: &[u8]) -> PyResult<Bound<'py, PyString>> {
    match std::str::from_utf8(name) {
        Ok(s) => Ok(PyString::new(py, s)),
        // Undecodable bytes survive as surrogates, as in tarfile.
        Err(_) => {
            let b = PyBytes::new(py, name);
            Ok(b.call_method1("decode", ("utf-8", "surrogateescape"))?
                .cast_into::<PyString>()?)
        }
    }
}

thread_local! {
    /// Scratch buffer for reading a whole small sample at once.
    static SPAN: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A scratch buffer that grew beyond this is released after use.
const SPAN_KEEP: usize = 64 << 10;

/// Runs `f` with this thread's scratch buffer, or with a fresh one while it is in use (a
/// finalizer run by an allocation inside `f` that reads a sample on the same thread).
fn with_span<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    SPAN.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            let out = f(&mut buf);
            if buf.capacity() > SPAN_KEEP {
                *buf = Vec::new();
            }
            out
        }
        Err(_) => f(&mut Vec::new()),
    })
}

/// Members at least this large are read without holding the GIL.
const DETACH_READ: u64 = 1 << 20;

/// Largest per-sample record of the [`FastTable`]; samples that need more take the general path.
const FAST_REC_MAX: usize = 128;

/// Bytes before the member entries of a fast record: span start u64, span length u32,
/// member count u8, key length u8, schema id u16 ([`NO_SCHEMA`] when none).
const FAST_HEAD: usize = 16;

/// Bytes per member entry: offset in the span u32, size u32, extension id u16.
const FAST_MEMBER: usize = 10;

/// Distinct extension sequences ("schemas") that get a ready-made dict template.
const MAX_SCHEMAS: usize = 256;

const NO_SCHEMA: u16 = u16::MAX;

/// Everything `get_sample` needs for one sample, packed into one fixed-size record per sample
/// (span, member offsets and sizes, extension ids, key), so a random read touches one or
/// two cache lines of the index instead of three scattered arrays and an extension lookup.
///
/// A record with member count 0 sends its sample down the general path (samples that
/// repeat an extension, are not in order within one span, have an undecodable key, or do
/// not fit the record).
struct FastTable {
    stride: usize,
    recs: Vec<u8>,
    /// The distinct extensions; record entries refer to them by position.
    exts: Vec<Box<[u8]>>,
    /// The distinct extension-id sequences of samples, by schema id.
    schemas: Vec<Vec<u16>>,
}

impl FastTable {
    fn build(shard: &ShardIndex) -> FastTable {
        let data = shard.data();
        let n = shard.len();
        let fits = |i: usize| -> Option<usize> {
            let ms = data.sample_members(i);
            let len = FAST_HEAD + ms.len() * FAST_MEMBER + data.key(i).len();
            (len <= FAST_REC_MAX).then_some(len)
        };
        let stride = (0..n).filter_map(fits).max().unwrap_or(FAST_HEAD);
        let stride = stride.next_multiple_of(8);
        let mut recs = vec![0u8; stride * n];
        let mut ids: HashMap<&[u8], u16, crate::fnv::FnvBuild> = HashMap::default();
        let mut exts: Vec<Box<[u8]>> = Vec::new();
        let mut schema_ids: HashMap<Vec<u16>, u16> = HashMap::new();
        let mut schemas: Vec<Vec<u16>> = Vec::new();
        let mut seq = Vec::new();
        for i in 0..n {
            let rec = &mut recs[i * stride..(i + 1) * stride];
            if Self::fill(shard, i, rec, &mut ids, &mut exts).is_none() {
                rec[12] = 0;
                continue;
            }
            let r = FastRec(rec);
            seq.clear();
            seq.extend((0..r.nmembers()).map(|k| r.member(k).2 as u16));
            let id = match schema_ids.get(&seq) {
                Some(&id) => id,
                None if schemas.len() < MAX_SCHEMAS => {
                    let id = schemas.len() as u16;
                    schema_ids.insert(seq.clone(), id);
                    schemas.push(seq.clone());
                    id
                }
                None => NO_SCHEMA,
            };
            rec[14..16].copy_from_slice(&id.to_le_bytes());
        }
        FastTable {
            stride,
            recs,
            exts,
            schemas,
        }
    }

    /// Writes the record of sample `i`; `None` leaves it empty (general path).
    fn fill<'a>(
        shard: &'a ShardIndex,
        i: usize,
        rec: &mut [u8],
        ids: &mut HashMap<&'a [u8], u16, crate::fnv::FnvBuild>,
        exts: &mut Vec<Box<[u8]>>,
    ) -> Option<()> {
        let data = shard.data();
        let ms = data.sample_members(i);
        let key = data.key(i);
        let nm = u8::try_from(ms.len()).ok().filter(|&k| k > 0)?;
        let key_len = u8::try_from(key.len()).ok()?;
        if FAST_HEAD + ms.len() * FAST_MEMBER + key.len() > rec.len()
            || shard.duplicate(i).is_some()
            || std::str::from_utf8(key).is_err()
        {
            return None;
        }
        let lo = ms[0].data_offset;
        let mut end = lo;
        for (k, m) in data.members(i).enumerate() {
            // In order and within one span: the same rule as `read_sample_span`.
            if m.data_offset < end {
                return None;
            }
            end = m.data_offset.checked_add(m.size)?;
            if end - lo > ppwds_core::index::SPAN_LIMIT {
                return None;
            }
            let id = match ids.get(m.ext) {
                Some(&id) => id,
                None => {
                    let id = u16::try_from(exts.len()).ok()?;
                    ids.insert(m.ext, id);
                    exts.push(m.ext.into());
                    id
                }
            };
            let e = &mut rec[FAST_HEAD + k * FAST_MEMBER..][..FAST_MEMBER];
            e[0..4].copy_from_slice(&((m.data_offset - lo) as u32).to_le_bytes());
            e[4..8].copy_from_slice(&(m.size as u32).to_le_bytes());
            e[8..10].copy_from_slice(&id.to_le_bytes());
        }
        let key_at = FAST_HEAD + ms.len() * FAST_MEMBER;
        rec[key_at..key_at + key.len()].copy_from_slice(key);
        rec[0..8].copy_from_slice(&lo.to_le_bytes());
        rec[8..12].copy_from_slice(&((end - lo) as u32).to_le_bytes());
        rec[12] = nm;
        rec[13] = key_len;
        Some(())
    }

    /// The record of sample `i`, or `None` when it takes the general path.
    fn get(&self, i: usize) -> Option<FastRec<'_>> {
        let rec = self.recs.get(i * self.stride..(i + 1) * self.stride)?;
        if rec[12] == 0 {
            return None;
        }
        Some(FastRec(rec))
    }
}

#[derive(Clone, Copy)]
struct FastRec<'a>(&'a [u8]);

impl<'a> FastRec<'a> {
    fn lo(self) -> u64 {
        u64::from_le_bytes(self.0[0..8].try_into().unwrap_or_default())
    }
    fn span(self) -> usize {
        u32::from_le_bytes(self.0[8..12].try_into().unwrap_or_default()) as usize
    }
    fn nmembers(self) -> usize {
        self.0[12] as usize
    }
    /// `(offset in the span, size, extension id)` of member `k`.
    fn member(self, k: usize) -> (usize, usize, usize) {
        let e = &self.0[FAST_HEAD + k * FAST_MEMBER..][..FAST_MEMBER];
        let word = |r: std::ops::Range<usize>| {
            let mut b = [0u8; 4];
            b[..r.len()].copy_from_slice(&e[r]);
            u32::from_le_bytes(b) as usize
        };
        (word(0..4), word(4..8), word(8..10))
    }
    fn key(self) -> &'a [u8] {
        let at = FAST_HEAD + self.nmembers() * FAST_MEMBER;
        &self.0[at..at + self.0[13] as usize]
    }
    fn schema(self) -> Option<usize> {
        let id = u16::from_le_bytes([self.0[14], self.0[15]]);
        (id != NO_SCHEMA).then_some(id as usize)
    }
}

/// What `dataset_sample` adds: `__dataset__`, `__index__`, `__shard__` values and the
/// position in the shard.
struct Extras<'py> {
    dataset: Bound<'py, PyAny>,
    index: Bound<'py, PyAny>,
    shard_url: Bound<'py, PyAny>,
}

/// The keys `dataset_sample` adds after `__key__`, in this order (interned once).
fn dataset_keys(py: Python<'_>) -> [&Bound<'_, PyString>; 4] {
    [
        pyo3::intern!(py, "__dataset__"),
        pyo3::intern!(py, "__index__"),
        pyo3::intern!(py, "__shard__"),
        pyo3::intern!(py, "__shardindex__"),
    ]
}

fn set_extras<'py>(
    py: Python<'py>,
    d: &Bound<'py, PyDict>,
    x: &Extras<'py>,
    j: usize,
) -> PyResult<()> {
    let [dataset, index, shard, shardindex] = dataset_keys(py);
    d.set_item(dataset, &x.dataset)?;
    d.set_item(index, &x.index)?;
    d.set_item(shard, &x.shard_url)?;
    d.set_item(shardindex, j)?;
    Ok(())
}

/// [`set_extras`] for a dict whose `__dataset__` and `__shard__` are already set.
fn set_positions<'py>(
    py: Python<'py>,
    d: &Bound<'py, PyDict>,
    x: &Extras<'py>,
    j: usize,
) -> PyResult<()> {
    let [_, index, _, shardindex] = dataset_keys(py);
    d.set_item(index, &x.index)?;
    d.set_item(shardindex, j)?;
    Ok(())
}

/// Dicts with a schema's keys in sample order (values None): copying one and replacing
/// its values is cheaper than inserting into a fresh dict, which resizes on the way.
struct Templates {
    plain: Py<PyDict>,
    dataset: Py<PyDict>,
}

impl Templates {
    fn build(py: Python<'_>, schema: &[u16], exts: &[Py<PyString>]) -> PyResult<Templates> {
        let plain = PyDict::new(py);
        for &id in schema {
            plain.set_item(exts[id as usize].bind(py), py.None())?;
        }
        plain.set_item(pyo3::intern!(py, "__key__"), py.None())?;
        let dataset = plain.copy()?;
        for k in dataset_keys(py) {
            dataset.set_item(k, py.None())?;
        }
        Ok(Templates {
            plain: plain.unbind(),
            dataset: dataset.unbind(),
        })
    }
}

/// The dataset templates with `__dataset__` and `__shard__` filled in for the values
/// the last `dataset_sample` call passed (one dataset reads a shard under one name).
#[derive(Default)]
struct Filled {
    dataset: Option<Py<PyAny>>,
    shard_url: Option<Py<PyAny>>,
    /// By schema id.
    dicts: Vec<Py<PyDict>>,
}

/// The fast table of a shard and the table's extensions as Python strings.
struct FastParts {
    table: FastTable,
    ext_strs: Vec<Py<PyString>>,
    /// By schema id.
    templates: Vec<Templates>,
}

/// An open shard. The fast table is built on the first `dataset_sample`: opening for
/// counts and spans only (exact epochs, `widsindex`) must not pay for it.
struct Opened {
    index: ShardIndex,
    fast: OnceLock<FastParts>,
    filled: Mutex<Filled>,
}

impl Opened {
    fn fast_parts(&self, py: Python<'_>) -> PyResult<&FastParts> {
        if let Some(parts) = self.fast.get() {
            return Ok(parts);
        }
        let index = &self.index;
        let table = crate::errors::release(py, || Ok(FastTable::build(index)))
            .map_err(|e| crate::errors::internal("ShardIndex", e))?;
        let ext_strs = table
            .exts
            .iter()
            .map(|e| decode_name(py, e).map(Bound::unbind))
            .collect::<PyResult<Vec<_>>>()?;
        let templates = table
            .schemas
            .iter()
            .map(|schema| Templates::build(py, schema, &ext_strs))
            .collect::<PyResult<_>>()?;
        // Another thread may have won the race: either table is the same.
        let _ = self.fast.set(FastParts {
            table,
            ext_strs,
            templates,
        });
        Ok(self.fast.get().expect("set above"))
    }

    /// A copy of the dataset template of `schema` with `__dataset__` and `__shard__` set.
    fn filled_copy<'py>(
        &self,
        py: Python<'py>,
        parts: &FastParts,
        schema: usize,
        x: &Extras<'py>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let same = |a: &Option<Py<PyAny>>, b: &Bound<'py, PyAny>| {
            a.as_ref().is_some_and(|a| a.as_ptr() == b.as_ptr())
        };
        // The lock is never held while Python runs: a finalizer may read a sample.
        let hit = match self.filled.lock() {
            Ok(f) if same(&f.dataset, &x.dataset) && same(&f.shard_url, &x.shard_url) => {
                f.dicts.get(schema).map(|d| d.clone_ref(py))
            }
            Ok(_) => None,
            Err(_) => return Ok(None),
        };
        if let Some(d) = hit {
            return Ok(Some(d.bind(py).copy()?));
        }
        let [dataset, _, shard, _] = dataset_keys(py);
        let mut dicts = Vec::with_capacity(parts.templates.len());
        for t in &parts.templates {
            let d = t.dataset.bind(py).copy()?;
            d.set_item(dataset, &x.dataset)?;
            d.set_item(shard, &x.shard_url)?;
            dicts.push(d.unbind());
        }
        let out = dicts.get(schema).map(|d| d.bind(py).copy()).transpose()?;
        if let Ok(mut f) = self.filled.lock() {
            *f = Filled {
                dataset: Some(x.dataset.clone().unbind()),
                shard_url: Some(x.shard_url.clone().unbind()),
                dicts,
            };
        }
        Ok(out)
    }
}

impl std::ops::Deref for Opened {
    type Target = ShardIndex;
    fn deref(&self) -> &ShardIndex {
        &self.index
    }
}

/// One member's data as a new `bytes`, read straight into the object (no extra copy).
fn read_member_bytes<'py>(
    py: Python<'py>,
    shard: &ShardIndex,
    m: &Member<'_>,
    url: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let len = ffi::Py_ssize_t::try_from(m.size)
        .map_err(|_| PyValueError::new_err(format!("member {:?} too large", m.name)))?;
    // SAFETY: a NULL source makes CPython allocate an uninitialised bytes object of `len`
    // bytes that we own and fill completely below before anyone else can see it.
    let obj = unsafe {
        Bound::from_owned_ptr_or_err(py, ffi::PyBytes_FromStringAndSize(std::ptr::null(), len))?
    };
    // SAFETY: `obj` is a fresh bytes object of exactly `len` bytes, referenced only here.
    let buf = unsafe {
        std::slice::from_raw_parts_mut(ffi::PyBytes_AsString(obj.as_ptr()) as *mut u8, len as usize)
    };
    let ctx = ShardContext::new(url);
    if m.size >= DETACH_READ {
        let m = *m;
        crate::errors::detach(py, &ctx, || shard.read_member_into(&m, buf))?;
    } else {
        shard
            .read_member_into(m, buf)
            .map_err(|e| to_pyerr(py, e, &ctx))?;
    }
    Ok(obj.cast_into::<PyBytes>()?)
}

/// Random access to the samples of one uncompressed tar shard on local disk.
///
/// The shard's headers are read once (without the GIL), or a matching sidecar index is
/// loaded; member data is read with positioned reads. Samples are grouped like wids: the key runs to the
/// first dot of the basename and extensions keep their dot (`".jpg"`).
///
/// Args:
///     path: the local shard file.
///     sidecar: optional index file to reuse when it still matches the shard (size and
///         modification time) and to write otherwise.
///     url: the name used in error messages (defaults to `path`).
///
/// A shard truncated while open gives `TruncatedShardError` on the next read of a
/// member it lost; a sample that repeats an extension gives `DuplicateMemberError`.
#[pyclass(module = "ppwebdataset._core", name = "ShardIndex", frozen)]
pub struct PyShardIndex {
    shard: RwLock<Option<Arc<Opened>>>,
    url: String,
    ext_cache: Mutex<ExtCache>,
}

impl PyShardIndex {
    fn get(&self) -> PyResult<Arc<Opened>> {
        match self.shard.read() {
            Ok(g) => g.clone().ok_or_else(|| {
                PyValueError::new_err(format!("ShardIndex for {:?} is closed", self.url))
            }),
            Err(_) => Err(PyValueError::new_err("ShardIndex lock poisoned")),
        }
    }

    fn position(&self, shard: &ShardIndex, i: isize) -> PyResult<usize> {
        let n = shard.len() as isize;
        let j = if i < 0 { i + n } else { i };
        if j < 0 || j >= n {
            return Err(PyIndexError::new_err(format!(
                "sample index {i} out of range for shard {:?} with {n} samples",
                self.url
            )));
        }
        Ok(j as usize)
    }

    /// Sample `j` (in range) as a dict, with the dataset entries when `extras` is given.
    fn sample<'py>(
        &self,
        py: Python<'py>,
        shard: &Opened,
        j: usize,
        views: bool,
        extras: Option<Extras<'py>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let parts = match extras {
            Some(_) => Some(shard.fast_parts(py)?),
            None => shard.fast.get(),
        };
        if let Some(parts) = parts {
            if let Some(d) = self.fast_sample(py, shard, parts, j, views, extras.as_ref())? {
                return Ok(d);
            }
        }
        let d = self.general_sample(py, shard, j, views)?;
        if let Some(x) = extras {
            set_extras(py, &d, &x, j)?;
        }
        Ok(d)
    }

    /// A sample with a fast record (`None` without one): one positioned read of its span into the scratch
    /// buffer. `None` when the read came up short or failed: the general path then reads
    /// again and raises the exact error (`TruncatedShardError` naming the lost member).
    fn fast_sample<'py>(
        &self,
        py: Python<'py>,
        shard: &Opened,
        parts: &FastParts,
        j: usize,
        views: bool,
        extras: Option<&Extras<'py>>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(rec) = parts.table.get(j) else {
            return Ok(None);
        };
        with_span(|buf| -> PyResult<Option<Bound<'py, PyDict>>> {
            let span = rec.span();
            buf.resize(span, 0);
            match shard.read_at(buf, rec.lo()) {
                Ok(got) if got == span => {}
                _ => return Ok(None),
            }
            let schema = rec.schema().filter(|&id| id < parts.templates.len());
            let (d, filled) = match (schema, extras) {
                (Some(id), Some(x)) => match shard.filled_copy(py, parts, id, x)? {
                    Some(d) => (d, true),
                    None => (parts.templates[id].dataset.bind(py).copy()?, false),
                },
                (Some(id), None) => (parts.templates[id].plain.bind(py).copy()?, false),
                (None, _) => (PyDict::new(py), false),
            };
            for k in 0..rec.nmembers() {
                let (at, size, id) = rec.member(k);
                let data = PyBytes::new(py, &buf[at..at + size]);
                let ext = parts.ext_strs[id].bind(py);
                if views {
                    // SAFETY: `data` is a live bytes object, which supports the buffer protocol.
                    let mv = unsafe {
                        Bound::from_owned_ptr_or_err(
                            py,
                            ffi::PyMemoryView_FromObject(data.as_ptr()),
                        )?
                    };
                    d.set_item(ext, mv)?;
                } else {
                    d.set_item(ext, data)?;
                }
            }
            let key = rec.key();
            // SAFETY: a pointer and length of live bytes; CPython decodes them as UTF-8
            // (the table holds only keys that are valid UTF-8) into a new str it owns.
            let key = unsafe {
                Bound::from_owned_ptr_or_err(
                    py,
                    ffi::PyUnicode_FromStringAndSize(key.as_ptr().cast(), key.len() as isize),
                )?
            };
            d.set_item(pyo3::intern!(py, "__key__"), key)?;
            match extras {
                Some(x) if filled => set_positions(py, &d, x, j)?,
                Some(x) => set_extras(py, &d, x, j)?,
                None => {}
            }
            Ok(Some(d))
        })
    }

    /// Any sample: one read for the whole sample when it is small, else one per member.
    fn general_sample<'py>(
        &self,
        py: Python<'py>,
        shard: &Opened,
        j: usize,
        views: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let ctx = ShardContext::new(&self.url);
        if let Some(err) = shard.duplicate_error(j) {
            return Err(to_pyerr(py, err, &ctx));
        }
        let span = with_span(|buf| -> PyResult<Option<(u64, Vec<Bound<'py, PyBytes>>)>> {
            let Some(lo) = shard
                .read_sample_span(j, buf)
                .map_err(|e| to_pyerr(py, e, &ctx))?
            else {
                return Ok(None);
            };
            let parts = shard
                .data()
                .members(j)
                .map(|m| {
                    let start = (m.data_offset - lo) as usize;
                    PyBytes::new(py, &buf[start..start + m.size as usize])
                })
                .collect();
            Ok(Some((lo, parts)))
        })?;
        let mut parts = span.map(|(_, p)| p.into_iter());
        let d = PyDict::new(py);
        for m in shard.data().members(j) {
            let ext = self.ext_str(py, m.ext)?;
            let data = match parts.as_mut().and_then(Iterator::next) {
                Some(b) => b,
                None => read_member_bytes(py, shard, &m, &self.url)?,
            };
            if views {
                // SAFETY: `data` is a live bytes object, which supports the buffer protocol.
                let mv = unsafe {
                    Bound::from_owned_ptr_or_err(py, ffi::PyMemoryView_FromObject(data.as_ptr()))?
                };
                d.set_item(ext, mv)?;
            } else {
                d.set_item(ext, data)?;
            }
        }
        d.set_item(
            pyo3::intern!(py, "__key__"),
            decode_name(py, shard.data().key(j))?,
        )?;
        Ok(d)
    }

    fn ext_str<'py>(&self, py: Python<'py>, ext: &[u8]) -> PyResult<Bound<'py, PyString>> {
        let mut cache = self
            .ext_cache
            .lock()
            .map_err(|_| PyValueError::new_err("cache lock poisoned"))?;
        if let Some(s) = cache.get(ext) {
            return Ok(s.bind(py).clone());
        }
        let s = decode_name(py, ext)?;
        if cache.len() < EXT_CACHE_LIMIT {
            cache.insert(ext.into(), s.clone().unbind());
        }
        Ok(s)
    }
}

#[pymethods]
impl PyShardIndex {
    #[new]
    #[pyo3(signature = (path, *, sidecar=None, url=None))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        sidecar: Option<PathBuf>,
        url: Option<String>,
    ) -> PyResult<Self> {
        let url = url.unwrap_or_else(|| path.to_string_lossy().into_owned());
        let opts = OpenOptions { sidecar };
        let p = path.clone();
        let ctx = ShardContext {
            path: Some(&path),
            ..ShardContext::new(&url)
        };
        let index = crate::errors::detach(py, &ctx, move || ShardIndex::open(&p, &opts))?;
        let shard = Opened {
            index,
            fast: OnceLock::new(),
            filled: Mutex::default(),
        };
        Ok(PyShardIndex {
            shard: RwLock::new(Some(Arc::new(shard))),
            url,
            ext_cache: Mutex::new(ExtCache::default()),
        })
    }

    fn __len__(&self) -> PyResult<usize> {
        Ok(self.get()?.len())
    }

    fn __repr__(&self) -> String {
        match self.get() {
            Ok(s) => format!("<ShardIndex {:?}: {} samples>", self.url, s.len()),
            Err(_) => format!("<ShardIndex {:?}: closed>", self.url),
        }
    }

    /// The shard name used in messages.
    #[getter]
    fn url(&self) -> &str {
        &self.url
    }

    /// The local path of the shard.
    #[getter]
    fn path(&self) -> PyResult<PathBuf> {
        Ok(self.get()?.path().to_path_buf())
    }

    /// Size of the shard file in bytes.
    #[getter]
    fn file_size(&self) -> PyResult<u64> {
        Ok(self.get()?.stamp().size)
    }

    /// True when the index was loaded from the sidecar instead of read from the shard.
    #[getter(from_sidecar)]
    fn sidecar_used(&self) -> PyResult<bool> {
        Ok(self.get()?.source() == IndexSource::Sidecar)
    }

    /// Why the sidecar could not be used or written (None when it was fine or not asked for).
    #[getter]
    fn sidecar_error(&self) -> PyResult<Option<String>> {
        Ok(self.get()?.sidecar_error().map(str::to_owned))
    }

    /// Number of regular members that joined no sample (no dot in the name, or metadata).
    #[getter]
    fn skipped(&self) -> PyResult<u64> {
        Ok(self.get()?.data().skipped)
    }

    /// Number of member entries in all samples.
    #[getter]
    fn nmembers(&self) -> PyResult<usize> {
        Ok(self.get()?.data().members.len())
    }

    /// Raises `DuplicateMemberError` for the first sample that repeats an extension (what
    /// reading that sample would raise); returns None for a shard without one.
    fn check_duplicates(&self, py: Python<'_>) -> PyResult<()> {
        let shard = self.get()?;
        let first = shard.duplicates().first().map(|d| d.sample as usize);
        match first.and_then(|i| shard.duplicate_error(i)) {
            Some(err) => {
                let ctx = ShardContext::new(&self.url);
                Err(to_pyerr(py, err, &ctx))
            }
            None => Ok(()),
        }
    }

    /// Keys of all samples, in shard order.
    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let shard = self.get()?;
        let out = PyList::empty(py);
        for i in 0..shard.len() {
            out.append(decode_name(py, shard.data().key(i))?)?;
        }
        Ok(out)
    }

    /// Key of sample `i`.
    fn key<'py>(&self, py: Python<'py>, i: isize) -> PyResult<Bound<'py, PyString>> {
        let shard = self.get()?;
        let j = self.position(&shard, i)?;
        decode_name(py, shard.data().key(j))
    }

    /// Members of sample `i` as `(name, ext, data_offset, size)` tuples, in shard order.
    fn members<'py>(&self, py: Python<'py>, i: isize) -> PyResult<Bound<'py, PyList>> {
        let shard = self.get()?;
        let j = self.position(&shard, i)?;
        let out = PyList::empty(py);
        for m in shard.data().members(j) {
            let t = PyTuple::new(
                py,
                [
                    decode_name(py, m.name)?.into_any(),
                    self.ext_str(py, m.ext)?.into_any(),
                    m.data_offset.into_pyobject(py)?.into_any(),
                    m.size.into_pyobject(py)?.into_any(),
                ],
            )?;
            out.append(t)?;
        }
        Ok(out)
    }

    /// `(sample, ext)` pairs, one per sample that has the same extension twice; reading
    /// such a sample raises `DuplicateMemberError`, as streaming does.
    fn duplicates<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let shard = self.get()?;
        let out = PyList::empty(py);
        for d in shard.duplicates() {
            let m = shard.data().members[d.member as usize];
            let name = &shard.data().names[m.name_start as usize..][..m.name_len as usize];
            out.append((d.sample, self.ext_str(py, &name[m.key_len as usize..])?))?;
        }
        Ok(out)
    }

    /// Sample `i` as a dict: `{".ext": bytes, ..., "__key__": str}`.
    ///
    /// With `views=True` the values are read-only `memoryview`s (of fresh `bytes`: the
    /// shard is not mapped, so there is nothing to share).
    #[pyo3(signature = (i, *, views=false))]
    fn get_sample<'py>(
        &self,
        py: Python<'py>,
        i: isize,
        views: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let shard = self.get()?;
        let j = self.position(&shard, i)?;
        self.sample(py, &shard, j, views, None)
    }

    /// `get_sample(i)` plus the entries `ShardListDataset` adds, in its order:
    /// `__dataset__`, `__index__`, `__shard__` and `__shardindex__` (= `i`), in one call.
    fn dataset_sample<'py>(
        &self,
        py: Python<'py>,
        i: isize,
        dataset: Bound<'py, PyAny>,
        index: Bound<'py, PyAny>,
        shard_url: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let shard = self.get()?;
        let j = self.position(&shard, i)?;
        let extras = Extras {
            dataset,
            index,
            shard_url,
        };
        self.sample(py, &shard, j, false, Some(extras))
    }

    /// Closes the shard file (samples already returned stay valid).
    fn close(&self) {
        if let Ok(mut g) = self.shard.write() {
            *g = None;
        }
    }

    /// True after `close()`.
    #[getter]
    fn closed(&self) -> bool {
        self.shard.read().map(|g| g.is_none()).unwrap_or(true)
    }
}
