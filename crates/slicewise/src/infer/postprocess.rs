//! Mask postprocessing: per-label 3-D connected components (6-connectivity, as
//! `scipy.ndimage.label` and `binary_fill_holes` use by default).
//!
//! Memory: one bit per voxel plus a traversal stack, so a mask the size of the volume can be
//! cleaned without another volume-sized buffer.

use ndarray::Array3;

/// Which cleanups to apply, in this order: small components, largest component, holes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cleanup {
    /// Remove components with fewer voxels (0: none).
    pub min_voxels: usize,
    /// Keep only the largest component of each label.
    pub largest: bool,
    /// Fill background regions of each label not connected to the volume border.
    pub fill_holes: bool,
}

struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    #[inline]
    fn get(&self, i: usize) -> bool {
        self.0[i >> 6] >> (i & 63) & 1 == 1
    }
    #[inline]
    fn set(&mut self, i: usize) {
        self.0[i >> 6] |= 1 << (i & 63);
    }
}

/// Visits the 6-neighbours of linear index `i` in a `[z, y, x]` grid.
#[inline]
fn neighbours(i: usize, dims: [usize; 3], mut f: impl FnMut(usize)) {
    let [_, ny, nx] = dims;
    let x = i % nx;
    let y = (i / nx) % ny;
    let z = i / (nx * ny);
    let plane = nx * ny;
    if x > 0 {
        f(i - 1);
    }
    if x + 1 < nx {
        f(i + 1);
    }
    if y > 0 {
        f(i - nx);
    }
    if y + 1 < ny {
        f(i + nx);
    }
    if z > 0 {
        f(i - plane);
    }
    if z + 1 < dims[0] {
        f(i + plane);
    }
}

/// Flood-fills from `seed` through voxels where `inside` holds, marking `seen`; calls `visit`
/// on each; returns the count.
fn flood(
    seed: usize,
    dims: [usize; 3],
    seen: &mut Bits,
    stack: &mut Vec<usize>,
    inside: impl Fn(usize) -> bool,
    mut visit: impl FnMut(usize),
) -> usize {
    let mut count = 0;
    seen.set(seed);
    stack.push(seed);
    while let Some(i) = stack.pop() {
        count += 1;
        visit(i);
        neighbours(i, dims, |j| {
            if !seen.get(j) && inside(j) {
                seen.set(j);
                stack.push(j);
            }
        });
    }
    count
}

/// Applies `cleanup` to every non-zero label present in `labels`.
pub fn clean(labels: &mut Array3<u8>, cleanup: Cleanup) {
    if cleanup == Cleanup::default() || labels.is_empty() {
        return;
    }
    if !labels.is_standard_layout() {
        *labels = labels.as_standard_layout().to_owned();
    }
    let sh = labels.shape();
    let dims = [sh[0], sh[1], sh[2]];
    let Some(data) = labels.as_slice_mut() else {
        return;
    };
    let mut present = [false; 256];
    for &v in data.iter() {
        present[v as usize] = true;
    }
    for v in 1..=255u8 {
        if present[v as usize] {
            clean_label(data, dims, v, cleanup);
        }
    }
}

fn clean_label(data: &mut [u8], dims: [usize; 3], v: u8, cleanup: Cleanup) {
    let n = data.len();
    let mut stack = Vec::new();
    if cleanup.min_voxels > 0 || cleanup.largest {
        // Pass 1: components as (seed, size).
        let mut seen = Bits::new(n);
        let mut comps: Vec<(usize, usize)> = Vec::new();
        for i in 0..n {
            if data[i] == v && !seen.get(i) {
                let size = flood(i, dims, &mut seen, &mut stack, |j| data[j] == v, |_| {});
                comps.push((i, size));
            }
        }
        let largest = comps
            .iter()
            .enumerate()
            .max_by_key(|(k, c)| (c.1, std::cmp::Reverse(*k)))
            .map(|(k, _)| k);
        // Pass 2: erase the dropped ones by flooding from their seeds.
        let mut seen = Bits::new(n);
        for (k, &(seed, size)) in comps.iter().enumerate() {
            let drop = size < cleanup.min_voxels || (cleanup.largest && Some(k) != largest);
            if drop {
                let mut erase = Vec::new();
                flood(
                    seed,
                    dims,
                    &mut seen,
                    &mut stack,
                    |j| data[j] == v,
                    |i| erase.push(i),
                );
                for i in erase {
                    data[i] = 0;
                }
            }
        }
    }
    if cleanup.fill_holes {
        let mut seen = Bits::new(n);
        let [nz, ny, nx] = dims;
        let border = |i: usize| {
            let x = i % nx;
            let y = (i / nx) % ny;
            let z = i / (nx * ny);
            x == 0 || y == 0 || z == 0 || x + 1 == nx || y + 1 == ny || z + 1 == nz
        };
        for i in 0..n {
            if border(i) && data[i] != v && !seen.get(i) {
                flood(i, dims, &mut seen, &mut stack, |j| data[j] != v, |_| {});
            }
        }
        for (i, d) in data.iter_mut().enumerate() {
            if *d == 0 && !seen.get(i) {
                *d = v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_component_and_min_size() {
        let mut m = Array3::<u8>::zeros((3, 6, 6));
        m[[1, 1, 1]] = 1; // size 1
        for x in 3..6 {
            m[[1, 4, x]] = 1; // size 3
        }
        let mut a = m.clone();
        clean(
            &mut a,
            Cleanup {
                largest: true,
                ..Default::default()
            },
        );
        assert_eq!(a.iter().filter(|&&v| v == 1).count(), 3);
        assert_eq!(a[[1, 1, 1]], 0);
        let mut b = m.clone();
        clean(
            &mut b,
            Cleanup {
                min_voxels: 4,
                ..Default::default()
            },
        );
        assert_eq!(b.iter().filter(|&&v| v == 1).count(), 0);
    }

    #[test]
    fn holes_are_filled_but_border_background_is_not() {
        let mut m = Array3::<u8>::ones((5, 5, 5));
        m[[2, 2, 2]] = 0; // enclosed
        m[[0, 0, 0]] = 0; // on the border
        clean(
            &mut m,
            Cleanup {
                fill_holes: true,
                ..Default::default()
            },
        );
        assert_eq!(m[[2, 2, 2]], 1);
        assert_eq!(m[[0, 0, 0]], 0);
    }
}
