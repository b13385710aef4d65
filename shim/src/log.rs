//! The setup executable's diagnostics: `tracing` events written to stderr
//! (`shim.log` under the manager) by a small hand-written subscriber, one
//! line each, as human text (default) or one JSON object per line.
//!
//! - Text: `zctr-shim: LEVEL message key=value ...`
//! - JSON: `{"timestamp":"...","level":"INFO","target":"...","fields":{"message":"...",...}}`
//!   (the daemon's field names, so one parser reads both).
//!
//! Each line goes through [`zctr_shim_core::say::line`]: formatted into a
//! stack buffer (cut at [`zctr_shim_core::say::LINE_MAX`] bytes), written only
//! when stderr takes data, every error ignored. Formatting allocates nothing
//! and never panics. Only this crate links `tracing`: the monitor
//! (`zctr-shim-monitor`) stays on `say!` and must not depend on it.
//!
//! Spans are not used by the shim: the subscriber hands out one dummy id and
//! records nothing for them.

use std::fmt::{self, Write};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// How each event is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// `zctr-shim: LEVEL message key=value ...`
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The environment variable naming the level (`--log-level` wins).
pub const LEVEL_ENV: &str = "ZCTR_SHIM_LOG";
/// The environment variable naming the format (`--log-format` wins).
pub const FORMAT_ENV: &str = "ZCTR_SHIM_LOG_FORMAT";

/// Parses a `--log-format` value.
pub fn parse_format(s: &str) -> Result<Format, String> {
    match s {
        "text" => Ok(Format::Text),
        "json" => Ok(Format::Json),
        _ => Err(format!("{s:?} is not a log format (text, json)")),
    }
}

/// Parses a `--log-level` value; `None` is `off`.
pub fn parse_level(s: &str) -> Result<Option<Level>, String> {
    match s.to_ascii_lowercase().as_str() {
        "off" => Ok(None),
        "error" => Ok(Some(Level::ERROR)),
        "warn" => Ok(Some(Level::WARN)),
        "info" => Ok(Some(Level::INFO)),
        "debug" => Ok(Some(Level::DEBUG)),
        "trace" => Ok(Some(Level::TRACE)),
        _ => Err(format!(
            "{s:?} is not a log level (error, warn, info, debug, trace, off)"
        )),
    }
}

/// What the command line asked for; unset parts come from the environment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// `--log-level`: `Some(None)` is `off`.
    pub level: Option<Option<Level>>,
    pub format: Option<Format>,
    /// `--debug`: at least `debug`.
    pub debug: bool,
}

impl Options {
    /// The level and format in force: flags, else the environment (an
    /// unusable value there is ignored), else `info` and text.
    pub fn resolve(&self, env: impl Fn(&str) -> Option<String>) -> (Option<Level>, Format) {
        let level = self
            .level
            .or_else(|| env(LEVEL_ENV).and_then(|v| parse_level(&v).ok()))
            .unwrap_or(Some(Level::INFO));
        let level = match level {
            // More verbose is greater in tracing's order.
            Some(l) if self.debug && l < Level::DEBUG => Some(Level::DEBUG),
            None if self.debug => Some(Level::DEBUG),
            l => l,
        };
        let format = self
            .format
            .or_else(|| env(FORMAT_ENV).and_then(|v| parse_format(&v).ok()))
            .unwrap_or_default();
        (level, format)
    }
}

/// Installs the subscriber for the rest of the process (a second call is a
/// no-op: the first one stays).
pub fn init(opts: &Options) {
    let (max, format) = opts.resolve(|k| std::env::var(k).ok());
    let _ = tracing::subscriber::set_global_default(ShimSubscriber {
        max,
        format,
        sink: zctr_shim_core::say::line,
    });
}

/// Writes events at `max` or more severe as one line each.
pub struct ShimSubscriber {
    /// `None`: nothing is written.
    pub max: Option<Level>,
    pub format: Format,
    /// Where each line goes: [`zctr_shim_core::say::line`] (tests capture).
    pub sink: fn(fmt::Arguments<'_>),
}

impl Subscriber for ShimSubscriber {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        self.max.is_some_and(|max| *m.level() <= max)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::from(self.max))
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        if self.enabled(event.metadata()) {
            (self.sink)(format_args!("{}", Line(event, self.format)));
        }
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// One event, rendered by `Display` straight into `say`'s stack buffer.
struct Line<'a, 'b>(&'a Event<'b>, Format);

impl fmt::Display for Line<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (event, format) = (self.0, self.1);
        let meta = event.metadata();
        match format {
            Format::Text => {
                write!(f, "zctr-shim: {} ", meta.level())?;
                event.record(&mut Text {
                    f,
                    message: true,
                    res: Ok(()),
                });
                event.record(&mut Text {
                    f,
                    message: false,
                    res: Ok(()),
                });
                Ok(())
            }
            Format::Json => {
                f.write_str("{\"timestamp\":\"")?;
                timestamp(f, std::time::SystemTime::now())?;
                write!(
                    f,
                    "\",\"level\":\"{}\",\"target\":\"{}\",\"fields\":{{",
                    meta.level(),
                    Escaped(meta.target())
                )?;
                let mut v = Json { f, first: true };
                event.record(&mut v);
                f.write_str("}}")
            }
        }
    }
}

/// Text fields: the message first (pass one), then ` key=value` (pass two).
struct Text<'a, 'b> {
    f: &'a mut fmt::Formatter<'b>,
    message: bool,
    res: fmt::Result,
}

impl Visit for Text<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let plain = !value.is_empty() && !value.contains([' ', '"', '=', '\n']);
        if field.name() == "message" || plain {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.res.is_err() || (field.name() == "message") != self.message {
            return;
        }
        self.res = if self.message {
            write!(self.f, "{value:?}")
        } else {
            write!(self.f, " {}={value:?}", field.name())
        };
    }
}

/// JSON fields: `"key":value`, numbers and booleans bare, the rest strings.
struct Json<'a, 'b> {
    f: &'a mut fmt::Formatter<'b>,
    first: bool,
}

impl Json<'_, '_> {
    fn key(&mut self, field: &Field) {
        let sep = if std::mem::take(&mut self.first) {
            ""
        } else {
            ","
        };
        let _ = write!(self.f, "{sep}\"{}\":", Escaped(field.name()));
    }
}

impl Visit for Json<'_, '_> {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.f, "{value}");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.f, "{value}");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        let _ = write!(self.f, "{value}");
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        let _ = write!(self.f, "\"{}\"", Escaped(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        let _ = self.f.write_char('"');
        let _ = write!(JsonEscape(self.f), "{value:?}");
        let _ = self.f.write_char('"');
    }
}

/// A string written with JSON escapes.
struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        JsonEscape(f).write_str(self.0)
    }
}

/// A writer that escapes what goes through it for a JSON string.
struct JsonEscape<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl fmt::Write for JsonEscape<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            match c {
                '"' => self.0.write_str("\\\"")?,
                '\\' => self.0.write_str("\\\\")?,
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                c if (c as u32) < 0x20 => write!(self.0, "\\u{:04x}", c as u32)?,
                c => self.0.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// `t` as RFC 3339 UTC with microseconds, like the daemon's JSON lines.
fn timestamp(f: &mut fmt::Formatter<'_>, t: std::time::SystemTime) -> fmt::Result {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil(days as i64);
    write!(
        f,
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (counted in 400-year eras that start on March 1st).
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    thread_local! {
        static OUT: RefCell<String> = const { RefCell::new(String::new()) };
    }

    fn capture(args: fmt::Arguments<'_>) {
        OUT.with(|o| {
            let mut o = o.borrow_mut();
            o.write_fmt(args).unwrap();
            o.push('\n');
        });
    }

    /// The lines `f` logs through a subscriber at `max` in `format`.
    fn lines(max: Option<Level>, format: Format, f: impl FnOnce()) -> Vec<String> {
        OUT.with(|o| o.borrow_mut().clear());
        let sub = ShimSubscriber {
            max,
            format,
            sink: capture,
        };
        tracing::subscriber::with_default(sub, f);
        OUT.with(|o| o.borrow().lines().map(String::from).collect())
    }

    fn events() {
        let id = "c1";
        tracing::error!(id, step = "mount", errno = 2, "setup failed: /proc");
        tracing::info!(ok = true, path = "a b", "created");
        tracing::debug!(pid = 42_u64, "child started");
    }

    #[test]
    fn text_lines_are_prefixed_message_first_then_fields() {
        assert_eq!(
            lines(Some(Level::INFO), Format::Text, events),
            [
                "zctr-shim: ERROR setup failed: /proc id=c1 step=mount errno=2",
                "zctr-shim: INFO created ok=true path=\"a b\"",
            ]
        );
    }

    #[test]
    fn json_lines_are_objects_with_the_daemons_keys() {
        let got = lines(Some(Level::DEBUG), Format::Json, || {
            events();
            tracing::warn!(what = ?"q\"\n", "tab\there");
        });
        assert_eq!(got.len(), 4, "{got:?}");
        let v: Vec<serde_json::Value> = got
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect();
        assert_eq!(v[0]["level"], "ERROR");
        assert_eq!(v[0]["target"], "zctr_shim::log::tests");
        assert_eq!(
            v[0]["fields"],
            serde_json::json!({"message": "setup failed: /proc", "id": "c1", "step": "mount", "errno": 2})
        );
        assert_eq!(v[1]["fields"]["ok"], true);
        assert_eq!(v[2]["fields"]["pid"], 42);
        assert_eq!(v[3]["fields"]["message"], "tab\there");
        assert_eq!(v[3]["fields"]["what"], "\"q\\\"\\n\"");
        let ts = v[0]["timestamp"].as_str().unwrap();
        assert!(
            ts.len() == 27 && ts.starts_with("20") && ts.ends_with('Z'),
            "{ts}"
        );
    }

    #[test]
    fn the_level_filters_and_off_writes_nothing() {
        assert_eq!(lines(Some(Level::ERROR), Format::Text, events).len(), 1);
        assert_eq!(lines(Some(Level::TRACE), Format::Text, events).len(), 3);
        assert!(lines(None, Format::Text, events).is_empty());
    }

    #[test]
    fn flags_win_over_the_environment_and_debug_raises_the_level() {
        let env = |k: &str| match k {
            LEVEL_ENV => Some("warn".to_string()),
            FORMAT_ENV => Some("json".to_string()),
            _ => None,
        };
        let none = |_: &str| None;
        let d = Options::default();
        assert_eq!(d.resolve(none), (Some(Level::INFO), Format::Text));
        assert_eq!(d.resolve(env), (Some(Level::WARN), Format::Json));
        let o = Options {
            level: Some(Some(Level::ERROR)),
            format: Some(Format::Text),
            debug: false,
        };
        assert_eq!(o.resolve(env), (Some(Level::ERROR), Format::Text));
        let o = Options {
            debug: true,
            ..Options::default()
        };
        assert_eq!(o.resolve(env), (Some(Level::DEBUG), Format::Json));
        let o = Options {
            level: Some(Some(Level::TRACE)),
            debug: true,
            ..Options::default()
        };
        assert_eq!(o.resolve(none).0, Some(Level::TRACE));
        let bad = |_: &str| Some("loud".to_string());
        assert_eq!(d.resolve(bad), (Some(Level::INFO), Format::Text));
        assert!(parse_level("loud").unwrap_err().contains("not a log level"));
        assert!(parse_format("xml").unwrap_err().contains("text, json"));
        assert_eq!(parse_level("OFF"), Ok(None));
    }

    #[test]
    fn dates_are_gregorian() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(11_016), (2000, 2, 29));
        assert_eq!(civil(20_789), (2026, 12, 2));
        assert_eq!(civil(-1), (1969, 12, 31));
    }
}
