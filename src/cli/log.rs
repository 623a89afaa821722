//! Logging: one line per event on standard error, for a terminal or for
//! the journal.
//!
//! Under systemd, standard error is a stream to journald, which says so in
//! `JOURNAL_STREAM` (the stream's device and inode, `DEV:INO`; see
//! systemd.exec(5)). When that matches standard error, each line starts
//! with its syslog priority, `<3>` error, `<4>` warning, `<6>` info, `<7>`
//! debug and trace, which journald's `SyslogLevelPrefix=` (on by default)
//! takes as the line's priority (sd-daemon(3)), so `journalctl -p warning`
//! shows the warnings; and it carries no timestamp of its own (the journal
//! stamps every line) and no colour. Elsewhere: the usual lines, with a
//! timestamp, coloured on a terminal unless `NO_COLOR` is set.

use std::fmt;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Set up the log: `RUST_LOG` (tracing-subscriber syntax) sets the level,
/// `default` otherwise; the format suits the journal when standard error
/// goes to it ([`stderr_is_journal`]).
pub fn init(default: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if stderr_is_journal() {
        let format = tracing_subscriber::fmt::format()
            .without_time()
            .with_ansi(false);
        builder
            .with_ansi(false)
            .event_format(SyslogPrefix(format))
            .init();
    } else {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        builder
            .with_ansi(std::io::stderr().is_terminal() && !no_color)
            .init();
    }
}

/// True when standard error is the stream systemd connected to the
/// journal: `JOURNAL_STREAM` names its device and inode. (A child that
/// inherited the variable but writes elsewhere, a pipe or a file, is not.)
pub fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some(var) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let stderr = std::io::stderr();
    let Ok(fd) = stderr.as_fd().try_clone_to_owned() else {
        return false;
    };
    match std::fs::File::from(fd).metadata() {
        Ok(m) => journal_stream_is(var.to_str().unwrap_or(""), m.dev(), m.ino()),
        Err(_) => false,
    }
}

/// True when `JOURNAL_STREAM`'s value `var` (`DEV:INO`, decimal) names
/// the file `dev`, `ino`.
pub fn journal_stream_is(var: &str, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = var.trim().split_once(':') else {
        return false;
    };
    d.parse() == Ok(dev) && i.parse() == Ok(ino)
}

/// The syslog priority of a level, as journald reads it at the start of a
/// line: error 3, warning 4, info 6, debug (and trace) 7.
pub fn syslog_priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// An event format that puts the event's syslog priority (`<4>`) before
/// what the inner format `F` writes.
#[derive(Debug, Clone)]
pub struct SyslogPrefix<F>(pub F);

impl<S, N, F> FormatEvent<S, N> for SyslogPrefix<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", syslog_priority(event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn journal_stream_names_device_and_inode() {
        assert!(journal_stream_is("8:1234", 8, 1234));
        assert!(journal_stream_is(" 8:1234\n", 8, 1234));
        assert!(!journal_stream_is("8:1235", 8, 1234));
        assert!(!journal_stream_is("9:1234", 8, 1234));
        assert!(!journal_stream_is("", 8, 1234));
        assert!(!journal_stream_is("8", 8, 8));
        assert!(!journal_stream_is("a:b", 8, 1234));
    }

    /// What a subscriber with the journal's format writes.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn each_line_starts_with_its_priority_and_has_no_timestamp() {
        let buf = Buffer::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .with_writer(move || out.clone())
            .with_ansi(false)
            .event_format(SyslogPrefix(
                tracing_subscriber::fmt::format()
                    .without_time()
                    .with_ansi(false),
            ))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!("e");
            tracing::warn!(server = "[::1]:547", "w");
            tracing::info!("i");
            tracing::debug!("d");
            tracing::trace!("t");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let prefixes: Vec<&str> = text.lines().map(|l| &l[..3]).collect();
        assert_eq!(prefixes, ["<3>", "<4>", "<6>", "<7>", "<7>"], "{text}");
        let warn = text.lines().nth(1).unwrap();
        assert!(warn.starts_with("<4> WARN "), "{warn}");
        assert!(warn.ends_with("w server=\"[::1]:547\""), "{warn}");
        assert!(!text.contains("\u{1b}["), "no colour");
    }
}
