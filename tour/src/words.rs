//! The tour's words around its steps: every button, label and sentence the tour shows besides a
//! step's own texts (the app's tour panel, the line that reports a claim checked on a run, the
//! worksheet and the teacher's notes), read from the tour file with the steps, so that a
//! translation is one file and nothing the tour shows is left in the code. A text may name values
//! in braces (`{step}`), filled in when it is shown ([`fill`]); a translation must name the same
//! values as the shipped English file, which [`Words::check_against`] checks when a file is read.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt::Display;

/// Every word of the tour that is not a step's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Words {
    pub panel: PanelWords,
    pub claims: ClaimWords,
    pub worksheet: WorksheetWords,
}

/// The tour's panel in the app (and the page's mirror of it for screen readers).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanelWords {
    /// The button that opens the tour, and its hover text.
    pub start: String,
    pub start_hint: String,
    /// "Tour · step {step} of {total}".
    pub step_of: String,
    pub leave: String,
    pub next: String,
    pub back: String,
    pub restart: String,
    pub glossary: String,
    pub glossary_hint: String,
    pub keys: String,
    pub keys_hint: String,
    pub keys_title: String,
    pub key_next: String,
    pub key_back: String,
    pub key_run: String,
    pub key_leave: String,
    pub key_help: String,
    pub terms: String,
    pub predict: String,
    pub your_prediction: String,
    pub prediction_hint: String,
    pub run: String,
    pub run_again: String,
    /// "running… {stage}" (the stage is the engine's).
    pub running: String,
    /// Shown instead of the view while the open step has not run.
    pub think_first: String,
    /// Above the setup while a step sets the experiment.
    pub set_by_tour: String,
    /// The label of the page's mirror of the tour for screen readers.
    pub mirror_label: String,
    pub look: String,
    pub you_predicted: String,
    pub in_this_run: String,
    /// The mirror's words for a claim that held, or did not, on every seed.
    pub held: String,
    pub not_held: String,
    /// "Exercise {number}:", and its buttons.
    pub exercise: String,
    pub run_exercise: String,
    pub run_exercise_hint: String,
    pub show_answer: String,
    pub hide_answer: String,
    pub answer: String,
    pub run_exercise_first: String,
    /// The marks beside what a step asks to look at, in the views.
    pub look_here: String,
    pub look_here_curve: String,
    pub look_here_layer: String,
    pub look_here_plane: String,
}

/// A claim's sentence and the numbers shown after it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimText {
    pub statement: String,
    pub numbers: String,
}

/// The line that reports a claim checked on a run, and each claim's words.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimWords {
    /// "{statement}: held on {held} of {cases} {unit}{anecdote}. {numbers}".
    pub line: String,
    /// Added to the line of a claim checked on one seed.
    pub anecdote: String,
    /// What a case is: a seed, a histogram of the seed shown, a pair of them.
    pub seeds: String,
    pub histograms: String,
    pub histogram_pairs: String,
    pub missing_layer: String,
    pub accurate: ClaimText,
    pub barrier_at_least: ClaimText,
    pub barrier_at_most: ClaimText,
    pub peak_in_the_middle: ClaimText,
    pub lower_barrier: ClaimText,
    pub same_b: ClaimText,
    pub closer_scopes: ClaimText,
    pub scopes_apart: ClaimText,
    pub curve_below_line: ClaimText,
    pub heavy_tails: ClaimText,
    pub wider_in_b: ClaimText,
}

/// The students' worksheet and the teacher's notes (`worksheet`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorksheetWords {
    pub title: String,
    pub heading: String,
    pub name: String,
    pub date: String,
    pub instructions: String,
    /// "Step {number}. {title}".
    pub step: String,
    pub my_prediction: String,
    pub what_i_saw: String,
    pub exercise: String,
    pub exercise_box: String,
    pub notes_title: String,
    pub notes_heading: String,
    /// Where the notes' numbers come from: {command}, {version}, {device}.
    pub provenance: String,
    pub asked: String,
    pub what_to_look_at: String,
    pub plane_note: String,
    pub checked: String,
    pub not_everywhere: String,
    pub numbers_one_seed: String,
    pub numbers: String,
    pub method: String,
    pub accuracy_a: String,
    pub accuracy_b: String,
    pub loss_barrier: String,
    pub accuracy_barrier: String,
    pub scope_distance: String,
    pub curve_barrier: String,
    pub federated_numbers: String,
    pub run: String,
    pub final_accuracy: String,
    pub best_accuracy: String,
    pub diverged: String,
    pub per_seed: String,
    pub seed: String,
    /// "{with} ended higher than {without} on {higher} of {compared} seeds."
    pub seed_comparison: String,
}

/// Why a tour file's words do not fit the tour.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum WordsError {
    #[error("the text of `{field}` names {{{name}}}, which the tour does not fill in; use only {expected}")]
    UnknownName { field: String, name: String, expected: String },

    #[error(
        "the text of `{field}` leaves out {{{name}}}, where the tour fills in a value; put it back (as in tour/tour.ron)"
    )]
    MissingName { field: String, name: String },

    #[error("the text of `{field}` is empty; every word of the tour needs a text")]
    Empty { field: String },
}

impl Words {
    /// Checks that every text names the same values as `reference`'s (the shipped English words)
    /// and none is empty: a text that leaves out a value would hide it, and one that names a value
    /// the tour does not fill in would show its braces.
    pub fn check_against(&self, reference: &Words) -> Result<(), WordsError> {
        let (ours, theirs) = (texts(self), texts(reference));
        for ((field, text), (_, expected)) in ours.iter().zip(&theirs) {
            // The anecdote is appended after the unit and may be a space in a terse language;
            // every other text says something.
            if text.trim().is_empty() && field != "claims.anecdote" {
                return Err(WordsError::Empty { field: field.clone() });
            }
            let (names, wanted) = (names_in(text), names_in(expected));
            if let Some(name) = names.difference(&wanted).next() {
                let expected = if wanted.is_empty() {
                    "no names in braces".to_string()
                } else {
                    wanted.iter().map(|n| format!("{{{n}}}")).collect::<Vec<_>>().join(", ")
                };
                return Err(WordsError::UnknownName { field: field.clone(), name: name.clone(), expected });
            }
            if let Some(name) = wanted.difference(&names).next() {
                return Err(WordsError::MissingName { field: field.clone(), name: name.clone() });
            }
        }
        Ok(())
    }
}

/// Every text of `words` with its field's path ("panel.next"), in the fields' order.
fn texts(words: &Words) -> Vec<(String, String)> {
    fn walk(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match value {
            serde_json::Value::String(text) => out.push((prefix.to_string(), text.clone())),
            serde_json::Value::Object(fields) => {
                for (name, value) in fields {
                    let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
                    walk(&path, value, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", &serde_json::to_value(words).expect("words are plain strings"), &mut out);
    out
}

/// The names in braces in `text` (`{step}`): a name is letters, digits and underscores.
pub fn names_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if is_name(&after[..close]) => {
                names.insert(after[..close].to_string());
                rest = &after[close + 1..];
            }
            _ => rest = after,
        }
    }
    names
}

fn is_name(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_alphanumeric() || c == '_')
}

impl PanelWords {
    /// "Tour · step 3 of 10": step `number` (from 1) of `total`.
    pub fn step_of(&self, number: usize, total: usize) -> String {
        fill(&self.step_of, &[("step", &number), ("total", &total)])
    }
}

/// `template` with its `{number}` filled in ("Exercise {number}:" → "Exercise 2:").
pub fn numbered(template: &str, number: usize) -> String {
    fill(template, &[("number", &number)])
}

/// `template` with each `{name}` of `values` replaced by its value; other braces stay as they
/// are.
pub fn fill(template: &str, values: &[(&str, &dyn Display)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let name = &after[..close];
            values.iter().find(|(n, _)| *n == name).map(|(_, v)| (close, v.to_string()))
        });
        match value {
            Some((close, value)) => {
                out.push_str(&value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_filled_in_by_name_and_other_braces_kept() {
        assert_eq!(fill("step {step} of {total}", &[("step", &3), ("total", &"10")]), "step 3 of 10");
        assert_eq!(fill("{a}{a} {b} {}", &[("a", &1)]), "11 {b} {}");
        assert_eq!(names_in("x {a} {b_2} {} {not a name} {a}"), BTreeSet::from(["a".into(), "b_2".into()]));
    }

    #[test]
    fn a_translation_names_the_values_the_english_does() {
        let english = crate::Tour::parse(crate::TOUR_FILE).expect("the shipped tour").words;
        english.check_against(&english).expect("the English words fit themselves");
        let mut lost = english.clone();
        lost.panel.step_of = "Schritt {step}".into();
        let err = lost.check_against(&english).expect_err("{total} left out").to_string();
        assert!(err.contains("`panel.step_of`") && err.contains("{total}"), "{err}");
        let mut extra = english.clone();
        extra.claims.accurate.numbers = "{a} {b} {c}".into();
        let err = extra.check_against(&english).expect_err("{c} is not filled in").to_string();
        assert!(err.contains("`claims.accurate.numbers`") && err.contains("{c}") && err.contains("{a}, {b}"), "{err}");
        let mut empty = english.clone();
        empty.worksheet.seed = " ".into();
        assert!(empty.check_against(&english).expect_err("empty").to_string().contains("worksheet.seed"));
    }
}
