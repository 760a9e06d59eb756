//! A decoder for 12-bit JPEG Extended sequential (ISO 10918-1 process 4, DICOM transfer syntax
//! 1.2.840.10008.1.2.4.51), the one JPEG process no Rust codec decodes: jpeg-decoder 0.3
//! refuses lossy 12-bit frames (`SamplePrecision(12)`) and zune-jpeg 0.5 parses only 8-bit ones.
//!
//! Huffman-coded sequential DCT only (SOF0/SOF1), one or more scans, restart intervals, any
//! number of components when none is subsampled (a single component may declare any sampling
//! factors). The inverse DCT is libjpeg's accurate integer one (`jpeg_idct_islow` at 12 bits,
//! the method DCMTK's and IJG-based decoders use by default), so results match them; decoders
//! with another IDCT (pylibjpeg's libjpeg) differ from it by at most one.
//!
//! Every allocation is bounded by the frame size the caller expects: the frame header is
//! checked against it before any sample buffer is made.

use std::path::Path;

use crate::error::{Error, Result};

/// Natural (row-major) position of the coefficient at each zig-zag index.
const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// The samples of one decoded frame.
#[derive(Debug)]
pub(crate) struct Decoded {
    /// Interleaved samples, row by row, `components` per pixel.
    pub samples: Vec<u16>,
}

/// What the caller's header says the frame must be.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected {
    pub cols: usize,
    pub rows: usize,
    pub components: usize,
}

/// One component of the frame header.
#[derive(Debug, Clone, Copy)]
struct Component {
    id: u8,
    tq: usize,
}

/// One Huffman table in the form of ISO 10918-1 F.2.2.3 (MAXCODE, VALPTR, MINCODE by length).
#[derive(Debug, Clone)]
struct Huffman {
    maxcode: [i32; 18],
    valptr: [i32; 17],
    mincode: [i32; 17],
    values: Vec<u8>,
}

impl Huffman {
    fn new(counts: &[u8; 16], values: Vec<u8>) -> Huffman {
        let mut h = Huffman {
            maxcode: [-1; 18],
            valptr: [0; 17],
            mincode: [0; 17],
            values,
        };
        let (mut code, mut k) = (0i32, 0i32);
        for len in 1..=16 {
            let n = i32::from(counts[len - 1]);
            if n > 0 {
                h.valptr[len] = k;
                h.mincode[len] = code;
                code += n;
                k += n;
                h.maxcode[len] = code - 1;
            }
            code <<= 1;
        }
        h.maxcode[17] = i32::MAX; // sentinel: no code is longer than 16 bits
        h
    }
}

/// Bits of the entropy-coded data, with 0xFF00 unstuffed; stops at a marker.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u32,
    n: u32,
    /// A marker was met: further bits read as zeros (as libjpeg does), counted to stop runaways.
    hit_marker: bool,
    zeros: usize,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8], pos: usize) -> Bits<'a> {
        Bits {
            data,
            pos,
            acc: 0,
            n: 0,
            hit_marker: false,
            zeros: 0,
        }
    }

    fn fill(&mut self) {
        while self.n <= 24 {
            let mut byte = 0u8;
            if !self.hit_marker {
                match (self.data.get(self.pos), self.data.get(self.pos + 1)) {
                    (Some(0xFF), Some(0x00)) => {
                        byte = 0xFF;
                        self.pos += 2;
                    }
                    (Some(0xFF), _) | (None, _) => self.hit_marker = true,
                    (Some(&b), _) => {
                        byte = b;
                        self.pos += 1;
                    }
                }
            }
            if self.hit_marker {
                self.zeros += 1;
            }
            self.acc |= u32::from(byte) << (24 - self.n);
            self.n += 8;
        }
    }

    fn bits(&mut self, k: u32) -> u32 {
        if k == 0 {
            return 0;
        }
        self.fill();
        let v = self.acc >> (32 - k);
        self.acc <<= k;
        self.n -= k;
        v
    }

    fn decode(&mut self, t: &Huffman) -> Option<u8> {
        let mut code = self.bits(1) as i32;
        let mut len = 1;
        while code > t.maxcode[len] {
            len += 1;
            if len > 16 {
                return None;
            }
            code = (code << 1) | self.bits(1) as i32;
        }
        let i = t.valptr[len] + code - t.mincode[len];
        t.values.get(usize::try_from(i).ok()?).copied()
    }

    /// ISO 10918-1 F.2.2.1 RECEIVE and EXTEND.
    fn receive_extend(&mut self, s: u8) -> i32 {
        if s == 0 {
            return 0;
        }
        let s = u32::from(s.min(16));
        let v = self.bits(s) as i32;
        if v < 1 << (s - 1) {
            v - (1 << s) + 1
        } else {
            v
        }
    }

    /// Moves past the restart marker expected next; resets the bit buffer.
    fn restart(&mut self) -> bool {
        self.acc = 0;
        self.n = 0;
        self.hit_marker = false;
        match (self.data.get(self.pos), self.data.get(self.pos + 1)) {
            (Some(0xFF), Some(m)) if (0xD0..=0xD7).contains(m) => {
                self.pos += 2;
                true
            }
            _ => false,
        }
    }
}

/// Decoder state gathered from the markers.
struct State<'a> {
    path: &'a Path,
    quant: [Option<[u16; 64]>; 4],
    dc: [Option<Huffman>; 4],
    ac: [Option<Huffman>; 4],
    restart: usize,
    comps: Vec<Component>,
    width: usize,
    height: usize,
    /// One plane per component, `width` × `height` (blocks past the edge are not stored).
    planes: Vec<Vec<u16>>,
}

/// Decodes one 12-bit JPEG frame whose size must be `want`.
pub(crate) fn decode(path: &Path, data: &[u8], want: Expected) -> Result<Decoded> {
    let bad = |m: String| Error::format(path, format!("12-bit JPEG: {m}"));
    if data.get(..2) != Some(&[0xFF, 0xD8]) {
        return Err(bad("no start-of-image marker".into()));
    }
    let mut st = State {
        path,
        quant: [None; 4],
        dc: Default::default(),
        ac: Default::default(),
        restart: 0,
        comps: Vec::new(),
        width: 0,
        height: 0,
        planes: Vec::new(),
    };
    let mut pos = 2;
    loop {
        let (marker, seg, next) = segment(data, pos).ok_or_else(|| bad("truncated".into()))?;
        pos = next;
        match marker {
            0xD9 => break,
            0xC0 | 0xC1 => st.frame(seg, want)?,
            0xC2..=0xCF if marker != 0xC4 && marker != 0xC8 && marker != 0xCC => {
                return Err(Error::unsupported(
                    path,
                    format!("JPEG process with SOF marker 0xFF{marker:02X} at 12 bits"),
                ))
            }
            0xC4 => st.huffman(seg)?,
            0xDB => st.quant(seg)?,
            0xDD => {
                let r = seg.get(..2).ok_or_else(|| bad("short DRI".into()))?;
                st.restart = usize::from(u16::from_be_bytes([r[0], r[1]]));
            }
            0xDA => pos = st.scan(data, seg, pos)?,
            0xDC => return Err(bad("DNL marker (height defined after the scan)".into())),
            _ => {} // APPn, COM and the like
        }
    }
    if st.planes.is_empty() {
        return Err(bad("no frame header".into()));
    }
    Ok(Decoded {
        samples: st.interleave(),
    })
}

/// The marker at `pos` (after any fill bytes), its segment body and the position after it.
/// Standalone markers (SOI, EOI, RSTn) have an empty body.
fn segment(data: &[u8], mut pos: usize) -> Option<(u8, &[u8], usize)> {
    while data.get(pos) == Some(&0xFF) && data.get(pos + 1) == Some(&0xFF) {
        pos += 1;
    }
    if data.get(pos)? != &0xFF {
        return None;
    }
    let m = *data.get(pos + 1)?;
    if m == 0xD8 || m == 0xD9 || (0xD0..=0xD7).contains(&m) {
        return Some((m, &[], pos + 2));
    }
    let len = usize::from(u16::from_be_bytes([
        *data.get(pos + 2)?,
        *data.get(pos + 3)?,
    ]));
    let body = data.get(pos + 4..(pos + 2 + len).max(pos + 4))?;
    Some((m, body, pos + 2 + len.max(2)))
}

impl State<'_> {
    fn bad(&self, m: impl std::fmt::Display) -> Error {
        Error::format(self.path, format!("12-bit JPEG: {m}"))
    }

    /// SOF0/SOF1: checks the declared frame against `want` before making its planes.
    fn frame(&mut self, seg: &[u8], want: Expected) -> Result<()> {
        if !self.planes.is_empty() {
            return Err(self.bad("two frame headers"));
        }
        let h = seg.get(..6).ok_or_else(|| self.bad("short frame header"))?;
        let (p, rows, cols, nf) = (
            h[0],
            usize::from(u16::from_be_bytes([h[1], h[2]])),
            usize::from(u16::from_be_bytes([h[3], h[4]])),
            usize::from(h[5]),
        );
        if p != 12 {
            return Err(self.bad(format!("sample precision {p}, 12 expected")));
        }
        if (cols, rows, nf) != (want.cols, want.rows, want.components) {
            return Err(self.bad(format!(
                "the frame header declares {cols}x{rows} with {nf} component(s), the DICOM header \
                 {}x{} with {}",
                want.cols, want.rows, want.components
            )));
        }
        for c in 0..nf {
            let b = seg
                .get(6 + 3 * c..9 + 3 * c)
                .ok_or_else(|| self.bad("short frame header"))?;
            let (hs, vs, tq) = (usize::from(b[1] >> 4), usize::from(b[1] & 15), b[2]);
            if !(1..=4).contains(&hs) || !(1..=4).contains(&vs) || tq > 3 {
                return Err(self.bad("invalid component parameters"));
            }
            if nf > 1 && (hs, vs) != (1, 1) {
                return Err(Error::unsupported(
                    self.path,
                    "subsampled components in a 12-bit JPEG frame",
                ));
            }
            self.comps.push(Component {
                id: b[0],
                tq: usize::from(tq),
            });
        }
        self.width = cols;
        self.height = rows;
        self.planes = vec![vec![0u16; cols * rows]; nf];
        Ok(())
    }

    fn huffman(&mut self, mut seg: &[u8]) -> Result<()> {
        while !seg.is_empty() {
            let head = seg.get(..17).ok_or_else(|| self.bad("short DHT"))?;
            let (class, id) = (head[0] >> 4, usize::from(head[0] & 15));
            let counts: [u8; 16] = head[1..17].try_into().expect("16 bytes");
            let n: usize = counts.iter().map(|&c| usize::from(c)).sum();
            let values = seg
                .get(17..17 + n)
                .ok_or_else(|| self.bad("short DHT"))?
                .to_vec();
            if id > 3 || class > 1 || n > 256 {
                return Err(self.bad("invalid Huffman table"));
            }
            let t = Some(Huffman::new(&counts, values));
            if class == 0 {
                self.dc[id] = t;
            } else {
                self.ac[id] = t;
            }
            seg = &seg[17 + n..];
        }
        Ok(())
    }

    fn quant(&mut self, mut seg: &[u8]) -> Result<()> {
        while let Some(&pq_tq) = seg.first() {
            let (wide, id) = (pq_tq >> 4 == 1, usize::from(pq_tq & 15));
            let len = if wide { 128 } else { 64 };
            let body = seg.get(1..1 + len).ok_or_else(|| self.bad("short DQT"))?;
            if id > 3 || pq_tq >> 4 > 1 {
                return Err(self.bad("invalid quantisation table"));
            }
            let mut q = [0u16; 64];
            for (k, v) in q.iter_mut().enumerate() {
                *v = if wide {
                    u16::from_be_bytes([body[2 * k], body[2 * k + 1]])
                } else {
                    u16::from(body[k])
                };
            }
            self.quant[id] = Some(q);
            seg = &seg[1 + len..];
        }
        Ok(())
    }

    /// Decodes the scan whose header is `seg` and whose entropy-coded data starts at `pos`;
    /// returns the position of the marker after it.
    fn scan(&mut self, data: &[u8], seg: &[u8], pos: usize) -> Result<usize> {
        if self.planes.is_empty() {
            return Err(self.bad("scan before the frame header"));
        }
        let ns = usize::from(*seg.first().ok_or_else(|| self.bad("short SOS"))?);
        let mut members = Vec::new();
        for i in 0..ns {
            let b = seg
                .get(1 + 2 * i..3 + 2 * i)
                .ok_or_else(|| self.bad("short SOS"))?;
            let c = self
                .comps
                .iter()
                .position(|c| c.id == b[0])
                .ok_or_else(|| self.bad("scan names an unknown component"))?;
            members.push((c, usize::from(b[1] >> 4), usize::from(b[1] & 15)));
        }
        if members.is_empty() {
            return Err(self.bad("empty scan"));
        }
        let tables = self.scan_tables(&members)?;
        let mut bits = Bits::new(data, pos);
        let (bw, bh) = (self.width.div_ceil(8), self.height.div_ceil(8));
        // One component: blocks in raster order; several (none subsampled): one block each per MCU.
        let mcus = bw * bh;
        let mut pred = vec![0i32; members.len()];
        let mut coef = [0i32; 64];
        for m in 0..mcus {
            if self.restart > 0 && m > 0 && m % self.restart == 0 {
                if !bits.restart() {
                    return Err(self.bad("restart marker missing"));
                }
                pred.fill(0);
            }
            for (k, &(c, _, _)) in members.iter().enumerate() {
                let (dc, ac, q) = (&tables[k].0, &tables[k].1, &tables[k].2);
                block(&mut bits, dc, ac, q, &mut pred[k], &mut coef)
                    .ok_or_else(|| self.bad("corrupt entropy-coded data"))?;
                let mut px = [0u16; 64];
                idct_islow_12(&coef, &mut px);
                self.put_block(c, (m % bw) * 8, (m / bw) * 8, &px);
            }
            // More than a few padding bytes past the data's end: the stream is truncated.
            if bits.zeros > 64 {
                return Err(self.bad("entropy-coded data ends early"));
            }
        }
        Ok(next_marker(data, bits.pos))
    }

    /// The DC table, AC table and quantisation table of each scan member.
    #[allow(clippy::type_complexity)]
    fn scan_tables(
        &self,
        members: &[(usize, usize, usize)],
    ) -> Result<Vec<(Huffman, Huffman, [u16; 64])>> {
        members
            .iter()
            .map(|&(c, td, ta)| {
                let dc = self.dc.get(td).cloned().flatten();
                let ac = self.ac.get(ta).cloned().flatten();
                let q = self.quant[self.comps[c].tq];
                match (dc, ac, q) {
                    (Some(dc), Some(ac), Some(q)) => Ok((dc, ac, q)),
                    _ => Err(self.bad("scan uses a table that was not defined")),
                }
            })
            .collect()
    }

    fn put_block(&mut self, c: usize, x0: usize, y0: usize, px: &[u16; 64]) {
        let (w, h) = (self.width, self.height);
        let plane = &mut self.planes[c];
        for y in 0..8.min(h.saturating_sub(y0)) {
            for x in 0..8.min(w.saturating_sub(x0)) {
                plane[(y0 + y) * w + x0 + x] = px[y * 8 + x];
            }
        }
    }

    fn interleave(&self) -> Vec<u16> {
        let n = self.planes.len();
        if n == 1 {
            return self.planes[0].clone();
        }
        let mut out = vec![0u16; self.width * self.height * n];
        for (c, plane) in self.planes.iter().enumerate() {
            for (p, &v) in plane.iter().enumerate() {
                out[p * n + c] = v;
            }
        }
        out
    }
}

/// The position of the first marker (not a stuffed 0xFF00, not a restart marker) at or after
/// `pos`.
fn next_marker(data: &[u8], mut pos: usize) -> usize {
    while pos + 1 < data.len() {
        if data[pos] == 0xFF && data[pos + 1] != 0 && !(0xD0..=0xD7).contains(&data[pos + 1]) {
            return pos;
        }
        pos += 1;
    }
    data.len()
}

/// Decodes one block's coefficients (dequantised, natural order) into `coef`.
fn block(
    bits: &mut Bits,
    dc: &Huffman,
    ac: &Huffman,
    q: &[u16; 64],
    pred: &mut i32,
    coef: &mut [i32; 64],
) -> Option<()> {
    coef.fill(0);
    let s = bits.decode(dc)?;
    *pred = pred.wrapping_add(bits.receive_extend(s));
    coef[0] = pred.wrapping_mul(i32::from(q[0]));
    let mut k = 1;
    while k < 64 {
        let rs = bits.decode(ac)?;
        let (r, s) = (usize::from(rs >> 4), rs & 15);
        if s == 0 {
            if r != 15 {
                break; // end of block
            }
            k += 16;
            continue;
        }
        k += r;
        if k > 63 {
            return None;
        }
        coef[ZIGZAG[k]] = bits.receive_extend(s).wrapping_mul(i32::from(q[k]));
        k += 1;
    }
    Some(())
}

/// libjpeg's accurate integer inverse DCT (jidctint.c, `jpeg_idct_islow`) at 12 bits per sample:
/// CONST_BITS 13, PASS1_BITS 1, level shift 2048 and clamping to 0..=4095. 64-bit arithmetic
/// where libjpeg uses 32 (the same results wherever libjpeg's do not overflow).
fn idct_islow_12(coef: &[i32; 64], out: &mut [u16; 64]) {
    const CONST_BITS: u32 = 13;
    const PASS1_BITS: u32 = 1;
    let mut ws = [0i64; 64];
    for col in 0..8 {
        let c = |r: usize| i64::from(coef[r * 8 + col]);
        if (1..8).all(|r| c(r) == 0) {
            let dc = c(0) << PASS1_BITS;
            for r in 0..8 {
                ws[r * 8 + col] = dc;
            }
            continue;
        }
        let v = butterfly([c(0), c(1), c(2), c(3), c(4), c(5), c(6), c(7)]);
        for (r, x) in v.iter().enumerate() {
            ws[r * 8 + col] = descale(*x, CONST_BITS - PASS1_BITS);
        }
    }
    let sample = |x: i64| (x + 2048).clamp(0, 4095) as u16;
    for row in 0..8 {
        let w = &ws[row * 8..row * 8 + 8];
        if w[1..].iter().all(|&x| x == 0) {
            let v = sample(descale(w[0], PASS1_BITS + 3));
            out[row * 8..row * 8 + 8].fill(v);
            continue;
        }
        let v = butterfly([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        for (x, t) in v.iter().enumerate() {
            out[row * 8 + x] = sample(descale(*t, CONST_BITS + PASS1_BITS + 3));
        }
    }
}

/// One 8-point pass of `jpeg_idct_islow`, before descaling: outputs 0..7 from inputs 0..7.
fn butterfly(i: [i64; 8]) -> [i64; 8] {
    const CONST_BITS: u32 = 13;
    let (f0298, f0390, f0541, f0765) = (2446i64, 3196i64, 4433i64, 6270i64);
    let (f0899, f1175, f1501, f1847) = (7373i64, 9633i64, 12299i64, 15137i64);
    let (f1961, f2053, f2562, f3072) = (16069i64, 16819i64, 20995i64, 25172i64);
    // Even part.
    let z1 = (i[2] + i[6]) * f0541;
    let tmp2 = z1 - i[6] * f1847;
    let tmp3 = z1 + i[2] * f0765;
    let tmp0 = (i[0] + i[4]) << CONST_BITS;
    let tmp1 = (i[0] - i[4]) << CONST_BITS;
    let (t10, t13, t11, t12) = (tmp0 + tmp3, tmp0 - tmp3, tmp1 + tmp2, tmp1 - tmp2);
    // Odd part.
    let (o0, o1, o2, o3) = (i[7], i[5], i[3], i[1]);
    let (z1, z2, z3, z4) = (o0 + o3, o1 + o2, o0 + o2, o1 + o3);
    let z5 = (z3 + z4) * f1175;
    let (o0, o1, o2, o3) = (o0 * f0298, o1 * f2053, o2 * f3072, o3 * f1501);
    let (z1, z2) = (-z1 * f0899, -z2 * f2562);
    let (z3, z4) = (-z3 * f1961 + z5, -z4 * f0390 + z5);
    let (o0, o1, o2, o3) = (o0 + z1 + z3, o1 + z2 + z4, o2 + z2 + z3, o3 + z1 + z4);
    [
        t10 + o3,
        t11 + o2,
        t12 + o1,
        t13 + o0,
        t13 - o0,
        t12 - o1,
        t11 - o2,
        t10 - o3,
    ]
}

/// libjpeg's DESCALE: division by 2^n rounding half up.
fn descale(x: i64, n: u32) -> i64 {
    (x + (1 << (n - 1))) >> n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dc_only_block_is_flat_at_the_level_shifted_value() {
        let mut coef = [0i32; 64];
        coef[0] = 8 * 100; // DC of a flat block of +100 around the 2048 level shift
        let mut out = [0u16; 64];
        idct_islow_12(&coef, &mut out);
        assert!(out.iter().all(|&v| v == 2148), "{out:?}");
    }

    #[test]
    fn one_ac_coefficient_gives_libjpegs_cosine_ramp() {
        // The first horizontal AC term alone: samples fall from left to right symmetrically.
        let mut coef = [0i32; 64];
        coef[1] = 160;
        let mut out = [0u16; 64];
        idct_islow_12(&coef, &mut out);
        let row: Vec<i32> = out[..8].iter().map(|&v| i32::from(v) - 2048).collect();
        assert!(row.windows(2).all(|w| w[0] > w[1]), "{row:?}");
        for x in 0..4 {
            assert!((row[x] + row[7 - x]).abs() <= 1, "{row:?}");
        }
        assert!(out.chunks(8).all(|r| r == &out[..8]));
    }

    #[test]
    fn truncated_and_wrong_size_streams_are_errors() {
        let p = Path::new("x.dcm");
        let want = Expected {
            cols: 8,
            rows: 8,
            components: 1,
        };
        assert!(decode(p, &[0xFF, 0xD8], want).is_err());
        assert!(decode(p, b"not a jpeg", want).is_err());
        // SOF1, 12 bits, 16x8, one component: not the 8x8 the header says.
        let sof = [
            0xFF, 0xD8, 0xFF, 0xC1, 0, 11, 12, 0, 8, 0, 16, 1, 1, 0x11, 0, 0xFF, 0xD9,
        ];
        let e = decode(p, &sof, want).unwrap_err().to_string();
        assert!(e.contains("16x8") && e.contains("x.dcm"), "{e}");
    }
}
