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

/// True when the file has an Adobe APP14 marker: Pillow then reads CMYK as inverted (`CMYK;I`).
fn has_adobe_marker(data: &[u8]) -> bool {
    let mut i = 2;
    while i + 4 <= data.len() && data[i] == 0xFF {
        let marker = data[i + 1];
        if marker == 0xDA || marker == 0xD9 {
            break; // start of scan: no more headers
        }
        let len = usize::from(u16::from_be_bytes([data[i + 2], data[i + 3]]));
        if marker == 0xEE && data.get(i + 4..i + 9) == Some(b"Adobe".as_slice()) {
            return true;
        }
        i += 2 + len;
    }
    false
}

pub fn decode(data: &[u8], mode: Mode) -> ImageResult<Image> {
    let mut probe = JpegDecoder::new_with_options(ZCursor::new(data), options());
    probe
        .decode_headers()
        .map_err(|e| err(format!("cannot decode JPEG: {e:?}")))?;
    let input = probe.input_colorspace().unwrap_or(ColorSpace::YCbCr);
    let (out_cs, channels) = match input {
        ColorSpace::Luma => (ColorSpace::Luma, 1),
        ColorSpace::CMYK => (ColorSpace::CMYK, 4),
        _ => (ColorSpace::RGB, 3),
    };
    let mut dec = JpegDecoder::new_with_options(
        ZCursor::new(data),
        options().jpeg_set_out_colorspace(out_cs),
    );
    let pixels = dec
        .decode()
        .map_err(|e| err(format!("cannot decode JPEG: {e:?}")))?;
    let (width, height) = dec
        .dimensions()
        .ok_or_else(|| err("cannot decode JPEG: no frame header"))?;
    if pixels.len() != width * height * channels {
        return Err(err("cannot decode JPEG: decoder returned a short buffer"));
    }
    let (pixels, channels) = if channels == 4 {
        let inverted: Vec<u8>;
        let cmyk = if has_adobe_marker(data) {
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
