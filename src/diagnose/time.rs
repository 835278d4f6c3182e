//! Times in Diagnoses: any RFC 3339 / ISO 8601 input time normalised to the UTC second form
//! Kubernetes uses (`2024-06-01T10:00:00Z`), so equal instants print equally.

use crate::policy::typed;

/// `text` as `YYYY-MM-DDTHH:MM:SSZ`, or `None` when it is no time.
pub fn normalize(text: &str) -> Option<String> {
    typed::date(text).map(format)
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (sub-second part dropped).
pub fn format(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_offsets_fractions_and_epochs() {
        assert_eq!(
            normalize("2024-06-01T10:00:00.123Z").as_deref(),
            Some("2024-06-01T10:00:00Z")
        );
        assert_eq!(
            normalize("2024-06-01T18:00:00+08:00").as_deref(),
            Some("2024-06-01T10:00:00Z")
        );
        assert_eq!(
            normalize("1717236000").as_deref(),
            Some("2024-06-01T10:00:00Z")
        );
        assert_eq!(
            normalize("2024-02-29").as_deref(),
            Some("2024-02-29T00:00:00Z")
        );
        assert_eq!(normalize("not a time"), None);
        assert_eq!(format(0), "1970-01-01T00:00:00Z");
        assert_eq!(format(-1), "1969-12-31T23:59:59Z");
        assert_eq!(format(951_782_400_000), "2000-02-29T00:00:00Z");
    }
}
