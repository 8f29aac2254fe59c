//! `ShuffleBuffer`: the core shuffle buffer holding Python objects.
//!
//! Items go in and come out in lists, so a Python generator crosses into Rust
//! once per batch of samples rather than once per sample.

use ppwds_core::shuffle::ShuffleBuffer;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::PyList;
use pyo3::PyTraverseError;

/// A seeded, bounded shuffle buffer (webdataset's fill/yield rules).
///
/// `ShuffleBuffer(bufsize, initial, seed)`: items start coming out once
/// `initial` are buffered; the buffer holds at most `max(bufsize, 1)` items.
/// The order depends only on `seed` and the input order.
#[pyclass(name = "ShuffleBuffer", module = "ppwebdataset._core")]
pub struct PyShuffleBuffer {
    inner: ShuffleBuffer<Py<PyAny>>,
}

#[pymethods]
impl PyShuffleBuffer {
    #[new]
    #[pyo3(signature = (bufsize, initial, seed))]
    fn new(bufsize: usize, initial: usize, seed: u64) -> Self {
        PyShuffleBuffer {
            inner: ShuffleBuffer::new(bufsize, initial, seed),
        }
    }

    /// Adds one item; returns a list with the item that is ready, if any.
    fn push<'py>(&mut self, py: Python<'py>, item: Py<PyAny>) -> PyResult<Bound<'py, PyList>> {
        match self.inner.push(item) {
            Some(x) => PyList::new(py, [x]),
            None => Ok(PyList::empty(py)),
        }
    }

    /// Adds every item of an iterable (a list is fastest); returns the ready items as a list.
    fn push_many<'py>(&mut self, items: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let py = items.py();
        let mut out = Vec::new();
        if let Ok(list) = items.cast::<PyList>() {
            for item in list.iter() {
                if let Some(x) = self.inner.push(item.unbind()) {
                    out.push(x);
                }
            }
        } else {
            for item in items.try_iter()? {
                if let Some(x) = self.inner.push(item?.unbind()) {
                    out.push(x);
                }
            }
        }
        PyList::new(py, out)
    }

    /// Removes and returns every buffered item, in random order.
    fn drain<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let mut out = Vec::new();
        self.inner.drain_all(&mut out);
        PyList::new(py, out)
    }

    /// Removes one random item; None when empty.
    fn pop(&mut self) -> Option<Py<PyAny>> {
        self.inner.pop()
    }

    /// Drops every buffered item.
    fn clear(&mut self) {
        self.inner.clear();
    }

    /// The configured capacity.
    #[getter]
    fn bufsize(&self) -> usize {
        self.inner.bufsize()
    }

    /// The fill level at which items start coming out (clamped to bufsize).
    #[getter]
    fn initial(&self) -> usize {
        self.inner.initial()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "ShuffleBuffer(bufsize={}, initial={}, len={})",
            self.inner.bufsize(),
            self.inner.initial(),
            self.inner.len()
        )
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        for item in self.inner.iter() {
            visit.call(item)?;
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.inner.clear();
    }
}
