//! `TarSampleReader`: samples (or members) of one shard, handed to Python in batches.

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Mutex;

use ppwds_core::group::Sample;
use ppwds_core::samples::{Decision, FillLimits, Payload, SampleStream, Stop};
use ppwds_core::source::{tar_stream_with, Compression, DynRead, TarStream};
use ppwds_core::tar::{Entry, ReadOptions, TarReader};
use ppwds_core::{Error, ErrorKind};
use pyo3::exceptions::{PyBufferError, PyRuntimeError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyMemoryView, PySlice, PyString, PyTuple};

use crate::errors::{catch, detach, from_py, pyerr_to_io, release, to_pyerr, ShardContext};

/// Members larger than this are read straight into their `bytes` object.
const BIG_MEMBER: u64 = 256 << 10;
/// Above this, a streamed member's declared size is not trusted for one allocation.
const TRUSTED_ALLOC: u64 = 256 << 20;

/// Largest single `readinto` request; bigger reads are split.
const READINTO_CHUNK: usize = 1 << 20;

/// Reads a Python binary file-like object in large chunks.
struct PyReader {
    obj: Py<PyAny>,
    readinto: bool,
    /// Python-owned buffer handed to `readinto`: whatever Python keeps of it stays valid,
    /// unlike a view of our own memory, which we reuse and free.
    scratch: Option<Py<PyByteArray>>,
}

impl Read for PyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        Python::attach(|py| -> PyResult<usize> {
            let obj = self.obj.bind(py);
            if self.readinto {
                let want = buf.len().min(READINTO_CHUNK);
                let scratch = match &self.scratch {
                    Some(b) => b.bind(py).clone(),
                    None => {
                        let b = PyByteArray::new(py, &vec![0u8; READINTO_CHUNK]);
                        self.scratch = Some(b.clone().unbind());
                        b
                    }
                };
                let whole = PyMemoryView::from(&scratch)?;
                let view = whole.get_item(PySlice::new(py, 0, want as isize, 1))?;
                let result = obj.call_method1("readinto", (&view,));
                // A readinto that keeps an export of the buffer would see it overwritten by
                // the next read: fail the read rather than hand out changing bytes.
                let released = view
                    .call_method0("release")
                    .and_then(|_| whole.call_method0("release"));
                if let Err(e) = released {
                    let err = PyBufferError::new_err(
                        "the tar source's readinto() kept a reference to the buffer it was given",
                    );
                    err.set_cause(py, Some(e));
                    return Err(err);
                }
                let n = result?;
                if n.is_none() {
                    return Ok(0);
                }
                let n: usize = n.extract::<usize>()?.min(want);
                // SAFETY: we hold the GIL and no Python code runs while the bytes are copied.
                let data = unsafe { scratch.as_bytes() };
                buf[..n].copy_from_slice(&data[..n]);
                Ok(n)
            } else {
                let data = obj.call_method1("read", (buf.len(),))?;
                let data = data
                    .cast::<PyBytes>()
                    .map_err(|_| PyTypeError::new_err("tar source read() must return bytes"))?;
                let bytes = data.as_bytes();
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                Ok(n)
            }
        })
        .map_err(pyerr_to_io)
    }
}

/// Lets a raw pointer cross into a closure that runs without the GIL.
struct SendPtr(*mut u8, usize);
// SAFETY: the pointee is a `bytes` buffer owned by the calling frame and not shared.
unsafe impl Send for SendPtr {}

struct Inner {
    /// Samples, or members one by one (`group=False`).
    stream: Option<SampleStream<TarStream, Py<PyBytes>>>,
    compressed: bool,
    /// Bytes available after the data offset, for sources whose size is known.
    file_size: Option<u64>,
    /// The error to raise once the samples read before it have been handed out.
    deferred: Option<Error>,
    /// Python strings for the stream's interned extension ids.
    ext_cache: Vec<Py<PyString>>,
}

/// Iterates the samples (or raw members) of one tar shard.
///
/// Args:
///     source: a local path (str or os.PathLike) or a binary file-like object.
///     url: the shard URL, used in messages and as `__url__`.
///     local_path: value for `__local_path__` (omitted when None).
///     select_files: optional predicate on member names.
///     rename_files: optional function mapping member names to new names.
///     group: True for sample dicts, False for `(name, data)` member tuples.
#[pyclass(module = "ppwebdataset._core", name = "TarSampleReader", frozen)]
pub struct PyTarSampleReader {
    url: Py<PyAny>,
    url_text: String,
    local_path: Option<Py<PyAny>>,
    select_files: Option<Py<PyAny>>,
    rename_files: Option<Py<PyAny>>,
    group: bool,
    inner: Mutex<Inner>,
}

fn decode_name<'py>(py: Python<'py>, name: &[u8]) -> PyResult<Bound<'py, PyString>> {
    match std::str::from_utf8(name) {
        Ok(s) => Ok(PyString::new(py, s)),
        // Same as tarfile: undecodable bytes survive as surrogates.
        Err(_) => unsafe {
            // SAFETY: pointer and length describe `name`; the error handler name is a C literal.
            let ptr = ffi::PyUnicode_DecodeUTF8(
                name.as_ptr().cast(),
                name.len() as ffi::Py_ssize_t,
                c"surrogateescape".as_ptr(),
            );
            Ok(Bound::from_owned_ptr_or_err(py, ptr)?.cast_into_unchecked())
        },
    }
}

fn encode_name(name: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let s = name
        .cast::<PyString>()
        .map_err(|_| PyTypeError::new_err("rename_files must return a str"))?;
    match s.to_str() {
        Ok(t) => Ok(t.as_bytes().to_vec()),
        Err(_) => {
            let b = s.call_method1("encode", ("utf-8", "surrogateescape"))?;
            Ok(b.cast::<PyBytes>()?.as_bytes().to_vec())
        }
    }
}

/// True when the member's data lies inside a file of known size (no overflow on wild sizes).
fn fits(entry: &Entry, file_size: Option<u64>) -> bool {
    match (entry.data_offset.checked_add(entry.size), file_size) {
        (Some(end), Some(n)) => end <= n,
        _ => false,
    }
}

/// Allocates a `bytes` object and fills it from the reader without holding the GIL.
fn read_big<R: io::BufRead + Send>(
    py: Python<'_>,
    reader: &mut TarReader<R>,
    entry: &Entry,
    trusted: bool,
) -> Result<Py<PyBytes>, Error> {
    if !trusted && entry.size > TRUSTED_ALLOC {
        let data = release(py, || reader.read_data_vec())?;
        return Ok(PyBytes::new(py, &data).unbind());
    }
    // The core caps sizes far below isize::MAX; CPython would refuse a negative size.
    let size = usize::try_from(entry.size)
        .ok()
        .filter(|&n| isize::try_from(n).is_ok())
        .ok_or_else(|| from_py(PyRuntimeError::new_err("member too large")))?;
    // SAFETY: a NULL source asks CPython for an uninitialised buffer of `size` bytes.
    let obj = unsafe {
        let ptr = ffi::PyBytes_FromStringAndSize(std::ptr::null(), size as ffi::Py_ssize_t);
        Bound::from_owned_ptr_or_err(py, ptr).map_err(from_py)?
    };
    // SAFETY: `obj` is a bytes object of exactly `size` bytes that nobody else references yet.
    let ptr = unsafe { ffi::PyBytes_AsString(obj.as_ptr()) } as *mut u8;
    let target = SendPtr(ptr, size);
    release(py, move || {
        let target = target;
        // SAFETY: see above; `obj` is kept alive by the caller frame until we return.
        let buf = unsafe { std::slice::from_raw_parts_mut(target.0, target.1) };
        reader.read_data(buf)
    })?;
    Ok(obj
        .cast_into::<PyBytes>()
        .map_err(|e| from_py(e.into()))?
        .unbind())
}

/// Member mode: a one-member "sample" as the `(name, bytes)` tuple Python expects.
fn member_tuple<'py>(
    py: Python<'py>,
    sample: Sample<Payload<Py<PyBytes>>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let value = match sample.members.into_iter().next() {
        Some((_, Payload::Bytes(v))) => PyBytes::new(py, &v).unbind(),
        Some((_, Payload::External(obj))) => obj,
        None => {
            return Err(PyRuntimeError::new_err(
                "member mode produced an empty sample",
            ))
        }
    };
    PyTuple::new(
        py,
        [
            decode_name(py, &sample.key)?.into_any(),
            value.into_bound(py).into_any(),
        ],
    )
}

impl PyTarSampleReader {
    fn ctx(&self, compressed: bool) -> ShardContext<'_> {
        ShardContext {
            compressed,
            ..ShardContext::new(&self.url_text)
        }
    }

    /// Runs `rename_files` / `select_files`; what they raise travels inside the error.
    fn filter(&self, py: Python<'_>, name: &[u8]) -> Result<Decision, Error> {
        let run = || -> PyResult<Decision> {
            let mut current = decode_name(py, name)?.into_any();
            if let Some(rename) = &self.rename_files {
                current = rename.bind(py).call1((current,))?;
            }
            if let Some(select) = &self.select_files {
                if !select.bind(py).call1((&current,))?.is_truthy()? {
                    return Ok(Decision::Skip);
                }
            }
            if self.rename_files.is_some() {
                Ok(Decision::Rename(encode_name(&current)?))
            } else {
                Ok(Decision::Keep)
            }
        };
        run().map_err(from_py)
    }

    fn sample_dict<'py>(
        &self,
        py: Python<'py>,
        exts: &[Py<PyString>],
        sample: Sample<Payload<Py<PyBytes>>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item(pyo3::intern!(py, "__key__"), decode_name(py, &sample.key)?)?;
        d.set_item(pyo3::intern!(py, "__url__"), self.url.bind(py))?;
        for (i, (ext, payload)) in sample.members.into_iter().enumerate() {
            let value = match payload {
                Payload::Bytes(v) => PyBytes::new(py, &v).unbind(),
                Payload::External(obj) => obj,
            };
            d.set_item(exts[ext as usize].bind(py), value)?;
            if i == 0 {
                if let Some(lp) = &self.local_path {
                    d.set_item(pyo3::intern!(py, "__local_path__"), lp.bind(py))?;
                }
            }
        }
        Ok(d)
    }

    fn next_samples<'py>(
        &self,
        py: Python<'py>,
        inner: &mut Inner,
    ) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        let compressed = inner.compressed;
        let file_size = inner.file_size;
        let needs_filter = self.rename_files.is_some() || self.select_files.is_some();
        let Inner {
            stream,
            ext_cache,
            deferred,
            ..
        } = inner;
        let Some(stream) = stream.as_mut() else {
            return Ok(out);
        };
        loop {
            let limits = FillLimits {
                big_member: BIG_MEMBER,
                ..FillLimits::default()
            };
            // Sized once: growing it step by step sends malloc through its slow paths.
            let mut batch = Vec::with_capacity(limits.max_samples + 1);
            let filled = if needs_filter {
                release(py, || {
                    let mut f = |name: &[u8]| Python::attach(|py| self.filter(py, name));
                    Ok(stream.fill(&mut batch, limits, &mut f))
                })
            } else {
                release(py, || {
                    Ok(stream.fill(&mut batch, limits, &mut |_: &[u8]| Ok(Decision::Keep)))
                })
            };
            let mut stop = match filled {
                Ok(stop) => stop,
                Err(panicked) => {
                    // The stream's state is unknown after a panic: end the shard.
                    batch.clear();
                    stream.abort(panicked)
                }
            };
            if let Stop::Big(entry) = &stop {
                let trusted = !compressed && fits(entry, file_size);
                match read_big(py, stream.reader(), entry, trusted) {
                    Ok(obj) => {
                        batch.extend(stream.deliver(Payload::External(obj)));
                        stop = Stop::Full;
                    }
                    Err(e) => stop = stream.abort(e.with_member(&entry.name)),
                }
            }
            while ext_cache.len() < stream.ext_count() {
                let name = stream.ext(ext_cache.len() as u32);
                ext_cache.push(decode_name(py, name)?.unbind());
            }
            for s in batch {
                if self.group {
                    out.append(self.sample_dict(py, ext_cache, s)?)?;
                } else {
                    out.append(member_tuple(py, s)?)?;
                }
            }
            match stop {
                Stop::Full => {
                    if out.is_empty() {
                        continue;
                    }
                    return Ok(out);
                }
                Stop::End | Stop::Big(_) => {}
                Stop::Soft(e) | Stop::Fatal(e) => *deferred = Some(e),
            }
            if out.is_empty() {
                if let Some(err) = deferred.take() {
                    return Err(to_pyerr(py, err, &self.ctx(compressed)));
                }
            }
            return Ok(out);
        }
    }
}

#[pymethods]
impl PyTarSampleReader {
    #[new]
    #[pyo3(signature = (source, url, local_path=None, *, select_files=None, rename_files=None, group=true, ignore_zeros=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        source: &Bound<'_, PyAny>,
        url: &Bound<'_, PyAny>,
        local_path: Option<Py<PyAny>>,
        select_files: Option<Py<PyAny>>,
        rename_files: Option<Py<PyAny>>,
        group: bool,
        ignore_zeros: bool,
    ) -> PyResult<Self> {
        let url_text = url.str()?.to_string();
        let path: Option<PathBuf> =
            if source.is_instance_of::<PyString>() || source.hasattr("__fspath__")? {
                Some(source.extract()?)
            } else {
                None
            };
        let ctx = ShardContext::new(&url_text);
        let (raw, file_size): (DynRead, Option<u64>) = match &path {
            Some(p) => {
                let p = p.clone();
                let file = detach(py, &ctx, move || {
                    std::fs::File::open(&p)
                        .and_then(|f| f.metadata().map(|m| (f, m.len())))
                        .map_err(|e| Error::from(ErrorKind::Io(e)))
                })?;
                (Box::new(file.0), Some(file.1))
            }
            None => {
                let readinto = source.hasattr("readinto")?;
                if !readinto && !source.hasattr("read")? {
                    return Err(PyTypeError::new_err(
                        "TarSampleReader source must be a path or a binary file-like object",
                    ));
                }
                (
                    Box::new(PyReader {
                        obj: source.clone().unbind(),
                        readinto,
                        scratch: None,
                    }),
                    None,
                )
            }
        };
        let (stream, compression) = detach(py, &ctx, move || {
            tar_stream_with(raw, &crate::xz::extra_decoder)
        })?;
        let compressed = compression != Compression::None;
        let opts = ReadOptions {
            ignore_zeros,
            // Past the end marker only when the input is finite and read to its end anyway:
            // a local file, or a compressed stream whose trailer must be checked. A plain
            // pipe or socket stops at the marker, as before.
            check_after_end: file_size.is_some() || compressed,
        };
        let stream = if group {
            SampleStream::with_options(stream, opts)
        } else {
            // Uncompressed bytes are read whole, so a member counts even when the header
            // after it is damaged; a compressed stream's trailer must vouch for it first.
            SampleStream::members(stream, opts, !compressed)
        };
        Ok(PyTarSampleReader {
            url: url.clone().unbind(),
            url_text,
            local_path,
            select_files,
            rename_files,
            group,
            inner: Mutex::new(Inner {
                stream: Some(stream),
                compressed,
                file_size,
                deferred: None,
                ext_cache: Vec::new(),
            }),
        })
    }

    /// Returns the next batch: a list of sample dicts (or `(name, bytes)` tuples).
    ///
    /// An empty list means the shard is exhausted. Errors are raised after the
    /// samples that precede them have been returned.
    fn next_batch<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let mut locked = match self.inner.try_lock() {
            Ok(g) => g,
            // Panics are caught below, so a poisoned lock only means an earlier bug.
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                return Err(PyRuntimeError::new_err(
                    "TarSampleReader is being used from two threads at once",
                ))
            }
        };
        let inner = &mut *locked;
        let ctx = self.ctx(inner.compressed);
        if let Some(err) = inner.deferred.take() {
            return Err(to_pyerr(py, err, &ctx));
        }
        let result = catch(|| self.next_samples(py, inner));
        result.unwrap_or_else(|panicked| {
            inner.stream = None;
            inner.deferred = None;
            Err(to_pyerr(py, panicked, &ctx))
        })
    }

    /// True once the shard is exhausted or broken; after a recoverable error
    /// (duplicate extension, failing name filter) it is still False.
    #[getter]
    fn done(&self) -> bool {
        let Ok(inner) = self.inner.lock() else {
            return true;
        };
        if inner.deferred.is_some() {
            return false;
        }
        match &inner.stream {
            Some(s) => s.is_finished(),
            None => true,
        }
    }

    /// True when the source was gzip/bzip2-compressed.
    #[getter]
    fn compressed(&self) -> bool {
        self.inner.lock().map(|i| i.compressed).unwrap_or(false)
    }

    /// Releases the source (closes a file opened from a path).
    fn close(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.stream = None;
        }
    }
}
