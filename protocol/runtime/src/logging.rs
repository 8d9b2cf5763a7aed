//! Logging, set up in one place for both binaries: `LOG_LEVEL` is the filter, `LOG_FORMAT`
//! the shape, and colour only on a terminal.
//!
//! - `text` (the default): human lines for a terminal.
//! - `json`: one JSON object per line for log shippers (ELK, Loki):
//!   `timestamp`, `level`, `target`, `fields` (the event's, with `message`),
//!   and `span`/`spans` with the fields of the spans the event is in, so the
//!   control plane's `request_id` is on every line a request logs.
//!
//! Logs go to stdout (what containers ship). ANSI colour is used only when
//! stdout is a terminal and `NO_COLOR` is unset or empty
//! (<https://no-color.org>): a log file or a pipe gets no escape codes.
//! `NO_COLOR` is read here rather than in each crate's config because it is
//! a convention of every program on the machine, not a NEXUS setting.

use std::fmt;
use std::io::IsTerminal as _;
use std::str::FromStr;

use tracing_subscriber::EnvFilter;

/// The environment variable that chooses the [`LogFormat`].
pub const LOG_FORMAT: &str = "LOG_FORMAT";

/// How log lines look (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines (`text`, the default).
    #[default]
    Text,
    /// One JSON object per line (`json`).
    Json,
}

/// A `LOG_FORMAT` value that is neither `text` nor `json`.
#[derive(Debug, thiserror::Error)]
#[error("expected 'text' or 'json'")]
pub struct UnknownFormat;

impl FromStr for LogFormat {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(UnknownFormat),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Json => "json",
        })
    }
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error(
        "LOG_LEVEL={value:?} is not a tracing filter (e.g. `info` or `info,nexus_edge::sync=debug`)"
    )]
    Level {
        value: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("a global logger is already installed")]
    AlreadyInstalled(#[source] tracing_subscriber::util::TryInitError),
}

/// Installs the global logger: `level` is an `EnvFilter` directive
/// (`LOG_LEVEL`), `format` the line shape (`LOG_FORMAT`). Call once, from
/// `main`, before anything logs.
pub fn init(level: &str, format: LogFormat) -> Result<(), LoggingError> {
    use tracing_subscriber::util::SubscriberInitExt as _;

    let ansi = colour(std::io::stdout().is_terminal(), std::env::var_os("NO_COLOR").as_deref());
    subscriber(level, format, ansi, std::io::stdout)?
        .try_init()
        .map_err(LoggingError::AlreadyInstalled)
}

/// The subscriber [`init`] installs, writing to `writer` (tests pass a
/// buffer).
fn subscriber<W>(
    level: &str,
    format: LogFormat,
    ansi: bool,
    writer: W,
) -> Result<Box<dyn tracing::Subscriber + Send + Sync>, LoggingError>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(level)
        .map_err(|source| LoggingError::Level { value: level.to_owned(), source })?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    Ok(match format {
        LogFormat::Text => Box::new(builder.with_ansi(ansi).finish()),
        // JSON is never coloured: escape codes inside strings would only
        // garble what a shipper indexes. The current span and the span list
        // carry the spans' fields (the control plane's request_id).
        LogFormat::Json => Box::new(
            builder.json().with_ansi(false).with_current_span(true).with_span_list(true).finish(),
        ),
    })
}

/// Colour only on a terminal, and never when `NO_COLOR` is set to anything
/// but the empty string.
fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_and_refuse() {
        assert_eq!("json".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert_eq!(" Text ".parse::<LogFormat>().unwrap(), LogFormat::Text);
        assert!("pretty".parse::<LogFormat>().is_err());
        assert_eq!(LogFormat::default(), LogFormat::Text);
    }

    #[test]
    fn colour_needs_a_terminal_and_no_no_color() {
        use std::ffi::OsStr;
        assert!(colour(true, None));
        assert!(colour(true, Some(OsStr::new(""))));
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None));
    }

    /// A `MakeWriter` into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Buffer {
        type Writer = Self;
        fn make_writer(&'w self) -> Self {
            self.clone()
        }
    }

    fn logged(format: LogFormat, ansi: bool) -> String {
        let out = Buffer::default();
        let sub = subscriber("info", format, ansi, out.clone()).unwrap();
        tracing::subscriber::with_default(sub, || {
            // As the control plane's request middleware does (api/mod.rs).
            let span = tracing::info_span!("request", request_id = "req-42");
            let _in = span.enter();
            tracing::info!(status = 500u16, "internal error");
            tracing::debug!("filtered out");
        });
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn json_lines_carry_the_span_fields() {
        let text = logged(LogFormat::Json, true);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["target"], "nexus_runtime::logging::tests");
        assert_eq!(v["fields"]["message"], "internal error");
        assert_eq!(v["fields"]["status"], 500);
        assert_eq!(v["span"]["request_id"], "req-42", "{v}");
        assert_eq!(v["spans"][0]["name"], "request");
        assert!(!text.contains('\x1b'), "colour in JSON: {text:?}");
    }

    #[test]
    fn text_is_plain_unless_asked_for_colour() {
        let plain = logged(LogFormat::Text, false);
        assert!(plain.contains("request_id=") && plain.contains("internal error"), "{plain}");
        assert!(!plain.contains('\x1b'), "{plain:?}");
        // The switch does something: the same line on a terminal is coloured.
        assert!(logged(LogFormat::Text, true).contains('\x1b'));
    }

    #[test]
    fn a_bad_level_names_the_variable() {
        let e = init("nexus_edge=loud", LogFormat::Text).unwrap_err();
        assert!(e.to_string().starts_with("LOG_LEVEL="), "{e}");
    }
}
