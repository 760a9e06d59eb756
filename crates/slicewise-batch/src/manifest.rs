//! Manifests and shards for batch schedulers (`segment --manifest inputs.csv --shard I/N`).
//!
//! A manifest lists one input per row: a CSV file whose header names an `input` column (other
//! columns are ignored, so a manifest can carry subject ids or notes), or a plain list of paths,
//! one per line. Blank lines and, in plain lists, lines starting with `#` are not rows. Relative
//! paths are relative to the manifest's folder, so a manifest can travel with its data.
//!
//! A multi-channel case (one volume per channel) takes one row of a CSV whose header names
//! `input_0000`, `input_0001`, … (nnU-Net's channel numbering) instead of `input`: the row's
//! file in column `input_XXXX` is channel XXXX. The columns must run from `input_0000` without
//! gaps, and every row must fill them all.
//!
//! Shard `I` of `N` runs the rows `r` with `r mod N = I` (rows counted from 0): the assignment
//! depends only on the manifest, never on timing, so every row lands in exactly one shard and a
//! rerun of a shard runs the same rows. Round-robin keeps neighbouring rows (often similar
//! studies) spread over the shards.

use std::path::{Path, PathBuf};

use slicewise::error::{Error, Result};

/// The environment variable Kubernetes sets to a pod's index in an Indexed Job.
pub const INDEX_VAR: &str = "JOB_COMPLETION_INDEX";

/// A manifest's input paths, in row order (relative ones joined to the manifest's folder).
/// A manifest of multi-channel rows is refused here (read it with [`read_rows`]).
pub fn read(path: &Path) -> Result<Vec<PathBuf>> {
    let rows = read_rows(path)?;
    if rows.iter().any(|r| r.len() > 1) {
        return Err(Error::format(
            path,
            "its rows list several channel files (input_0000, input_0001, …), which this runner \
             does not take; run it with `slicewise segment --manifest`",
        ));
    }
    Ok(rows.into_iter().flatten().collect())
}

/// A manifest's rows, each its input paths (one, or one per channel), in row order (relative
/// ones joined to the manifest's folder).
pub fn read_rows(path: &Path) -> Result<Vec<Vec<PathBuf>>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let rows = parse_rows(&text).map_err(|m| Error::format(path, m))?;
    Ok(rows
        .into_iter()
        .map(|r| r.into_iter().map(|p| dir.join(p)).collect())
        .collect())
}

/// The rows of a manifest's text with one input each (see [`parse_rows`]); a row of several
/// channel files is refused.
pub fn parse(text: &str) -> std::result::Result<Vec<String>, String> {
    let rows = parse_rows(text)?;
    if rows.iter().any(|r| r.len() > 1) {
        return Err("rows list several channel files (input_0000, input_0001, …)".into());
    }
    Ok(rows.into_iter().flatten().collect())
}

/// The columns holding a row's inputs: `input`, or `input_0000`, `input_0001`, … in channel
/// order. `None` when the header names neither (a plain list).
fn input_columns(header: &[String]) -> std::result::Result<Option<Vec<usize>>, String> {
    let name = |h: &String| h.trim().to_ascii_lowercase();
    let plain = header.iter().position(|h| name(h) == "input");
    let mut channels: Vec<(usize, usize)> = header
        .iter()
        .enumerate()
        .filter_map(|(i, h)| {
            let n = name(h);
            let digits = n.strip_prefix("input_")?;
            (digits.len() == 4).then(|| digits.parse().ok().map(|c| (c, i)))?
        })
        .collect();
    channels.sort();
    match (plain, channels.is_empty()) {
        (None, true) => Ok(None),
        (Some(i), true) => Ok(Some(vec![i])),
        (Some(_), false) => Err("line 1: name either an `input` column or input_0000, \
                                 input_0001, … columns, not both"
            .into()),
        (None, false) => {
            if let Some((k, (c, _))) = channels.iter().enumerate().find(|(k, (c, _))| k != c) {
                return Err(format!(
                    "line 1: column input_{c:04} without input_{k:04}: channel columns run \
                     from input_0000 without gaps"
                ));
            }
            Ok(Some(channels.into_iter().map(|(_, i)| i).collect()))
        }
    }
}

/// The rows of a manifest's text, each its inputs: the `input` column (or the `input_XXXX`
/// channel columns) of a CSV with a header, or the lines of a plain list.
pub fn parse_rows(text: &str) -> std::result::Result<Vec<Vec<String>>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, first)) = lines.next() else {
        return Ok(Vec::new());
    };
    let header = csv_fields(first).map_err(|e| format!("line 1: {e}"))?;
    let Some(cols) = input_columns(&header)? else {
        // A plain list: every line is a path, commas and all.
        return Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| vec![l.to_string()])
            .collect());
    };
    let mut rows = Vec::new();
    for (i, line) in lines {
        let fields = csv_fields(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        let mut row = Vec::with_capacity(cols.len());
        for &col in &cols {
            match fields.get(col).map(|f| f.trim()) {
                Some(f) if !f.is_empty() => row.push(f.to_string()),
                _ => {
                    let what = header[col].trim();
                    return Err(format!("line {}: the {what} column is empty", i + 1));
                }
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

/// The fields of one CSV line (RFC 4180 quoting; a field does not span lines).
fn csv_fields(line: &str) -> std::result::Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') if cur.trim().is_empty() => {
                cur.clear();
                quoted = true;
            }
            (false, ',') => fields.push(std::mem::take(&mut cur)),
            (_, c) => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    fields.push(cur);
    Ok(fields)
}

/// Shard `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// I, 0-based.
    pub index: usize,
    /// N, at least 1.
    pub count: usize,
}

impl Shard {
    /// Parses `I/N`, or `N` alone with I from `index_var` (the value of [`INDEX_VAR`]).
    pub fn parse(spec: &str, index_var: Option<&str>) -> std::result::Result<Shard, String> {
        let number = |s: &str, what: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| format!("--shard {spec}: {what} `{s}` is not a whole number"))
        };
        let (index, count) = match spec.split_once('/') {
            Some((i, n)) => (number(i, "I")?, number(n, "N")?),
            None => {
                let n = number(spec, "N")?;
                let i = index_var.ok_or_else(|| {
                    format!(
                        "--shard {spec}: give I/N, or set {INDEX_VAR} (Kubernetes Indexed Jobs do)"
                    )
                })?;
                (number(i, INDEX_VAR)?, n)
            }
        };
        if count == 0 || index >= count {
            return Err(format!(
                "--shard {index}/{count}: I must be in 0..N and N at least 1"
            ));
        }
        Ok(Shard { index, count })
    }

    /// Whether manifest row `row` belongs to this shard.
    pub fn owns(&self, row: usize) -> bool {
        row % self.count == self.index
    }

    /// The shard's report next to `report`: `report.json` → `report.shard-I-of-N.json`.
    pub fn report_path(&self, report: &Path) -> PathBuf {
        let name = report
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "report.json".into());
        let (stem, ext) = match name.rsplit_once('.') {
            Some((s, e)) if !s.is_empty() => (s.to_string(), format!(".{e}")),
            _ => (name.clone(), String::new()),
        };
        report.with_file_name(format!(
            "{stem}.shard-{}-of-{}{ext}",
            self.index, self.count
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_manifests_use_the_input_column_and_plain_lists_every_line() {
        let csv = "subject,input,note\ns1,a.nii.gz,x\n\ns2,\"b, c.nii\",\"say \"\"hi\"\"\"\n";
        assert_eq!(parse(csv).unwrap(), ["a.nii.gz", "b, c.nii"]);
        let plain = "# studies\n/data/a.nii.gz\n\n/data/b,c.nii\n";
        assert_eq!(parse(plain).unwrap(), ["/data/a.nii.gz", "/data/b,c.nii"]);
        assert!(parse("input\n\"open\n").is_err());
        assert!(parse("id,input\n1,\n").is_err());
    }

    #[test]
    fn channel_columns_make_one_row_of_several_files() {
        let csv = "case,input_0001,input_0000\nc1,c1_t1c.nii.gz,c1_flair.nii.gz\n";
        assert_eq!(
            parse_rows(csv).unwrap(),
            [["c1_flair.nii.gz", "c1_t1c.nii.gz"]]
        );
        assert!(parse(csv).is_err());
        let gap = parse_rows("input_0000,input_0002\na,b\n").unwrap_err();
        assert!(gap.contains("input_0002 without input_0001"), "{gap}");
        let empty = parse_rows("input_0000,input_0001\na,\n").unwrap_err();
        assert!(empty.contains("input_0001 column is empty"), "{empty}");
        assert!(parse_rows("input,input_0000\na,b\n").is_err());
    }

    #[test]
    fn shards_split_rows_round_robin_and_take_the_index_from_kubernetes() {
        let s = Shard::parse("1/3", None).unwrap();
        let rows: Vec<usize> = (0..8).filter(|&r| s.owns(r)).collect();
        assert_eq!(rows, [1, 4, 7]);
        assert_eq!(
            Shard::parse("3", Some("2")).unwrap(),
            Shard { index: 2, count: 3 }
        );
        assert!(Shard::parse("3", None).is_err());
        assert!(Shard::parse("3/3", None).is_err());
        assert!(Shard::parse("0/0", None).is_err());
        assert_eq!(
            s.report_path(Path::new("out/report.json")),
            Path::new("out/report.shard-1-of-3.json")
        );
    }
}
