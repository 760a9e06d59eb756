//! The conversions between sRGB and DICOM CIELab colours (RecommendedDisplayCIELabValue). The
//! coded concepts of segment descriptions live in [`mask::coding`](crate::mask::coding): a
//! model's card carries them too.

/// Converts an sRGB colour (0..=255 per channel) to DICOM's RecommendedDisplayCIELabValue: CIE
/// L*a*b* under D65, scaled to 0..=65535 (L* 0..100, a*/b* −128..127 shifted by 128), as PS3.3
/// C.10.7.1.1 describes and dcmqi/highdicom (after PixelMed's ColorUtilities) implement.
pub fn srgb_to_dicom_lab(rgb: [u8; 3]) -> [u16; 3] {
    fn linear(c: u8) -> f64 {
        let c = c as f64 / 255.0;
        if c > 0.04045 {
            ((c + 0.055) / 1.055).powf(2.4)
        } else {
            c / 12.92
        }
    }
    let (r, g, b) = (linear(rgb[0]), linear(rgb[1]), linear(rgb[2]));
    // sRGB primaries to XYZ (D65), then normalise by the D65 white point.
    let x = (r * 0.4124 + g * 0.3576 + b * 0.1805) / 0.95047;
    let y = r * 0.2126 + g * 0.7152 + b * 0.0722;
    let z = (r * 0.0193 + g * 0.1192 + b * 0.9505) / 1.08883;
    fn f(t: f64) -> f64 {
        if t >= 8.856_451_679_035_631e-3 {
            t.cbrt()
        } else {
            (841.0 / 108.0) * t + 4.0 / 29.0
        }
    }
    let (fx, fy, fz) = (f(x), f(y), f(z));
    let l = (116.0 * fy - 16.0).clamp(0.0, 100.0);
    let a = (500.0 * (fx - fy)).clamp(-128.0, 127.0);
    let bb = (200.0 * (fy - fz)).clamp(-128.0, 127.0);
    [
        (l * 65535.0 / 100.0).round() as u16,
        ((a + 128.0) * 65535.0 / 255.0).round() as u16,
        ((bb + 128.0) * 65535.0 / 255.0).round() as u16,
    ]
}

/// DICOM-scaled CIELab back to sRGB (inverse of [`srgb_to_dicom_lab`]), clamped.
pub fn dicom_lab_to_srgb(lab: [u16; 3]) -> [u8; 3] {
    let l = lab[0] as f64 * 100.0 / 65535.0;
    let a = lab[1] as f64 * 255.0 / 65535.0 - 128.0;
    let b = lab[2] as f64 * 255.0 / 65535.0 - 128.0;
    let fy = (l + 16.0) / 116.0;
    let fx = fy + a / 500.0;
    let fz = fy - b / 200.0;
    let finv = |t: f64| {
        if t > 6.0 / 29.0 {
            t * t * t
        } else {
            (108.0 / 841.0) * (t - 4.0 / 29.0)
        }
    };
    let (x, y, z) = (finv(fx) * 0.95047, finv(fy), finv(fz) * 1.08883);
    let r = x * 3.2406 + y * -1.5372 + z * -0.4986;
    let g = x * -0.9689 + y * 1.8758 + z * 0.0415;
    let bl = x * 0.0557 + y * -0.2040 + z * 1.0570;
    let gamma = |c: f64| {
        let c = if c > 0.0031308 {
            1.055 * c.powf(1.0 / 2.4) - 0.055
        } else {
            12.92 * c
        };
        (c * 255.0).round().clamp(0.0, 255.0) as u8
    };
    [gamma(r), gamma(g), gamma(bl)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_highdicom_cielab_values() {
        // highdicom 0.28 `CIELabColor.from_rgb(*rgb).value` (same PixelMed-derived formulas).
        for (rgb, want) in [
            ([0, 0, 0], [0u16, 32896, 32896]),
            ([255, 255, 255], [65535, 32897, 32893]),
            ([255, 0, 0], [34886, 53484, 50172]),
            ([0, 255, 0], [57498, 10747, 54274]),
            ([12, 200, 77], [46410, 15794, 45456]),
        ] {
            let got = srgb_to_dicom_lab(rgb);
            for c in 0..3 {
                assert!(
                    (got[c] as i32 - want[c] as i32).abs() <= 1,
                    "{rgb:?}: {got:?} vs {want:?}"
                );
            }
        }
    }

    #[test]
    fn lab_round_trips_to_srgb() {
        for rgb in [
            [255u8, 0, 0],
            [0, 255, 0],
            [12, 200, 77],
            [255, 255, 255],
            [0, 0, 0],
        ] {
            let back = dicom_lab_to_srgb(srgb_to_dicom_lab(rgb));
            for c in 0..3 {
                assert!(
                    (back[c] as i32 - rgb[c] as i32).abs() <= 1,
                    "{rgb:?} -> {back:?}"
                );
            }
        }
    }
}
