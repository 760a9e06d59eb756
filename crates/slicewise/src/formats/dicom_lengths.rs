//! A pre-flight walk over a DICOM file's element headers that refuses any element, item or
//! sequence whose declared length runs past the end of the file.
//!
//! Why: the DICOM parser allocates an element's declared length before reading it, so a two-byte
//! corruption of one length field (0x0000003C → 0xFFFF003C) makes it allocate up to 4 GiB — an
//! allocation failure aborts the process, which `catch_unwind` cannot stop and which kills a host
//! application. Walking the headers first bounds every allocation the parser makes by the size of
//! the file. The walk only seeks over values; it reads a few bytes per element.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::error::{Error, Result};

const UNDEFINED: u32 = 0xFFFF_FFFF;
/// Deeper nesting than any real IOD uses; a corrupt file could otherwise recurse without end.
const MAX_DEPTH: usize = 64;
const DEFLATED_LE: &str = "1.2.840.10008.1.2.1.99";
const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
const EXPLICIT_BE: &str = "1.2.840.10008.1.2.2";

/// How a data set's element headers are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Encoding {
    explicit_vr: bool,
    big_endian: bool,
}

const EXPLICIT_LITTLE: Encoding = Encoding {
    explicit_vr: true,
    big_endian: false,
};

/// For a file without preamble and meta group: whether its first element looks like an explicit-VR
/// one (`Some(true)`), an implicit-VR one (`Some(false)`), or not like DICOM at all (`None`). Only
/// group 0008 (identifying) is accepted as a first group: random bytes almost never match.
pub(crate) fn raw_dataset_explicit(head: &[u8]) -> Option<bool> {
    if head.len() < 8 || u16::from_le_bytes([head[0], head[1]]) != 0x0008 {
        return None;
    }
    Some(head[4..6].iter().all(|b| b.is_ascii_uppercase()))
}

/// What the pre-flight learnt about a file's layout.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Preflight {
    /// The byte offset of the data set when its meta group declares an explicit-VR little-endian
    /// transfer syntax but the data set is encoded in implicit VR: some writers do this, and
    /// pydicom reads such files (warning "Expected explicit VR, but found implicit VR").
    pub implicit_dataset_at: Option<u64>,
    /// The transfer syntax the meta group declares, when the file has one.
    pub transfer_syntax: Option<String>,
}

/// Checks that every declared length in the DICOM file at `path` fits in the bytes that follow
/// it. Files that do not look like DICOM pass unchanged (the parser refuses them by itself).
pub(crate) fn check(path: &Path) -> Result<Preflight> {
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let size = file
        .metadata()
        .map_err(|e| Error::io("inspect", path, e))?
        .len();
    let mut w = Walker {
        r: BufReader::new(file),
        pos: 0,
        size,
        enc: EXPLICIT_LITTLE,
        implicit_dataset_at: None,
        transfer_syntax: None,
    };
    w.run()
        .map(|()| Preflight {
            implicit_dataset_at: w.implicit_dataset_at,
            transfer_syntax: w.transfer_syntax.take(),
        })
        .map_err(|e| match e {
            Stop::Io(e) => Error::io("read", path, e),
            Stop::Bad(why) => Error::format(path, format!("corrupt DICOM file: {why}")),
            Stop::Unreadable(why) => Error::unsupported(path, why),
        })
}

enum Stop {
    Io(std::io::Error),
    Bad(String),
    /// Valid DICOM that the parser would misread (and allocate for).
    Unreadable(String),
}

impl From<std::io::Error> for Stop {
    fn from(e: std::io::Error) -> Self {
        Stop::Io(e)
    }
}

/// One element or item header.
struct Header {
    group: u16,
    element: u16,
    vr: Option<[u8; 2]>,
    len: u32,
    at: u64,
}

/// What ended a walk over a run of elements.
#[derive(PartialEq, Eq)]
enum End {
    /// The bounded region (or the file) is used up.
    Exhausted,
    /// An item or sequence delimitation item.
    Delimiter,
}

struct Walker {
    r: BufReader<File>,
    pos: u64,
    size: u64,
    enc: Encoding,
    /// Set when the data set turned out to be implicit VR despite its meta group.
    implicit_dataset_at: Option<u64>,
    /// The meta group's transfer syntax.
    transfer_syntax: Option<String>,
}

impl Walker {
    fn run(&mut self) -> std::result::Result<(), Stop> {
        let mut head = [0u8; 132];
        let n = self.read_up_to(&mut head)?;
        if n == 132 && &head[128..132] == b"DICM" {
            self.seek_to(132)?;
            let Some(ts) = self.meta_group()? else {
                return Ok(());
            };
            self.transfer_syntax = Some(ts.clone());
            if ts == DEFLATED_LE {
                return Ok(()); // the data set is compressed: nothing to walk
            }
            self.enc = Encoding {
                explicit_vr: ts != IMPLICIT_LE,
                big_endian: ts == EXPLICIT_BE,
            };
            if self.enc == EXPLICIT_LITTLE && self.first_element_is_implicit()? {
                self.enc.explicit_vr = false;
                self.implicit_dataset_at = Some(self.pos);
            }
        } else {
            let Some(explicit) = raw_dataset_explicit(&head[..n]) else {
                return Ok(());
            };
            self.seek_to(0)?;
            self.enc = Encoding {
                explicit_vr: explicit,
                big_endian: false,
            };
        }
        self.elements(None, 0).map(|_| ())
    }

    /// Whether the data set's first element has no VR where explicit VR puts one (two upper-case
    /// letters after the tag), as pydicom decides it. Leaves the position unchanged.
    fn first_element_is_implicit(&mut self) -> std::result::Result<bool, Stop> {
        let start = self.pos;
        let mut b = [0u8; 6];
        let n = self.read_up_to(&mut b)?;
        self.seek_to(start)?;
        Ok(n == 6 && !b[4..6].iter().all(|c| c.is_ascii_uppercase()))
    }

    /// Walks the meta group (always explicit VR little endian); returns its transfer syntax.
    fn meta_group(&mut self) -> std::result::Result<Option<String>, Stop> {
        let mut ts = None;
        loop {
            let mut g = [0u8; 2];
            if self.read_up_to(&mut g)? < 2 {
                return Ok(ts);
            }
            self.seek_to(self.pos - 2)?;
            if u16::from_le_bytes(g) != 0x0002 {
                return Ok(ts);
            }
            let h = self.header()?.ok_or_else(|| self.truncated())?;
            self.check_fits(&h)?;
            if h.element == 0x0010 && h.len <= 64 {
                let mut uid = vec![0u8; h.len as usize];
                self.read_exact(&mut uid)?;
                let uid = String::from_utf8_lossy(&uid);
                ts = Some(uid.trim_end_matches(['\0', ' ']).to_string());
            } else {
                self.skip(h.len)?;
            }
        }
    }

    /// Walks elements until `end` (or the end of the file when `None`) or a delimiter.
    fn elements(&mut self, end: Option<u64>, depth: usize) -> std::result::Result<End, Stop> {
        if depth > MAX_DEPTH {
            return Err(Stop::Bad(format!(
                "sequences nested deeper than {MAX_DEPTH} levels at offset {}",
                self.pos
            )));
        }
        while end.is_none_or(|e| self.pos < e) {
            let Some(h) = self.header()? else {
                return Ok(End::Exhausted);
            };
            if h.group == 0xFFFE {
                match h.element {
                    0xE00D | 0xE0DD => return Ok(End::Delimiter),
                    _ => self.value(&h, true, depth)?,
                }
            } else {
                let nested = h.vr.is_none_or(|vr| &vr == b"SQ") || h.len == UNDEFINED;
                self.value(&h, nested, depth)?;
            }
        }
        Ok(End::Exhausted)
    }

    /// Skips an element's value, or walks into it when it may hold items (`nested`).
    fn value(&mut self, h: &Header, nested: bool, depth: usize) -> std::result::Result<(), Stop> {
        if h.len == UNDEFINED {
            return self.undefined(h, depth);
        }
        self.check_fits(h)?;
        let end = self.pos + u64::from(h.len);
        // An implicit-VR value of defined length may or may not be a sequence; its bytes are
        // bounded either way, so only explicit sequences and items are walked into.
        if nested && (h.vr.is_some() || h.group == 0xFFFE) {
            self.elements(Some(end), depth + 1)?;
        }
        self.seek_to(end)
    }

    /// A value of undefined length, up to its delimiter (a missing one at the end of the file is
    /// the parser's to judge): encapsulated pixel data holds fragments, anything else items.
    fn undefined(&mut self, h: &Header, depth: usize) -> std::result::Result<(), Stop> {
        if (h.group, h.element) == (0x7FE0, 0x0010) {
            return self.fragments();
        }
        if h.vr == Some(*b"UN") {
            return self.undefined_un(h, depth);
        }
        self.elements(None, depth + 1).map(|_| ())
    }

    /// An undefined-length UN element. PS3.5 6.2.2 puts its items in implicit VR little endian,
    /// but the DICOM parser (dicom-rs 0.10) reads them in the data set's own encoding; where
    /// that reading meets a length past the end of the file, the parser allocates it (pydicom's
    /// 674-byte UN_sequence.dcm: 3.6 GB and 49 s, then "Could not read data set token").
    /// So the walk follows the parser's reading, and a file it would misread is refused here.
    fn undefined_un(&mut self, h: &Header, depth: usize) -> std::result::Result<(), Stop> {
        match self.elements(None, depth + 1) {
            Err(Stop::Bad(why)) => Err(Stop::Unreadable(format!(
                "the undefined-length UN element ({:04X},{:04X}) at byte {} holds implicit-VR \
                 items, which the DICOM parser reads in the file's explicit VR and cannot read \
                 ({why}); convert the file (e.g. dcmconv +ti) to read it",
                h.group, h.element, h.at
            ))),
            other => other.map(|_| ()),
        }
    }

    /// Encapsulated pixel data: fragment items of defined length up to the sequence delimiter.
    fn fragments(&mut self) -> std::result::Result<(), Stop> {
        while let Some(h) = self.header()? {
            match (h.group, h.element) {
                (0xFFFE, 0xE0DD) => return Ok(()),
                (0xFFFE, 0xE000) if h.len != UNDEFINED => {
                    self.check_fits(&h)?;
                    self.skip(h.len)?;
                }
                _ => {
                    return Err(Stop::Bad(format!(
                        "unexpected ({:04X},{:04X}) at byte {} inside encapsulated pixel data",
                        h.group, h.element, h.at
                    )))
                }
            }
        }
        Ok(())
    }

    /// The next header, or `None` at the end of the file.
    fn header(&mut self) -> std::result::Result<Option<Header>, Stop> {
        let at = self.pos;
        let mut tag = [0u8; 4];
        match self.read_up_to(&mut tag)? {
            0 => return Ok(None),
            4 => {}
            _ => return Err(self.truncated()),
        }
        let group = self.u16(&tag[0..2]);
        let element = self.u16(&tag[2..4]);
        if group == 0xFFFE || !self.enc.explicit_vr {
            let len = self.read_u32()?;
            return Ok(Some(Header {
                group,
                element,
                vr: None,
                len,
                at,
            }));
        }
        let mut vr = [0u8; 2];
        self.read_exact(&mut vr)?;
        // The parser reads a VR it does not know as UN, with UN's 4-byte length: so must we, or
        // a corrupted VR byte ("UI" -> "U!") hides from this walk the 775 MB length the parser
        // then allocates from the next four value bytes.
        if !known_vr(&vr) {
            vr = *b"UN";
        }
        let len = if long_length(&vr) {
            self.skip(2)?;
            self.read_u32()?
        } else {
            let mut b = [0u8; 2];
            self.read_exact(&mut b)?;
            u32::from(self.u16(&b))
        };
        Ok(Some(Header {
            group,
            element,
            vr: Some(vr),
            len,
            at,
        }))
    }

    fn check_fits(&self, h: &Header) -> std::result::Result<(), Stop> {
        let left = self.size.saturating_sub(self.pos);
        if u64::from(h.len) <= left {
            return Ok(());
        }
        Err(Stop::Bad(format!(
            "element ({:04X},{:04X}) at byte {} declares {} bytes, but only {left} remain in the file",
            h.group, h.element, h.at, h.len
        )))
    }

    fn truncated(&self) -> Stop {
        Stop::Bad(format!("truncated element header at byte {}", self.pos))
    }

    fn u16(&self, b: &[u8]) -> u16 {
        let b = [b[0], b[1]];
        if self.enc.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }

    fn read_u32(&mut self) -> std::result::Result<u32, Stop> {
        let mut b = [0u8; 4];
        self.read_exact(&mut b)?;
        Ok(if self.enc.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> std::result::Result<(), Stop> {
        if self.read_up_to(buf)? < buf.len() {
            return Err(self.truncated());
        }
        Ok(())
    }

    /// Reads as many bytes as the file still has, up to `buf.len()`.
    fn read_up_to(&mut self, buf: &mut [u8]) -> std::result::Result<usize, Stop> {
        let mut n = 0;
        while n < buf.len() {
            match self.r.read(&mut buf[n..])? {
                0 => break,
                k => n += k,
            }
        }
        self.pos += n as u64;
        Ok(n)
    }

    fn skip(&mut self, len: u32) -> std::result::Result<(), Stop> {
        self.seek_to(self.pos + u64::from(len))
    }

    fn seek_to(&mut self, pos: u64) -> std::result::Result<(), Stop> {
        let delta = pos as i64 - self.pos as i64;
        self.r.seek_relative(delta)?;
        self.pos = pos;
        Ok(())
    }
}

/// Explicit VRs whose length field is 4 bytes (after 2 reserved bytes).
fn long_length(vr: &[u8; 2]) -> bool {
    matches!(
        vr,
        b"OB"
            | b"OD"
            | b"OF"
            | b"OL"
            | b"OV"
            | b"OW"
            | b"SQ"
            | b"SV"
            | b"UC"
            | b"UN"
            | b"UR"
            | b"UT"
            | b"UV"
    )
}

/// The VRs of PS3.5 6.2, which the parser knows; any other two bytes it reads as UN.
fn known_vr(vr: &[u8; 2]) -> bool {
    long_length(vr)
        || matches!(
            vr,
            b"AE"
                | b"AS"
                | b"AT"
                | b"CS"
                | b"DA"
                | b"DS"
                | b"DT"
                | b"FD"
                | b"FL"
                | b"IS"
                | b"LO"
                | b"LT"
                | b"PN"
                | b"SH"
                | b"SL"
                | b"SS"
                | b"ST"
                | b"TM"
                | b"UI"
                | b"UL"
                | b"US"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explicit_le(tag: (u16, u16), vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&tag.0.to_le_bytes());
        b.extend_from_slice(&tag.1.to_le_bytes());
        b.extend_from_slice(vr);
        if long_length(vr) {
            b.extend_from_slice(&[0, 0]);
            b.extend_from_slice(&(value.len() as u32).to_le_bytes());
        } else {
            b.extend_from_slice(&(value.len() as u16).to_le_bytes());
        }
        b.extend_from_slice(value);
        b
    }

    fn file_with(dataset: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let mut f = vec![0u8; 128];
        f.extend_from_slice(b"DICM");
        f.extend(explicit_le((2, 0x10), b"UI", b"1.2.840.10008.1.2.1\0"));
        f.extend_from_slice(dataset);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.dcm");
        std::fs::write(&p, f).unwrap();
        (dir, p)
    }

    #[test]
    fn lengths_that_fit_pass_and_one_past_the_end_is_refused_by_name() {
        let mut ds = explicit_le((0x0008, 0x0060), b"CS", b"MR");
        ds.extend(explicit_le((0x7FE0, 0x0010), b"OW", &[0u8; 16]));
        let (_d, ok) = file_with(&ds);
        check(&ok).expect("a well-formed file passes");

        let mut bad = explicit_le((0x0008, 0x0060), b"CS", b"MR");
        bad.extend(explicit_le((0x7FE0, 0x0010), b"OW", &[0u8; 16]));
        let n = bad.len();
        bad[n - 20..n - 16].copy_from_slice(&0xFFFF_0010u32.to_le_bytes());
        let (_d, p) = file_with(&bad);
        let e = check(&p).unwrap_err().to_string();
        assert!(
            e.contains("(7FE0,0010)") && e.contains("declares 4294901776 bytes"),
            "{e}"
        );
    }

    #[test]
    fn a_sequence_item_longer_than_its_file_is_refused() {
        let mut item = Vec::new();
        item.extend_from_slice(&0xFFFEu16.to_le_bytes());
        item.extend_from_slice(&0xE000u16.to_le_bytes());
        item.extend_from_slice(&1_000_000u32.to_le_bytes());
        item.extend(explicit_le((0x0008, 0x0100), b"SH", b"T-A1"));
        let ds = explicit_le((0x0008, 0x1140), b"SQ", &item);
        let (_d, p) = file_with(&ds);
        let e = check(&p).unwrap_err().to_string();
        assert!(e.contains("(FFFE,E000)"), "{e}");
    }

    /// A corrupted VR ("UI" -> "U!") is read as UN, with a 4-byte length from the value bytes,
    /// as the parser reads it: the walk sees the 775 MB length the parser would allocate.
    #[test]
    fn an_unknown_vr_is_walked_as_un_with_a_long_length() {
        // Not the first element, whose VR decides whether the data set is explicit at all.
        let mut ds = explicit_le((0x0008, 0x0060), b"CS", b"CT");
        let vr_at = ds.len() + 5;
        ds.extend(explicit_le(
            (0x0008, 0x3010),
            b"UI",
            b"1.3.12.2.1107.5.1.4.60064.3",
        ));
        let (_d, ok) = file_with(&ds);
        check(&ok).expect("a well-formed file passes");
        ds[vr_at] = b'!';
        let (_d, p) = file_with(&ds);
        let e = check(&p).unwrap_err().to_string();
        assert!(
            e.contains("(0008,3010)") && e.contains("declares 775106097 bytes"),
            "{e}"
        );
    }

    /// An undefined-length UN holding implicit-VR items (PS3.5 6.2.2): the parser reads them in
    /// explicit VR, so the file is refused as unsupported instead of misread.
    #[test]
    fn an_undefined_length_un_with_implicit_items_is_refused_as_unsupported() {
        let mut item = vec![0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF];
        item.extend_from_slice(&[0x08, 0x00, 0x50, 0x11]); // (0008,1150), implicit VR
        item.extend_from_slice(&26u32.to_le_bytes());
        item.extend_from_slice(b"1.2.840.10008.5.1.4.1.1.2\0");
        item.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        item.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        let mut ds = vec![
            0x53, 0x44, 0x0C, 0x10, b'U', b'N', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ];
        ds.extend(item);
        let (_d, p) = file_with(&ds);
        let e = check(&p).unwrap_err();
        assert!(matches!(e, Error::Unsupported { .. }), "{e}");
        assert!(e.to_string().contains("(4453,100C)"), "{e}");
    }

    /// A data set in implicit VR behind a meta group declaring explicit VR (pydicom's
    /// SC_rgb_jpeg.dcm): walked as implicit VR, and its start reported, instead of its first
    /// "length" being read from value bytes.
    #[test]
    fn an_implicit_data_set_behind_an_explicit_meta_group_is_found() {
        let mut ds = Vec::new();
        for (tag, value) in [
            ((0x0008u16, 0x0060u16), &b"MR"[..]),
            ((0x0028, 0x0010), &[64, 0]),
        ] {
            ds.extend_from_slice(&tag.0.to_le_bytes());
            ds.extend_from_slice(&tag.1.to_le_bytes());
            ds.extend_from_slice(&(value.len() as u32).to_le_bytes());
            ds.extend_from_slice(value);
        }
        let (_d, p) = file_with(&ds);
        let pre = check(&p).expect("walked as implicit VR");
        let meta_end = 132 + 8 + 20;
        assert_eq!(pre.implicit_dataset_at, Some(meta_end));
        assert_eq!(pre.transfer_syntax.as_deref(), Some("1.2.840.10008.1.2.1"));
        let (_d, p) = file_with(&explicit_le((0x0008, 0x0060), b"CS", b"MR"));
        assert_eq!(check(&p).unwrap().implicit_dataset_at, None);
    }

    #[test]
    fn raw_data_sets_are_recognised_by_their_first_group() {
        assert_eq!(
            raw_dataset_explicit(b"\x08\x00\x05\x00CS\x0a\x00"),
            Some(true)
        );
        assert_eq!(
            raw_dataset_explicit(b"\x08\x00\x05\x00\x0a\x00\x00\x00"),
            Some(false)
        );
        assert_eq!(raw_dataset_explicit(b"\x10\x00\x10\x00PN\x04\x00"), None);
    }
}
