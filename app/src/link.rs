//! Experiment links: the page's address carries its experiment as `#v1=<config JSON,
//! URI-encoded>`, so that a copied link reproduces the setup, seed included; during the tour it
//! carries the step instead, `#tour=N` (the step holds its experiment). Pure Rust, so that the
//! reading is tested (and fuzzed) natively; the page only reads and writes its address.

use crate::error::AppResult;
use serde::{Deserialize, Serialize};
use wsa_core::WsaError;
use wsa_core::experiment::Versioned;
use wsa_core::experiment::connect::ConnectConfig;

/// The version of the links. A link of another version, or one that does not read, opens the
/// defaults with a notice.
pub const PREFIX: &str = "#v1=";

/// A tour step's link: `#tour=N`, N counted from 1.
pub const TOUR_PREFIX: &str = "#tour=";

/// Why a link opens something other than what it names: each message is the notice the page
/// shows, saying what opened instead.
#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum LinkError {
    /// A link of another version: its first characters.
    #[error(
        "This link's experiment is in a format this version does not read ({start}…); opened the defaults instead."
    )]
    OtherVersion { start: String },

    /// A `%XX` sequence that is cut or not hex, or bytes that are not UTF-8.
    #[error("This link's experiment is damaged (bad encoding); opened the defaults instead.")]
    BadEncoding,

    /// The experiment's JSON does not read as a config.
    #[error("This link's experiment could not be read ({0}); opened the defaults instead.")]
    BadConfig(#[source] WsaError),

    /// `#tour=N` names a step the tour (of `steps`) does not have (`tour::step_from_link`).
    #[error("This link asks for tour step `{step}`, which does not exist (the tour has {steps} steps): opened step 1.")]
    NoSuchStep { step: String, steps: usize },
}

/// What a link opens.
#[derive(Clone, Debug, PartialEq)]
pub enum Link {
    Experiment(Box<ConnectConfig>),
    /// The tour at the step written after `#tour=` (read by `tour::step_from_link`, which
    /// knows how many steps there are).
    Tour(String),
}

/// The link fragment of tour step `index` (from 0).
pub fn tour_fragment(index: usize) -> String {
    format!("{TOUR_PREFIX}{}", index + 1)
}

/// What a link fragment opens: `Ok(None)` without one, `Err` with the notice to show (the page
/// then opens the defaults).
pub fn open(fragment: &str) -> AppResult<Option<Link>> {
    if let Some(step) = fragment.strip_prefix(TOUR_PREFIX) {
        return Ok(Some(Link::Tour(step.to_string())));
    }
    read(fragment).map(|config| config.map(|c| Link::Experiment(Box::new(c))))
}

/// The link fragment (`#v1=...`) of `config`, encoded as JavaScript's `encodeURIComponent`
/// does (letters, digits and `-_.!~*'()` stay, every other UTF-8 byte becomes `%XX`).
pub fn fragment(config: &ConnectConfig) -> Option<String> {
    let json = serde_json::to_string(config).ok()?;
    let mut out = String::with_capacity(PREFIX.len() + json.len() * 2);
    out.push_str(PREFIX);
    for byte in json.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    Some(out)
}

/// The experiment a link fragment carries: `Ok(None)` without one, `Err` with the notice to
/// show (the page then opens the defaults).
pub fn read(fragment: &str) -> AppResult<Option<ConnectConfig>> {
    if fragment.is_empty() || fragment == "#" {
        return Ok(None);
    }
    let Some(encoded) = fragment.strip_prefix(PREFIX) else {
        return Err(LinkError::OtherVersion { start: fragment.chars().take(12).collect() }.into());
    };
    let json = percent_decode(encoded).ok_or(LinkError::BadEncoding)?;
    Ok(Some(ConnectConfig::from_json(&json).map_err(LinkError::BadConfig)?))
}

/// `%XX` sequences to bytes, read as UTF-8 (what `decodeURIComponent` accepts); `None` for a
/// broken sequence or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_carries_its_experiment_and_bad_links_say_why() {
        let mut config = ConnectConfig { seed: 41, ..ConnectConfig::default() };
        config.data.data_dir = "données/ü 100%".into();
        let link = fragment(&config).expect("encodes");
        // What encodeURIComponent escapes is escaped: braces, quotes, spaces, '%' itself.
        assert!(link.starts_with(PREFIX) && !link[PREFIX.len()..].contains(['{', '"', ' ', 'ü']), "{link}");
        assert_eq!(read(&link), Ok(Some(config)));
        assert_eq!(read(""), Ok(None));
        let refused = |fragment: &str| read(fragment).expect_err(fragment).to_string();
        assert!(refused("#v0=abc").contains("format this version does not read"));
        assert!(refused("#v1=%7B%2").contains("bad encoding"));
        assert!(refused("#v1=%FF%FE").contains("bad encoding"));
        assert!(refused("#v1=%7B%7D%7D").contains("could not be read"));
        assert_eq!(open(&tour_fragment(2)), Ok(Some(Link::Tour("3".into()))));
        let back = read(&link).expect("reads").expect("an experiment");
        assert_eq!(open(&link), Ok(Some(Link::Experiment(Box::new(back)))));
        assert_eq!(open(""), Ok(None));
    }
}
