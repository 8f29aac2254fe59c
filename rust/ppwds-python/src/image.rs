//! `decode_images`: native JPEG/PNG decoding of a window of samples on a thread pool, with the
//! GIL released (see `ppwds_core::image` and `ppwebdataset/_native_image.py`).

use ppwds_core::image::{decode_many, CropAt, Filter, Image, ImageResult, Mode, Transform};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyList, PyTuple};
use std::thread::JoinHandle;

use crate::errors::{internal, release};

const PANICKED: &str = "native image decoder panicked";

/// Checks the arguments shared by `decode_images` and `start_decode_images`.
fn plan(
    n: usize,
    mode: &str,
    resize: Option<usize>,
    crop: Option<(usize, usize)>,
    seeds: Option<Vec<(u64, u64)>>,
    filter: &str,
) -> PyResult<(Mode, Vec<Transform>)> {
    let mode = match mode {
        "L" => Mode::L,
        "RGB" => Mode::Rgb,
        "RGBA" => Mode::Rgba,
        _ => {
            return Err(PyValueError::new_err(format!(
                "unknown mode {mode:?} (L, RGB, RGBA)"
            )))
        }
    };
    let filter = match filter {
        "bicubic" => Filter::Bicubic,
        "bilinear" => Filter::Bilinear,
        _ => {
            return Err(PyValueError::new_err(format!(
                "unknown resize filter {filter:?} (bicubic, bilinear)"
            )))
        }
    };
    let base = Transform {
        resize,
        filter,
        crop,
        crop_at: CropAt::Centre,
    };
    let transforms = match seeds {
        Some(s) if s.len() != n => return Err(PyValueError::new_err("one seed pair per item")),
        Some(s) => s
            .into_iter()
            .map(|(a, b)| Transform {
                crop_at: CropAt::Random(a, b),
                ..base
            })
            .collect(),
        None => vec![base; n],
    };
    Ok((mode, transforms))
}

/// `(height, width, channels, bytearray)` or the error message, per item.
fn to_python<'py>(
    py: Python<'py>,
    results: Vec<ImageResult<Image>>,
) -> PyResult<Bound<'py, PyList>> {
    let out = PyList::empty(py);
    for r in results {
        match r {
            Ok(img) => {
                let data = PyByteArray::new(py, &img.data);
                out.append(PyTuple::new(
                    py,
                    [
                        img.height.into_pyobject(py)?.into_any(),
                        img.width.into_pyobject(py)?.into_any(),
                        img.channels.into_pyobject(py)?.into_any(),
                        data.into_any(),
                    ],
                )?)?;
            }
            Err(e) => out.append(e.reason())?,
        }
    }
    Ok(out)
}

/// Decodes each bytes object of `items` into `mode` ("L", "RGB" or "RGBA") on `threads` threads.
///
/// `resize` sets the shorter side (aspect kept, `filter` "bicubic" or "bilinear"), then `crop`
/// `(h, w)` cuts a window: centred, or at offsets drawn from `seeds[i]` (two ints per item).
/// Returns one entry per item, in order: `(height, width, channels, bytearray)` or an error
/// message (str).
#[pyfunction]
#[pyo3(signature = (items, mode, resize=None, crop=None, seeds=None, filter="bicubic", threads=1))]
#[allow(clippy::too_many_arguments)]
pub fn decode_images<'py>(
    py: Python<'py>,
    items: Vec<Bound<'py, PyBytes>>,
    mode: &str,
    resize: Option<usize>,
    crop: Option<(usize, usize)>,
    seeds: Option<Vec<(u64, u64)>>,
    filter: &str,
    threads: usize,
) -> PyResult<Bound<'py, PyList>> {
    let (mode, transforms) = plan(items.len(), mode, resize, crop, seeds, filter)?;
    let slices: Vec<&[u8]> = items.iter().map(|b| b.as_bytes()).collect();
    // The bytes objects stay alive (and immutable) in `items` while the GIL is released.
    let results = release(py, || Ok(decode_many(&slices, mode, &transforms, threads)))
        .map_err(|e| internal(PANICKED, e))?;
    to_python(py, results)
}

/// A window being decoded in the background by `start_decode_images`.
#[pyclass(name = "ImageJob", module = "ppwebdataset._core")]
pub struct PyImageJob {
    handle: Option<JoinHandle<Vec<ImageResult<Image>>>>,
}

#[pymethods]
impl PyImageJob {
    /// Waits (without the GIL) and returns what `decode_images` would have; only once.
    fn result<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let handle = self
            .handle
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("ImageJob.result() was already called"))?;
        let results = release(py, || handle.join().map_err(ppwds_core::Error::panicked))
            .map_err(|e| internal(PANICKED, e))?;
        to_python(py, results)
    }
}

/// Like `decode_images`, but returns at once: the decoding runs on Rust threads that never need
/// the GIL (the input is copied), and `ImageJob.result()` collects it. The caller keeps running
/// Python meanwhile, without handing the GIL back and forth with a helper thread.
#[pyfunction]
#[pyo3(signature = (items, mode, resize=None, crop=None, seeds=None, filter="bicubic", threads=1))]
#[allow(clippy::too_many_arguments)]
pub fn start_decode_images(
    items: Vec<Bound<'_, PyBytes>>,
    mode: &str,
    resize: Option<usize>,
    crop: Option<(usize, usize)>,
    seeds: Option<Vec<(u64, u64)>>,
    filter: &str,
    threads: usize,
) -> PyResult<PyImageJob> {
    let (mode, transforms) = plan(items.len(), mode, resize, crop, seeds, filter)?;
    let owned: Vec<Vec<u8>> = items.iter().map(|b| b.as_bytes().to_vec()).collect();
    let handle = std::thread::Builder::new()
        .name("ppwds-image".into())
        .spawn(move || {
            let slices: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
            decode_many(&slices, mode, &transforms, threads)
        })
        .map_err(|e| {
            PyRuntimeError::new_err(format!("cannot start an image decoding thread: {e}"))
        })?;
    Ok(PyImageJob {
        handle: Some(handle),
    })
}
