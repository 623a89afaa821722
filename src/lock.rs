//! One writer of the routes at a time: an advisory lock (flock(2)) on
//! [`LOCK_FILE`] in the state directory, held by every run that writes
//! routes (`follow` for its lifetime, `recover` for its run; never by a dry
//! run). The holder writes its pid, command and start time into the file, so
//! that a second writer, refused at once, can name it.
//!
//! The kernel drops the lock with the last descriptor of the file, so a
//! killed holder leaves no stale lock: the file stays, unlocked, and its
//! text is rewritten by the next holder.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// Name of the lock file in the state directory.
pub const LOCK_FILE: &str = "writer.lock";

/// The command a resync of a running `follow` is asked with.
pub const RELOAD_FOLLOW: &str = "systemctl reload pdrestore-follow";

/// The writer lock, held until dropped (or the process ends).
#[derive(Debug)]
pub struct WriterLock {
    _file: Flock<File>,
    path: PathBuf,
}

impl WriterLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Who holds the lock, as its text says. Fields the holder has not
/// written yet (it is between taking the lock and writing) are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holder {
    /// Its process id.
    pub pid: Option<u32>,
    /// Its subcommand (`recover`, `follow`).
    pub command: Option<String>,
    /// When it took the lock (RFC 3339, UTC).
    pub started: Option<String>,
}

impl Holder {
    /// The holder's line: `pid=N command=C started=T`.
    fn line(command: &str, now: SystemTime) -> String {
        format!(
            "pid={} command={command} started={}\n",
            std::process::id(),
            humantime::format_rfc3339_seconds(now)
        )
    }

    /// Read back from the lock file's text; unknown words are skipped.
    pub fn parse(text: &str) -> Holder {
        let mut h = Holder::default();
        for word in text.split_whitespace() {
            match word.split_once('=') {
                Some(("pid", v)) => h.pid = v.parse().ok(),
                Some(("command", v)) if !v.is_empty() => h.command = Some(v.to_owned()),
                Some(("started", v)) if !v.is_empty() => h.started = Some(v.to_owned()),
                _ => {}
            }
        }
        h
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.command {
            Some(c) => write!(f, "pdrestore {c}")?,
            None => write!(f, "another pdrestore")?,
        }
        match (self.pid, &self.started) {
            (Some(p), Some(s)) => write!(f, " (pid {p}, started {s})"),
            (Some(p), None) => write!(f, " (pid {p})"),
            _ => write!(f, " (its pid not written yet)"),
        }
    }
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("{}", held_line(.holder, .path))]
    Held {
        /// The lock file.
        path: PathBuf,
        /// Who holds it.
        holder: Holder,
    },
    /// The state directory or the lock file cannot be made or opened.
    #[error("cannot take the writer lock {path}: {source}")]
    Io {
        /// The file (or the directory).
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// The refusal, one line: who holds the lock and what to do instead.
fn held_line(holder: &Holder, path: &Path) -> String {
    let what = if holder.command.as_deref() == Some("follow") {
        format!("it keeps the routes itself; to resync it now: {RELOAD_FOLLOW}")
    } else {
        format!("wait for it to end and run again (a running follow resyncs with {RELOAD_FOLLOW})")
    };
    format!(
        "not run: {holder} writes the routes (it holds {}); {what}",
        path.display()
    )
}

/// Take the writer lock in `state_dir` (made, mode 0700, when missing) for
/// `command`, without waiting: [`LockError::Held`] names the holder when
/// another process has it.
pub fn take(state_dir: &Path, command: &str) -> Result<WriterLock, LockError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| LockError::Io { path, source }
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .map_err(io(state_dir))?;
    let path = state_dir.join(LOCK_FILE);
    let file = open(&path).map_err(io(&path))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(file) => {
            // The holder's line; a file only readable to us (left by a run
            // as another user) still locks, it just names no holder.
            let line = Holder::line(command, SystemTime::now());
            if file.set_len(0).is_ok() {
                let _ = file.write_all_at(line.as_bytes(), 0);
            }
            Ok(WriterLock { _file: file, path })
        }
        Err((mut file, Errno::EWOULDBLOCK)) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            Err(LockError::Held {
                path,
                holder: Holder::parse(&text),
            })
        }
        Err((_, e)) => Err(LockError::Io {
            path,
            source: e.into(),
        }),
    }
}

/// Open (or create) the lock file; read-only when it is not ours to
/// write (a flock needs no write access): a file left by a run as another
/// user (root by hand, a unit's dynamic user) still locks. Mode 0644 (less
/// under the units' `UMask=0077`): it says nothing secret, and the
/// directory is 0700.
fn open(path: &Path) -> std::io::Result<File> {
    let rw = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(path);
    match rw {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => File::open(path),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_second_writer_is_refused_and_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let lock = take(&state, "follow").unwrap();
        let mode = std::fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let text = std::fs::read_to_string(lock.path()).unwrap();
        assert!(
            text.starts_with(&format!(
                "pid={} command=follow started=",
                std::process::id()
            )),
            "{text}"
        );
        // flock(2) locks belong to the open file: a second open in the
        // same process is refused as another process would be.
        let e = take(&state, "recover").unwrap_err();
        let LockError::Held { holder, path } = &e else {
            panic!("{e}")
        };
        assert_eq!(path, lock.path());
        assert_eq!(holder.pid, Some(std::process::id()));
        assert_eq!(holder.command.as_deref(), Some("follow"));
        let line = e.to_string();
        assert!(
            line.starts_with(&format!(
                "not run: pdrestore follow (pid {}, started 20",
                std::process::id()
            )),
            "{line}"
        );
        assert!(line.ends_with("to resync it now: systemctl reload pdrestore-follow"));
        assert!(!line.contains('\n'));
        drop(lock);
        // Released with its holder: the next one takes it and says so.
        let again = take(&state, "recover").unwrap();
        let text = std::fs::read_to_string(again.path()).unwrap();
        assert!(text.contains("command=recover"), "{text}");
        assert_eq!(text.lines().count(), 1, "{text}");
    }

    #[test]
    fn a_recover_holder_and_an_unnamed_one() {
        let h = Holder::parse("pid=12 command=recover started=2026-01-02T03:04:05Z\n");
        let line = held_line(&h, Path::new("/s/writer.lock"));
        assert_eq!(
            line,
            "not run: pdrestore recover (pid 12, started 2026-01-02T03:04:05Z) writes the routes (it holds /s/writer.lock); wait for it to end and run again (a running follow resyncs with systemctl reload pdrestore-follow)"
        );
        let h = Holder::parse("");
        assert_eq!(h, Holder::default());
        assert_eq!(h.to_string(), "another pdrestore (its pid not written yet)");
    }

    #[test]
    fn a_state_directory_that_cannot_be_made() {
        let e = take(Path::new("/proc/pdrestore-test-state"), "recover").unwrap_err();
        assert!(matches!(e, LockError::Io { .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with("cannot take the writer lock /proc/pdrestore-test-state"),
            "{e}"
        );
    }
}
