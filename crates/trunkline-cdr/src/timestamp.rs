//! Wall-clock instants with millisecond precision, written as RFC 3339 in
//! UTC.

use serde::de::{Deserializer, Error as _};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// An instant of a call: milliseconds since the Unix epoch, UTC.
///
/// Written as RFC 3339 with exactly three fractional digits and a `Z`
/// (`2025-03-14T09:26:53.589Z`), so every timestamp of the JSON has the
/// same shape and sorts as text; read from any RFC 3339 form (any offset,
/// any number of fractional digits, truncated to the millisecond). The
/// range is the one RFC 3339 can write, years 0000 to 9999. Milliseconds
/// are what a CDR needs and what JavaScript's `Date` keeps; the SIP flow
/// keeps its order in the list, not in equal timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// 0000-01-01T00:00:00.000Z.
    pub const MIN: Timestamp = Timestamp(-62_167_219_200_000);
    /// 9999-12-31T23:59:59.999Z.
    pub const MAX: Timestamp = Timestamp(253_402_300_799_999);

    /// The instant `millis` milliseconds after the Unix epoch, or `None`
    /// outside years 0000 to 9999.
    pub fn from_unix_millis(millis: i64) -> Option<Timestamp> {
        (Timestamp::MIN.0..=Timestamp::MAX.0)
            .contains(&millis)
            .then_some(Timestamp(millis))
    }

    /// Milliseconds since the Unix epoch (negative before 1970).
    pub fn unix_millis(self) -> i64 {
        self.0
    }

    /// The same instant as a `SystemTime`.
    pub fn to_system_time(self) -> SystemTime {
        let magnitude = Duration::from_millis(self.0.unsigned_abs());
        if self.0 >= 0 {
            UNIX_EPOCH + magnitude
        } else {
            UNIX_EPOCH - magnitude
        }
    }

    /// Whole seconds from `earlier` to `self`, 0 if `earlier` is later: a
    /// wall clock stepped back must not make a negative call length.
    pub fn seconds_since(self, earlier: Timestamp) -> u64 {
        u64::try_from(self.0 - earlier.0).map_or(0, |ms| ms / 1000)
    }
}

impl From<SystemTime> for Timestamp {
    /// Truncates to the millisecond; saturates at [`Timestamp::MIN`] and
    /// [`Timestamp::MAX`], which no running clock reaches.
    fn from(time: SystemTime) -> Timestamp {
        let millis = match time.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
            // Before the epoch, round down like the `after` arm does.
            Err(before) => {
                let before = before.duration();
                let whole = i64::try_from(before.as_millis()).unwrap_or(i64::MAX);
                let partial = i64::from(before.subsec_nanos() % 1_000_000 != 0);
                whole.saturating_add(partial).saturating_neg()
            }
        };
        Timestamp(millis.clamp(Timestamp::MIN.0, Timestamp::MAX.0))
    }
}

impl From<Timestamp> for SystemTime {
    fn from(timestamp: Timestamp) -> SystemTime {
        timestamp.to_system_time()
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with milliseconds: `2025-03-14T09:26:53.589Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0.div_euclid(1000);
        let millis = self.0.rem_euclid(1000);
        // The range of `Timestamp` is inside `time`'s, so this cannot fail.
        let Ok(utc) = OffsetDateTime::from_unix_timestamp(seconds) else {
            return Err(fmt::Error);
        };
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{millis:03}Z",
            utc.year(),
            u8::from(utc.month()),
            utc.day(),
            utc.hour(),
            utc.minute(),
            utc.second(),
        )
    }
}

/// A string that is not an RFC 3339 timestamp in years 0000 to 9999.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 timestamp in years 0000 to 9999: {0:?}")]
pub struct TimestampError(String);

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(text: &str) -> Result<Timestamp, TimestampError> {
        let parsed =
            OffsetDateTime::parse(text, &Rfc3339).map_err(|_| TimestampError(text.to_owned()))?;
        let millis = parsed.unix_timestamp_nanos().div_euclid(1_000_000);
        i64::try_from(millis)
            .ok()
            .and_then(Timestamp::from_unix_millis)
            .ok_or_else(|| TimestampError(text.to_owned()))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(D::Error::custom)
    }
}

#[cfg(feature = "schemars")]
impl schemars::JsonSchema for Timestamp {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 in UTC with milliseconds: 2025-03-14T09:26:53.589Z.",
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

    use super::*;

    #[test]
    fn written_in_utc_with_milliseconds() {
        let t = Timestamp::from_unix_millis(1_741_944_413_589).unwrap();
        assert_eq!(t.to_string(), "2025-03-14T09:26:53.589Z");
        assert_eq!(
            Timestamp::from_unix_millis(0).unwrap().to_string(),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(Timestamp::MIN.to_string(), "0000-01-01T00:00:00.000Z");
        assert_eq!(Timestamp::MAX.to_string(), "9999-12-31T23:59:59.999Z");
        assert_eq!(
            Timestamp::from_unix_millis(-1).unwrap().to_string(),
            "1969-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn read_from_any_rfc3339_form() {
        let t: Timestamp = "2025-03-14T11:26:53.5899+02:00".parse().unwrap();
        assert_eq!(t.to_string(), "2025-03-14T09:26:53.589Z");
        let t: Timestamp = "2025-03-14T09:26:53Z".parse().unwrap();
        assert_eq!(t.unix_millis(), 1_741_944_413_000);
        for bad in [
            "2025-03-14T09:26:53",
            "2025-13-01T00:00:00Z",
            "yesterday",
            "",
        ] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad}");
        }
    }

    #[test]
    fn range_is_what_rfc3339_writes() {
        assert!(Timestamp::from_unix_millis(Timestamp::MAX.0 + 1).is_none());
        assert!(Timestamp::from_unix_millis(Timestamp::MIN.0 - 1).is_none());
        let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(Timestamp::from(far), Timestamp::MAX);
    }

    #[test]
    fn system_time_truncates_to_the_millisecond_both_sides_of_the_epoch() {
        let after = UNIX_EPOCH + Duration::from_micros(1_500);
        assert_eq!(Timestamp::from(after).unix_millis(), 1);
        let before = UNIX_EPOCH - Duration::from_micros(1_500);
        assert_eq!(Timestamp::from(before).unix_millis(), -2);
        let exact = UNIX_EPOCH - Duration::from_millis(3);
        assert_eq!(Timestamp::from(exact).unix_millis(), -3);
        assert_eq!(Timestamp::from(exact).to_system_time(), exact);
    }

    #[test]
    fn seconds_between_truncate_and_never_go_negative() {
        let a = Timestamp::from_unix_millis(10_000).unwrap();
        let b = Timestamp::from_unix_millis(12_999).unwrap();
        assert_eq!(b.seconds_since(a), 2);
        assert_eq!(a.seconds_since(b), 0);
    }
}
