//! PIL's antialiased bilinear and bicubic resampling, reproduced exactly.
//!
//! Written by hand because no crate reproduces Pillow bit for bit, and torchvision's
//! `Resize` on a PIL image *is* Pillow's `ImagingResample`: a filter (triangle for bilinear,
//! Keys' cubic with `a = -0.5` for bicubic) whose support grows with the downscaling factor,
//! coefficients normalised and quantised to 22-bit fixed point, a horizontal pass then a
//! vertical pass, each rounded and clamped to 8 bits. A generic resizer differs by several
//! levels on edges.

use image::RgbImage;

/// Fixed-point precision of Pillow's 8-bit resampling (`32 - 8 - 2`).
const PRECISION_BITS: u32 = 22;

/// Per output pixel: the first input index and how many inputs it reads, plus weights.
struct Coefficients {
    bounds: Vec<(usize, usize)>,
    ksize: usize,
    weights: Vec<i32>,
}

/// A resampling filter of PIL's (`Image.Resampling`), as torchvision's `Resize` passes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Filter {
    /// `BILINEAR`: the triangle filter, support 1.
    #[default]
    Bilinear,
    /// `BICUBIC`: Keys' cubic convolution with `a = -0.5`, support 2.
    Bicubic,
}

impl Filter {
    /// The filter's half-width at scale 1.
    fn support(self) -> f64 {
        match self {
            Filter::Bilinear => 1.0,
            Filter::Bicubic => 2.0,
        }
    }

    /// Pillow's `bilinear_filter` / `bicubic_filter`.
    fn weight(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Filter::Bilinear => {
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            Filter::Bicubic => {
                const A: f64 = -0.5;
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
        }
    }
}

/// Pillow's `precompute_coeffs` followed by `normalize_coeffs_8bpc`.
fn coefficients(in_size: usize, out_size: usize, filter: Filter) -> Coefficients {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    let ss = 1.0 / filterscale;
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        // C's (int) cast truncates toward zero, as `as i64` does.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize - xmin;
        let mut total = 0.0;
        for (x, w) in k.iter_mut().enumerate().take(xmax) {
            *w = filter.weight((x as f64 + xmin as f64 - center + 0.5) * ss);
            total += *w;
        }
        for (x, w) in k.iter().enumerate().take(xmax) {
            let w = if total != 0.0 { w / total } else { *w };
            let fixed = w * f64::from(1u32 << PRECISION_BITS);
            weights[xx * ksize + x] = if w < 0.0 {
                (fixed - 0.5) as i32
            } else {
                (fixed + 0.5) as i32
            };
        }
        bounds.push((xmin, xmax));
    }
    Coefficients {
        bounds,
        ksize,
        weights,
    }
}

fn clip8(v: i32) -> u8 {
    if v >= (1 << PRECISION_BITS << 8) {
        255
    } else if v <= 0 {
        0
    } else {
        (v >> PRECISION_BITS) as u8
    }
}

/// One separable pass over interleaved RGB rows; `horizontal` picks the axis.
fn pass(src: &RgbImage, out_w: u32, out_h: u32, c: &Coefficients, horizontal: bool) -> RgbImage {
    let mut out = RgbImage::new(out_w, out_h);
    let (sw, src_raw) = (src.width() as usize, src.as_raw());
    let ow = out_w as usize;
    let out_raw: &mut [u8] = &mut out;
    for y in 0..out_h as usize {
        for x in 0..ow {
            let (i, (start, count)) = if horizontal {
                (x, c.bounds[x])
            } else {
                (y, c.bounds[y])
            };
            let k = &c.weights[i * c.ksize..i * c.ksize + count];
            for ch in 0..3 {
                let mut acc: i32 = 1 << (PRECISION_BITS - 1);
                for (j, &w) in k.iter().enumerate() {
                    let (sx, sy) = if horizontal {
                        (start + j, y)
                    } else {
                        (x, start + j)
                    };
                    acc += i32::from(src_raw[(sy * sw + sx) * 3 + ch]) * w;
                }
                out_raw[(y * ow + x) * 3 + ch] = clip8(acc);
            }
        }
    }
    out
}

/// Resizes like Pillow's `Image.resize((width, height), Image.BILINEAR)`.
pub fn resize_bilinear(src: &RgbImage, width: u32, height: u32) -> RgbImage {
    resize(src, width, height, Filter::Bilinear)
}

/// Resizes like Pillow's `Image.resize((width, height), filter)`.
pub fn resize(src: &RgbImage, width: u32, height: u32, filter: Filter) -> RgbImage {
    let mut img = src.clone();
    if width != src.width() {
        let c = coefficients(src.width() as usize, width as usize, filter);
        img = pass(&img, width, img.height(), &c, true);
    }
    if height != src.height() {
        let c = coefficients(src.height() as usize, height as usize, filter);
        img = pass(&img, width, height, &c, false);
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_image_stays_constant() {
        let src = RgbImage::from_pixel(37, 23, image::Rgb([200, 10, 255]));
        let out = resize_bilinear(&src, 11, 64);
        assert!(out.pixels().all(|p| p.0 == [200, 10, 255]));
    }

    #[test]
    fn downscale_by_two_averages_neighbours() {
        // Halving a 4-wide ramp: each output reads 3 inputs with triangle weights 3:3:1
        // (first output) and 1:3:3 (second), normalised to sum 1.
        let mut src = RgbImage::new(4, 1);
        for (x, v) in [0u8, 100, 200, 250].iter().enumerate() {
            src.put_pixel(x as u32, 0, image::Rgb([*v; 3]));
        }
        let out = resize_bilinear(&src, 2, 1);
        // (0*3 + 100*3 + 200*1) / 7 = 71.4 ; (100*1 + 200*3 + 250*3) / 7 = 207.1
        assert_eq!(out.get_pixel(0, 0).0[0], 71);
        assert_eq!(out.get_pixel(1, 0).0[0], 207);
    }

    #[test]
    fn bicubic_keeps_constants_and_overshoots_at_edges() {
        let src = RgbImage::from_pixel(37, 23, image::Rgb([200, 10, 255]));
        let out = resize(&src, 11, 64, Filter::Bicubic);
        assert!(out.pixels().all(|p| p.0 == [200, 10, 255]));
        // A step upscaled: the cubic's negative lobes ring on both sides, clamped to 8 bits.
        let mut step = RgbImage::new(4, 1);
        for x in 2..4 {
            step.put_pixel(x, 0, image::Rgb([200; 3]));
        }
        let up = resize(&step, 16, 1, Filter::Bicubic);
        let row: Vec<u8> = up.pixels().map(|p| p.0[0]).collect();
        assert_eq!(row[0], 0);
        assert!(row.iter().any(|&v| v > 200), "{row:?}");
    }
}
