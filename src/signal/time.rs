//! Timestamps as inputs write them, normalised to RFC 3339: ISO 8601 strings (with `T` or a
//! space, offsets with or without a colon) and zap's epoch-seconds floats.

/// `text` as an RFC 3339 timestamp, or `None` when it is not one (a time without a zone is
/// refused rather than guessed).
pub(crate) fn normalize(text: &str) -> Option<String> {
    let b = text.trim().as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range.clone())
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    let shape = digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && matches!(b.get(10), Some(b'T' | b't' | b' '))
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16)
        && b.get(16) == Some(&b':')
        && digits(17..19);
    if !shape {
        return None;
    }
    let mut out = String::with_capacity(b.len() + 1);
    out.push_str(std::str::from_utf8(&b[..10]).ok()?);
    out.push('T');
    out.push_str(std::str::from_utf8(&b[11..19]).ok()?);
    let mut rest = &b[19..];
    if rest.first() == Some(&b'.') {
        let frac = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if frac == 0 {
            return None;
        }
        out.push_str(std::str::from_utf8(&rest[..=frac]).ok()?);
        rest = &rest[frac + 1..];
    }
    match rest {
        [b'Z' | b'z'] => out.push('Z'),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2]
            if [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()) =>
        {
            for c in [*sign, *h1, *h2, b':', *m1, *m2] {
                out.push(char::from(c));
            }
        }
        _ => return None,
    }
    Some(out)
}

/// Seconds since the Unix epoch (zap's `ts`) as RFC 3339 UTC with milliseconds.
pub(crate) fn from_epoch(seconds: f64) -> Option<String> {
    // Up to the end of year 9999.
    if !(0.0..253_402_300_800.0).contains(&seconds) {
        return None;
    }
    let millis = (seconds * 1000.0).round() as i64;
    let (days, ms_of_day) = (millis.div_euclid(86_400_000), millis.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    let secs = ms_of_day / 1000;
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        ms_of_day % 1000
    ))
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_rfc3339_and_repairs_near_misses() {
        let n = |s| normalize(s);
        assert_eq!(
            n("2024-06-01T10:00:00.000Z").as_deref(),
            Some("2024-06-01T10:00:00.000Z")
        );
        assert_eq!(
            n("2024-06-01 10:00:00Z").as_deref(),
            Some("2024-06-01T10:00:00Z")
        );
        // zap's ISO 8601 encoder writes offsets without a colon.
        assert_eq!(
            n("2023-10-05T10:00:00.123+0000").as_deref(),
            Some("2023-10-05T10:00:00.123+00:00")
        );
        assert_eq!(
            n("2023-10-05T10:00:00-07:00").as_deref(),
            Some("2023-10-05T10:00:00-07:00")
        );
    }

    #[test]
    fn refuses_what_is_not_a_zoned_timestamp() {
        for s in [
            "",
            "INFO",
            "2024-06-01",
            "2024-06-01T10:00:00",
            "2024-06-01T10:00:00.Z",
            "2024-06-01T10:00:00Zjunk",
            "2024-6-01T10:00:00Z",
            "2024-06-01T10:00:00+1",
            "２０２４-06-01T10:00:00Z",
        ] {
            assert_eq!(normalize(s), None, "{s:?}");
        }
    }

    #[test]
    fn converts_epoch_seconds() {
        assert_eq!(from_epoch(0.0).as_deref(), Some("1970-01-01T00:00:00.000Z"));
        assert_eq!(
            from_epoch(1_717_236_000.5).as_deref(),
            Some("2024-06-01T10:00:00.500Z")
        );
        // A leap day.
        assert_eq!(
            from_epoch(951_782_400.0).as_deref(),
            Some("2000-02-29T00:00:00.000Z")
        );
        assert_eq!(from_epoch(-1.0), None);
        assert_eq!(from_epoch(f64::NAN), None);
        assert_eq!(from_epoch(1e300), None);
    }
}
