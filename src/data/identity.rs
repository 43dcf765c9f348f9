//! What a data set is, independent of where it lies: its split sizes and a content hash of
//! every image and label. Runs, checkpoints and experiment records carry it, so that a resume
//! or a study never mixes results from two data sets without a word.

use serde::{Deserialize, Serialize};

use super::FashionMnist;

/// A data set's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataId {
    /// Where it was read from (for people: the same data elsewhere is the same data).
    pub dir: String,
    pub train_images: usize,
    pub val_images: usize,
    pub test_images: usize,
    /// FNV-1a (64 bits, hex) over the training file's images and labels, then the test file's.
    pub hash: String,
}

impl DataId {
    /// The same images and labels, wherever they were read from.
    pub fn same_data(&self, other: &DataId) -> bool {
        self.hash == other.hash
            && (self.train_images, self.val_images, self.test_images)
                == (other.train_images, other.val_images, other.test_images)
    }
}

impl std::fmt::Display for DataId {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "{} ({} training, {} validation, {} test images; hash {})",
            self.dir, self.train_images, self.val_images, self.test_images, self.hash
        )
    }
}

/// FNV-1a, 64 bits: `h` continued over `bytes` (start from [`FNV_START`]).
pub fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// FNV-1a's offset basis.
pub const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

impl FashionMnist {
    /// The data set's identity (hashes about 55 MB on the full set: tens of milliseconds).
    pub fn identity(&self) -> DataId {
        // File order: the training file is validation then training images; then the test file.
        let mut h = FNV_START;
        for split in [&self.val, &self.train, &self.test] {
            h = fnv1a(h, &split.images);
        }
        for split in [&self.val, &self.train, &self.test] {
            h = fnv1a(h, &split.labels);
        }
        DataId {
            dir: self.dir.display().to_string(),
            train_images: self.train.len(),
            val_images: self.val.len(),
            test_images: self.test.len(),
            hash: format!("{h:016x}"),
        }
    }
}
