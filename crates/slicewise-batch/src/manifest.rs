//! Manifests and shards for batch schedulers (`segment --manifest inputs.csv --shard I/N`).
//!
//! A manifest lists one input per row: a CSV file whose header names an `input` column (other
//! columns are ignored, so a manifest can carry subject ids or notes), or a plain list of paths,
//! one per line. Blank lines and, in plain lists, lines starting with `#` are not rows. Relative
//! paths are relative to the manifest's folder, so a manifest can travel with its data.
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
pub fn read(path: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let rows = parse(&text).map_err(|m| Error::format(path, m))?;
    Ok(rows.into_iter().map(|r| dir.join(r)).collect())
}

/// The rows of a manifest's text: the `input` column of a CSV with a header, or the lines of a
/// plain list.
pub fn parse(text: &str) -> std::result::Result<Vec<String>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, first)) = lines.next() else {
        return Ok(Vec::new());
    };
    let header = csv_fields(first).map_err(|e| format!("line 1: {e}"))?;
    let Some(col) = header
        .iter()
        .position(|h| h.trim().eq_ignore_ascii_case("input"))
    else {
        // A plain list: every line is a path, commas and all.
        return Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect());
    };
    let mut rows = Vec::new();
    for (i, line) in lines {
        let fields = csv_fields(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        match fields.get(col).map(|f| f.trim()) {
            Some(f) if !f.is_empty() => rows.push(f.to_string()),
            _ => return Err(format!("line {}: the input column is empty", i + 1)),
        }
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
