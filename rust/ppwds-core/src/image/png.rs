//! PNG through the `png` crate, reduced to 8 bits the way Pillow does it.

use super::convert::to_mode;
use super::{err, Image, ImageResult, Mode};
use ::png::{BitDepth, ColorType, Decoder, Limits, Transformations};
use std::io::Cursor;

pub fn decode(data: &[u8], mode: Mode) -> ImageResult<Image> {
    let fail = |e: ::png::DecodingError| err(format!("cannot decode PNG: {e}"));
    // Palette → RGB(A), low bit depths → 8 bits, tRNS → alpha, as Pillow's convert does.
    let mut decoder = Decoder::new_with_limits(Cursor::new(data), Limits { bytes: 1 << 31 });
    decoder.set_transformations(Transformations::EXPAND);
    let mut reader = decoder.read_info().map_err(fail)?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| err("cannot decode PNG: image too large"))?;
    let mut buf = vec![0; size];
    let frame = reader.next_frame(&mut buf).map_err(fail)?;
    buf.truncate(frame.buffer_size());
    let channels = match frame.color_type {
        ColorType::Grayscale => 1,
        ColorType::GrayscaleAlpha => 2,
        ColorType::Rgb => 3,
        ColorType::Rgba => 4,
        ColorType::Indexed => return Err(err("cannot decode PNG: palette was not expanded")),
    };
    let (width, height) = (frame.width as usize, frame.height as usize);
    let buf = if frame.bit_depth == BitDepth::Sixteen {
        // Pillow reads 16-bit RGB(A)/LA by their high byte, but 16-bit gray as mode I;16, whose
        // conversion to 8 bits clips at 255 instead of scaling.
        let gray16 = reader.info().color_type == ColorType::Grayscale;
        buf.chunks_exact(2)
            .enumerate()
            .map(|(i, s)| {
                if gray16 && i % channels == 0 {
                    u16::from_be_bytes([s[0], s[1]]).min(255) as u8
                } else {
                    s[0]
                }
            })
            .collect()
    } else {
        buf
    };
    if buf.len() != width * height * channels {
        return Err(err("cannot decode PNG: decoder returned a short buffer"));
    }
    Ok(Image {
        width,
        height,
        channels: mode.channels(),
        data: to_mode(buf, channels, mode),
    })
}
