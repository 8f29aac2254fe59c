use super::*;

#[test]
fn unknown_and_truncated_input_is_an_error_not_a_panic() {
    assert!(decode(b"hello", Mode::Rgb).is_err());
    assert!(decode(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 16], Mode::Rgb).is_err());
    assert!(decode(b"\x89PNG\r\n\x1a\n\0\0", Mode::L).is_err());
    let items: Vec<&[u8]> = vec![b"x", b"\xFF\xD8\xFF"];
    let out = decode_many(&items, Mode::Rgb, &[Transform::default(); 2], 2);
    assert!(out.iter().all(|r| r.is_err()));
}

#[test]
fn shorter_side_keeps_aspect() {
    assert_eq!(shorter_side_size(480, 375, 256), (328, 256));
    assert_eq!(shorter_side_size(375, 480, 256), (256, 328));
    assert_eq!(shorter_side_size(10, 10, 3), (3, 3));
    assert_eq!(shorter_side_size(1000, 1, 2), (2000, 2));
}

fn ramp(w: usize, h: usize, c: usize) -> Image {
    let data = (0..w * h * c).map(|i| (i * 7 % 251) as u8).collect();
    Image {
        width: w,
        height: h,
        channels: c,
        data,
    }
}

#[test]
fn resize_window_equals_crop_of_full_resize() {
    for &(c, premul) in &[(1, false), (3, false), (4, true)] {
        let img = ramp(37, 23, c);
        for filter in [Filter::Bilinear, Filter::Bicubic] {
            let full = resize::resize_window(&img, (19, 11), (0, 0, 19, 11), filter, premul);
            let part = resize::resize_window(&img, (19, 11), (3, 2, 9, 7), filter, premul);
            for y in 0..7 {
                let a = &full.data[((y + 2) * 19 + 3) * c..((y + 2) * 19 + 12) * c];
                assert_eq!(&part.data[y * 9 * c..(y + 1) * 9 * c], a);
            }
        }
    }
}

#[test]
fn constant_image_stays_constant() {
    let img = Image {
        width: 40,
        height: 30,
        channels: 3,
        data: vec![77; 40 * 30 * 3],
    };
    let out = resize::resize_window(&img, (13, 10), (0, 0, 13, 10), Filter::Bicubic, false);
    assert!(out.data.iter().all(|&v| v == 77));
}

#[test]
fn many_threads_keep_order() {
    // Each item is invalid in its own way, so the messages identify it.
    let items: Vec<Vec<u8>> = (0..20).map(|i| vec![b'a' + i as u8; i + 1]).collect();
    let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
    let t = vec![Transform::default(); refs.len()];
    let run = |threads| -> Vec<Result<Image, String>> {
        decode_many(&refs, Mode::L, &t, threads)
            .into_iter()
            .map(|r| r.map_err(|e| e.reason()))
            .collect()
    };
    assert_eq!(run(1), run(4));
}

#[test]
fn crop_larger_than_image_is_an_error() {
    assert_eq!(shorter_side_size(4, 4, 4), (4, 4));
    let t = Transform {
        crop: Some((5, 5)),
        ..Transform::default()
    };
    // A 1x1 PNG (gray, 8 bit).
    let png1 = [
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, 0x49, 0x48, 0x44, 0x52, 0,
        0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0, 0x3A, 0x7E, 0x9B, 0x55, 0, 0, 0, 0x0A, 0x49, 0x44,
        0x41, 0x54, 0x78, 0x9C, 0x63, 0x60, 0, 0, 0, 2, 0, 1, 0x48, 0xAF, 0xA4, 0x71, 0, 0, 0, 0,
        0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
    ];
    let img = decode(&png1, Mode::Rgb).expect("valid png");
    assert_eq!((img.width, img.height, img.data.len()), (1, 1, 3));
    assert!(decode_transform(&png1, Mode::Rgb, &t)
        .unwrap_err()
        .reason()
        .contains("larger"));
}

#[test]
fn jpeg_without_end_marker_is_truncated() {
    // SOI, SOS (length 2), a few entropy bytes and no EOI.
    let cut = [0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x12, 0x34, 0x56];
    assert!(decode(&cut, Mode::Rgb)
        .unwrap_err()
        .reason()
        .contains("truncated"));
    let no_scan = [0xFF, 0xD8, 0xFF, 0xD9];
    assert!(decode(&no_scan, Mode::Rgb)
        .unwrap_err()
        .reason()
        .contains("no image data"));
}

// Small deterministic generator for the randomised checks below.
fn lcg(state: &mut u64) -> usize {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*state >> 33) as usize
}

#[test]
fn resize_window_equals_crop_of_full_resize_random() {
    let mut st = 7u64;
    for round in 0..300 {
        let c = [1, 3, 4][round % 3];
        let (w, h) = (1 + lcg(&mut st) % 70, 1 + lcg(&mut st) % 50);
        let (ow, oh) = (1 + lcg(&mut st) % 90, 1 + lcg(&mut st) % 60);
        let (cw, ch) = (1 + lcg(&mut st) % ow, 1 + lcg(&mut st) % oh);
        let (left, top) = (lcg(&mut st) % (ow - cw + 1), lcg(&mut st) % (oh - ch + 1));
        let mut img = ramp(w, h, c);
        img.data.iter_mut().for_each(|v| *v ^= lcg(&mut st) as u8);
        let filter = [Filter::Bilinear, Filter::Bicubic][lcg(&mut st) % 2];
        let full = resize::resize_window(&img, (ow, oh), (0, 0, ow, oh), filter, c == 4);
        let part = resize::resize_window(&img, (ow, oh), (left, top, cw, ch), filter, c == 4);
        for y in 0..ch {
            let a = &full.data[((y + top) * ow + left) * c..((y + top) * ow + left + cw) * c];
            assert_eq!(
                &part.data[y * cw * c..(y + 1) * cw * c],
                a,
                "{w}x{h}x{c} -> {ow}x{oh}, window {left},{top} {cw}x{ch}, {filter:?}"
            );
        }
    }
}
