//! Files replaced atomically: the one writer of every file pdrestore keeps
//! (the relay DUID, the server groups' answers, the ledger, the last run,
//! the metrics file).
//!
//! [`replace`] writes a new temporary file in the same directory (its name
//! starts with `.` and ends with `.tmp`: node_exporter's textfile collector
//! and every reader of the real name ignore it), with the mode asked for
//! whatever the umask, then renames it over the file. A reader sees the old
//! file or the new one, never half of one; a write that fails (or a panic
//! through it) removes the temporary and leaves the old file as it was.
//! [`Durability::Synced`] also syncs the file before the rename and the
//! directory after it, so the new file survives a power cut; the ledger,
//! tens of MB at 1M routes and rewritten by every recovery, does without.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Whether a replacement must survive a power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the file before the rename and the directory after it.
    Synced,
    /// Leave the data to the kernel's writeback (a cache, rebuilt by the
    /// next run if lost).
    Cached,
}

/// Removes the temporary file unless it was renamed (also when a panic
/// unwinds through the write).
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Replace the file at `path` with what `fill` writes, atomically, with
/// permissions `mode` (see the module documentation). The directory must
/// exist.
pub fn replace(
    path: &Path,
    mode: u32,
    durability: Durability,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{:016x}.tmp", fastrand::u64(..)));
    let tmp = TempFile {
        path: dir.join(tmp_name),
        keep: false,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_CLOEXEC)
        .open(&tmp.path)?;
    let mut tmp = tmp;
    // The umask (the service's is 0077) does not apply to an explicit chmod.
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    fill(&mut file)?;
    if durability == Durability::Synced {
        file.sync_all()?;
    }
    drop(file);
    std::fs::rename(&tmp.path, path)?;
    tmp.keep = true;
    if durability == Durability::Synced {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}
