//! `ShardIndex`: random access to the samples of one local, uncompressed tar shard.

use std::collections::HashMap;
use std::os::raw::{c_int, c_void};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use ppwds_core::index::{IndexSource, OpenOptions, ShardIndex};
use ppwds_core::{Error, ErrorKind};
use pyo3::exceptions::{
    PyBufferError, PyFileNotFoundError, PyIndexError, PyIsADirectoryError, PyOSError,
    PyPermissionError, PyValueError,
};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::errors::{to_pyerr, ShardContext};

/// Distinct extensions kept as ready-made Python strings; beyond this, strings are made per call.
const EXT_CACHE_LIMIT: usize = 4096;

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

/// A core error from opening a shard as a Python exception. OS errors keep their
/// errno and class (`FileNotFoundError`, `PermissionError`, ...) and name the file.
fn open_error(py: Python<'_>, err: Error, url: &str, path: &std::path::Path) -> PyErr {
    let Error {
        kind,
        offset,
        member,
    } = err;
    match kind {
        ErrorKind::Io(io) => {
            let errno = io.raw_os_error().unwrap_or(0);
            let args = (
                errno,
                format!("{io} (shard {url:?})"),
                path.to_string_lossy().into_owned(),
            );
            match io.kind() {
                std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(args),
                std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(args),
                std::io::ErrorKind::IsADirectory => PyIsADirectoryError::new_err(args),
                _ => PyOSError::new_err(args),
            }
        }
        kind => to_pyerr(
            py,
            Error {
                kind,
                offset,
                member,
            },
            &ShardContext {
                url,
                compressed: false,
            },
        ),
    }
}

/// A read-only, zero-copy view of one member's bytes inside the mapped shard.
///
/// Supports the buffer protocol (`memoryview(v)`, `numpy.frombuffer(v, numpy.uint8)`),
/// and keeps the mapping alive for as long as any view of it exists.
#[pyclass(module = "ppwebdataset._core", name = "MemberView", frozen)]
pub struct PyMemberView {
    shard: Arc<ShardIndex>,
    start: usize,
    len: usize,
}

#[pymethods]
impl PyMemberView {
    /// # Safety
    /// Called by CPython with a valid `Py_buffer` to fill.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        if flags & ffi::PyBUF_WRITABLE == ffi::PyBUF_WRITABLE {
            return Err(PyBufferError::new_err("member views are read-only"));
        }
        let this = slf.get();
        let data = &this.shard.bytes()[this.start..this.start + this.len];
        // SAFETY: `data` lives in the mapping owned by `this.shard`; FillInfo stores a new
        // reference to `slf` in the view, so the mapping outlives every exported buffer.
        let rc = unsafe {
            ffi::PyBuffer_FillInfo(
                view,
                slf.as_ptr(),
                data.as_ptr() as *mut c_void,
                this.len as ffi::Py_ssize_t,
                1,
                flags,
            )
        };
        if rc == -1 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }

    /// # Safety
    /// Nothing to release: the mapping is owned by the view object itself.
    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}

    fn __len__(&self) -> usize {
        self.len
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.shard.bytes()[self.start..self.start + self.len])
    }
}

/// Random access to the samples of one uncompressed tar shard on local disk.
///
/// The shard is memory-mapped and its headers are read once (without the GIL), or a
/// matching sidecar index is loaded. Samples are grouped like wids: the key runs to the
/// first dot of the basename and extensions keep their dot (`".jpg"`).
///
/// Args:
///     path: the local shard file.
///     sidecar: optional index file to reuse when it still matches the shard (size and
///         modification time) and to write otherwise.
///     url: the name used in error messages (defaults to `path`).
///
/// The shard must not be truncated or rewritten while it is open: reading a mapped
/// page that no longer exists kills the process with SIGBUS.
#[pyclass(module = "ppwebdataset._core", name = "ShardIndex", frozen)]
pub struct PyShardIndex {
    shard: RwLock<Option<Arc<ShardIndex>>>,
    url: String,
    ext_cache: Mutex<HashMap<Box<[u8]>, Py<PyString>>>,
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
        let opened = py.detach(move || ShardIndex::open(&p, &opts));
        let shard = opened.map_err(|e| open_error(py, e, &url, &path))?;
        Ok(PyShardIndex {
            shard: RwLock::new(Some(Arc::new(shard))),
            url,
            ext_cache: Mutex::new(HashMap::new()),
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

    /// `(sample, ext)` pairs where one sample has the same extension twice; the later
    /// member wins in `get_sample`, as it does when the tar is unpacked.
    fn duplicates<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let shard = self.get()?;
        let out = PyList::empty(py);
        for i in 0..shard.len() {
            if shard.data().sample_members(i).len() < 2 {
                continue;
            }
            for (k, m) in shard.data().members(i).enumerate() {
                if shard.data().members(i).take(k).any(|p| p.ext == m.ext) {
                    out.append((i, self.ext_str(py, m.ext)?))?;
                }
            }
        }
        Ok(out)
    }

    /// Sample `i` as a dict: `{".ext": bytes, ..., "__key__": str}`.
    ///
    /// With `views=True` the values are read-only `memoryview`s of the mapped shard
    /// instead of `bytes` copies (no copy; they keep the shard mapped while alive).
    #[pyo3(signature = (i, *, views=false))]
    fn get_sample<'py>(
        &self,
        py: Python<'py>,
        i: isize,
        views: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let shard = self.get()?;
        let j = self.position(&shard, i)?;
        let d = PyDict::new(py);
        for m in shard.data().members(j) {
            let ext = self.ext_str(py, m.ext)?;
            if views {
                let view = Bound::new(
                    py,
                    PyMemberView {
                        shard: shard.clone(),
                        start: m.data_offset as usize,
                        len: m.size as usize,
                    },
                )?;
                // SAFETY: `view` is a live object supporting the buffer protocol.
                let mv = unsafe {
                    Bound::from_owned_ptr_or_err(py, ffi::PyMemoryView_FromObject(view.as_ptr()))?
                };
                d.set_item(ext, mv)?;
            } else {
                d.set_item(ext, PyBytes::new(py, shard.member_data(&m)))?;
            }
        }
        d.set_item(
            pyo3::intern!(py, "__key__"),
            decode_name(py, shard.data().key(j))?,
        )?;
        Ok(d)
    }

    /// Releases this object's reference to the mapping (views already handed out keep it).
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
