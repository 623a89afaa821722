//! What the configuration's values cannot say one at a time: checks across
//! keys, each error with the file, line and column of the value to blame.

use super::de::check_pool;
use super::{Config, QueryMode};
use std::path::{Path, PathBuf};

/// A configuration error: file, line, column, what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a valid configuration.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What was wrong.
        message: String,
    },
}

pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

/// One step of the path to a value in the file.
#[derive(Debug, Clone, Copy)]
pub(super) enum Step {
    Key(&'static str),
    Index(usize),
}

/// The offset in `text` of the value at `path` (of its key when the value
/// has no span of its own).
pub(super) fn locate(text: &str, path: &[Step]) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut item = doc.as_item();
    let mut key_at = None;
    for step in path {
        item = match *step {
            Step::Key(k) => {
                key_at = item
                    .as_table_like()
                    .and_then(|t| t.get_key_value(k))
                    .and_then(|(k, _)| k.span());
                item.get(k)?
            }
            Step::Index(i) => item.get(i)?,
        };
    }
    item.span().or(key_at).map(|r| r.start)
}

impl Config {
    /// What one value alone cannot say: checks across keys, with the path
    /// of the value to blame.
    pub(super) fn check(&self) -> Result<(), (Vec<Step>, String)> {
        if self.query == QueryMode::LinkAddress {
            match &self.links {
                Some(links) => {
                    if let Some(i) = links.iter().position(|l| l.is_unspecified()) {
                        return Err((
                            vec![Step::Key("links"), Step::Index(i)],
                            "query = \"link-address\" asks for the bindings of each link by one of its addresses; :: names no link (RFC 5460 5.3)".into(),
                        ));
                    }
                }
                None if self.routes.interfaces.is_empty() => {
                    return Err((
                        vec![Step::Key("query")],
                        "query = \"link-address\" needs `links` (the router's address on each client link), or a [routes.interfaces] map naming the client-facing interfaces whose addresses they are".into(),
                    ));
                }
                None => {}
            }
        }
        if self.routes.vrf.is_some() && self.routes.table != 254 {
            return Err((
                vec![Step::Key("routes"), Step::Key("vrf")],
                "routes.vrf takes the VRF device's table: leave routes.table out".into(),
            ));
        }
        if let Some(m) = &self.metrics_file {
            if !m.is_absolute() || m.file_name().is_none() {
                return Err((
                    vec![Step::Key("metrics_file")],
                    format!(
                        "metrics_file {:?} must be an absolute path to a file (e.g. \"/var/lib/prometheus/node-exporter/pdrestore.prom\")",
                        m.display().to_string()
                    ),
                ));
            }
        }
        for (i, p) in self.routes.allowed_prefixes.iter().enumerate() {
            check_pool(p).map_err(|m| {
                (
                    vec![
                        Step::Key("routes"),
                        Step::Key("allowed_prefixes"),
                        Step::Index(i),
                    ],
                    m,
                )
            })?;
        }
        if self.servers.len() > crate::proto::ServerIndex::LIMIT {
            return Err((
                vec![
                    Step::Key("server"),
                    Step::Index(crate::proto::ServerIndex::LIMIT),
                    Step::Key("address"),
                ],
                format!(
                    "at most {} servers can be configured",
                    crate::proto::ServerIndex::LIMIT
                ),
            ));
        }
        for (i, s) in self.servers.iter().enumerate() {
            let at = |k| vec![Step::Key("server"), Step::Index(i), Step::Key(k)];
            if let Some(j) = self.servers[..i]
                .iter()
                .position(|o| o.socket_addr() == s.socket_addr())
            {
                return Err((
                    at("address"),
                    format!(
                        "server {} is configured twice (also server {} of the file)",
                        s.socket_addr(),
                        j + 1
                    ),
                ));
            }
            if let Some(src) = s.source {
                if src.is_ipv4() != s.address.is_ipv4() {
                    return Err((
                        at("source"),
                        format!(
                            "source {src} cannot reach server {}: one is IPv4, the other IPv6",
                            s.address
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Warnings, with file:line:column, for every `[routes.interfaces]`
    /// target not in `present` (the interfaces of this machine): not an
    /// error, since a configuration may be checked on another machine, but
    /// `recover` waits for them (`interface_wait`) and fails what needs them.
    pub fn interface_warnings(&self, text: &str, path: &Path, present: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        for (id, name) in &self.routes.interfaces {
            if present.contains(&name.as_str()) {
                continue;
            }
            let at = toml_edit::ImDocument::parse(text).ok().and_then(|doc| {
                let item = doc.get("routes")?.get("interfaces")?.get(id.as_str())?;
                item.span().map(|r| r.start)
            });
            let (line, column) = at.map(|o| line_col(text, o)).unwrap_or((1, 1));
            out.push(format!(
                "{}:{line}:{column}: warning: interface-id {id:?} maps to interface {name:?}, which does not exist on this machine",
                path.display()
            ));
        }
        out
    }
}
