//! How the command line reads numbers and says what went wrong: one sentence per error, no clap
//! usage block for a mistyped number, no clause said twice.

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, FromArgMatches};

/// A whole-number flag (a count, a seed). Negative numbers reach this parser (see [`parse`]) and
/// are refused in words, as a config refuses a value out of its range.
pub fn whole<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    let text = text.trim();
    match text.parse::<i128>() {
        Ok(n) if n < 0 => Err("must be 0 or more".into()),
        Ok(_) => text.parse::<T>().map_err(|_| "is too large".into()),
        Err(_) => Err("is not a whole number (e.g. 3)".into()),
    }
}

/// A real-number flag; its range is the config's to check (NaN and infinities included).
pub fn number(text: &str) -> Result<f64, String> {
    text.trim().parse::<f64>().map_err(|_| "is not a number (e.g. 0.5 or 1e-3)".into())
}

/// Parses the command line with negative numbers read as values everywhere (`--lambda -1` is a
/// value to refuse by range, not an unknown flag). A bad value exits with one line naming the
/// flag, the value and what is wrong; other mistakes keep clap's own message and usage.
pub fn parse<C: CommandFactory + FromArgMatches>() -> C {
    fn numbers_as_values(command: clap::Command) -> clap::Command {
        command.allow_negative_numbers(true).mut_subcommands(numbers_as_values)
    }
    let parsed = numbers_as_values(C::command()).try_get_matches().and_then(|matches| C::from_arg_matches(&matches));
    match parsed {
        Ok(cli) => cli,
        Err(error) => match bad_value(&error) {
            Some(line) => {
                eprintln!("error: {line}");
                std::process::exit(2);
            }
            None => error.exit(),
        },
    }
}

/// "--seeds `abc` is not a whole number (e.g. 3)", for a value the flag's parser refused.
fn bad_value(error: &clap::Error) -> Option<String> {
    if !matches!(error.kind(), ErrorKind::ValueValidation | ErrorKind::InvalidValue) {
        return None;
    }
    let text = |kind| match error.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    // "--seeds <SEEDS>": the flag without its value name.
    let flag = text(ContextKind::InvalidArg)?.split_whitespace().next()?.to_string();
    let value = text(ContextKind::InvalidValue).unwrap_or_default();
    let reason = match std::error::Error::source(error) {
        Some(source) => source.to_string(),
        None => match error.get(ContextKind::ValidValue) {
            Some(ContextValue::Strings(valid)) => format!("is not one of {}", valid.join(", ")),
            _ => "is not accepted".to_string(),
        },
    };
    Some(format!("{flag} `{value}` {reason}; `wsa-lab help` lists every flag"))
}

/// An error and its causes on one line, each clause once: an error whose message already quotes
/// its cause (a file's name around what is wrong in it; an I/O error) does not repeat it.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_refuse_negatives_and_words_in_a_sentence() {
        assert_eq!(whole::<usize>("3"), Ok(3));
        assert_eq!(whole::<usize>("-1"), Err("must be 0 or more".to_string()));
        assert!(whole::<usize>("abc").expect_err("words").contains("whole number"));
        assert!(whole::<u8>("300").expect_err("range").contains("too large"));
        assert_eq!(number("-1"), Ok(-1.0));
        assert!(number("fast").is_err());
    }

    #[test]
    fn a_cause_already_quoted_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::AlreadyExists, "File exists (os error 17)");
        let error = anyhow::Error::new(wsa_core::WsaError::io("out", io));
        assert_eq!(one_line(&error), "i/o error on out: File exists (os error 17)");
        let wrapped = anyhow::Error::new(wsa_core::WsaError::invalid("x", 1, "bad")).context("in --x");
        assert_eq!(one_line(&wrapped), "in --x: invalid config: x = 1: bad");
    }
}
