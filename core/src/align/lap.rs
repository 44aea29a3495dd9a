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
            let (row_cost, u0) = (&negated[(row0 - 1) * cols..row0 * cols], u[row0]);
            for col in 1..=cols {
                if used[col] {
                    continue;
                }
                let reduced = row_cost[col - 1] - u0 - v[col];
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

/// The summed score of an assignment.
pub fn total(score: &[f64], cols: usize, assignment: &[usize]) -> f64 {
    assignment.iter().enumerate().map(|(row, &col)| score[row * cols + col]).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

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
