//! Data augmentation of training images in the batch gather: random translation, horizontal
//! flip and random erasing. Each image's choices are a pure function of (seed, epoch, image
//! index) through the counter-based `pcg_hash`, in integers only, so the CPU reference
//! (src/cpu/data.rs) and the kernel (shaders/data.wgsl `gather`) draw the same images bit for
//! bit, and a resumed run repeats them. Evaluation never augments.

use serde::{Deserialize, Serialize};

use crate::rng::pcg_hash;

/// Which random changes training images get (all off by default).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Augment {
    /// Largest translation in pixels along each axis: the image is padded with `shift` zeros on
    /// every side and a 28×28 window cropped back at a uniform offset (0: none).
    pub shift: u32,
    /// Mirror left–right with probability ½.
    pub flip: bool,
    /// Probability of random erasing: a rectangle of sides uniform in [side/7, side/2] pixels
    /// (4 to 14 of 28: 2% to 25% of the image), at a uniform position, set to zero.
    pub erase: f32,
}

impl Augment {
    /// Whether any change is on.
    pub fn is_on(&self) -> bool {
        self.shift > 0 || self.flip || self.erase > 0.0
    }

    /// The command line's form: `none`, or a comma list of `shift=N`, `flip`, `erase=P`.
    pub fn parse(text: &str) -> anyhow::Result<Augment> {
        let mut a = Augment::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty() && *p != "none") {
            let (key, value) = part.split_once('=').map_or((part, None), |(k, v)| (k.trim(), Some(v.trim())));
            let bad = || anyhow::anyhow!("--augment: `{part}` needs a number (shift=2, erase=0.5)");
            match (key, value) {
                ("shift", Some(v)) => a.shift = v.parse().map_err(|_| bad())?,
                ("flip", None) => a.flip = true,
                ("erase", Some(v)) => a.erase = v.parse().map_err(|_| bad())?,
                ("shift" | "erase", None) => return Err(bad()),
                _ => anyhow::bail!("--augment: unknown `{part}` (known: shift=N, flip, erase=P, none)"),
            }
        }
        a.validate()?;
        Ok(a)
    }

    /// A one-line error where the settings cannot be used.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.shift <= 8, "augment: shift is at most 8 pixels, not {}", self.shift);
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.erase),
            "augment: erase is a probability between 0 and 1, not {}",
            self.erase
        );
        Ok(())
    }
}

impl std::fmt::Display for Augment {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let mut parts = Vec::new();
        if self.shift > 0 {
            parts.push(format!("shift={}", self.shift));
        }
        if self.flip {
            parts.push("flip".into());
        }
        if self.erase > 0.0 {
            parts.push(format!("erase={}", self.erase));
        }
        if parts.is_empty() {
            parts.push("none".into());
        }
        write!(f, "{}", parts.join(","))
    }
}

/// One image's drawn changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Draw {
    /// The content moves right by `dx` and down by `dy` pixels.
    pub dx: i32,
    pub dy: i32,
    /// Mirrored left–right (before the move).
    pub flip: bool,
    /// The zeroed rectangle (top, left, height, width), after the move; height 0 when none.
    pub erase: [u32; 4],
}

/// The changes of image `image` in epoch `epoch` (0-based) for a `side`×`side` image: the
/// words `pcg_hash(key + k)`, k = 0…7, of `key = pcg_hash(image ^ pcg_hash(epoch ^
/// pcg_hash(seed)))` pick, in order, dx, dy, the flip, whether to erase, the rectangle's height,
/// width, top and left.
pub fn draw(a: &Augment, seed: u32, epoch: u32, image: u32, side: u32) -> Draw {
    let key = pcg_hash(image ^ pcg_hash(epoch ^ pcg_hash(seed)));
    let word = |k: u32| pcg_hash(key.wrapping_add(k));
    let offset = |w: u32| (w % (2 * a.shift + 1)) as i32 - a.shift as i32;
    let erased = (word(3) >> 8) as f32 * (1.0 / 16_777_216.0) < a.erase;
    let (lo, hi) = (side / 7, side / 2);
    let (h, w) = (lo + word(4) % (hi - lo + 1), lo + word(5) % (hi - lo + 1));
    Draw {
        dx: offset(word(0)),
        dy: offset(word(1)),
        flip: a.flip && word(2) >> 31 == 1,
        erase: if erased { [word(6) % (side - h + 1), word(7) % (side - w + 1), h, w] } else { [0; 4] },
    }
}

/// Where output pixel (row, col) of an augmented `side`×`side` image comes from: the source
/// pixel's index, or `None` where it is zero (padding or the erased rectangle).
pub fn source(d: &Draw, side: u32, row: u32, col: u32) -> Option<usize> {
    let [top, left, h, w] = d.erase;
    if row >= top && row < top + h && col >= left && col < left + w {
        return None;
    }
    let (r, c) = (row as i32 - d.dy, col as i32 - d.dx);
    let n = side as i32;
    if r < 0 || r >= n || c < 0 || c >= n {
        return None;
    }
    let c = if d.flip { n - 1 - c } else { c };
    Some((r * n + c) as usize)
}

/// One image (`side`×`side` bytes) as the gather augments it: the bytes it reads, 0 elsewhere.
pub fn augmented(d: &Draw, image: &[u8], side: u32) -> Vec<u8> {
    (0..side * side).map(|p| source(d, side, p / side, p % side).map_or(0, |q| image[q])).collect()
}

/// A grid of training images as training sees them: one row per image of `images` (index, its
/// `side`×`side` bytes), the original first, then its draws in epochs 0, 1, …, `epochs` − 1;
/// each pixel drawn `scale`×`scale`, with a 2-pixel gray gutter. Gray bytes, row-major, and the
/// grid's (width, height).
pub fn preview_grid(
    a: &Augment,
    seed: u32,
    images: &[(u32, &[u8])],
    side: u32,
    epochs: u32,
    scale: u32,
) -> (Vec<u8>, u32, u32) {
    let (cell, gap) = (side * scale, 2);
    let (w, h) = ((epochs + 1) * (cell + gap) + gap, images.len() as u32 * (cell + gap) + gap);
    let mut out = vec![96u8; (w * h) as usize];
    for (row, &(index, pixels)) in images.iter().enumerate() {
        let tiles = std::iter::once(pixels.to_vec())
            .chain((0..epochs).map(|e| augmented(&draw(a, seed, e, index, side), pixels, side)));
        for (col, tile) in tiles.enumerate() {
            let (x0, y0) = (gap + col as u32 * (cell + gap), gap + row as u32 * (cell + gap));
            for y in 0..cell {
                for x in 0..cell {
                    out[((y0 + y) * w + x0 + x) as usize] = tile[((y / scale) * side + x / scale) as usize];
                }
            }
        }
    }
    (out, w, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_form_round_trips_and_rejects_nonsense() {
        let a = Augment::parse("shift=2,flip,erase=0.5").unwrap();
        assert_eq!(a, Augment { shift: 2, flip: true, erase: 0.5 });
        assert_eq!(Augment::parse(&a.to_string()).unwrap(), a);
        assert_eq!(Augment::parse("none").unwrap(), Augment::default());
        for bad in ["shift", "shift=x", "erase=2", "rotate=3", "shift=20", "flip=1"] {
            assert!(Augment::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn draws_cover_their_ranges_and_depend_on_seed_epoch_and_image() {
        let a = Augment { shift: 2, flip: true, erase: 0.5 };
        let draws: Vec<Draw> = (0..2000).map(|i| draw(&a, 7, 3, i, 28)).collect();
        for d in &draws {
            assert!(d.dx.abs() <= 2 && d.dy.abs() <= 2);
            let [top, left, h, w] = d.erase;
            assert!(
                h == 0 || ((4..=14).contains(&h) && (4..=14).contains(&w) && top + h <= 28 && left + w <= 28)
            );
        }
        let share = |f: &dyn Fn(&Draw) -> bool| draws.iter().filter(|d| f(d)).count() as f64 / 2000.0;
        assert!((share(&|d| d.flip) - 0.5).abs() < 0.05);
        assert!((share(&|d| d.erase[2] > 0) - 0.5).abs() < 0.05);
        assert!((share(&|d| d.dx == -2) - 0.2).abs() < 0.04);
        assert_ne!(draw(&a, 7, 3, 5, 28), draw(&a, 7, 4, 5, 28));
        assert_ne!(draw(&a, 8, 3, 5, 28), draw(&a, 7, 3, 5, 28));
        assert_eq!(draw(&Augment::default(), 7, 3, 5, 28), Draw { dx: 0, dy: 0, flip: false, erase: [0; 4] });
    }

    #[test]
    fn a_shift_moves_the_content_and_a_flip_mirrors_it() {
        let d = Draw { dx: 2, dy: -1, flip: false, erase: [0; 4] };
        assert_eq!(source(&d, 28, 5, 7), Some(6 * 28 + 5));
        assert_eq!(source(&d, 28, 5, 1), None);
        assert_eq!(source(&d, 28, 27, 9), None);
        let f = Draw { dx: 0, dy: 0, flip: true, erase: [3, 4, 2, 2] };
        assert_eq!(source(&f, 28, 0, 0), Some(27));
        assert_eq!(source(&f, 28, 4, 5), None);
        assert_eq!(source(&f, 28, 5, 5), Some(5 * 28 + 22));
    }

    /// A constructed image with one bright pixel: a shift moves it by (dy, dx) with every offset
    /// in range drawn; a flip mirrors its column; erasing never adds a pixel.
    #[test]
    fn a_translated_image_is_the_original_shifted() {
        let mut image = vec![0u8; 28 * 28];
        image[10 * 28 + 12] = 255;
        let mut seen = std::collections::BTreeSet::new();
        for a in [Augment { shift: 3, flip: false, erase: 0.0 }, Augment { shift: 3, flip: true, erase: 0.5 }]
        {
            for i in 0..400 {
                let d = draw(&a, 5, i % 3, i, 28);
                let out = augmented(&d, &image, 28);
                let lit: Vec<usize> = (0..784).filter(|&p| out[p] != 0).collect();
                let col = if d.flip { 27 - 12 } else { 12 };
                let want = ((10 + d.dy) * 28 + col + d.dx) as usize;
                let [top, left, h, w] = d.erase;
                let erased = (top..top + h).contains(&((10 + d.dy) as u32))
                    && (left..left + w).contains(&((col + d.dx) as u32));
                assert_eq!(lit, if erased { vec![] } else { vec![want] }, "{d:?}");
                seen.insert((d.dx, d.dy));
            }
        }
        assert_eq!(seen.len(), 49, "every offset in [-3, 3]² is drawn");
        let (grid, w, h) = preview_grid(&Augment::default(), 1, &[(0, &image)], 28, 2, 2);
        assert_eq!((w, h, grid.len()), (3 * 58 + 2, 60, (176 * 60) as usize));
        assert_eq!(grid[((2 + 20) * w + 2 + 24) as usize], 255, "the original's pixel, scaled by 2");
    }
}
