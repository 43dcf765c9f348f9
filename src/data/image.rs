//! Image files as Fashion-MNIST pixels, for `predict`: 28×28, gray (colour is converted), one
//! byte a pixel; optionally fitted to 28×28 and inverted, since Fashion-MNIST's garments are
//! light on a dark ground.

use std::path::{Path, PathBuf};

use image::{imageops::FilterType, GrayImage, Luma};

use super::SIDE;

/// How to turn an image into Fashion-MNIST pixels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prepare {
    /// Fit any size into 28×28, keeping its proportions (the rest filled with the border's
    /// tone); without it an image must be 28×28 already.
    pub resize: bool,
    /// 255 − v: a dark garment on a light ground becomes Fashion-MNIST's light on dark.
    pub invert: bool,
}

/// The file extensions `predict` reads from a directory.
pub const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// The pixels of an encoded image (PNG, JPEG), as 28×28 bytes; `shown` names it in errors.
pub fn decode_image(bytes: &[u8], shown: &str) -> anyhow::Result<Vec<u8>> {
    prepare_image(bytes, shown, Prepare::default())
}

/// [`decode_image`] with the image fitted and/or inverted as `how` says.
pub fn prepare_image(bytes: &[u8], shown: &str, how: Prepare) -> anyhow::Result<Vec<u8>> {
    let img = image::load_from_memory(bytes).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    let gray = img.to_luma8();
    let gray = if how.resize {
        fit(&gray)
    } else {
        anyhow::ensure!(
            gray.width() as usize == SIDE && gray.height() as usize == SIDE,
            "{shown}: the image is {}×{}, not {SIDE}×{SIDE}: pass --resize (a light garment on a dark ground, as in Fashion-MNIST)",
            gray.width(),
            gray.height()
        );
        gray
    };
    let mut px = gray.into_raw();
    if how.invert {
        px.iter_mut().for_each(|v| *v = 255 - *v);
    }
    Ok(px)
}

/// `gray` scaled to fit 28×28 with its proportions, centred, the rest filled with the mean
/// tone of its outermost pixels.
fn fit(gray: &GrayImage) -> GrayImage {
    let (w, h) = (gray.width().max(1), gray.height().max(1));
    let side = SIDE as u32;
    let scale = side as f64 / w.max(h) as f64;
    let (nw, nh) = (
        ((w as f64 * scale).round() as u32).clamp(1, side),
        ((h as f64 * scale).round() as u32).clamp(1, side),
    );
    let small = image::imageops::resize(gray, nw, nh, FilterType::Triangle);
    let mut border = Vec::new();
    for (x, y, p) in gray.enumerate_pixels() {
        if x == 0 || y == 0 || x == w - 1 || y == h - 1 {
            border.push(p.0[0] as u32);
        }
    }
    let fill = (border.iter().sum::<u32>() / border.len().max(1) as u32) as u8;
    let mut out = GrayImage::from_pixel(side, side, Luma([fill]));
    image::imageops::overlay(&mut out, &small, ((side - nw) / 2) as i64, ((side - nh) / 2) as i64);
    out
}

/// The pixels of an image file.
pub fn load_image(path: &Path, how: Prepare) -> anyhow::Result<Vec<u8>> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    prepare_image(&bytes, &shown, how)
}

/// The mean of the outermost ring of pixels, 0–1, is above ½: the ground is light.
/// Fashion-MNIST's is dark — at most 0.37 over its 10,000 test images — so such an image most
/// likely needs `--invert`.
pub fn light_background(px: &[u8]) -> bool {
    let mut ring = Vec::with_capacity(4 * SIDE);
    for r in 0..SIDE {
        for c in 0..SIDE {
            if r == 0 || c == 0 || r == SIDE - 1 || c == SIDE - 1 {
                ring.push(px[r * SIDE + c] as f64);
            }
        }
    }
    ring.iter().sum::<f64>() / ring.len() as f64 / 255.0 > 0.5
}

/// Image files, with each directory replaced by its image files (by name, not descending
/// further).
pub fn expand(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if !p.is_dir() {
            out.push(p.clone());
            continue;
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|f| {
                f.is_file()
                    && f.extension()
                        .is_some_and(|x| EXTENSIONS.contains(&x.to_string_lossy().to_lowercase().as_str()))
            })
            .collect();
        anyhow::ensure!(
            !found.is_empty(),
            "{}: no image files ({}) in it",
            p.display(),
            EXTENSIONS.join(", ")
        );
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(img: &GrayImage) -> Vec<u8> {
        let mut bytes = Vec::new();
        image::DynamicImage::ImageLuma8(img.clone())
            .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageOutputFormat::Png)
            .unwrap();
        bytes
    }

    #[test]
    fn the_light_background_hint_stays_quiet_on_real_images_and_fires_on_inverted_ones() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/sample"));
        let data = crate::data::FashionMnist::load_dir(dir).unwrap();
        let n = data.test.len();
        let flagged = (0..n).filter(|&i| light_background(data.test.image(i))).count();
        assert_eq!(flagged, 0, "of {n} test images");
        let inverted = (0..n)
            .filter(|&i| light_background(&data.test.image(i).iter().map(|v| 255 - v).collect::<Vec<u8>>()))
            .count();
        assert_eq!(inverted, n);
    }

    #[test]
    fn resize_fits_and_centres_and_invert_inverts() {
        // A 56×28 white bar on black: 28×14 after fitting, centred, black around it.
        let wide = GrayImage::from_fn(56, 28, |_, _| Luma([255u8]));
        let mut framed = GrayImage::from_pixel(60, 32, Luma([0u8]));
        image::imageops::overlay(&mut framed, &wide, 2, 2);
        let px = prepare_image(&png(&framed), "bar", Prepare { resize: true, invert: false }).unwrap();
        assert_eq!(px.len(), SIDE * SIDE);
        assert_eq!(px[0], 0);
        assert!(px[14 * SIDE + 14] > 200, "{}", px[14 * SIDE + 14]);
        assert!(px[2 * SIDE + 14] < 50, "{}", px[2 * SIDE + 14]);
        let e = prepare_image(&png(&framed), "bar", Prepare::default()).unwrap_err().to_string();
        assert!(e.contains("60×32") && e.contains("--resize"), "{e}");
        let small = GrayImage::from_fn(28, 28, |x, _| Luma([x as u8]));
        let px = prepare_image(&png(&small), "ramp", Prepare { resize: false, invert: true }).unwrap();
        assert_eq!((px[0], px[27]), (255, 255 - 27));
    }
}
