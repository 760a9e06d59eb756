//! Voxel spacing from ImageJ and OME-XML metadata.
//!
//! Plain TIFF resolution tags without ImageJ or OME metadata are ignored: their dots per inch
//! describe print size, not anatomy.

/// Spacing `[x, y, z]` in mm, and warnings for what had to be assumed.
pub(crate) fn spacing(
    description: Option<&str>,
    x_resolution: Option<f64>,
    y_resolution: Option<f64>,
    resolution_unit: Option<u16>,
) -> ([f64; 3], Vec<String>) {
    let desc = description.unwrap_or("");
    if let Some(ij) = ImageJ::parse(desc) {
        return ij.spacing(x_resolution, y_resolution, resolution_unit);
    }
    if let Some(s) = ome_spacing(desc) {
        return s;
    }
    (
        [1.0; 3],
        vec!["no spacing in file; assumed 1 mm".to_string()],
    )
}

/// Millimetres per unit for the unit names ImageJ, tifffile and OME use; `None` when unknown.
pub fn unit_to_mm(unit: &str) -> Option<f64> {
    let u = unit.trim().trim_matches('"').to_lowercase();
    Some(match u.as_str() {
        "mm" | "millimeter" | "millimetre" | "millimeters" | "millimetres" => 1.0,
        "um" | "µm" | "μm" | "micron" | "microns" | "micrometer" | "micrometre" | "\\u00b5m" => {
            1e-3
        }
        "nm" | "nanometer" | "nanometre" => 1e-6,
        "cm" | "centimeter" | "centimetre" => 10.0,
        "m" | "meter" | "metre" => 1000.0,
        "in" | "inch" | "inches" => 25.4,
        "å" | "angstrom" => 1e-7,
        _ => return None,
    })
}

/// The key=value lines of an ImageJ ImageDescription.
#[derive(Debug, Default)]
pub(crate) struct ImageJ {
    /// `unit=`.
    pub unit: Option<String>,
    /// `spacing=` (z step in `unit`).
    pub spacing: Option<f64>,
    /// `channels=`.
    pub channels: Option<usize>,
}

impl ImageJ {
    /// Parses a description starting with `ImageJ=`; `None` for anything else.
    pub fn parse(desc: &str) -> Option<ImageJ> {
        if !desc.trim_start().starts_with("ImageJ=") {
            return None;
        }
        let mut ij = ImageJ::default();
        for line in desc.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let v = v.trim();
            match k.trim() {
                "unit" => ij.unit = Some(v.to_string()),
                "spacing" => {
                    ij.spacing = v.parse().ok().filter(|s: &f64| s.is_finite() && *s > 0.0)
                }
                "channels" => ij.channels = v.parse().ok(),
                _ => {}
            }
        }
        Some(ij)
    }

    fn spacing(
        &self,
        xres: Option<f64>,
        yres: Option<f64>,
        resolution_unit: Option<u16>,
    ) -> ([f64; 3], Vec<String>) {
        let mut warnings = Vec::new();
        // ImageJ's unit wins; without one, ResolutionUnit inch/cm; else assume mm.
        let scale = match self.unit.as_deref() {
            Some(u) => unit_to_mm(u).unwrap_or_else(|| {
                warnings.push(format!("unknown ImageJ unit {u:?}; assumed mm"));
                1.0
            }),
            None => match resolution_unit {
                Some(2) => 25.4,
                Some(3) => 10.0,
                _ => {
                    if xres.is_some() || self.spacing.is_some() {
                        warnings.push("ImageJ metadata gives no unit; assumed mm".to_string());
                    }
                    1.0
                }
            },
        };
        let mut out = [1.0; 3];
        match (xres, yres) {
            (Some(x), y) => {
                out[0] = scale / x;
                out[1] = scale / y.unwrap_or(x);
            }
            _ => warnings.push("no pixel spacing in file; assumed 1 mm".to_string()),
        }
        match self.spacing {
            Some(z) => out[2] = z * scale,
            None => warnings.push("no z spacing in file; assumed 1 mm".to_string()),
        }
        (out, warnings)
    }
}

/// PhysicalSizeX/Y/Z of the first `<Pixels>` element of an OME-XML description.
fn ome_spacing(desc: &str) -> Option<([f64; 3], Vec<String>)> {
    if !desc.contains("<OME") {
        return None;
    }
    let start = desc.find("<Pixels")?;
    let end = desc[start..].find('>')? + start;
    let elem = &desc[start..end];
    let mut out = [1.0; 3];
    let mut warnings = Vec::new();
    for (i, axis) in ["X", "Y", "Z"].iter().enumerate() {
        let size = attr(elem, &format!("PhysicalSize{axis}")).and_then(|v| v.parse::<f64>().ok());
        let unit = attr(elem, &format!("PhysicalSize{axis}Unit")).unwrap_or("µm");
        match (size, unit_to_mm(unit)) {
            (Some(s), Some(mm)) if s.is_finite() && s > 0.0 => out[i] = s * mm,
            (Some(_), None) => warnings.push(format!(
                "unknown OME unit {unit:?} for {axis}; assumed 1 mm"
            )),
            _ => warnings.push(format!(
                "no {} spacing in file; assumed 1 mm",
                axis.to_lowercase()
            )),
        }
    }
    Some((out, warnings))
}

/// The value of `name="…"` in an XML start tag.
fn attr<'a>(elem: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = elem;
    while let Some(pos) = rest.find(name) {
        let before_ok = rest[..pos]
            .chars()
            .last()
            .is_some_and(|c| c.is_whitespace());
        let after = &rest[pos + name.len()..];
        if before_ok {
            if let Some(v) = after.trim_start().strip_prefix('=') {
                let v = v.trim_start();
                let q = v.chars().next()?;
                if q == '"' || q == '\'' {
                    let body = &v[1..];
                    return body.find(q).map(|e| &body[..e]);
                }
            }
        }
        rest = after;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imagej_micron_spacing() {
        let d = "ImageJ=1.11a\nimages=3\nslices=3\nunit=micron\nspacing=2.5\n";
        let (s, w) = spacing(Some(d), Some(2.0), Some(4.0), Some(1));
        assert_eq!(s, [0.0005, 0.00025, 0.0025]);
        assert!(w.is_empty());
    }

    #[test]
    fn ome_units() {
        let d = r#"<?xml version="1.0"?><OME><Image><Pixels DimensionOrder="XYZCT" PhysicalSizeX="0.5" PhysicalSizeY="0.25" PhysicalSizeYUnit="mm" PhysicalSizeZ="3" PhysicalSizeZUnit="cm" SizeX="4"></Pixels></Image></OME>"#;
        let (s, w) = spacing(Some(d), None, None, None);
        assert_eq!(s, [0.0005, 0.25, 30.0]);
        assert!(w.is_empty());
    }

    #[test]
    fn nothing_means_one_mm_with_warning() {
        let (s, w) = spacing(Some("hello"), Some(72.0), Some(72.0), Some(2));
        assert_eq!(s, [1.0; 3]);
        assert_eq!(w, vec!["no spacing in file; assumed 1 mm".to_string()]);
    }
}
