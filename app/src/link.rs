//! Experiment links: the page's address carries its experiment as `#v1=<config JSON,
//! URI-encoded>`, so that a copied link reproduces the setup, seed included; during the tour it
//! carries the step instead, `#tour=N` (the step holds its experiment). Pure Rust, so that the
//! reading is tested (and fuzzed) natively; the page only reads and writes its address.

use wsa_core::experiment::Versioned;
use wsa_core::experiment::connect::ConnectConfig;

/// The version of the links. A link of another version, or one that does not read, opens the
/// defaults with a notice.
pub const PREFIX: &str = "#v1=";

/// A tour step's link: `#tour=N`, N counted from 1.
pub const TOUR_PREFIX: &str = "#tour=";

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
pub fn open(fragment: &str) -> Result<Option<Link>, String> {
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
pub fn read(fragment: &str) -> Result<Option<ConnectConfig>, String> {
    if fragment.is_empty() || fragment == "#" {
        return Ok(None);
    }
    let Some(encoded) = fragment.strip_prefix(PREFIX) else {
        return Err(format!(
            "This link's experiment is in a format this version does not read ({}…); opened the defaults instead.",
            fragment.chars().take(12).collect::<String>()
        ));
    };
    let json = percent_decode(encoded)
        .ok_or_else(|| "This link's experiment is damaged (bad encoding); opened the defaults instead.".to_string())?;
    ConnectConfig::from_json(&json)
        .map(Some)
        .map_err(|e| format!("This link's experiment could not be read ({e}); opened the defaults instead."))
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
        assert!(read("#v0=abc").expect_err("old version").contains("format this version does not read"));
        assert!(read("#v1=%7B%2").expect_err("cut escape").contains("bad encoding"));
        assert!(read("#v1=%FF%FE").expect_err("not UTF-8").contains("bad encoding"));
        assert!(read("#v1=%7B%7D%7D").expect_err("bad JSON").contains("could not be read"));
        assert_eq!(open(&tour_fragment(2)), Ok(Some(Link::Tour("3".into()))));
        let back = read(&link).expect("reads").expect("an experiment");
        assert_eq!(open(&link), Ok(Some(Link::Experiment(Box::new(back)))));
        assert_eq!(open(""), Ok(None));
    }
}
