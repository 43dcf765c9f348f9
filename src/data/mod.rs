//! Fashion-MNIST: find the IDX files, validate them, and split them as the report does.
//!
//! The first 5,000 training images are the validation set and the other 55,000 the training
//! set; the 10,000 `t10k` images are the test set. A smaller set (such as `data/sample/`)
//! holds out its first 10% of training images for validation instead.

pub mod augment;
pub mod identity;
pub mod idx;
pub mod image;

use std::path::{Path, PathBuf};

pub use augment::Augment;
pub use identity::DataId;
pub use idx::{read_idx, Idx, IdxError};

/// Image side length in pixels; Fashion-MNIST images are 28×28 grayscale bytes.
pub const SIDE: usize = 28;
/// Pixels per image.
pub const PIXELS: usize = SIDE * SIDE;
/// Number of classes.
pub const CLASSES: usize = 10;
/// The class names, in label order.
pub const CLASS_NAMES: [&str; CLASSES] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];
/// Validation images held out of the full 60,000-image training file, as in the report.
pub const REPORT_VALIDATION: usize = 5_000;
const FULL_TRAINING_FILE: usize = 60_000;

/// Where the data set is looked for when neither `--data-dir` nor `$GPU_FMNIST_DATA` is given.
pub const DEFAULT_DIRS: [&str; 2] = ["data/fashion-mnist", "/usr/share/datasets/fashion-mnist"];
/// The environment variable that names the data directory.
pub const DATA_ENV: &str = "GPU_FMNIST_DATA";
const INSTALL_HINT: &str = "install it with `sudo apt-get install dataset-fashion-mnist` (or run ./setup.sh), or pass --data-dir DIR";

const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// What can go wrong while loading the data set; each message is one line.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("no Fashion-MNIST found (looked in {looked}); {INSTALL_HINT}")]
    NotFound { looked: String },
    #[error("{dir}: missing {name}[.gz] ({from}); {INSTALL_HINT}")]
    MissingFile { dir: PathBuf, name: &'static str, from: String },
    #[error(transparent)]
    Idx(#[from] IdxError),
    #[error("{path}: {what}")]
    Invalid { path: PathBuf, what: String },
}

/// Images (row-major bytes, [`PIXELS`] per image) with their labels (0–9).
#[derive(Debug, Clone, Default)]
pub struct Split {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
}

impl Split {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image `i` as [`PIXELS`] bytes.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * PIXELS..(i + 1) * PIXELS]
    }

    /// Images `range` as a new split.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Split {
        Split {
            images: self.images[range.start * PIXELS..range.end * PIXELS].to_vec(),
            labels: self.labels[range].to_vec(),
        }
    }

    /// How many images of each class.
    pub fn class_counts(&self) -> [usize; CLASSES] {
        let mut counts = [0; CLASSES];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    /// Mean and standard deviation of the pixels scaled to [0, 1].
    pub fn pixel_mean_std(&self) -> (f64, f64) {
        let n = self.images.len().max(1) as f64;
        let (sum, sum_sq) =
            self.images.iter().fold((0u64, 0u64), |(s, q), &p| (s + p as u64, q + (p as u64) * (p as u64)));
        let mean = sum as f64 / n / 255.0;
        let var = sum_sq as f64 / n / (255.0 * 255.0) - mean * mean;
        (mean, var.max(0.0).sqrt())
    }
}

/// The three splits and where they came from.
#[derive(Debug, Clone)]
pub struct FashionMnist {
    /// The directory the files were read from.
    pub dir: PathBuf,
    pub train: Split,
    pub val: Split,
    pub test: Split,
    /// How the validation set was chosen, in words.
    pub validation_rule: String,
}

impl FashionMnist {
    /// Finds the data directory (see [`locate`]) and loads it.
    pub fn load(data_dir: Option<&Path>) -> Result<Self, DataError> {
        Self::load_dir(&locate(data_dir)?)
    }

    /// Loads and validates the four IDX files in `dir`, then splits them.
    pub fn load_dir(dir: &Path) -> Result<Self, DataError> {
        let full_train = load_pair(dir, TRAIN_IMAGES, TRAIN_LABELS)?;
        let test = load_pair(dir, TEST_IMAGES, TEST_LABELS)?;
        let n = full_train.len();
        let (n_val, validation_rule) = if n >= FULL_TRAINING_FILE {
            (REPORT_VALIDATION, format!("the first {REPORT_VALIDATION} training images, as in the report"))
        } else {
            (
                n / 10,
                format!(
                    "the first 10% ({}) of the {n} training images: this set is smaller than the report's 60,000",
                    n / 10
                ),
            )
        };
        Ok(FashionMnist {
            dir: dir.to_owned(),
            val: full_train.slice(0..n_val),
            train: full_train.slice(n_val..n),
            test,
            validation_rule,
        })
    }

    /// The split called `name` (`train`, `val` or `test`).
    pub fn split(&self, name: SplitName) -> &Split {
        match name {
            SplitName::Train => &self.train,
            SplitName::Val => &self.val,
            SplitName::Test => &self.test,
        }
    }
}

/// The three splits by name, as the CLI spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitName {
    Train,
    Val,
    Test,
}

/// Picks the data directory: `--data-dir`, then `$GPU_FMNIST_DATA` (both used as given, even if
/// empty, so a typo is reported rather than silently replaced), then the first of
/// [`DEFAULT_DIRS`] that holds the training images.
pub fn locate(data_dir: Option<&Path>) -> Result<PathBuf, DataError> {
    if let Some(dir) = data_dir {
        return checked(dir, "from --data-dir");
    }
    if let Some(dir) = std::env::var_os(DATA_ENV).filter(|d| !d.is_empty()) {
        return checked(Path::new(&dir), &format!("from ${DATA_ENV}"));
    }
    DEFAULT_DIRS
        .iter()
        .map(Path::new)
        .find(|dir| find_file(dir, TRAIN_IMAGES).is_some())
        .map(Path::to_owned)
        .ok_or_else(|| DataError::NotFound { looked: DEFAULT_DIRS.join(", ") })
}

fn checked(dir: &Path, from: &str) -> Result<PathBuf, DataError> {
    if !dir.is_dir() {
        let what = if dir.exists() { "is not a directory" } else { "does not exist" };
        return Err(DataError::Invalid { path: dir.to_owned(), what: format!("{what} ({from})") });
    }
    for name in [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS] {
        if find_file(dir, name).is_none() {
            return Err(DataError::MissingFile { dir: dir.to_owned(), name, from: from.to_owned() });
        }
    }
    Ok(dir.to_owned())
}

/// `dir/name`, or `dir/name.gz`, whichever exists first.
fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.gz"))].into_iter().find(|p| p.is_file())
}

fn require(dir: &Path, name: &'static str) -> Result<PathBuf, DataError> {
    find_file(dir, name).ok_or_else(|| DataError::MissingFile {
        dir: dir.to_owned(),
        name,
        from: "found the directory, not this file".into(),
    })
}

/// Reads an image file and its label file and checks that they describe the same images.
fn load_pair(dir: &Path, images: &'static str, labels: &'static str) -> Result<Split, DataError> {
    let image_path = require(dir, images)?;
    let label_path = require(dir, labels)?;
    let invalid = |path: &Path, what: String| DataError::Invalid { path: path.to_owned(), what };
    let img = read_idx(&image_path)?;
    if img.dims.len() != 3 || img.dims[1] != SIDE || img.dims[2] != SIDE {
        return Err(invalid(
            &image_path,
            format!("dimensions {:?} are not N×{SIDE}×{SIDE} images", img.dims),
        ));
    }
    let lab = read_idx(&label_path)?;
    if lab.dims.len() != 1 {
        return Err(invalid(&label_path, format!("dimensions {:?} are not a list of labels", lab.dims)));
    }
    if lab.dims[0] != img.dims[0] {
        return Err(invalid(
            &label_path,
            format!("{} labels for {} images in {}", lab.dims[0], img.dims[0], image_path.display()),
        ));
    }
    if let Some(i) = lab.data.iter().position(|&l| l as usize >= CLASSES) {
        return Err(invalid(&label_path, format!("label {} at index {i} is not a class 0–9", lab.data[i])));
    }
    Ok(Split { images: img.data, labels: lab.data })
}

/// Byte `i` of u8 data packed four to a little-endian u32.
pub fn byte(packed: &[u32], i: usize) -> u8 {
    (packed[i / 4] >> (8 * (i % 4))) as u8
}

/// Packs bytes four to a u32, little-endian, zero-padded: how images travel to the GPU.
pub fn pack_bytes(bytes: &[u8]) -> Vec<u32> {
    bytes.chunks(4).map(|c| c.iter().rev().fold(0u32, |w, &b| (w << 8) | b as u32)).collect()
}
