//! Native image decoding for `decode(..., native=True)`: JPEG and PNG into 8-bit L/RGB/RGBA
//! pixels, the colour conversions Pillow applies, an optional resize and crop, and a parallel
//! batch decoder. Pure Rust (zune-jpeg, png); no Python and no system libraries.
//!
//! Pixel results follow Pillow's `Image.open(...).convert(mode)`: EXIF orientation is ignored,
//! colour is converted with Pillow's integer formulas, 16-bit PNG samples are reduced the way
//! Pillow reduces them.

mod convert;
mod jpeg;
mod png;
mod resize;

use crate::{Error, ErrorKind};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

pub use resize::Filter;

/// Output pixel layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One 8-bit luminance channel.
    L,
    /// Three 8-bit channels.
    Rgb,
    /// Four 8-bit channels, straight (not premultiplied) alpha.
    Rgba,
}

impl Mode {
    /// Channels per pixel.
    pub fn channels(self) -> usize {
        match self {
            Mode::L => 1,
            Mode::Rgb => 3,
            Mode::Rgba => 4,
        }
    }
}

/// A decoded image: `height` rows of `width * channels` bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// Pixels per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Channels per pixel (1, 3 or 4).
    pub channels: usize,
    /// Row-major interleaved samples.
    pub data: Vec<u8>,
}

/// Result of the image functions: failures are [`ErrorKind::Image`] errors.
pub type ImageResult<T> = crate::Result<T>;

fn err(msg: impl Into<String>) -> Error {
    ErrorKind::Image(msg.into()).into()
}

/// The formats decoded natively.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// JPEG (baseline, progressive; grayscale, YCbCr, CMYK).
    Jpeg,
    /// PNG (any colour type and depth, interlaced too).
    Png,
}

/// The format of `data` from its signature (as Pillow does, not from the file name).
pub fn sniff(data: &[u8]) -> Option<Format> {
    if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Format::Jpeg)
    } else if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Format::Png)
    } else {
        None
    }
}

/// Decodes a JPEG or PNG into `mode`.
pub fn decode(data: &[u8], mode: Mode) -> ImageResult<Image> {
    match sniff(data) {
        Some(Format::Jpeg) => jpeg::decode(data, mode),
        Some(Format::Png) => png::decode(data, mode),
        None => Err(err("not a JPEG or PNG image (unknown signature)")),
    }
}

/// Where a crop window is placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CropAt {
    /// Centred; an odd leftover pixel goes to the bottom/right.
    Centre,
    /// Uniformly random offsets drawn from these two 64-bit values (rows, columns).
    Random(u64, u64),
}

/// What to do after decoding.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transform {
    /// Resize so the shorter side has this length (aspect kept).
    pub resize: Option<usize>,
    /// Resampling filter for `resize`.
    pub filter: Filter,
    /// Crop to `(height, width)` after the resize.
    pub crop: Option<(usize, usize)>,
    /// Placement of the crop.
    pub crop_at: CropAt,
}

impl Default for Transform {
    fn default() -> Self {
        Transform {
            resize: None,
            filter: Filter::Bicubic,
            crop: None,
            crop_at: CropAt::Centre,
        }
    }
}

/// The size after "shorter side to `s`": the longer side is scaled and rounded to nearest.
pub fn shorter_side_size(width: usize, height: usize, s: usize) -> (usize, usize) {
    let scale = |long: usize, short: usize| {
        ((long as f64) * (s as f64) / (short as f64))
            .round()
            .max(1.0) as usize
    };
    if width <= height {
        (s, scale(height, width))
    } else {
        (scale(width, height), s)
    }
}

/// Decodes `data` and applies `t`: resize (only the rows and columns the crop keeps are
/// computed, with the same result as resizing everything), then crop.
pub fn decode_transform(data: &[u8], mode: Mode, t: &Transform) -> ImageResult<Image> {
    let img = decode(data, mode)?;
    if t.resize.is_none() && t.crop.is_none() {
        return Ok(img);
    }
    let (rw, rh) = match t.resize {
        Some(0) => return Err(err("resize must be a positive size")),
        Some(s) => shorter_side_size(img.width, img.height, s),
        None => (img.width, img.height),
    };
    let (ch, cw) = t.crop.unwrap_or((rh, rw));
    if ch == 0 || cw == 0 {
        return Err(err("crop must be a positive size"));
    }
    if ch > rh || cw > rw {
        return Err(err(format!(
            "crop {ch}x{cw} (h x w) is larger than the {} image {rh}x{rw}",
            if t.resize.is_some() {
                "resized"
            } else {
                "decoded"
            }
        )));
    }
    let (top, left) = match t.crop_at {
        CropAt::Centre => ((rh - ch) / 2, (rw - cw) / 2),
        CropAt::Random(a, b) => (
            (a % (rh - ch + 1) as u64) as usize,
            (b % (rw - cw + 1) as u64) as usize,
        ),
    };
    Ok(resize::resize_window(
        &img,
        (rw, rh),
        (left, top, cw, ch),
        t.filter,
        mode == Mode::Rgba,
    ))
}

/// Decodes every item on up to `threads` threads; results come back in input order. A panic
/// while decoding one item becomes that item's error.
pub fn decode_many(
    items: &[&[u8]],
    mode: Mode,
    transforms: &[Transform],
    threads: usize,
) -> Vec<ImageResult<Image>> {
    assert_eq!(items.len(), transforms.len(), "one transform per item");
    let one = |i: usize| -> ImageResult<Image> {
        catch_unwind(AssertUnwindSafe(|| {
            decode_transform(items[i], mode, &transforms[i])
        }))
        .unwrap_or_else(|_| {
            Err(err(
                "internal error while decoding the image (decoder panicked)",
            ))
        })
    };
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        return (0..items.len()).map(one).collect();
    }
    // Work stealing by a shared counter: photos differ a lot in cost.
    let next = AtomicUsize::new(0);
    let mut parts: Vec<Vec<(usize, ImageResult<Image>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= items.len() {
                            break out;
                        }
                        out.push((i, one(i)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut slots: Vec<Option<ImageResult<Image>>> = (0..items.len()).map(|_| None).collect();
    for (i, r) in parts.drain(..).flatten() {
        slots[i] = Some(r);
    }
    slots
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(err("internal error: image not decoded"))))
        .collect()
}

#[cfg(test)]
mod tests;
