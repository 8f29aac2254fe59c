//! Pillow's separable resampling (`Image.resize` with BILINEAR/BICUBIC): the same support,
//! kernel, 22-bit fixed-point weights and rounding, horizontal pass first. Only the output
//! window that a crop keeps is computed.

use super::convert::muldiv255;
use super::Image;

/// Resampling filter, as in Pillow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    /// Triangle kernel, support 1 (Pillow `BILINEAR`), antialiased when shrinking.
    Bilinear,
    /// Cubic kernel with a = -0.5, support 2 (Pillow `BICUBIC`), antialiased when shrinking.
    Bicubic,
}

impl Filter {
    fn support(self) -> f64 {
        match self {
            Filter::Bilinear => 1.0,
            Filter::Bicubic => 2.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Filter::Bilinear => (1.0 - x).max(0.0),
            Filter::Bicubic => {
                const A: f64 = -0.5;
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
        }
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Per output index: first input index and fixed-point weights.
struct Coeffs {
    first: Vec<usize>,
    weights: Vec<Vec<i32>>,
}

fn coeffs(
    in_size: usize,
    out_size: usize,
    filter: Filter,
    window: std::ops::Range<usize>,
) -> Coeffs {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let mut first = Vec::with_capacity(window.len());
    let mut weights = Vec::with_capacity(window.len());
    for xx in window {
        let center = (xx as f64 + 0.5) * scale;
        // C's (int) cast truncates towards zero; negatives clamp to 0 either way.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin);
        let mut k: Vec<f64> = (0..n)
            .map(|x| filter.weight(((x + xmin) as f64 - center + 0.5) / filterscale))
            .collect();
        let total: f64 = k.iter().sum();
        if total != 0.0 {
            k.iter_mut().for_each(|w| *w /= total);
        }
        let one = f64::from(1u32 << PRECISION_BITS);
        weights.push(
            k.iter()
                .map(|&w| {
                    if w < 0.0 {
                        (-0.5 + w * one) as i32
                    } else {
                        (0.5 + w * one) as i32
                    }
                })
                .collect(),
        );
        first.push(xmin);
    }
    Coeffs { first, weights }
}

#[inline]
fn clip8(v: i32) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes `img` to `size` (w, h) and returns the window `(left, top, width, height)` of the
/// result. `premultiply` resamples RGBA with premultiplied alpha, as Pillow does.
pub fn resize_window(
    img: &Image,
    size: (usize, usize),
    window: (usize, usize, usize, usize),
    filter: Filter,
    premultiply: bool,
) -> Image {
    let (w, h) = size;
    let (left, top, cw, ch) = window;
    let c = img.channels;
    if (w, h) == (img.width, img.height) {
        return crop(img, window);
    }
    let premultiply = premultiply && c == 4;
    let premul;
    let src: &[u8] = if premultiply {
        premul = premultiplied(&img.data);
        &premul
    } else {
        &img.data
    };
    let vert = (h != img.height).then(|| coeffs(img.height, h, filter, top..top + ch));
    // Input rows the vertical pass reads (all of the window's rows when it does not run).
    let (row0, row1) = match &vert {
        Some(v) => {
            let lo = v.first.iter().copied().min().unwrap_or(0);
            let hi = v
                .first
                .iter()
                .zip(&v.weights)
                .map(|(f, k)| f + k.len())
                .max()
                .unwrap_or(0);
            (lo, hi)
        }
        None => (top, top + ch),
    };
    let stride = img.width * c;
    // Horizontal pass over rows row0..row1, window columns only.
    let mut tmp = vec![0u8; (row1 - row0) * cw * c];
    if w != img.width {
        let hz = coeffs(img.width, w, filter, left..left + cw);
        let rows = &src[row0 * stride..row1 * stride];
        simd_dispatch(|| horizontal_any(c, stride, rows, &mut tmp, &hz));
    } else {
        for (y, out_row) in (row0..row1).zip(tmp.chunks_exact_mut(cw * c)) {
            out_row.copy_from_slice(&src[y * stride + left * c..y * stride + (left + cw) * c]);
        }
    }
    let row_len = cw * c;
    let mut data = match vert {
        Some(v) => {
            let mut out = vec![0u8; ch * row_len];
            simd_dispatch(|| vertical(&tmp, &mut out, row_len, row0, &v));
            out
        }
        None => tmp,
    };
    if premultiply {
        unpremultiply(&mut data);
    }
    Image {
        width: cw,
        height: ch,
        channels: c,
        data,
    }
}

// Runs `f` compiled for AVX2 when the CPU has it: the passes are integer multiply-adds that
// baseline x86-64 (SSE2, no 32-bit multiply) cannot vectorise. Same arithmetic, same result.
#[inline(always)]
fn simd_dispatch(f: impl FnOnce()) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2(f: impl FnOnce()) {
            f()
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { avx2(f) };
        }
    }
    f()
}

#[inline(always)]
fn horizontal_any(c: usize, stride: usize, rows: &[u8], out: &mut [u8], hz: &Coeffs) {
    let rows = rows.chunks_exact(stride);
    match c {
        1 => horizontal::<1>(rows, out, hz),
        2 => horizontal::<2>(rows, out, hz),
        3 => horizontal::<3>(rows, out, hz),
        _ => horizontal::<4>(rows, out, hz),
    }
}

// One pass along rows; `C` channels known at compile time so the tap loop is tight.
#[inline(always)]
fn horizontal<'a, const C: usize>(
    rows: impl Iterator<Item = &'a [u8]>,
    out: &mut [u8],
    hz: &Coeffs,
) {
    let out_len = hz.first.len() * C;
    for (in_row, out_row) in rows.zip(out.chunks_exact_mut(out_len)) {
        for ((out_px, &x0), k) in out_row.chunks_exact_mut(C).zip(&hz.first).zip(&hz.weights) {
            let mut ss = [1i32 << (PRECISION_BITS - 1); C];
            let taps = &in_row[x0 * C..(x0 + k.len()) * C];
            for (px, &kw) in taps.chunks_exact(C).zip(k) {
                for ch in 0..C {
                    ss[ch] += i32::from(px[ch]) * kw;
                }
            }
            for ch in 0..C {
                out_px[ch] = clip8(ss[ch]);
            }
        }
    }
}

// The pass along columns, a whole row at a time (vectorises across the row).
#[inline(always)]
fn vertical(tmp: &[u8], out: &mut [u8], row_len: usize, row0: usize, v: &Coeffs) {
    let mut acc = vec![0i32; row_len];
    for (yy, out_row) in out.chunks_exact_mut(row_len).enumerate() {
        acc.fill(1i32 << (PRECISION_BITS - 1));
        let y0 = v.first[yy] - row0;
        for (j, &kw) in v.weights[yy].iter().enumerate() {
            let in_row = &tmp[(y0 + j) * row_len..(y0 + j + 1) * row_len];
            for (a, &p) in acc.iter_mut().zip(in_row) {
                *a += i32::from(p) * kw;
            }
        }
        for (o, &a) in out_row.iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
}

fn crop(img: &Image, (left, top, cw, ch): (usize, usize, usize, usize)) -> Image {
    let c = img.channels;
    let stride = img.width * c;
    let mut data = Vec::with_capacity(cw * ch * c);
    for y in top..top + ch {
        data.extend_from_slice(&img.data[y * stride + left * c..y * stride + (left + cw) * c]);
    }
    Image {
        width: cw,
        height: ch,
        channels: c,
        data,
    }
}

// Pillow's RGBA → RGBa.
fn premultiplied(src: &[u8]) -> Vec<u8> {
    let mut out = src.to_vec();
    for p in out.chunks_exact_mut(4) {
        let a = u32::from(p[3]);
        if a != 255 {
            for v in &mut p[..3] {
                *v = muldiv255(u32::from(*v), a) as u8;
            }
        }
    }
    out
}

// Pillow's RGBa → RGBA.
fn unpremultiply(data: &mut [u8]) {
    for p in data.chunks_exact_mut(4) {
        let a = u32::from(p[3]);
        if a != 255 && a != 0 {
            for v in &mut p[..3] {
                *v = (255 * u32::from(*v) / a).min(255) as u8;
            }
        }
    }
}
