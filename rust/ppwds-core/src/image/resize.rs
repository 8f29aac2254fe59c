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
        horizontal_pass(c, stride, rows, &mut tmp, &hz);
    } else {
        for (y, out_row) in (row0..row1).zip(tmp.chunks_exact_mut(cw * c)) {
            out_row.copy_from_slice(&src[y * stride + left * c..y * stride + (left + cw) * c]);
        }
    }
    let row_len = cw * c;
    let mut data = match vert {
        Some(v) => {
            let mut out = vec![0u8; ch * row_len];
            vertical_pass(&tmp, &mut out, row_len, row0, &v);
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

// Each pass runs compiled for AVX2 when the CPU has it: they are integer multiply-adds that
// baseline x86-64 (SSE2, no 32-bit multiply) cannot vectorise. Same arithmetic, same result.
// (A plain function, not a closure: a closure called from a `target_feature` function is
// compiled without the feature.)
macro_rules! avx2_dispatch {
    ($name:ident => $body:ident($($arg:ident: $ty:ty),*)) => {
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2 (checked just above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

fn horizontal_pass(c: usize, stride: usize, rows: &[u8], out: &mut [u8], hz: &Coeffs) {
    #[cfg(target_arch = "x86_64")]
    if c == 3 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { horizontal_rgb_avx2(rows, stride, out, hz) };
    }
    horizontal_generic(c, stride, rows, out, hz)
}

avx2_dispatch!(horizontal_generic => horizontal_any(c: usize, stride: usize, rows: &[u8], out: &mut [u8], hz: &Coeffs));
avx2_dispatch!(vertical_pass => vertical(tmp: &[u8], out: &mut [u8], row_len: usize, row0: usize, v: &Coeffs));

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

// The RGB pass with explicit AVX2, two output pixels at a time (one per 128-bit lane), two taps
// per step. Each weight is split as w = 256 * hi + lo (hi signed, lo in 0..256, both fit i16),
// so `pmaddwd` on [r0 r1 g0 g1 b0 b1 0 0] gives the exact partial sums of both halves:
// sum(p * w) = 256 * sum(p * hi) + sum(p * lo), the same i32 as `horizontal::<3>`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn horizontal_rgb_avx2(rows: &[u8], stride: usize, out: &mut [u8], hz: &Coeffs) {
    use std::arch::x86_64::*;
    let n_out = hz.first.len();
    let pairs = hz
        .weights
        .iter()
        .map(|k| k.len().div_ceil(2))
        .max()
        .unwrap_or(0);
    let n_groups = n_out.div_ceil(2);
    // Per group of two output pixels (A, B) and tap pair t: 16 i16 of hi halves
    // [hA_2t hA_2t+1 x4 | hB_2t hB_2t+1 x4], then 16 of lo halves. Missing taps weigh 0.
    let mut wv = vec![0i16; n_groups * pairs * 32];
    for (i, k) in hz.weights.iter().enumerate() {
        for (j, &w) in k.iter().enumerate() {
            let at = ((i / 2) * pairs + j / 2) * 32 + (i % 2) * 8 + j % 2;
            for c in 0..4 {
                wv[at + 2 * c] = (w >> 8) as i16;
                wv[at + 16 + 2 * c] = (w & 255) as i16;
            }
        }
    }
    // Bytes [r0 g0 b0 r1 g1 b1] -> i16 [r0 r1 g0 g1 b0 b1 0 0], in each lane.
    let shuf = _mm256_setr_epi8(
        0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1, 0, -1, 3, -1, 1, -1, 4, -1, 2,
        -1, 5, -1, -1, -1, -1, -1,
    );
    let round = _mm256_set1_epi32(1 << (PRECISION_BITS - 1));
    let total = rows.len();
    let scalar = |row: usize, i: usize, out_px: &mut [u8]| {
        let k = &hz.weights[i];
        let p = row + hz.first[i] * 3;
        let mut ss = [1i32 << (PRECISION_BITS - 1); 3];
        for (px, &kw) in rows[p..p + k.len() * 3].chunks_exact(3).zip(k) {
            for ch in 0..3 {
                ss[ch] += i32::from(px[ch]) * kw;
            }
        }
        for ch in 0..3 {
            out_px[ch] = clip8(ss[ch]);
        }
    };
    for (r, out_row) in out.chunks_exact_mut(n_out * 3).enumerate() {
        let row = r * stride;
        if row + stride > total {
            break;
        }
        for g in 0..n_groups {
            let ia = 2 * g;
            let ib = (ia + 1).min(n_out - 1); // an odd last pixel: lane B unused (weights 0)
            let pa = row + hz.first[ia] * 3;
            let pb = row + hz.first[ib] * 3;
            // Each step loads 8 bytes at p + 6t; the last must stay inside `rows`.
            if pairs == 0 || pa.max(pb) + (pairs - 1) * 6 + 8 > total {
                scalar(row, ia, &mut out_row[ia * 3..ia * 3 + 3]);
                scalar(row, ib, &mut out_row[ib * 3..ib * 3 + 3]);
                continue;
            }
            let mut acc_hi = _mm256_setzero_si256();
            let mut acc_lo = _mm256_setzero_si256();
            let wp = wv.as_ptr().add(g * pairs * 32);
            let src = rows.as_ptr();
            for t in 0..pairs {
                // SAFETY: pa/pb + 6t + 8 <= total (checked above); wv has `pairs` steps a group.
                let a = _mm_loadl_epi64(src.add(pa + 6 * t).cast());
                let b = _mm_loadl_epi64(src.add(pb + 6 * t).cast());
                let px = _mm256_shuffle_epi8(_mm256_set_m128i(b, a), shuf);
                let wh = _mm256_loadu_si256(wp.add(t * 32).cast());
                let wl = _mm256_loadu_si256(wp.add(t * 32 + 16).cast());
                acc_hi = _mm256_add_epi32(acc_hi, _mm256_madd_epi16(px, wh));
                acc_lo = _mm256_add_epi32(acc_lo, _mm256_madd_epi16(px, wl));
            }
            let sum = _mm256_add_epi32(
                _mm256_add_epi32(_mm256_slli_epi32::<8>(acc_hi), acc_lo),
                round,
            );
            let v = _mm256_srai_epi32::<{ PRECISION_BITS as i32 }>(sum);
            // Saturating packs = clamp to 0..=255, as clip8; lane order: A in 0..4, B in 4..8.
            let v16 = _mm256_packs_epi32(v, v);
            let v8 = _mm256_packus_epi16(v16, v16);
            let a = (_mm256_extract_epi32::<0>(v8) as u32).to_le_bytes();
            let b = (_mm256_extract_epi32::<4>(v8) as u32).to_le_bytes();
            out_row[ia * 3..ia * 3 + 3].copy_from_slice(&a[..3]);
            if ib != ia {
                out_row[ib * 3..ib * 3 + 3].copy_from_slice(&b[..3]);
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

#[cfg(test)]
mod simd_tests {
    use super::*;

    // The vector passes against the plain loops (the reference transcription of Pillow), for
    // random sizes, filters and windows, including windows that reach the last bytes.
    #[test]
    fn vector_passes_equal_the_plain_loops() {
        let mut st = 11u64;
        let mut next = move || {
            st = st
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (st >> 33) as usize
        };
        for round in 0..400 {
            let c = [1, 3, 4][round % 3];
            let (w, rows) = (1 + next() % 120, 1 + next() % 8);
            let ow = 1 + next() % 160;
            let cw = 1 + next() % ow;
            let left = next() % (ow - cw + 1);
            let filter = [Filter::Bilinear, Filter::Bicubic][next() % 2];
            let src: Vec<u8> = (0..w * rows * c).map(|_| next() as u8).collect();
            let hz = coeffs(w, ow, filter, left..left + cw);
            let mut fast = vec![0u8; rows * cw * c];
            let mut plain = vec![0u8; rows * cw * c];
            horizontal_pass(c, w * c, &src, &mut fast, &hz);
            horizontal_any(c, w * c, &src, &mut plain, &hz);
            assert_eq!(
                fast, plain,
                "horizontal {w}x{rows}x{c} -> {ow}, {left}+{cw}, {filter:?}"
            );
            let v = coeffs(rows, 1 + next() % 12, filter, 0..1);
            let row_len = w * c;
            let mut fast = vec![0u8; row_len];
            let mut plain = vec![0u8; row_len];
            vertical_pass(&src, &mut fast, row_len, 0, &v);
            vertical(&src, &mut plain, row_len, 0, &v);
            assert_eq!(fast, plain, "vertical {w}x{rows}x{c}, {filter:?}");
        }
    }
}
