//! The teacher's kit on paper: a worksheet for the students (each step's idea, its question, room
//! for their prediction and for what they saw, and the glossary) and the teacher's notes (each
//! step's expected answer: what to look at, every claim checked on an actual run of the step seed
//! by seed, and the run's numbers over its seeds). Both are HTML pages that print on A4 and Letter
//! alike. The runs are the caller's (`wsa-lab tour --worksheet` runs each step): nothing here
//! computes or types a number.

use crate::{ClaimCheck, StepRun, Tour};
use std::fmt::Write;
use wsa_core::experiment::connect::ConnectResult;
use wsa_core::experiment::federated::FedResult;
use wsa_core::experiment::seeds::{SeedMethod, mean_std};
use wsa_core::experiment::stats::summarize;

/// A step's run, as the teacher's notes read it.
pub enum StepAnswer {
    Connect(Box<ConnectResult>),
    Federated(Box<FedResult>),
    /// The step runs nothing (the last step hands over the setup).
    Nothing,
}

/// Where the notes' numbers come from, printed at their top.
pub struct Provenance<'a> {
    /// The command that wrote them.
    pub command: &'a str,
    /// The device the runs computed on.
    pub device: &'a str,
    /// The version of WSA Lab that ran them.
    pub version: &'a str,
}

/// The students' worksheet: every step's title, idea and question with room to answer, then the
/// glossary.
pub fn worksheet(tour: &Tour) -> String {
    let mut s = page_start("WSA Lab tour: worksheet");
    s.push_str(
        "<h1>Merging neural networks: worksheet</h1>\n\
         <p class=\"lead\">Name: ______________________ &nbsp; Date: ____________</p>\n\
         <p>At each step, read the idea and write down your prediction <em>before</em> the step is run. \
         After the run, write what you saw and whether your prediction held.</p>\n",
    );
    for (index, step) in tour.steps.iter().enumerate() {
        let _ = writeln!(s, "<section>\n<h2>Step {}. {}</h2>", index + 1, escape(&step.title));
        let _ = writeln!(s, "<p>{}</p>", escape(&step.text));
        if !step.predict.is_empty() {
            let _ = writeln!(s, "<p class=\"question\"><strong>Predict:</strong> {}</p>", escape(&step.predict));
            s.push_str("<p class=\"label\">My prediction:</p><div class=\"box\"></div>\n");
            s.push_str("<p class=\"label\">What I saw, and whether my prediction held:</p><div class=\"box\"></div>\n");
        }
        for (k, exercise) in step.exercises.iter().enumerate() {
            let _ = writeln!(s, "<h3>Exercise {}</h3>\n<p>{}</p>", k + 1, escape(&exercise.task));
            s.push_str("<p class=\"label\">My prediction, then what the run showed:</p><div class=\"box\"></div>\n");
        }
        s.push_str("</section>\n");
    }
    glossary(&mut s, tour);
    s.push_str(PAGE_END);
    s
}

/// The teacher's notes: per step, its question, what to look at, each claim checked on `answers`
/// (one per step, in the tour's order) and the run's numbers over its seeds; then each of its
/// exercises with the answer, checked on `exercise_runs` (per step, one run per exercise).
pub fn teacher_notes(
    tour: &Tour,
    answers: &[StepAnswer],
    exercise_runs: &[Vec<ConnectResult>],
    provenance: &Provenance,
) -> String {
    let mut s = page_start("WSA Lab tour: teacher's notes");
    s.push_str("<h1>Merging neural networks: teacher's notes</h1>\n");
    let _ = writeln!(
        s,
        "<p>The expected answers come from an actual run of every step: <code>{}</code>, WSA Lab {} on {}. \
         The same command on the same device gives the same numbers; the tour in the app shows them live. \
         Each claim says on how many seeds it held: one that did not hold everywhere is printed as such.</p>",
        escape(provenance.command),
        escape(provenance.version),
        escape(provenance.device)
    );
    for (index, step) in tour.steps.iter().enumerate() {
        let _ = writeln!(s, "<section>\n<h2>Step {}. {}</h2>", index + 1, escape(&step.title));
        if !step.predict.is_empty() {
            let _ = writeln!(s, "<p class=\"question\"><strong>Asked:</strong> {}</p>", escape(&step.predict));
        }
        if !step.look.is_empty() {
            let _ = writeln!(s, "<p><strong>What to look at:</strong> {}</p>", escape(&step.look));
        }
        match answers.get(index) {
            Some(StepAnswer::Connect(result)) => connect_answer(&mut s, &step.check_claims(result), result),
            Some(StepAnswer::Federated(result)) => federated_answer(&mut s, result),
            Some(StepAnswer::Nothing) | None => {}
        }
        if matches!(step.run, StepRun::ConnectThenPlane(_)) {
            s.push_str("<p class=\"note\">The loss plane of this step is drawn in the app (it is not computed for these notes).</p>\n");
        }
        let runs = exercise_runs.get(index).map_or(&[][..], Vec::as_slice);
        for (k, exercise) in step.exercises.iter().enumerate() {
            let _ = writeln!(s, "<h3>Exercise {}</h3>\n<p>{}</p>", k + 1, escape(&exercise.task));
            let _ = writeln!(s, "<p><strong>Answer:</strong> {}</p>", escape(&exercise.answer));
            if let Some(result) = runs.get(k) {
                connect_answer(&mut s, &exercise.check_claims(result), result);
            }
        }
        s.push_str("</section>\n");
    }
    glossary(&mut s, tour);
    s.push_str(PAGE_END);
    s
}

/// The claims `checks` checked on `result`, then its numbers over its seeds.
fn connect_answer(s: &mut String, checks: &[ClaimCheck], result: &ConnectResult) {
    if !checks.is_empty() {
        s.push_str("<p><strong>Checked on this run:</strong></p>\n<ul>\n");
        for check in checks {
            let mark = if check.holds_everywhere() { "" } else { " <strong>(not on every case)</strong>" };
            let _ = writeln!(s, "<li>{}{mark}</li>", escape(&check.line()));
        }
        s.push_str("</ul>\n");
    }
    let runs = result.seed_runs();
    let seeds = runs.len();
    let _ = writeln!(
        s,
        "<table>\n<caption>The run's numbers, mean ± std over {seeds} seed{} (test set)</caption>",
        if seeds == 1 { "" } else { "s" }
    );
    let curves = result.methods.iter().any(|m| m.curve.is_some());
    s.push_str(
        "<tr><th scope=\"col\">method</th><th scope=\"col\">accuracy A</th><th scope=\"col\">accuracy B</th>\
         <th scope=\"col\">loss barrier</th><th scope=\"col\">accuracy barrier</th><th scope=\"col\">scope distance</th>",
    );
    if curves {
        s.push_str("<th scope=\"col\">curve's loss barrier</th>");
    }
    s.push_str("</tr>\n");
    for (k, method) in result.methods.iter().enumerate() {
        let over = |f: &dyn Fn(&SeedMethod) -> f64, digits: usize| {
            let values: Vec<f64> = runs.iter().filter_map(|r| r.methods.get(k)).map(f).collect();
            summarize(&values).map_or("–".to_string(), |summary| mean_std(&summary, digits))
        };
        let _ = write!(
            s,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            escape(&method.method.to_string()),
            over(&|m| m.endpoint_a.accuracy, 3),
            over(&|m| m.endpoint_b.accuracy, 3),
            over(&|m| m.barriers.loss, 3),
            over(&|m| m.barriers.accuracy, 3),
            over(&|m| m.scope_distance, 4),
        );
        if curves {
            let values: Vec<f64> =
                runs.iter().filter_map(|r| r.methods.get(k)?.curve.as_ref()).map(|curve| curve.barriers.loss).collect();
            let _ = write!(s, "<td>{}</td>", summarize(&values).map_or("–".to_string(), |x| mean_std(&x, 3)));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n");
}

fn federated_answer(s: &mut String, result: &FedResult) {
    let _ = writeln!(
        s,
        "<table>\n<caption>The run's numbers: test accuracy of the global model, seed {}</caption>\n\
         <tr><th scope=\"col\">run</th><th scope=\"col\">final accuracy</th><th scope=\"col\">best accuracy</th></tr>",
        result.config.seed
    );
    for run in &result.runs {
        let stopped = run.diverged.as_ref().map_or(String::new(), |d| format!(" (diverged in round {})", d.round));
        let (last, best) = run.accuracies_text();
        let _ =
            writeln!(s, "<tr><th scope=\"row\">{}{stopped}</th><td>{last}</td><td>{best}</td></tr>", escape(&run.name));
    }
    s.push_str("</table>\n");
    if result.seeds.is_empty() {
        return;
    }
    let _ = writeln!(s, "<table>\n<caption>Final test accuracy at each of {} seeds</caption>", result.seeds.len());
    s.push_str("<tr><th scope=\"col\">seed</th>");
    for run in &result.runs {
        let _ = write!(s, "<th scope=\"col\">{}</th>", escape(&run.name));
    }
    s.push_str("</tr>\n");
    for seed in &result.seeds {
        let _ = write!(s, "<tr><th scope=\"row\">{}</th>", seed.seed);
        for run in &seed.runs {
            let _ = write!(s, "<td>{}</td>", escape(&run.final_text()));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n");
    for line in result.seed_comparisons() {
        let _ = writeln!(s, "<p>{}</p>", escape(&line));
    }
}

fn glossary(s: &mut String, tour: &Tour) {
    if tour.glossary.is_empty() {
        return;
    }
    s.push_str("<section class=\"glossary\">\n<h2>Glossary</h2>\n<dl>\n");
    for term in &tour.glossary {
        let _ = writeln!(s, "<dt>{}</dt><dd>{}</dd>", escape(&term.term), escape(&term.meaning));
    }
    s.push_str("</dl>\n</section>\n");
}

/// `text` safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn page_start(title: &str) -> String {
    // `size: auto` lets the printer's paper decide (A4 or Letter); the margins fit both. A step is
    // never split across pages, and the boxes print with their borders.
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\n\
         @page {{ size: auto; margin: 16mm 18mm; }}\n\
         body {{ font: 12pt/1.45 Georgia, 'DejaVu Serif', serif; color: #000; max-width: 44em; margin: 1em auto; padding: 0 1em; }}\n\
         h1 {{ font-size: 18pt; }} h2 {{ font-size: 14pt; margin: 0 0 .3em; }} h3 {{ font-size: 12pt; margin: .6em 0 .2em; }}\n\
         section {{ break-inside: avoid; page-break-inside: avoid; border-top: 1px solid #888; padding-top: .6em; margin-top: .8em; }}\n\
         .box {{ border: 1px solid #444; min-height: 4.5em; margin: .2em 0 .7em; }}\n\
         .label {{ margin: .3em 0 0; }} .note {{ font-style: italic; }}\n\
         table {{ border-collapse: collapse; margin: .4em 0; }} caption {{ text-align: left; font-style: italic; }}\n\
         table {{ font-size: 10pt; }} th, td {{ border: 1px solid #888; padding: 2px 5px; text-align: left; }}\n\
         dt {{ font-weight: bold; }} dd {{ margin: 0 0 .4em 1.5em; }}\n\
         </style>\n</head>\n<body>\n",
        escape(title)
    )
}

const PAGE_END: &str = "</body>\n</html>\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worksheet_asks_every_question_with_room_to_answer_and_escapes_text() {
        let tour = Tour::parse(
            r#"(steps: [
                (title: "A < B", text: "Blend & see.", predict: "Is it \"lower\"?", look: "l", run: Free, view: Path, highlight: Setup),
                (title: "Over", text: "No question here.", predict: "", look: "", run: Free, view: Path, highlight: Setup),
            ], glossary: [(term: "blend", meaning: "a mix")])"#,
        )
        .expect("a tour");
        let sheet = worksheet(&tour);
        assert!(sheet.contains("<h2>Step 1. A &lt; B</h2>") && sheet.contains("Blend &amp; see."), "{sheet}");
        assert!(sheet.contains("Is it &quot;lower&quot;?"), "{sheet}");
        assert_eq!(sheet.matches("class=\"box\"").count(), 2, "two boxes for the one question");
        assert!(sheet.contains("<dt>blend</dt><dd>a mix</dd>"), "{sheet}");
        let provenance = Provenance { command: "wsa-lab tour --worksheet out", device: "CPU", version: "0" };
        let notes = teacher_notes(&tour, &[StepAnswer::Nothing, StepAnswer::Nothing], &[], &provenance);
        assert!(notes.contains("<strong>Asked:</strong> Is it &quot;lower&quot;?"), "{notes}");
        assert!(notes.contains("<code>wsa-lab tour --worksheet out</code>"), "{notes}");
    }
}
