//! The typed values condition operators compare: numbers, dates (ISO 8601 or epoch seconds)
//! and IP addresses against CIDR ranges. Unparseable text is `None`, never a panic.

use std::net::IpAddr;

/// A decimal number as IAM accepts it: optional sign, digits, optional fraction. No exponents,
/// no `inf`/`NaN`.
pub fn number(text: &str) -> Option<f64> {
    let t = text.trim();
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let ok = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !(digits.contains('.') && frac.is_empty());
    if ok { t.parse().ok() } else { None }
}

/// A point in time in milliseconds since the Unix epoch, from epoch seconds (`1700000000`) or
/// ISO 8601 (`2024-06-01`, `2024-06-01T10:00:00Z`, `2024-06-01T10:00:00.5+08:00`).
pub fn date(text: &str) -> Option<i64> {
    let t = text.trim();
    if !t.is_empty()
        && t.trim_start_matches('-')
            .bytes()
            .all(|b| b.is_ascii_digit())
    {
        return t.parse::<i64>().ok()?.checked_mul(1000);
    }
    let (day, time) = match t.split_once(['T', 't']) {
        Some((d, rest)) => (d, Some(rest)),
        None => (t, None),
    };
    let mut ymd = day.splitn(3, '-');
    let year: i64 = fixed(ymd.next()?, 4)?;
    let month: i64 = fixed(ymd.next()?, 2)?;
    let dom: i64 = fixed(ymd.next()?, 2)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&dom) {
        return None;
    }
    let mut ms = days_from_civil(year, month, dom) * 86_400_000;
    if let Some(time) = time {
        ms += time_of_day(time)?;
    }
    Some(ms)
}

fn fixed(text: &str, len: usize) -> Option<i64> {
    (text.len() == len && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse().ok())?
}

/// `HH:MM[:SS[.fff]]` followed by `Z`, `±HH:MM`, `±HHMM` or nothing (UTC), in milliseconds.
fn time_of_day(text: &str) -> Option<i64> {
    let (clock, offset_ms) = if let Some(c) = text.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(pos) = text.rfind(['+', '-']) {
        let (c, off) = text.split_at(pos);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let digits: String = off[1..].chars().filter(|c| *c != ':').collect();
        let h: i64 = fixed(digits.get(..2)?, 2)?;
        let m: i64 = if digits.len() > 2 {
            fixed(&digits[2..], 2)?
        } else {
            0
        };
        (c, sign * (h * 60 + m) * 60_000)
    } else {
        (text, 0)
    };
    let mut parts = clock.splitn(3, ':');
    let h: i64 = fixed(parts.next()?, 2)?;
    let m: i64 = fixed(parts.next()?, 2)?;
    let (s, frac_ms) = match parts.next() {
        None => (0, 0),
        Some(sec) => {
            let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
            let s: i64 = fixed(whole, 2)?;
            if !frac.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let ms = format!("{frac:0<3}")[..3].parse::<i64>().ok()?;
            (s, ms)
        }
    };
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    Some(((h * 60 + m) * 60 + s) * 1000 + frac_ms - offset_ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Whether address `ip` lies in `range` (`10.0.0.0/8`, `2001:db8::/32`, or a bare address).
pub fn ip_in_range(range: &str, ip: &str) -> Option<bool> {
    let ip: IpAddr = ip.trim().split('/').next()?.parse().ok()?;
    let (net, prefix) = match range.trim().split_once('/') {
        Some((net, prefix)) => (
            net.parse::<IpAddr>().ok()?,
            Some(prefix.parse::<u32>().ok()?),
        ),
        None => (range.trim().parse::<IpAddr>().ok()?, None),
    };
    Some(match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => masked_eq(
            u32::from(n).into(),
            u32::from(a).into(),
            prefix.unwrap_or(32),
            32,
        )?,
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            masked_eq(u128::from(n), u128::from(a), prefix.unwrap_or(128), 128)?
        }
        _ => false,
    })
}

fn masked_eq(net: u128, addr: u128, prefix: u32, bits: u32) -> Option<bool> {
    if prefix > bits {
        return None;
    }
    let shift = bits - prefix;
    Some(shift >= 128 || (net >> shift) == (addr >> shift))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_plain_decimals() {
        assert_eq!(number("42"), Some(42.0));
        assert_eq!(number("-1.5"), Some(-1.5));
        assert_eq!(number(" 7 "), Some(7.0));
        for bad in ["", "1e3", "inf", "NaN", "1.", ".5", "0x10", "1,0", "--1"] {
            assert_eq!(number(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates_parse_iso_and_epoch_forms_alike() {
        let base = date("2024-06-01T10:00:00Z").unwrap();
        assert_eq!(base, 1_717_236_000_000);
        assert_eq!(date("1717236000"), Some(base));
        assert_eq!(date("2024-06-01T18:00:00+08:00"), Some(base));
        assert_eq!(date("2024-06-01T05:30:00-0430"), Some(base));
        assert_eq!(date("2024-06-01T10:00:00.250Z"), Some(base + 250));
        assert_eq!(date("2024-06-01T10:00Z"), Some(base));
        assert_eq!(date("2024-06-01"), Some(base - 36_000_000));
        assert_eq!(date("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(date("1969-12-31"), Some(-86_400_000));
        for bad in [
            "",
            "2024-13-01",
            "2024-06-01T25:00:00Z",
            "yesterday",
            "2024/06/01",
            "2024-6-1",
        ] {
            assert_eq!(date(bad), None, "{bad}");
        }
    }

    #[test]
    fn ip_ranges_cover_v4_v6_and_bare_addresses() {
        assert_eq!(ip_in_range("10.0.0.0/8", "10.1.2.3"), Some(true));
        assert_eq!(ip_in_range("10.0.0.0/8", "11.1.2.3"), Some(false));
        assert_eq!(ip_in_range("0.0.0.0/0", "1.2.3.4"), Some(true));
        assert_eq!(ip_in_range("192.0.2.7", "192.0.2.7"), Some(true));
        assert_eq!(ip_in_range("2001:db8::/32", "2001:db8:1::1"), Some(true));
        assert_eq!(ip_in_range("2001:db8::/32", "10.0.0.1"), Some(false));
        assert_eq!(ip_in_range("10.0.0.0/33", "10.0.0.1"), None);
        assert_eq!(ip_in_range("not-an-ip", "10.0.0.1"), None);
        assert_eq!(ip_in_range("10.0.0.0/8", "nope"), None);
    }
}
