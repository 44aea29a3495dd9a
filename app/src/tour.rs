//! The guided tour as the app uses it: the steps, their claims and the worksheet are
//! `wsa_tour`'s (no UI, so that the CLI prints the worksheet too); here, what only the app has:
//! its results answering a step, and the tour links of the page.

pub use wsa_tour::*;

use crate::error::AppResult;
use crate::results::Results;

/// Whether `step`'s answer is on screen: its run's result (for a plane step, the plane too), or
/// nothing to run.
pub fn answered(step: &Step, results: &Results) -> bool {
    step.answered(results.connect(), results.federated(), results.plane().is_some())
}

/// Reads the step number of a tour link (`#tour=N`, counted from 1): `Ok(index)` from 0, or the
/// notice for a step that does not exist (the tour then opens at its first step).
pub fn step_from_link(number: &str, steps: usize) -> AppResult<usize> {
    match number.trim().parse::<usize>() {
        Ok(n) if (1..=steps).contains(&n) => Ok(n - 1),
        _ => Err(crate::link::LinkError::NoSuchStep { step: number.to_string(), steps }.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_to_missing_steps_open_the_first() {
        assert_eq!(step_from_link("3", 8), Ok(2));
        for bad in ["0", "9", "x", "-1", ""] {
            assert!(step_from_link(bad, 8).expect_err(bad).to_string().contains("opened step 1"));
        }
    }
}
