//! Reading back the GIFs and PNGs the command line writes.
// Each test crate uses a part of these.
#![allow(dead_code)]
use std::path::Path;

/// One decoded picture: RGB rows top to bottom.
pub struct Picture {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Picture {
    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// Centre of the pixels within `tolerance` (per channel) of `colour`, if any.
    pub fn centre_of(&self, colour: [u8; 3], tolerance: u8) -> Option<(f64, f64)> {
        let (mut n, mut sx, mut sy) = (0.0, 0.0, 0.0);
        for y in 0..self.height {
            for x in 0..self.width {
                let p = self.pixel(x, y);
                if (0..3).all(|k| p[k].abs_diff(colour[k]) <= tolerance) {
                    (n, sx, sy) = (n + 1.0, sx + x as f64, sy + y as f64);
                }
            }
        }
        (n > 0.0).then(|| (sx / n, sy / n))
    }
}

/// Every frame of an animated GIF as the viewer shows it: each frame painted over the one
/// before (frames may cover a part of the picture, the rest kept).
pub fn gif_frames(path: &Path) -> Vec<Picture> {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    let mut decoder = options
        .read_info(std::fs::File::open(path).unwrap())
        .unwrap();
    let (width, height) = (decoder.width() as usize, decoder.height() as usize);
    let mut shown = vec![0u8; width * height * 3];
    let mut frames = Vec::new();
    while let Some(frame) = decoder.read_next_frame().unwrap() {
        let (left, top, w) = (
            frame.left as usize,
            frame.top as usize,
            frame.width as usize,
        );
        for (i, p) in frame.buffer.chunks(4).enumerate() {
            // Transparent pixels keep what was there.
            if p[3] == 0 {
                continue;
            }
            let (x, y) = (left + i % w, top + i / w);
            let at = (y * width + x) * 3;
            shown[at..at + 3].copy_from_slice(&p[..3]);
        }
        frames.push(Picture {
            width,
            height,
            rgb: shown.clone(),
        });
    }
    frames
}

pub fn png(path: &Path) -> Picture {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    Picture {
        width: info.width as usize,
        height: info.height as usize,
        rgb: buf,
    }
}
