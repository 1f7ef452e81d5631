//! `Date` (RFC 3261 §20.17): `rfc1123-date`, always GMT.

use crate::grammar::{PResult, fail};
use std::time::{Duration, SystemTime};

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `wkday "," SP date1 SP time SP "GMT"`, e.g. `Sat, 13 Nov 2010 23:29:00 GMT`.
pub(crate) fn date(i: &str) -> PResult<'_, SystemTime> {
    // The format is fixed-width: 29 bytes.
    let Some(s) = i.get(..29) else {
        return fail(i, "expected a date like 'Sat, 13 Nov 2010 23:29:00 GMT'");
    };
    let b = s.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let d = s.get(range)?;
        d.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| d.parse().ok())?
    };
    let wkday = WEEKDAYS.iter().position(|w| s.starts_with(w));
    let month = MONTHS.iter().position(|m| s.get(8..11) == Some(*m));
    let shape_ok = &b[3..5] == b", "
        && b[7] == b' '
        && b[11] == b' '
        && b[16] == b' '
        && b[19] == b':'
        && b[22] == b':'
        && &b[25..] == b" GMT";
    let fields = (
        num(5..7),
        num(12..16),
        num(17..19),
        num(20..22),
        num(23..25),
    );
    let (Some(wkday), Some(month), true, (Some(day), Some(year), Some(h), Some(m), Some(sec))) =
        (wkday, month, shape_ok, fields)
    else {
        return fail(i, "expected a date like 'Sat, 13 Nov 2010 23:29:00 GMT'");
    };
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 || year < 1970 {
        return fail(i, "date out of range");
    }
    let days = days_from_civil(year, month as u32 + 1, day);
    // 1970-01-01 was a Thursday (index 3).
    if (days + 3) % 7 != wkday as u64 {
        return fail(i, "weekday does not match the date");
    }
    let secs = days * 86_400 + u64::from(h * 3600 + m * 60 + sec);
    Ok((&i[29..], SystemTime::UNIX_EPOCH + Duration::from_secs(secs)))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: u32, month: u32, day: u32) -> u64 {
    let y = u64::from(if month <= 2 { year - 1 } else { year });
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = u64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + u64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grammar::all;

    #[test]
    fn rfc1123_dates() {
        let t = all("Sat, 13 Nov 2010 23:29:00 GMT", date).unwrap();
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            1_289_690_940
        );
        assert_eq!(
            all("Thu, 01 Jan 1970 00:00:00 GMT", date),
            Ok(SystemTime::UNIX_EPOCH)
        );
        for bad in [
            "Fri, 01 Jan 2010 16:00:00 EST",
            "Sat, 01 Jan 2010 16:00:00 GMT",
            "Fri, 32 Jan 2010 16:00:00 GMT",
            "Fri, 01 Foo 2010 16:00:00 GMT",
            "Fri 01 Jan 2010 16:00:00 GMT",
            "Fri, 01 Jan 2010",
        ] {
            assert!(all(bad, date).is_err(), "{bad}");
        }
    }
}
