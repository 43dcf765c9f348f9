//! Image files as Fashion-MNIST pixels, for `predict`: 28×28, gray (colour is converted), one
//! byte a pixel.

use std::path::Path;

use super::SIDE;

/// The pixels of an encoded image (PNG, …); `shown` names it in errors.
pub fn decode_image(bytes: &[u8], shown: &str) -> anyhow::Result<Vec<u8>> {
    let img = image::load_from_memory(bytes).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    anyhow::ensure!(
        img.width() as usize == SIDE && img.height() as usize == SIDE,
        "{shown}: the image is {}×{}, not {SIDE}×{SIDE}; resize it first (a light garment on a dark ground, as in Fashion-MNIST)",
        img.width(),
        img.height()
    );
    Ok(img.to_luma8().into_raw())
}

/// The pixels of an image file.
pub fn load_image(path: &Path) -> anyhow::Result<Vec<u8>> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    decode_image(&bytes, &shown)
}
