//! `ShardIndex`: random access to the samples of one local, uncompressed tar shard.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

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

/// Members at least this large are read without holding the GIL.
const DETACH_READ: u64 = 1 << 20;

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
    shard: RwLock<Option<Arc<ShardIndex>>>,
    url: String,
    ext_cache: Mutex<ExtCache>,
}

impl PyShardIndex {
    fn get(&self) -> PyResult<Arc<ShardIndex>> {
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
        let shard = crate::errors::detach(py, &ctx, move || ShardIndex::open(&p, &opts))?;
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
        if let Some(err) = shard.duplicate_error(j) {
            let ctx = ShardContext::new(&self.url);
            return Err(to_pyerr(py, err, &ctx));
        }
        let ctx = ShardContext::new(&self.url);
        // One read for the whole sample when it is small (the usual case), else one per member.
        let span = SPAN.with(
            |cell| -> PyResult<Option<(u64, Vec<Bound<'py, PyBytes>>)>> {
                let mut buf = cell.borrow_mut();
                let Some(lo) = shard
                    .read_sample_span(j, &mut buf)
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
                if buf.capacity() > SPAN_KEEP {
                    *buf = Vec::new();
                }
                Ok(Some((lo, parts)))
            },
        )?;
        let mut parts = span.map(|(_, p)| p.into_iter());
        let d = PyDict::new(py);
        for m in shard.data().members(j) {
            let ext = self.ext_str(py, m.ext)?;
            let data = match parts.as_mut().and_then(Iterator::next) {
                Some(b) => b,
                None => read_member_bytes(py, &shard, &m, &self.url)?,
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
