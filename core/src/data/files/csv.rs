//! CSV tables: UTF-8 text, cells separated by commas (a cell may be double-quoted, `""` a quote
//! inside it; a quoted cell does not span lines), one sample a line, blank lines skipped. Every
//! cell but the label's is a finite number; the label is a whole number ≥ 0 or a class name.

use super::{Header, LabelColumn, Labels, Samples, bad};
use crate::error::Result;
use std::path::Path;

/// How a CSV's columns are read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CsvOptions {
    /// By name (needs a header) or index (from 0); `None`: the last column.
    pub label_column: Option<LabelColumn>,
    pub header: Header,
}

/// The cells of `line`, trimmed; `None` when a quoted cell is not closed.
fn cells(line: &str) -> Option<Vec<String>> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted => {
                if chars.peek() == Some(&'"') {
                    cell.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            }
            '"' if cell.trim().is_empty() => {
                cell.clear();
                quoted = true;
            }
            ',' if !quoted => cells.push(std::mem::take(&mut cell).trim().to_string()),
            c => cell.push(c),
        }
    }
    if quoted {
        return None;
    }
    cells.push(cell.trim().to_string());
    Some(cells)
}

/// Parses a CSV file's bytes (the file `origin`, named in every error with the line and column).
pub fn parse_csv(bytes: &[u8], origin: &Path, options: &CsvOptions) -> Result<Samples> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count();
        bad(origin, format!("line {line} is not UTF-8 text"))
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).map(|(i, line)| {
        cells(line)
            .map(|c| (i + 1, c))
            .ok_or_else(|| bad(origin, format!("line {}: a quoted cell is not closed", i + 1)))
    });
    let Some(first) = rows.next() else { return Err(bad(origin, "is empty")) };
    let (first_line, first) = first?;
    let columns = first.len();
    if columns < 2 {
        return Err(bad(
            origin,
            format!(
                "line {first_line} has one column: a sample needs at least one feature and a label (cells separated by commas)"
            ),
        ));
    }
    let is_number = |cell: &str| cell.parse::<f32>().is_ok();
    let (label, header) = match (&options.label_column, options.header) {
        (Some(LabelColumn::Name(name)), Header::Absent) => {
            return Err(bad(origin, format!("the label column is named `{name}`, but the header is set absent")));
        }
        (Some(LabelColumn::Name(name)), _) => {
            let at = first.iter().position(|c| c == name).ok_or_else(|| {
                bad(origin, format!("has no column named `{name}` (its header: {})", first.join(", ")))
            })?;
            (at, true)
        }
        (index, header) => {
            let at = match index {
                Some(LabelColumn::Index(i)) => *i,
                _ => columns - 1,
            };
            if at >= columns {
                return Err(bad(
                    origin,
                    format!("has no label column {at}: line {first_line} has {columns} columns, counted from 0"),
                ));
            }
            let header = match header {
                Header::Present => true,
                Header::Absent => false,
                Header::Auto => first.iter().enumerate().any(|(j, c)| j != at && !c.is_empty() && !is_number(c)),
            };
            (at, header)
        }
    };
    let column = |j: usize| {
        if header { format!("column `{}`", first[j]) } else { format!("column {j} (counted from 0)") }
    };
    let mut features = Vec::new();
    let mut labels = Vec::new();
    let data_rows = if header { None } else { Some(Ok((first_line, first.clone()))) };
    for row in data_rows.into_iter().chain(rows) {
        let (line, row) = row?;
        if row.len() != columns {
            return Err(bad(
                origin,
                format!("line {line} has {} cells where line {first_line} has {columns}", row.len()),
            ));
        }
        for (j, cell) in row.iter().enumerate() {
            if j == label {
                if cell.is_empty() {
                    return Err(bad(origin, format!("line {line}: the label ({}) is empty", column(j))));
                }
                labels.push(cell.clone());
                continue;
            }
            let value: f32 = match cell.parse() {
                Ok(v) => v,
                Err(_) if cell.is_empty() => {
                    return Err(bad(origin, format!("line {line}, {}: the cell is empty", column(j))));
                }
                Err(_) => return Err(bad(origin, format!("line {line}, {}: `{cell}` is not a number", column(j)))),
            };
            if !value.is_finite() {
                return Err(bad(origin, format!("line {line}, {}: `{cell}` is not a finite number", column(j))));
            }
            features.push(value);
        }
    }
    if labels.is_empty() {
        return Err(bad(origin, "has a header but no rows"));
    }
    Ok(Samples { features, sample_shape: vec![columns - 1], labels: Labels::Cells(labels), eight_bit: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, options: &CsvOptions) -> Result<Samples> {
        parse_csv(text.as_bytes(), Path::new("t.csv"), options)
    }

    #[test]
    fn headers_are_detected_and_labels_found_by_name_or_index() {
        let with_header = "a,b,kind\n1,2,x\n3,4.5,y\n";
        let s = parse(with_header, &CsvOptions::default()).expect("reads");
        assert_eq!((s.features, s.sample_shape), (vec![1.0, 2.0, 3.0, 4.5], vec![2]));
        assert_eq!(s.labels, Labels::Cells(vec!["x".into(), "y".into()]));
        let by_name = CsvOptions { label_column: Some(LabelColumn::Name("a".into())), ..CsvOptions::default() };
        let s = parse("a,b\n0,5\n1,6\n", &by_name).expect("reads");
        assert_eq!((s.features, s.labels), (vec![5.0, 6.0], Labels::Cells(vec!["0".into(), "1".into()])));
        // No header: the first line is data, also when its label is a name.
        let s = parse(
            "\u{feff}cat, 1 ,\"2\"\r\n\r\ndog,3,4\n",
            &CsvOptions { label_column: Some(LabelColumn::Index(0)), ..CsvOptions::default() },
        )
        .expect("reads");
        assert_eq!(s.features, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(s.labels, Labels::Cells(vec!["cat".into(), "dog".into()]));
    }

    #[test]
    fn malformed_tables_name_the_line_and_the_problem() {
        let cases = [
            ("", "is empty"),
            ("a,b\n", "no rows"),
            ("1,2,0\n3,4\n", "line 2 has 2 cells where line 1 has 3"),
            ("x,y,l\n1,2,0\n3,oops,1\n", "line 3, column `y`: `oops` is not a number"),
            ("1,2,0\n3,nan,1\n", "line 2, column 1 (counted from 0): `nan` is not a finite number"),
            ("1,2,0\n3,inf,1\n", "not a finite number"),
            ("1,,0\n", "line 1, column 1 (counted from 0): the cell is empty"),
            ("1,2,\"0\n", "line 1: a quoted cell is not closed"),
            ("5\n6\n", "one column"),
        ];
        for (text, expected) in cases {
            let err = parse(text, &CsvOptions::default()).expect_err(text).to_string();
            assert!(err.starts_with("data file t.csv: ") && err.contains(expected), "{text:?}: {err}");
        }
        let named = CsvOptions { label_column: Some(LabelColumn::Name("kind".into())), ..CsvOptions::default() };
        let err = parse("a,b\n1,2\n", &named).expect_err("no such column").to_string();
        assert!(err.contains("no column named `kind` (its header: a, b)"), "{err}");
        let index = CsvOptions { label_column: Some(LabelColumn::Index(5)), ..CsvOptions::default() };
        assert!(parse("1,2\n", &index).expect_err("index").to_string().contains("no label column 5"));
        let err = parse_csv(b"1,2\n\xff,3\n", Path::new("t.csv"), &CsvOptions::default()).expect_err("binary");
        assert!(err.to_string().contains("line 2 is not UTF-8"), "{err}");
    }
}
