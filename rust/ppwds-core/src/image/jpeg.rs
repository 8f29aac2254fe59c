//! JPEG through zune-jpeg, with Pillow's colour handling on top.

use super::convert::{cmyk_to_rgb, to_mode};
use super::{err, Image, ImageResult, Mode};
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

// JPEG's own limit; Pillow opens anything up to it (zune's default stops at 16384).
const MAX_SIDE: usize = 65_535;

fn options() -> DecoderOptions {
    DecoderOptions::default()
        .set_max_width(MAX_SIDE)
        .set_max_height(MAX_SIDE)
        .set_strict_mode(false)
}

/// What the headers before the first scan say.
#[derive(Default)]
struct Headers {
    /// An Adobe APP14 marker: Pillow then reads CMYK as inverted (`CMYK;I`).
    adobe: bool,
    /// (width, height, max horizontal and vertical sampling factors) from the frame header.
    frame: Option<(usize, usize, u8, u8)>,
    /// Offset of the first start-of-scan marker.
    sos: Option<usize>,
}

fn headers(data: &[u8]) -> Headers {
    let mut h = Headers::default();
    let mut i = 2;
    while i + 4 <= data.len() && data[i] == 0xFF {
        let marker = data[i + 1];
        if marker == 0xDA {
            h.sos = Some(i);
            break; // start of scan: no more headers
        }
        if marker == 0xD9 {
            break;
        }
        let len = usize::from(u16::from_be_bytes([data[i + 2], data[i + 3]]));
        let body = data
            .get(i + 4..(i + 2 + len).min(data.len()))
            .unwrap_or(&[]);
        match marker {
            0xEE => h.adobe |= body.starts_with(b"Adobe"),
            // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) && body.len() >= 6 => {
                let height = usize::from(u16::from_be_bytes([body[1], body[2]]));
                let width = usize::from(u16::from_be_bytes([body[3], body[4]]));
                let comps = body[6..].chunks_exact(3).take(usize::from(body[5]));
                let (hmax, vmax) =
                    comps.fold((1, 1), |(a, b), c| (a.max(c[1] >> 4), b.max(c[1] & 15)));
                h.frame = Some((width, height, hmax, vmax));
            }
            _ => {}
        }
        i += 2 + len;
    }
    h
}

// zune-jpeg's fancy upsampler reads the MCU padding where libjpeg repeats the edge sample, so
// with chroma subsampling and an even size that is not a whole number of MCUs, the last column
// (or row) differs from Pillow by up to ~10. That line weighs 1/size of the image: below this
// size such images go to jpeg-decoder, which upsamples the edge like libjpeg.
const EDGE_EXACT_BELOW: usize = 128;

fn edge_off(size: usize, factor: u8) -> bool {
    let mcu = 8 * usize::from(factor.max(1));
    factor > 1 && size % 2 == 0 && size % mcu != 0 && size < EDGE_EXACT_BELOW
}

fn decode_exact(data: &[u8]) -> ImageResult<(Vec<u8>, usize, usize, usize)> {
    use jpeg_decoder::{Decoder, PixelFormat};
    let mut dec = Decoder::new(data);
    let pixels = dec
        .decode()
        .map_err(|e| err(format!("cannot decode JPEG: {e}")))?;
    let info = dec
        .info()
        .ok_or_else(|| err("cannot decode JPEG: no frame header"))?;
    let (w, h) = (usize::from(info.width), usize::from(info.height));
    match info.pixel_format {
        PixelFormat::L8 => Ok((pixels, w, h, 1)),
        PixelFormat::RGB24 => Ok((pixels, w, h, 3)),
        PixelFormat::CMYK32 => Ok((pixels, w, h, 4)),
        PixelFormat::L16 => Err(err(
            "cannot decode JPEG: 12/16-bit JPEG is not supported natively",
        )),
    }
}

/// True when an end-of-image marker follows the first scan. Pillow refuses JPEGs cut short
/// ("image file is truncated") while the Rust decoders fill in the missing part: refuse them too.
fn complete(data: &[u8], sos: usize) -> bool {
    data[sos..].windows(2).rev().any(|w| w == [0xFF, 0xD9])
}

pub fn decode(data: &[u8], mode: Mode) -> ImageResult<Image> {
    let h = headers(data);
    match h.sos {
        Some(sos) if complete(data, sos) => {}
        Some(_) => {
            return Err(err(
                "cannot decode JPEG: image file is truncated (no end-of-image marker)",
            ))
        }
        None => {
            return Err(err(
                "cannot decode JPEG: no image data (no start-of-scan marker)",
            ))
        }
    }
    let exact = h
        .frame
        .is_some_and(|(w, ht, hf, vf)| edge_off(w, hf) || edge_off(ht, vf));
    let (pixels, width, height, channels, cmyk_inverted) = if exact {
        // jpeg-decoder always inverts CMYK; Pillow only with an Adobe marker.
        let (p, w, ht, c) = decode_exact(data)?;
        (p, w, ht, c, !h.adobe)
    } else {
        let (p, w, ht, c) = decode_zune(data)?;
        (p, w, ht, c, h.adobe)
    };
    if pixels.len() != width * height * channels {
        return Err(err("cannot decode JPEG: decoder returned a short buffer"));
    }
    let (pixels, channels) = if channels == 4 {
        let inverted: Vec<u8>;
        let cmyk = if cmyk_inverted {
            inverted = pixels.iter().map(|v| 255 - v).collect();
            &inverted
        } else {
            &pixels
        };
        (cmyk_to_rgb(cmyk), 3)
    } else {
        (pixels, channels)
    };
    Ok(Image {
        width,
        height,
        channels: mode.channels(),
        data: to_mode(pixels, channels, mode),
    })
}

fn decode_zune(data: &[u8]) -> ImageResult<(Vec<u8>, usize, usize, usize)> {
    let fail = |e: zune_jpeg::errors::DecodeErrors| err(format!("cannot decode JPEG: {e:?}"));
    // The default output is RGB: colour JPEGs decode with this one decoder.
    let mut dec = JpegDecoder::new_with_options(ZCursor::new(data), options());
    dec.decode_headers().map_err(fail)?;
    let input = dec.input_colorspace().unwrap_or(ColorSpace::YCbCr);
    let (out_cs, channels) = match input {
        ColorSpace::Luma => (ColorSpace::Luma, 1),
        ColorSpace::CMYK => (ColorSpace::CMYK, 4),
        _ => (ColorSpace::RGB, 3),
    };
    if out_cs != ColorSpace::RGB {
        // The colour converter is chosen with the headers: start again for gray and CMYK.
        dec = JpegDecoder::new_with_options(
            ZCursor::new(data),
            options().jpeg_set_out_colorspace(out_cs),
        );
    }
    let pixels = dec.decode().map_err(fail)?;
    let (width, height) = dec
        .dimensions()
        .ok_or_else(|| err("cannot decode JPEG: no frame header"))?;
    Ok((pixels, width, height, channels))
}
