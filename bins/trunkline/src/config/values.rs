//! Values written as strings in the file and parsed when it is read, so a
//! bad one is reported with its key (`sip.listen[0].address: invalid
//! socket address "x"`) rather than found when the PBX starts.

use regex::Regex;
use serde::de::{self, Deserialize, Deserializer};
use serde::ser::{Serialize, Serializer};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// A value of `T` written as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parsed<T>(pub(crate) T);

/// How a text value is read, and what the error calls it.
pub(crate) trait Textual: Sized + fmt::Display {
    const WHAT: &'static str;
    fn parse_text(text: &str) -> Option<Self>;
}

impl Textual for SocketAddr {
    const WHAT: &'static str = "socket address";
    fn parse_text(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}

impl Textual for IpAddr {
    const WHAT: &'static str = "IP address";
    fn parse_text(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}

impl Textual for ipnet::IpNet {
    const WHAT: &'static str = "network (CIDR)";
    /// `10.0.0.0/8`, or a bare address for that host alone, as ACLs are
    /// usually written.
    fn parse_text(text: &str) -> Option<Self> {
        text.parse()
            .ok()
            .or_else(|| text.parse::<IpAddr>().ok().map(ipnet::IpNet::from))
    }
}

impl<'de, T: Textual> Deserialize<'de> for Parsed<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        T::parse_text(&text)
            .map(Parsed)
            .ok_or_else(|| de::Error::custom(format!("invalid {} {text:?}", T::WHAT)))
    }
}

impl<T: Textual> Serialize for Parsed<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// A route's regular expression, compiled to match whole numbers only:
/// `^(?:…)$` is implied, so `9\d+` cannot take `19123` by its middle.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    source: String,
    regex: Regex,
}

impl Pattern {
    /// The compiled expression, anchored.
    pub(crate) fn regex(&self) -> &Regex {
        &self.regex
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        match Regex::new(&format!("^(?:{source})$")) {
            Ok(regex) => Ok(Pattern { source, regex }),
            // The regex crate's message spans lines (the pattern with a
            // caret under the fault); its last line says what is wrong.
            Err(e) => {
                let text = e.to_string();
                let why = text.lines().last().unwrap_or_default();
                let why = why.trim_start_matches("error: ");
                Err(de::Error::custom(format!(
                    "invalid regular expression {source:?}: {why}"
                )))
            }
        }
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}
