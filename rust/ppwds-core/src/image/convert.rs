//! Pillow's integer colour conversions (`Image.convert`), so native output matches it.

use super::Mode;

/// Pillow's RGB → L: ITU-R 601-2 luma in 16-bit fixed point, rounded.
#[inline]
pub fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((u32::from(r) * 19595 + u32::from(g) * 38470 + u32::from(b) * 7471 + 0x8000) >> 16) as u8
}

/// Pillow's `MULDIV255`: `a * b / 255`, rounded.
#[inline]
pub fn muldiv255(a: u32, b: u32) -> u32 {
    let t = a * b + 128;
    ((t >> 8) + t) >> 8
}

/// Converts interleaved 8-bit pixels with `channels` of 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA)
/// into `mode`, as Pillow's convert does (alpha is dropped, not composited).
pub fn to_mode(src: Vec<u8>, channels: usize, mode: Mode) -> Vec<u8> {
    let out_c = mode.channels();
    if channels == out_c {
        return src;
    }
    let n = src.len() / channels;
    let mut out = Vec::with_capacity(n * out_c);
    match (channels, mode) {
        (1, Mode::Rgb) => src.iter().for_each(|&v| out.extend_from_slice(&[v, v, v])),
        (1, Mode::Rgba) => src
            .iter()
            .for_each(|&v| out.extend_from_slice(&[v, v, v, 255])),
        (2, Mode::L) => src.chunks_exact(2).for_each(|p| out.push(p[0])),
        (2, Mode::Rgb) => src
            .chunks_exact(2)
            .for_each(|p| out.extend_from_slice(&[p[0], p[0], p[0]])),
        (2, Mode::Rgba) => src
            .chunks_exact(2)
            .for_each(|p| out.extend_from_slice(&[p[0], p[0], p[0], p[1]])),
        (3, Mode::L) => src
            .chunks_exact(3)
            .for_each(|p| out.push(luma(p[0], p[1], p[2]))),
        (3, Mode::Rgba) => src
            .chunks_exact(3)
            .for_each(|p| out.extend_from_slice(&[p[0], p[1], p[2], 255])),
        (4, Mode::L) => src
            .chunks_exact(4)
            .for_each(|p| out.push(luma(p[0], p[1], p[2]))),
        (4, Mode::Rgb) => src
            .chunks_exact(4)
            .for_each(|p| out.extend_from_slice(&p[..3])),
        _ => unreachable!("channel count {channels} with mode {mode:?}"),
    }
    out
}

/// Pillow's CMYK → RGB (`cmyk2rgb`): `(255 - k) * (1 - c / 255)` in integers.
pub fn cmyk_to_rgb(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len() / 4 * 3);
    for p in src.chunks_exact(4) {
        let nk = 255 - u32::from(p[3]);
        for &c in &p[..3] {
            out.push((nk - muldiv255(u32::from(c), nk)) as u8);
        }
    }
    out
}
