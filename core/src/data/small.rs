//! The real image subsets: the first 5000 images of the official Fashion-MNIST and MNIST test
//! sets (`assets/<set>-small/`, made by `scripts/make-embedded-subsets.sh`, licences beside
//! them). Natively they are compiled in, a quick stand-in for the fetched sets. The web page
//! would carry 4 MB of images most visitors never use, so there they stay out of the module:
//! the page downloads a subset's two files on first use (`provide`), and `load` reads them
//! from there. That copy is static data written once, like the bytes compiled in natively.

use super::Dataset;
use super::idx::{labelled_images, parse_idx_file};
use crate::error::Result;
use std::path::PathBuf;

/// One of the embedded subsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmallSet {
    FashionMnist,
    Mnist,
}

impl SmallSet {
    /// Its folder in the repository, which the page serves at the same path.
    pub fn dir(self) -> &'static str {
        match self {
            SmallSet::FashionMnist => "assets/fashion-mnist-small",
            SmallSet::Mnist => "assets/mnist-small",
        }
    }

    /// The image file and the label file in [`SmallSet::dir`].
    pub const FILES: [&str; 2] = ["images-idx3-ubyte.gz", "labels-idx1-ubyte.gz"];

    /// (images, labels) as gzipped IDX bytes, where this build has them.
    #[cfg(not(target_arch = "wasm32"))]
    fn files(self) -> Result<(&'static [u8], &'static [u8])> {
        Ok(match self {
            SmallSet::FashionMnist => (
                include_bytes!("../../../assets/fashion-mnist-small/images-idx3-ubyte.gz"),
                include_bytes!("../../../assets/fashion-mnist-small/labels-idx1-ubyte.gz"),
            ),
            SmallSet::Mnist => (
                include_bytes!("../../../assets/mnist-small/images-idx3-ubyte.gz"),
                include_bytes!("../../../assets/mnist-small/labels-idx1-ubyte.gz"),
            ),
        })
    }

    #[cfg(target_arch = "wasm32")]
    fn files(self) -> Result<(&'static [u8], &'static [u8])> {
        let (images, labels) = downloaded::slot(self).get().ok_or_else(|| {
            crate::error::WsaError::invalid(
                "data.dataset",
                self.dir(),
                "has not been downloaded into this page yet (the page fetches it before a run that uses it)",
            )
        })?;
        Ok((images.as_slice(), labels.as_slice()))
    }

    /// Whether [`load`] can read the subset without a download first: always natively.
    pub fn is_available(self) -> bool {
        self.files().is_ok()
    }
}

/// The page's copies of the subsets' files, downloaded on first use.
#[cfg(target_arch = "wasm32")]
mod downloaded {
    use super::SmallSet;
    use std::sync::OnceLock;

    static FASHION_MNIST: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    static MNIST: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();

    pub(super) fn slot(set: SmallSet) -> &'static OnceLock<(Vec<u8>, Vec<u8>)> {
        match set {
            SmallSet::FashionMnist => &FASHION_MNIST,
            SmallSet::Mnist => &MNIST,
        }
    }
}

/// Hands the page's download of `set` (its two files, as served) to [`load`]. The files are
/// checked first, so a broken download is an error naming the file here, not a failed run
/// later; a second copy of a set already provided is ignored.
#[cfg(target_arch = "wasm32")]
pub fn provide(set: SmallSet, images: Vec<u8>, labels: Vec<u8>) -> Result<()> {
    let origin = PathBuf::from(format!("{} (downloaded)", set.dir()));
    labelled_images(parse_idx_file(&images, &origin)?, parse_idx_file(&labels, &origin)?, &origin)?;
    let _ = downloaded::slot(set).set((images, labels));
    Ok(())
}

/// All 5000 samples of the subset; the caller splits them.
pub fn load(set: SmallSet) -> Result<Dataset> {
    let (images, labels) = set.files()?;
    let origin = PathBuf::from(format!("{} (embedded)", set.dir()));
    labelled_images(parse_idx_file(images, &origin)?, parse_idx_file(labels, &origin)?, &origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_hold_5000_real_images_of_every_class() {
        for set in [SmallSet::FashionMnist, SmallSet::Mnist] {
            let data = load(set).expect("embedded subset");
            assert_eq!(data.len(), 5000, "{set:?}");
            assert_eq!(data.sample_shape, vec![1, 28, 28]);
            let counts = data.class_counts();
            assert!(counts.iter().all(|&c| (400..=600).contains(&c)), "{set:?}: {counts:?}");
            // Real images: mostly black background, some fully lit pixels.
            let zeros = data.features.iter().filter(|&&v| v == 0.0).count() as f64 / data.features.len() as f64;
            assert!((0.4..0.9).contains(&zeros), "{set:?}: share of zero pixels {zeros}");
            assert!(data.features.contains(&1.0));
        }
    }
}
