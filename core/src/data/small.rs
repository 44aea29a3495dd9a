//! The embedded real test subsets: the first 5000 images of the official Fashion-MNIST and
//! MNIST test sets (`assets/<set>-small/`, made by `scripts/make-embedded-subsets.sh`, licences
//! beside them). Compiled in so that the web page, which has no file system, trains on real
//! 28x28 images; natively they are a quick stand-in for the fetched sets.

use super::Dataset;
use super::idx::{labelled_images, parse_maybe_gzipped};
use crate::error::Result;
use std::path::PathBuf;

/// One of the embedded subsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmallSet {
    FashionMnist,
    Mnist,
}

impl SmallSet {
    fn files(self) -> (&'static [u8], &'static [u8], &'static str) {
        match self {
            SmallSet::FashionMnist => (
                include_bytes!("../../../assets/fashion-mnist-small/images-idx3-ubyte.gz"),
                include_bytes!("../../../assets/fashion-mnist-small/labels-idx1-ubyte.gz"),
                "assets/fashion-mnist-small",
            ),
            SmallSet::Mnist => (
                include_bytes!("../../../assets/mnist-small/images-idx3-ubyte.gz"),
                include_bytes!("../../../assets/mnist-small/labels-idx1-ubyte.gz"),
                "assets/mnist-small",
            ),
        }
    }
}

/// All 5000 samples of the subset; the caller splits them.
pub fn load(set: SmallSet) -> Result<Dataset> {
    let (images, labels, dir) = set.files();
    let origin = PathBuf::from(format!("{dir} (embedded)"));
    labelled_images(parse_maybe_gzipped(images, &origin)?, parse_maybe_gzipped(labels, &origin)?, &origin)
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
