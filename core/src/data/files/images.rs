//! Folders of images, one subfolder per class: PNG (any bit depth, palette expanded, 16-bit cut
//! to 8) and JPEG (baseline and progressive), decoded natively by `png` and `zune-jpeg`; an
//! alpha channel is dropped. Every image of a set has one size and one channel count
//! (grayscale or RGB). Files other than `.png`, `.jpg` and `.jpeg` (any case), hidden files and
//! files beside the class folders are not read.

use super::{Labels, Samples, bad, folder_order, shape_text};
use crate::data::source::FileSource;
use crate::error::Result;
use std::path::{Path, PathBuf};

/// Decoded pixels beyond this many bytes are refused before they are allocated (a damaged
/// header can claim any size): 64 MiB, e.g. 4096×4096 RGB.
const MAX_PIXEL_BYTES: usize = 64 << 20;

/// One decoded image, channel major (as the samples are kept): `pixels[(c * height + y) * width + x]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub pixels: Vec<u8>,
}

impl Image {
    pub fn shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }

    /// From interleaved pixels (`per_pixel` values each, the first `channels` of them kept).
    fn from_interleaved(data: &[u8], per_pixel: usize, channels: usize, height: usize, width: usize) -> Self {
        let plane = height * width;
        let mut pixels = Vec::with_capacity(channels * plane);
        for c in 0..channels {
            pixels.extend(data.chunks_exact(per_pixel).take(plane).map(|p| p[c]));
        }
        Image { channels, height, width, pixels }
    }
}

fn too_large(origin: &Path, width: usize, height: usize) -> crate::error::WsaError {
    bad(origin, format!("is {width}x{height} pixels, more than this reader decodes ({} MiB)", MAX_PIXEL_BYTES >> 20))
}

/// Decodes a PNG or JPEG file's bytes (the file `origin`, named in every error).
pub fn decode_image(bytes: &[u8], origin: &Path) -> Result<Image> {
    if bytes.starts_with(b"\x89PNG") {
        decode_png(bytes, origin)
    } else if bytes.starts_with(&[0xff, 0xd8]) {
        decode_jpeg(bytes, origin)
    } else {
        Err(bad(origin, "is neither a PNG nor a JPEG image"))
    }
}

fn decode_png(bytes: &[u8], origin: &Path) -> Result<Image> {
    let failed = |e: png::DecodingError| bad(origin, format!("is not a readable PNG: {e}"));
    let mut decoder = png::Decoder::new(bytes);
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(failed)?;
    let (width, height) = (reader.info().width as usize, reader.info().height as usize);
    // Checked before the decoder computes the size (which could overflow on wasm32): at most 4
    // bytes a pixel once 16-bit samples are cut to 8.
    if width.saturating_mul(height).saturating_mul(4) > MAX_PIXEL_BYTES {
        return Err(too_large(origin, width, height));
    }
    let size = reader.output_buffer_size();
    let mut buffer = vec![0; size];
    let frame = reader.next_frame(&mut buffer).map_err(failed)?;
    let per_pixel = frame.color_type.samples();
    let channels = match frame.color_type {
        png::ColorType::Grayscale | png::ColorType::GrayscaleAlpha => 1,
        _ => 3,
    };
    if frame.bit_depth != png::BitDepth::Eight || per_pixel < channels {
        return Err(bad(origin, format!("decodes to {:?} {:?} pixels, not 8-bit", frame.bit_depth, frame.color_type)));
    }
    let (height, width) = (frame.height as usize, frame.width as usize);
    let rows: Vec<u8> = buffer[..frame.buffer_size()]
        .chunks_exact(frame.line_size)
        .flat_map(|row| &row[..width * per_pixel])
        .copied()
        .collect();
    Ok(Image::from_interleaved(&rows, per_pixel, channels, height, width))
}

fn decode_jpeg(bytes: &[u8], origin: &Path) -> Result<Image> {
    use zune_jpeg::zune_core::{bytestream::ZCursor, colorspace::ColorSpace};
    let failed = |e: zune_jpeg::errors::DecodeErrors| bad(origin, format!("is not a readable JPEG: {e}"));
    let mut decoder = zune_jpeg::JpegDecoder::new(ZCursor::new(bytes));
    decoder.decode_headers().map_err(failed)?;
    let (width, height) = decoder.dimensions().map_or((0, 0), |(w, h)| (w, h));
    if width.saturating_mul(height).saturating_mul(3) > MAX_PIXEL_BYTES {
        return Err(too_large(origin, width, height));
    }
    let gray = decoder.input_colorspace() == Some(ColorSpace::Luma);
    let channels = if gray { 1 } else { 3 };
    let out = if gray { ColorSpace::Luma } else { ColorSpace::RGB };
    decoder.set_options(decoder.options().jpeg_set_out_colorspace(out));
    let data = decoder.decode().map_err(failed)?;
    if data.len() < width * height * channels {
        return Err(bad(origin, "decodes to fewer pixels than its size states"));
    }
    Ok(Image::from_interleaved(&data, channels, channels, height, width))
}

/// Whether a file name is one of the images a class folder is read for.
fn is_image(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !name.starts_with('.') && [".png", ".jpg", ".jpeg"].iter().any(|ext| lower.ends_with(ext))
}

/// Every image in `root`'s class subfolders, class by class (in class order, `folder_order`),
/// each class's files in name order; labelled by folder name.
pub(super) fn read_folder(source: &dyn FileSource, root: &Path) -> Result<Samples> {
    let mut classes: Vec<String> =
        source.list(root)?.into_iter().filter(|e| e.is_folder && !e.name.starts_with('.')).map(|e| e.name).collect();
    folder_order(&mut classes);
    if classes.is_empty() {
        return Err(bad(root, "holds no class folders (a folder of images per class)"));
    }
    let mut features = Vec::new();
    let mut labels = Vec::new();
    let mut first: Option<(PathBuf, [usize; 3])> = None;
    for class in classes {
        let dir = root.join(&class);
        let files: Vec<String> =
            source.list(&dir)?.into_iter().filter(|e| !e.is_folder && is_image(&e.name)).map(|e| e.name).collect();
        if files.is_empty() {
            return Err(bad(&dir, "holds no PNG or JPEG images: every class folder needs some"));
        }
        for name in files {
            let path = dir.join(&name);
            let image = decode_image(&source.read(&path)?, &path)?;
            match &first {
                Some((first_path, shape)) if *shape != image.shape() => {
                    return Err(bad(
                        &path,
                        format!(
                            "is {} (channels x height x width) but {} is {}: all images of a set need one size",
                            shape_text(&image.shape()),
                            first_path.display(),
                            shape_text(shape)
                        ),
                    ));
                }
                Some(_) => {}
                None => first = Some((path.clone(), image.shape())),
            }
            features.extend(image.pixels.iter().map(|&p| f32::from(p)));
            labels.push(class.clone());
        }
    }
    let sample_shape = first.map(|(_, shape)| shape.to_vec()).unwrap_or_default();
    Ok(Samples { features, sample_shape, labels: Labels::Folders(labels), eight_bit: true })
}
