//! Detach keys (`zctr attach --detach-keys`), spelled as docker spells them:
//! a comma-separated list of `ctrl-<x>` (x a letter or one of `@ [ \ ] ^ _`)
//! and single characters. Default `ctrl-p,ctrl-q`.

pub const DEFAULT: &str = "ctrl-p,ctrl-q";

/// Parses a detach key sequence.
pub fn parse(s: &str) -> Result<Vec<u8>, String> {
    let bad = |k: &str| {
        format!("detach keys {s:?}: {k:?} is neither ctrl-<letter or @[\\]^_> nor one character")
    };
    let mut out = Vec::new();
    for k in s.split(',') {
        let b = match k.strip_prefix("ctrl-") {
            Some(c) if c.len() == 1 => {
                let c = c.as_bytes()[0].to_ascii_lowercase();
                match c {
                    b'a'..=b'z' => c - b'a' + 1,
                    b'@' => 0,
                    b'[' => 27,
                    b'\\' => 28,
                    b']' => 29,
                    b'^' => 30,
                    b'_' => 31,
                    _ => return Err(bad(k)),
                }
            }
            None if k.len() == 1 && k.is_ascii() => k.as_bytes()[0],
            _ => return Err(bad(k)),
        };
        out.push(b);
    }
    Ok(out)
}

/// Finds the detach sequence in input that arrives in pieces; bytes held
/// back while they may begin it are passed on if they turn out not to.
#[derive(Debug)]
pub struct Scanner {
    keys: Vec<u8>,
    matched: usize,
}

impl Scanner {
    pub fn new(keys: Vec<u8>) -> Self {
        Self { keys, matched: 0 }
    }

    /// The bytes of `input` to pass on, and whether the sequence was typed
    /// (what follows it is dropped).
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        if self.keys.is_empty() {
            out.extend_from_slice(input);
            return (out, false);
        }
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (out, true);
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    return (out, true);
                }
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_spellings_parse() {
        assert_eq!(parse(DEFAULT).unwrap(), vec![16, 17]);
        assert_eq!(parse("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert_eq!(parse("ctrl-@,ctrl-\\,ctrl-_").unwrap(), vec![0, 28, 31]);
        for bad in ["", "ctrl-", "ctrl-1", "ctrl-ab", "xy", "ctrl-p,,ctrl-q"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_sequence_is_found_across_pieces_and_false_starts_pass() {
        let mut s = Scanner::new(vec![16, 17]);
        assert_eq!(s.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(s.feed(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(s.feed(b"\x10\x10"), (b"\x10".to_vec(), false));
        assert_eq!(s.feed(b"\x11rest"), (Vec::new(), true));
        let mut s = Scanner::new(Vec::new());
        assert_eq!(s.feed(b"\x10\x11"), (b"\x10\x11".to_vec(), false));
    }
}
