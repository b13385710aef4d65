//! Quantities as people write them on the command line.

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

#[cfg(test)]
mod tests {
    use super::parse_size;

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
