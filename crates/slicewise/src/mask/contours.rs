//! Closed planar contours traced from one slice of a mask: the outline of each island of a label
//! and of each hole in it, as polygons in voxel-index coordinates (what an RTSTRUCT stores, once
//! put in patient coordinates).
//!
//! The outline follows the voxel boundaries (the "cracks" between a voxel of the label and one
//! that is not), so a polygon's area is the voxels' area and a reader that fills a polygon by
//! testing voxel centres (even-odd, as RT readers treat holes) gets the voxels back exactly.
//! Each polygon is then offset inward by [`Contour`]'s `inset` (a small fraction of a voxel):
//! readers that instead round each vertex to the nearest voxel centre and fill inclusively
//! (rt-utils, OpenCV's `fillPoly`) then land on the outermost voxels of the label rather than on
//! the background beyond them, and still get the voxels back; the polygon's area changes by at
//! most `inset` × its perimeter.
//!
//! Islands are 4-connected: two voxels that touch only at a corner are separate islands (their
//! outlines meet at that corner but do not cross). A hole is a separate polygon inside its
//! island, marked [`Contour::hole`]; together they describe the region by the even-odd rule.

/// One closed polygon of a slice.
#[derive(Debug, Clone, PartialEq)]
pub struct Contour {
    /// The vertices, `[x, y]` in voxel-index units (x along the slice's rows, i.e. the column
    /// index; y the row index; voxel `(x, y)` is centred on `[x, y]`), one per corner, the
    /// polygon closed implicitly (the last vertex joins the first).
    pub points: Vec<[f64; 2]>,
    /// Whether the polygon is the outline of a hole (background enclosed by the label) rather
    /// than of an island.
    pub hole: bool,
}

/// The largest inset that keeps every polygon on its side of the voxel centres (half a voxel).
const MAX_INSET: f64 = 0.5;

/// Step of each direction: 0 = +y, 1 = +x, 2 = −y, 3 = −x. Turning from `d` to `(d + 1) % 4`
/// turns toward the inside (the label lies on the `(d + 1) % 4` side of an edge of direction d).
const STEP: [(i64, i64); 4] = [(0, 1), (1, 0), (0, -1), (-1, 0)];

/// Traces the outlines of the voxels where `inside` holds in an `nx` × `ny` slice (`inside(x, y)`),
/// offset inward by `inset` voxels (clamped to `[0, 0.5)`). Polygons come in the raster order
/// of their top-left corner: an island before the holes inside it.
pub fn trace(
    nx: usize,
    ny: usize,
    inside: impl Fn(usize, usize) -> bool,
    inset: f64,
) -> Vec<Contour> {
    let inset = inset.clamp(0.0, MAX_INSET - 1e-6);
    let edges = boundary_edges(nx, ny, &inside);
    let mut unused = edges.clone();
    let mut contours = Vec::new();
    let w = nx + 1;
    for v in 0..unused.len() {
        while unused[v] != 0 {
            let d0 = unused[v].trailing_zeros() as usize;
            let corners = follow(&edges, &mut unused, w, v, d0);
            contours.push(polygon(&corners, inset));
        }
    }
    contours
}

/// For each vertex of the `(nx + 1)` × `(ny + 1)` voxel-corner grid (vertex `(vx, vy)` is the
/// corner at `[vx − 0.5, vy − 0.5]`), a bit per direction of the boundary edges leaving it,
/// directed so that the label lies on their inside.
fn boundary_edges(nx: usize, ny: usize, inside: &impl Fn(usize, usize) -> bool) -> Vec<u8> {
    let w = nx + 1;
    let mut edges = vec![0u8; w * (ny + 1)];
    let at = |x: i64, y: i64| {
        x >= 0 && y >= 0 && (x as usize) < nx && (y as usize) < ny && inside(x as usize, y as usize)
    };
    for y in 0..ny {
        for x in 0..nx {
            if !inside(x, y) {
                continue;
            }
            let (xi, yi) = (x as i64, y as i64);
            // Each side facing outside, walked around the voxel with the voxel on its inside:
            // left side downward, bottom rightward, right side upward, top leftward.
            if !at(xi - 1, yi) {
                edges[y * w + x] |= 1 << 0;
            }
            if !at(xi, yi + 1) {
                edges[(y + 1) * w + x] |= 1 << 1;
            }
            if !at(xi + 1, yi) {
                edges[(y + 1) * w + x + 1] |= 1 << 2;
            }
            if !at(xi, yi - 1) {
                edges[y * w + x + 1] |= 1 << 3;
            }
        }
    }
    edges
}

/// The direction to leave vertex with edges `out` by, having arrived going `d`: the turn toward
/// the inside when there is one (at a vertex where two islands touch diagonally this keeps each
/// island's outline to itself), else straight on, else the other turn.
fn next_direction(out: u8, d: usize) -> usize {
    [(d + 1) % 4, d, (d + 3) % 4]
        .into_iter()
        .find(|&n| out & (1 << n) != 0)
        .unwrap_or(d)
}

/// One corner of an outline: the vertex (`[vx, vy]` on the corner grid) and the directions in
/// and out of it.
struct Corner {
    vertex: [i64; 2],
    d_in: usize,
    d_out: usize,
}

/// Follows the closed outline that leaves vertex `start` going `d0`, clearing its edges from
/// `unused`; returns its corners (where the direction changes).
fn follow(edges: &[u8], unused: &mut [u8], w: usize, start: usize, d0: usize) -> Vec<Corner> {
    let mut corners = Vec::new();
    let (mut v, mut d) = (start, d0);
    unused[v] &= !(1 << d);
    loop {
        let (dx, dy) = STEP[d];
        let (x, y) = ((v % w) as i64 + dx, (v / w) as i64 + dy);
        let next_v = y as usize * w + x as usize;
        let next_d = next_direction(edges[next_v], d);
        if next_d != d {
            corners.push(Corner {
                vertex: [x, y],
                d_in: d,
                d_out: next_d,
            });
        }
        if next_v == start && next_d == d0 {
            return corners;
        }
        unused[next_v] &= !(1 << next_d);
        (v, d) = (next_v, next_d);
    }
}

/// The polygon of an outline's corners, each moved `inset` inward along both its edges'
/// inward normals (a parallel inward offset of the outline); a hole when it winds the other way
/// round from an island.
fn polygon(corners: &[Corner], inset: f64) -> Contour {
    let points: Vec<[f64; 2]> = corners
        .iter()
        .map(|c| {
            let (ax, ay) = STEP[(c.d_in + 1) % 4];
            let (bx, by) = STEP[(c.d_out + 1) % 4];
            [
                c.vertex[0] as f64 - 0.5 + inset * (ax + bx) as f64,
                c.vertex[1] as f64 - 0.5 + inset * (ay + by) as f64,
            ]
        })
        .collect();
    Contour {
        hole: signed_area(&points) > 0.0,
        points,
    }
}

/// Twice the signed area of a polygon (shoelace): negative for the islands' winding, positive
/// for the holes'.
fn signed_area(points: &[[f64; 2]]) -> f64 {
    let n = points.len();
    (0..n)
        .map(|i| {
            let (a, b) = (points[i], points[(i + 1) % n]);
            a[0] * b[1] - b[0] * a[1]
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slice from rows of text: `#` is inside.
    fn slice(rows: &[&str]) -> (usize, usize, Vec<bool>) {
        let (ny, nx) = (rows.len(), rows[0].len());
        let cells = rows
            .iter()
            .flat_map(|r| r.chars().map(|c| c == '#'))
            .collect();
        (nx, ny, cells)
    }

    fn trace_rows(rows: &[&str], inset: f64) -> (usize, usize, Vec<bool>, Vec<Contour>) {
        let (nx, ny, cells) = slice(rows);
        let contours = trace(nx, ny, |x, y| cells[y * nx + x], inset);
        (nx, ny, cells, contours)
    }

    /// Whether `p` lies inside the polygon by the even-odd rule (a ray to +x crosses it an odd
    /// number of times).
    fn crossings(poly: &[[f64; 2]], p: [f64; 2]) -> bool {
        let mut inside = false;
        for i in 0..poly.len() {
            let (a, b) = (poly[i], poly[(i + 1) % poly.len()]);
            if (a[1] > p[1]) != (b[1] > p[1]) {
                let x = a[0] + (p[1] - a[1]) / (b[1] - a[1]) * (b[0] - a[0]);
                if p[0] < x {
                    inside = !inside;
                }
            }
        }
        inside
    }

    /// The voxels whose centres lie inside an odd number of the polygons: how RT readers that
    /// sample voxel centres fill a slice's contours.
    fn rasterise(nx: usize, ny: usize, contours: &[Contour]) -> Vec<bool> {
        (0..ny)
            .flat_map(|y| (0..nx).map(move |x| (x, y)))
            .map(|(x, y)| {
                let p = [x as f64, y as f64];
                contours.iter().filter(|c| crossings(&c.points, p)).count() % 2 == 1
            })
            .collect()
    }

    #[test]
    fn a_voxel_is_its_square() {
        let (_, _, _, c) = trace_rows(&["...", ".#.", "..."], 0.0);
        assert_eq!(c.len(), 1);
        assert!(!c[0].hole);
        let mut pts = c[0].points.clone();
        pts.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(pts, [[0.5, 0.5], [0.5, 1.5], [1.5, 0.5], [1.5, 1.5]]);
        assert!((signed_area(&c[0].points).abs() - 2.0).abs() < 1e-12);
    }

    #[test]
    fn the_inset_moves_every_corner_inward() {
        let (_, _, _, c) = trace_rows(&["#"], 0.25);
        let mut pts = c[0].points.clone();
        pts.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(
            pts,
            [[-0.25, -0.25], [-0.25, 0.25], [0.25, -0.25], [0.25, 0.25]]
        );
    }

    #[test]
    fn a_ring_has_an_outline_and_a_hole() {
        let rows = ["#####", "#...#", "#.#.#", "#...#", "#####"];
        let (nx, ny, cells, c) = trace_rows(&rows, 0.02);
        // The ring, its hole, and the island inside the hole.
        assert_eq!(c.len(), 3, "{c:?}");
        assert_eq!(c.iter().filter(|c| c.hole).count(), 1);
        assert!(!c[0].hole, "the outline comes first");
        assert_eq!(rasterise(nx, ny, &c), cells);
    }

    #[test]
    fn voxels_touching_at_a_corner_are_separate_islands() {
        let (nx, ny, cells, c) = trace_rows(&["#.", ".#"], 0.0);
        assert_eq!(c.len(), 2);
        assert!(c.iter().all(|c| !c.hole && c.points.len() == 4));
        assert_eq!(rasterise(nx, ny, &c), cells);
        // A hole open at a corner belongs to the outline, which touches itself there.
        let (nx, ny, cells, c) = trace_rows(&["###.", "#.#.", "##.#"], 0.02);
        assert_eq!(rasterise(nx, ny, &c), cells);
    }

    #[test]
    fn an_empty_slice_has_no_contours() {
        assert!(trace(4, 3, |_, _| false, 0.02).is_empty());
    }

    #[test]
    fn random_slices_rasterise_back_exactly() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..200 {
            let (nx, ny) = (1 + (next() % 13) as usize, 1 + (next() % 11) as usize);
            let density = next() % 100;
            let cells: Vec<bool> = (0..nx * ny).map(|_| next() % 100 < density).collect();
            for inset in [0.0, 0.02, 0.3] {
                let c = trace(nx, ny, |x, y| cells[y * nx + x], inset);
                assert_eq!(rasterise(nx, ny, &c), cells, "round {round}, inset {inset}");
                // The outlines (inset 0) enclose exactly the voxels' area.
                if inset == 0.0 {
                    let area: f64 = c.iter().map(|c| -signed_area(&c.points) / 2.0).sum();
                    let n = cells.iter().filter(|&&b| b).count();
                    assert!((area - n as f64).abs() < 1e-9, "round {round}");
                }
            }
        }
    }
}
