//! Chamfer distance transforms of a plane: each inside pixel's distance to the nearest pixel
//! outside, in two raster passes (forward from the top-left neighbours, backward from the
//! bottom-right ones). Pixels past the plane's edge count as outside.

/// A chamfer metric: the neighbours each pass looks at, with their step costs.
pub struct Chamfer {
    /// `(row offset, column offset, cost)` of the neighbours already visited by the forward pass.
    forward: &'static [(isize, isize, u32)],
    /// The same for the backward pass.
    backward: &'static [(isize, isize, u32)],
}

/// City-block distance (4-neighbours, cost 1): whole pixels.
pub const CITY_BLOCK: Chamfer = Chamfer {
    forward: &[(-1, 0, 1), (0, -1, 1)],
    backward: &[(1, 0, 1), (0, 1, 1)],
};

/// The 3-4 chamfer (8-neighbours, edge 3, diagonal 4): three times a close approximation of
/// the Euclidean distance.
pub const CHAMFER_3_4: Chamfer = Chamfer {
    forward: &[(-1, -1, 4), (-1, 0, 3), (-1, 1, 4), (0, -1, 3)],
    backward: &[(1, 1, 4), (1, 0, 3), (1, -1, 4), (0, 1, 3)],
};

/// The distance under `metric` of every pixel of `inside` (`h`×`w`, row-major) to its
/// outside; 0 outside.
pub fn to_outside(inside: &[bool], (h, w): (usize, usize), metric: &Chamfer) -> Vec<u32> {
    const FAR: u32 = u32::MAX / 2;
    let mut d: Vec<u32> = inside.iter().map(|&i| if i { FAR } else { 0 }).collect();
    let at = |r: isize, c: isize| -> Option<usize> {
        (r >= 0 && c >= 0 && (r as usize) < h && (c as usize) < w)
            .then(|| r as usize * w + c as usize)
    };
    let mut relax = |i: usize, steps: &[(isize, isize, u32)]| {
        if d[i] == 0 {
            return;
        }
        let (r, c) = ((i / w) as isize, (i % w) as isize);
        for &(dr, dc, cost) in steps {
            let n = at(r + dr, c + dc).map_or(0, |j| d[j]);
            d[i] = d[i].min(n + cost);
        }
    };
    for i in 0..h * w {
        relax(i, metric.forward);
    }
    for i in (0..h * w).rev() {
        relax(i, metric.backward);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_square_touching_nothing_is_deepest_at_its_centre() {
        // A 5x5 square inside a 7x7 plane: rings at 1, 2, 3 steps from the outside.
        let inside: Vec<bool> = (0..49)
            .map(|i| (1..6).contains(&(i / 7)) && (1..6).contains(&(i % 7)))
            .collect();
        let city = to_outside(&inside, (7, 7), &CITY_BLOCK);
        assert_eq!((city[0], city[8], city[16], city[24]), (0, 1, 2, 3));
        let chamfer = to_outside(&inside, (7, 7), &CHAMFER_3_4);
        assert_eq!(
            (chamfer[0], chamfer[8], chamfer[16], chamfer[24]),
            (0, 3, 6, 9)
        );
        // The plane's edge is outside: a full plane is 1 step deep at its border.
        let full = to_outside(&[true; 9], (3, 3), &CITY_BLOCK);
        assert_eq!(full, vec![1, 1, 1, 1, 2, 1, 1, 1, 1]);
    }
}
