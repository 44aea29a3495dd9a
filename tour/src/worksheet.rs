//! The teacher's kit on paper: a worksheet for the students (each step's idea, its question, room
//! for their prediction and for what they saw, and the glossary) and the teacher's notes (each
//! step's expected answer: what to look at, every claim checked on an actual run of the step seed
//! by seed, and the run's numbers over its seeds). Both are HTML pages that print on A4 and Letter
//! alike. The runs are the caller's (`wsa-lab tour --worksheet` runs each step): nothing here
//! computes or types a number.

use crate::{ClaimCheck, StepRun, Tour, WorksheetWords, fill, numbered};
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
    let words = &tour.words.worksheet;
    let mut s = page_start(tour, &words.title);
    let _ = writeln!(
        s,
        "<h1>{}</h1>\n<p class=\"lead\">{} ______________________ &nbsp; {} ____________</p>\n<p>{}</p>",
        escape(&words.heading),
        escape(&words.name),
        escape(&words.date),
        escape(&words.instructions)
    );
    for (index, step) in tour.steps.iter().enumerate() {
        step_heading(&mut s, words, index, &step.title);
        let _ = writeln!(s, "<p>{}</p>", escape(&step.text));
        if !step.predict.is_empty() {
            let _ = writeln!(
                s,
                "<p class=\"question\"><strong>{}</strong> {}</p>",
                escape(&tour.words.panel.predict),
                escape(&step.predict)
            );
            for label in [&words.my_prediction, &words.what_i_saw] {
                let _ = writeln!(s, "<p class=\"label\">{}</p><div class=\"box\"></div>", escape(label));
            }
        }
        for (k, exercise) in step.exercises.iter().enumerate() {
            exercise_heading(&mut s, words, k, &exercise.task);
            let _ = writeln!(s, "<p class=\"label\">{}</p><div class=\"box\"></div>", escape(&words.exercise_box));
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
    let words = &tour.words.worksheet;
    let mut s = page_start(tour, &words.notes_title);
    let _ = writeln!(s, "<h1>{}</h1>", escape(&words.notes_heading));
    // The template is escaped first, then the values, escaped on their own, go in.
    let command = format!("<code>{}</code>", escape(provenance.command));
    let (version, device) = (escape(provenance.version), escape(provenance.device));
    let _ = writeln!(
        s,
        "<p>{}</p>",
        fill(&escape(&words.provenance), &[("command", &command), ("version", &version), ("device", &device)])
    );
    let strong = |s: &mut String, label: &str, text: &str, class: &str| {
        let _ = writeln!(s, "<p{class}><strong>{}</strong> {}</p>", escape(label), escape(text));
    };
    for (index, step) in tour.steps.iter().enumerate() {
        step_heading(&mut s, words, index, &step.title);
        if !step.predict.is_empty() {
            strong(&mut s, &words.asked, &step.predict, " class=\"question\"");
        }
        if !step.look.is_empty() {
            strong(&mut s, &words.what_to_look_at, &step.look, "");
        }
        match answers.get(index) {
            Some(StepAnswer::Connect(result)) => connect_answer(&mut s, words, &step.check_claims(result), result),
            Some(StepAnswer::Federated(result)) => federated_answer(&mut s, words, result),
            Some(StepAnswer::Nothing) | None => {}
        }
        if matches!(step.run, StepRun::ConnectThenPlane(_)) {
            let _ = writeln!(s, "<p class=\"note\">{}</p>", escape(&words.plane_note));
        }
        let runs = exercise_runs.get(index).map_or(&[][..], Vec::as_slice);
        for (k, exercise) in step.exercises.iter().enumerate() {
            exercise_heading(&mut s, words, k, &exercise.task);
            strong(&mut s, &tour.words.panel.answer, &exercise.answer, "");
            if let Some(result) = runs.get(k) {
                connect_answer(&mut s, words, &exercise.check_claims(result), result);
            }
        }
        s.push_str("</section>\n");
    }
    glossary(&mut s, tour);
    s.push_str(PAGE_END);
    s
}

/// "Step N. Title", opening the step's section.
fn step_heading(s: &mut String, words: &WorksheetWords, index: usize, title: &str) {
    let heading = fill(&words.step, &[("number", &(index + 1)), ("title", &title)]);
    let _ = writeln!(s, "<section>\n<h2>{}</h2>", escape(&heading));
}

/// "Exercise K" and its task.
fn exercise_heading(s: &mut String, words: &WorksheetWords, k: usize, task: &str) {
    let _ = writeln!(s, "<h3>{}</h3>\n<p>{}</p>", escape(&numbered(&words.exercise, k + 1)), escape(task));
}

/// " (diverged in round N)" after a run that diverged, else nothing.
fn diverged(words: &WorksheetWords, round: Option<usize>) -> String {
    round.map_or(String::new(), |round| format!(" {}", fill(&words.diverged, &[("round", &round)])))
}

/// A table's header row: `columns`, each a column's heading.
fn header_row(s: &mut String, columns: &[&str]) {
    s.push_str("<tr>");
    for column in columns {
        let _ = write!(s, "<th scope=\"col\">{}</th>", escape(column));
    }
    s.push_str("</tr>\n");
}

/// The claims `checks` checked on `result`, then its numbers over its seeds.
fn connect_answer(s: &mut String, words: &WorksheetWords, checks: &[ClaimCheck], result: &ConnectResult) {
    if !checks.is_empty() {
        let _ = writeln!(s, "<p><strong>{}</strong></p>\n<ul>", escape(&words.checked));
        for check in checks {
            let mark = if check.holds_everywhere() {
                String::new()
            } else {
                format!(" <strong>{}</strong>", escape(&words.not_everywhere))
            };
            let _ = writeln!(s, "<li>{}{mark}</li>", escape(check.line()));
        }
        s.push_str("</ul>\n");
    }
    let runs = result.seed_runs();
    let seeds = runs.len();
    let caption = if seeds == 1 { words.numbers_one_seed.clone() } else { fill(&words.numbers, &[("seeds", &seeds)]) };
    let _ = writeln!(s, "<table>\n<caption>{}</caption>", escape(&caption));
    let curves = result.methods.iter().any(|m| m.curve.is_some());
    let mut columns = vec![
        words.method.as_str(),
        &words.accuracy_a,
        &words.accuracy_b,
        &words.loss_barrier,
        &words.accuracy_barrier,
        &words.scope_distance,
    ];
    if curves {
        columns.push(&words.curve_barrier);
    }
    header_row(s, &columns);
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

fn federated_answer(s: &mut String, words: &WorksheetWords, result: &FedResult) {
    let caption = fill(&words.federated_numbers, &[("seed", &result.config.seed)]);
    let _ = writeln!(s, "<table>\n<caption>{}</caption>", escape(&caption));
    header_row(s, &[&words.run, &words.final_accuracy, &words.best_accuracy]);
    for run in &result.runs {
        let stopped = escape(&diverged(words, run.diverged.as_ref().map(|d| d.round)));
        let (last, best) = run.accuracies_text();
        let _ =
            writeln!(s, "<tr><th scope=\"row\">{}{stopped}</th><td>{last}</td><td>{best}</td></tr>", escape(&run.name));
    }
    s.push_str("</table>\n");
    if result.seeds.is_empty() {
        return;
    }
    let caption = fill(&words.per_seed, &[("seeds", &result.seeds.len())]);
    let _ = writeln!(s, "<table>\n<caption>{}</caption>", escape(&caption));
    let mut columns = vec![words.seed.as_str()];
    columns.extend(result.runs.iter().map(|run| run.name.as_str()));
    header_row(s, &columns);
    for seed in &result.seeds {
        let _ = write!(s, "<tr><th scope=\"row\">{}</th>", seed.seed);
        for run in &seed.runs {
            let text = run.final_accuracy_text() + &diverged(words, run.diverged_in_round);
            let _ = write!(s, "<td>{}</td>", escape(&text));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n");
    for (with, without, higher, compared) in result.seed_comparison_counts() {
        let line = fill(
            &words.seed_comparison,
            &[("with", &with), ("without", &without), ("higher", &higher), ("compared", &compared)],
        );
        let _ = writeln!(s, "<p>{}</p>", escape(&line));
    }
}

fn glossary(s: &mut String, tour: &Tour) {
    if tour.glossary.is_empty() {
        return;
    }
    let _ = writeln!(s, "<section class=\"glossary\">\n<h2>{}</h2>\n<dl>", escape(&tour.words.panel.glossary));
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

/// The page's head, in the tour's language, titled `title`.
fn page_start(tour: &Tour, title: &str) -> String {
    // `size: auto` lets the printer's paper decide (A4 or Letter); the margins fit both. A step is
    // never split across pages, and the boxes print with their borders.
    format!(
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\n\
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
        escape(&tour.language),
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
