//! Private network namespaces for the demo, tests and benchmarks.
//!
//! [`NetNs::create`] makes a named namespace with `ip netns add` (needs
//! root/CAP_SYS_ADMIN); [`NetNs::run`] runs a future on a thread that has
//! entered it, so every socket (TCP, netlink) that future opens lives in the
//! namespace and the host's routes are never touched. The namespace is
//! deleted when the [`NetNs`] is dropped.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// Errors creating or entering a namespace.
#[derive(Debug, thiserror::Error)]
pub enum NetNsError {
    /// An `ip` command failed.
    #[error("`ip {args}` failed: {stderr}")]
    Ip {
        /// The arguments.
        args: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A system call failed.
    #[error("{what}: {source}")]
    Os {
        /// What was attempted.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

/// A named network namespace, deleted on drop.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Run `ip` with these arguments; an error carries its stderr.
pub fn ip<I, S>(args: I) -> Result<Output, NetNsError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let out = Command::new("ip")
        .args(&args)
        .output()
        .map_err(|e| NetNsError::Os {
            what: "running ip (is iproute2 installed?)".into(),
            source: e,
        })?;
    if !out.status.success() {
        return Err(NetNsError::Ip {
            args: args
                .iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out)
}

impl NetNs {
    /// Create a fresh namespace named `{prefix}-{pid}-{n}` with loopback up.
    pub fn create(prefix: &str) -> Result<Self, NetNsError> {
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        ip(["netns", "add", &name])?;
        let ns = NetNs { name };
        ns.ip(["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name (for `ip -n NAME`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Run `ip -n NAME ARGS...` and return its stdout.
    pub fn ip<I, S>(&self, args: I) -> Result<String, NetNsError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut all: Vec<std::ffi::OsString> = vec!["-n".into(), self.name.clone().into()];
        all.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        Ok(String::from_utf8_lossy(&ip(all)?.stdout).into_owned())
    }

    /// Run a shell-style `ip -batch` file of commands inside the namespace.
    pub fn ip_batch(&self, commands: &str) -> Result<(), NetNsError> {
        use std::io::Write;
        let mut child = Command::new("ip")
            .args(["-n", &self.name, "-batch", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| NetNsError::Os {
                what: "running ip -batch".into(),
                source: e,
            })?;
        let write = child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(commands.as_bytes());
        let out = child.wait_with_output().map_err(|e| NetNsError::Os {
            what: "waiting for ip -batch".into(),
            source: e,
        })?;
        if !out.status.success() || write.is_err() {
            return Err(NetNsError::Ip {
                args: "-batch".into(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(())
    }

    /// Enter the namespace on the calling thread (only this thread moves).
    pub fn enter(&self) -> Result<(), NetNsError> {
        let path = format!("/var/run/netns/{}", self.name);
        let f = File::open(&path).map_err(|e| NetNsError::Os {
            what: format!("opening {path}"),
            source: e,
        })?;
        // SAFETY: setns with a valid namespace fd; affects only this thread.
        let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        if r != 0 {
            return Err(NetNsError::Os {
                what: format!("entering network namespace {}", self.name),
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    /// Run `f` to completion on a new thread inside the namespace, with a
    /// current-thread tokio runtime, and return its output.
    pub fn run<F, Fut, T>(&self, f: F) -> Result<T, NetNsError>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = T>,
        T: Send + 'static,
    {
        let path = format!("/var/run/netns/{}", self.name);
        let name = self.name.clone();
        let handle = std::thread::spawn(move || -> Result<T, NetNsError> {
            NetNs { name }.enter_then_forget(&path)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| NetNsError::Os {
                    what: "building a runtime".into(),
                    source: e,
                })?;
            Ok(rt.block_on(f()))
        });
        match handle.join() {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        }
    }

    fn enter_then_forget(self, _path: &str) -> Result<(), NetNsError> {
        let r = self.enter();
        // This handle is a copy: the owner deletes the namespace.
        std::mem::forget(self);
        r
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = ip(["netns", "del", &self.name]);
    }
}

/// True when this process may create network namespaces with `ip netns`.
pub fn can_create() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
