//! The linear assignment problem: give each row its own column so that the summed score is as
//! large as possible. Weight matching solves one per permutation and step.
//!
//! A shortest-augmenting-path Hungarian algorithm with row and column potentials (the
//! Jonker-Volgenant family), O(rows^2 * cols), in f64. Our own rather than a crate: the small
//! LAP crates either take only integer costs or have had unfinished releases, and this one is
//! about sixty lines, tested against brute force below. Ties go to the lowest column index, so
//! the answer is the same on every platform.

use crate::error::{Result, WsaError};

/// For each of the `rows` rows, the column it gets, maximising the summed `score[row * cols +
/// column]`. Needs `rows <= cols` (every row gets a distinct column; spare columns stay unused)
/// and finite scores.
pub fn maximise(score: &[f64], rows: usize, cols: usize) -> Result<Vec<usize>> {
    if rows > cols || score.len() != rows * cols {
        return Err(WsaError::invalid(
            "assignment problem",
            format!("{rows} x {cols} with {} scores", score.len()),
            "needs at most as many rows as columns and one score per cell",
        ));
    }
    if let Some(bad) = score.iter().position(|s| !s.is_finite()) {
        return Err(WsaError::invalid(
            "assignment problem",
            format!("score {} at row {}, column {}", score[bad], bad / cols, bad % cols),
            "every score must be finite (NaN or infinite weights?)",
        ));
    }
    // Minimise the negated scores, as a row-major cost matrix with the rows and columns counted
    // from 1 (index 0 is the virtual start of every augmenting path).
    let negated: Vec<f64> = score.iter().map(|s| -s).collect();
    let mut u = vec![0.0f64; rows + 1];
    let mut v = vec![0.0f64; cols + 1];
    // owner[col]: the row assigned to col (0: none); way[col]: the previous column on the path.
    let mut owner = vec![0usize; cols + 1];
    let mut way = vec![0usize; cols + 1];
    // The columns not yet on the current row's path, in increasing order, with their smallest
    // reduced cost so far and their potential side by side: the scan and the update below then
    // run over contiguous arrays that shrink as the path grows, without a branch per column,
    // instead of over every column with a "used" flag. The arithmetic and the order of every
    // comparison are those of the textbook loop (kept in the tests as the reference), so the
    // answer is the same to the bit, ties included.
    let mut free: Vec<usize> = Vec::with_capacity(cols);
    let mut free_min: Vec<f64> = Vec::with_capacity(cols);
    let mut free_v: Vec<f64> = Vec::with_capacity(cols);
    let mut free_way: Vec<usize> = Vec::with_capacity(cols);
    let mut used: Vec<usize> = Vec::with_capacity(cols + 1);
    for row in 1..=rows {
        owner[0] = row;
        let mut col0 = 0usize;
        free.clear();
        free.extend(1..=cols);
        free_min.clear();
        free_min.resize(cols, f64::INFINITY);
        free_v.clear();
        free_v.extend_from_slice(&v[1..]);
        free_way.clear();
        free_way.resize(cols, 0);
        used.clear();
        loop {
            used.push(col0);
            let row0 = owner[col0];
            let (row_cost, u0) = (&negated[(row0 - 1) * cols..row0 * cols], u[row0]);
            for (((&col, min), &v_col), way_col) in free.iter().zip(&mut free_min).zip(&free_v).zip(&mut free_way) {
                let reduced = row_cost[col - 1] - u0 - v_col;
                if reduced < *min {
                    *min = reduced;
                    *way_col = col0;
                }
            }
            // The first column with the smallest value, as a strict `<` scan in column order
            // picks it: the minimum first (exact, so the order of the lanes does not matter),
            // then its first position.
            let delta = smallest(&free_min);
            let k = free_min.iter().position(|&m| m == delta).expect("a free column remains while rows <= cols");
            let col1 = free[k];
            for &col in &used {
                u[owner[col]] += delta;
                v[col] -= delta;
            }
            for min in &mut free_min {
                *min -= delta;
            }
            // Only the path's columns' ways are read (when it is flipped below), and a column's
            // way no longer changes once it is on the path.
            way[col1] = free_way[k];
            col0 = col1;
            if owner[col0] == 0 {
                break;
            }
            free.remove(k);
            free_min.remove(k);
            free_v.remove(k);
            free_way.remove(k);
        }
        // Flip the augmenting path back to the start.
        loop {
            let col1 = way[col0];
            owner[col0] = owner[col1];
            col0 = col1;
            if col0 == 0 {
                break;
            }
        }
    }
    let mut assignment = vec![0usize; rows];
    for col in 1..=cols {
        if owner[col] != 0 {
            assignment[owner[col] - 1] = col - 1;
        }
    }
    Ok(assignment)
}

/// The smallest of `values` (none NaN), in eight lanes that the compiler can keep in SIMD
/// registers: the minimum is exact, so the lanes give the same value as a scan in order.
fn smallest(values: &[f64]) -> f64 {
    let (chunks, rest) = values.as_chunks::<8>();
    let mut lanes = [f64::INFINITY; 8];
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane = if x < *lane { x } else { *lane };
        }
    }
    lanes.iter().chain(rest).fold(f64::INFINITY, |m, &x| if x < m { x } else { m })
}

/// The summed score of an assignment.
pub fn total(score: &[f64], cols: usize, assignment: &[usize]) -> f64 {
    assignment.iter().enumerate().map(|(row, &col)| score[row * cols + col]).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// The textbook loop `maximise` started as (every column scanned with a "used" flag): the
    /// fast one must give exactly its answers, ties included.
    fn reference(score: &[f64], rows: usize, cols: usize) -> Vec<usize> {
        let negated: Vec<f64> = score.iter().map(|s| -s).collect();
        let mut u = vec![0.0f64; rows + 1];
        let mut v = vec![0.0f64; cols + 1];
        let mut owner = vec![0usize; cols + 1];
        let mut way = vec![0usize; cols + 1];
        for row in 1..=rows {
            owner[0] = row;
            let mut col0 = 0usize;
            let mut min_reduced = vec![f64::INFINITY; cols + 1];
            let mut used = vec![false; cols + 1];
            loop {
                used[col0] = true;
                let row0 = owner[col0];
                let mut delta = f64::INFINITY;
                let mut col1 = 0usize;
                for col in 1..=cols {
                    if used[col] {
                        continue;
                    }
                    let reduced = negated[(row0 - 1) * cols + col - 1] - u[row0] - v[col];
                    if reduced < min_reduced[col] {
                        min_reduced[col] = reduced;
                        way[col] = col0;
                    }
                    if min_reduced[col] < delta {
                        delta = min_reduced[col];
                        col1 = col;
                    }
                }
                for col in 0..=cols {
                    if used[col] {
                        u[owner[col]] += delta;
                        v[col] -= delta;
                    } else {
                        min_reduced[col] -= delta;
                    }
                }
                col0 = col1;
                if owner[col0] == 0 {
                    break;
                }
            }
            loop {
                let col1 = way[col0];
                owner[col0] = owner[col1];
                col0 = col1;
                if col0 == 0 {
                    break;
                }
            }
        }
        let mut assignment = vec![0usize; rows];
        for col in 1..=cols {
            if owner[col] != 0 {
                assignment[owner[col] - 1] = col - 1;
            }
        }
        assignment
    }

    #[test]
    fn gives_exactly_the_textbook_loops_answers() {
        let mut rng = Rng::new(13);
        for trial in 0..200 {
            let rows = 1 + rng.below(if trial % 10 == 0 { 200 } else { 40 });
            let cols = rows + if trial % 3 == 0 { rng.below(5) } else { 0 };
            // Continuous scores, and few distinct values (many ties) in every other trial.
            let score: Vec<f64> = if trial % 2 == 0 {
                (0..rows * cols).map(|_| rng.uniform_range(-5.0, 5.0)).collect()
            } else {
                (0..rows * cols).map(|_| rng.below(4) as f64).collect()
            };
            assert_eq!(maximise(&score, rows, cols).expect("solvable"), reference(&score, rows, cols), "{rows}x{cols}");
        }
    }

    /// The best total over every injective assignment of rows to columns.
    fn brute_force(score: &[f64], rows: usize, cols: usize) -> f64 {
        fn go(score: &[f64], rows: usize, cols: usize, row: usize, used: &mut Vec<bool>) -> f64 {
            if row == rows {
                return 0.0;
            }
            let mut best = f64::NEG_INFINITY;
            for col in 0..cols {
                if !used[col] {
                    used[col] = true;
                    best = best.max(score[row * cols + col] + go(score, rows, cols, row + 1, used));
                    used[col] = false;
                }
            }
            best
        }
        go(score, rows, cols, 0, &mut vec![false; cols])
    }

    fn check(score: &[f64], rows: usize, cols: usize) {
        let assignment = maximise(score, rows, cols).expect("solvable");
        let mut seen = vec![false; cols];
        for &col in &assignment {
            assert!(col < cols && !seen[col], "columns must be distinct: {assignment:?}");
            seen[col] = true;
        }
        let best = brute_force(score, rows, cols);
        let got = total(score, cols, &assignment);
        assert!((got - best).abs() <= 1e-9 * best.abs().max(1.0), "{rows}x{cols}: got {got}, best {best}");
    }

    #[test]
    fn matches_brute_force_on_random_square_and_rectangular_problems() {
        let mut rng = Rng::new(7);
        for trial in 0..300 {
            let rows = 1 + rng.below(6);
            let cols = rows + if trial % 3 == 0 { rng.below(3) } else { 0 };
            let score: Vec<f64> = (0..rows * cols).map(|_| rng.uniform_range(-5.0, 5.0)).collect();
            check(&score, rows, cols);
        }
    }

    #[test]
    fn matches_brute_force_with_ties() {
        let mut rng = Rng::new(11);
        for _ in 0..300 {
            let rows = 1 + rng.below(6);
            let cols = rows + rng.below(2);
            // Few distinct values: many assignments share the best total.
            let score: Vec<f64> = (0..rows * cols).map(|_| rng.below(3) as f64).collect();
            check(&score, rows, cols);
        }
        // All equal: any permutation is optimal; the answer is still a valid one, and the same
        // every time.
        let flat = vec![1.0; 16];
        let first = maximise(&flat, 4, 4).expect("solvable");
        assert_eq!(first, maximise(&flat, 4, 4).expect("solvable"));
        check(&flat, 4, 4);
    }

    #[test]
    fn finds_a_hidden_permutation() {
        // Row i scores 1 only in column perm[i]: the permutation is the unique best answer.
        let perm = [3usize, 0, 4, 1, 2];
        let score: Vec<f64> = (0..25).map(|k| if perm[k / 5] == k % 5 { 1.0 } else { 0.0 }).collect();
        assert_eq!(maximise(&score, 5, 5).expect("solvable"), perm);
    }

    #[test]
    fn refuses_bad_problems() {
        assert!(maximise(&[1.0, 2.0], 2, 1).is_err(), "more rows than columns");
        assert!(maximise(&[1.0, 2.0, 3.0], 2, 2).is_err(), "wrong number of scores");
        let err = maximise(&[1.0, f64::NAN, 0.0, 1.0], 2, 2).expect_err("NaN");
        assert!(err.to_string().contains("finite"), "{err}");
        assert_eq!(maximise(&[], 0, 0).expect("empty"), Vec::<usize>::new());
    }
}
