//! Quantities as people write them on the command line, and times as
//! people read them.

/// A size in bytes: a number with an optional binary suffix, case-insensitive
/// (`512`, `64k`, `512m`, `1g`, `1.5G`, `2t`; a trailing `b`/`ib` is allowed:
/// `512mb`, `1GiB`). Suffixes are powers of 1024, as docker and podman read them.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "{s:?} is not a size: a number of bytes, or with a suffix k, m, g or t (e.g. 512m, 1g)"
        )
    };
    let t = s.trim().to_ascii_lowercase();
    let t = t
        .strip_suffix("ib")
        .or_else(|| t.strip_suffix('b'))
        .unwrap_or(&t);
    let (num, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c {
                'k' => 10,
                'm' => 20,
                'g' => 30,
                't' => 40,
                _ => return Err(bad()),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    let bytes = if num.contains('.') {
        let v: f64 = num.parse().map_err(|_| bad())?;
        let b = v * (1u64 << shift) as f64;
        if !b.is_finite() || b >= u64::MAX as f64 {
            return Err(bad());
        }
        b.round() as u64
    } else {
        let v: u64 = num.parse().map_err(|_| bad())?;
        v.checked_mul(1u64 << shift).ok_or_else(bad)?
    };
    Ok(bytes)
}

/// A point in time for `--since`: seconds since the Unix epoch (`1764680000`,
/// decimals allowed), or a duration before `now_ms` (`30s`, `5m`, `2h`,
/// `1d`). In milliseconds since the epoch.
pub fn parse_since(s: &str, now_ms: u64) -> Result<u64, String> {
    let bad = || {
        format!("{s:?} is not a time: seconds since the Unix epoch, or a duration ago (30s, 5m, 2h, 1d)")
    };
    let t = s.trim();
    let unit_ms = match t.chars().last() {
        Some('s') => Some(1_000),
        Some('m') => Some(60_000),
        Some('h') => Some(3_600_000),
        Some('d') => Some(86_400_000),
        _ => None,
    };
    let (num, ago) = match unit_ms {
        Some(u) => (&t[..t.len() - 1], Some(u)),
        None => (t, None),
    };
    let v: f64 = num.parse().map_err(|_| bad())?;
    if !v.is_finite() || v < 0.0 || num.starts_with('+') {
        return Err(bad());
    }
    Ok(match ago {
        Some(u) => now_ms.saturating_sub((v * u as f64) as u64),
        None => (v * 1000.0) as u64,
    })
}

/// `ms` since the Unix epoch as UTC `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn utc(ms: u64) -> String {
    let (days, rem) = ((ms / 86_400_000) as i64, ms % 86_400_000);
    // Civil date from days since 1970-01-01 (the proleptic Gregorian
    // calendar, in 400-year eras of 146,097 days).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, sec, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1_000 % 60,
        rem % 1_000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{sec:02}.{milli:03}Z")
}

#[cfg(test)]
mod tests {
    use super::{parse_since, parse_size, utc};

    #[test]
    fn utc_times() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc(1_764_684_245_123), "2025-12-02T14:04:05.123Z");
        assert_eq!(utc(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
    }

    #[test]
    fn since_as_epoch_seconds_or_a_duration_ago() {
        let now = 10_000_000;
        assert_eq!(parse_since("1764680000", now), Ok(1_764_680_000_000));
        assert_eq!(parse_since("1.5", now), Ok(1_500));
        assert_eq!(parse_since("30s", now), Ok(now - 30_000));
        assert_eq!(parse_since("5m", now), Ok(now - 300_000));
        assert_eq!(parse_since("2h", now), Ok(now - 7_200_000));
        assert_eq!(parse_since("1d", now), Ok(0));
        for bad in ["", "x", "-5m", "5y", "m"] {
            assert!(
                parse_since(bad, now).unwrap_err().contains("is not a time"),
                "{bad}"
            );
        }
    }

    #[test]
    fn sizes_as_people_write_them() {
        for (s, want) in [
            ("1024", 1024),
            ("64k", 64 << 10),
            ("512m", 512 << 20),
            ("512M", 512 << 20),
            ("512mb", 512 << 20),
            ("1g", 1 << 30),
            ("1GiB", 1 << 30),
            ("1.5g", 3 << 29),
            ("2t", 2 << 40),
            ("0", 0),
        ] {
            assert_eq!(parse_size(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn non_sizes_are_refused_with_the_input() {
        for s in [
            "",
            "g",
            "1x",
            "-1g",
            "1..5m",
            "1 g",
            "99999999999999999999t",
        ] {
            let e = parse_size(s).unwrap_err();
            assert!(e.contains(&format!("{s:?}")), "{e}");
        }
    }
}
