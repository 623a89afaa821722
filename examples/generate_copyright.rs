//! Writes `packaging/debian/copyright`, the Debian copyright file of the
//! package (machine-readable format 1.0): pdrestore itself, then every
//! crate statically linked into the binary (the normal dependencies for
//! this host's target in Cargo.lock, from `cargo metadata`) with its
//! license, then the text of each license, from `packaging/debian/licenses/`.
//!
//! ```sh
//! cargo run --example generate_copyright -- packaging/debian/copyright
//! cargo run --example generate_copyright -- --check packaging/debian/copyright
//! ```
//!
//! `--check` fails (exit 1) when the file is not what would be written, so
//! CI (`.ci/check-deb`) catches a dependency added without regenerating. A
//! license that has no text in `packaging/debian/licenses/` is an error:
//! someone must read it and add it.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Who holds the copyright of pdrestore itself.
const COPYRIGHT: &str = "2026 The pdrestore authors";
/// pdrestore's own license, in the copyright format's syntax.
const LICENSE: &str = "MIT or Apache-2.0";

struct Crate {
    name: String,
    version: String,
    authors: Vec<String>,
    license: String,
}

fn host_triple() -> Result<String, String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(&rustc)
        .arg("-vV")
        .output()
        .map_err(|e| format!("{rustc} -vV: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .ok_or_else(|| format!("{rustc} -vV names no host"))
}

/// The crates linked into pdrestore: reachable from the root through
/// normal (not dev, not build) dependencies on this target.
fn linked_crates(manifest_dir: &Path) -> Result<Vec<Crate>, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(&cargo)
        .current_dir(manifest_dir)
        .args(["metadata", "--format-version", "1", "--locked"])
        .args(["--filter-platform", &host_triple()?])
        .output()
        .map_err(|e| format!("{cargo} metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let m: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let packages: BTreeMap<&str, &Value> = m["packages"]
        .as_array()
        .ok_or("no packages")?
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p)))
        .collect();
    let nodes: BTreeMap<&str, &Value> = m["resolve"]["nodes"]
        .as_array()
        .ok_or("no resolve graph")?
        .iter()
        .filter_map(|n| Some((n["id"].as_str()?, n)))
        .collect();
    let root = m["resolve"]["root"].as_str().ok_or("no root package")?;
    let mut seen = BTreeSet::new();
    let mut todo = vec![root];
    while let Some(id) = todo.pop() {
        if !seen.insert(id) {
            continue;
        }
        for d in nodes[id]["deps"].as_array().into_iter().flatten() {
            let normal = d["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["kind"].is_null());
            if normal {
                todo.push(d["pkg"].as_str().ok_or("a dependency without id")?);
            }
        }
    }
    seen.remove(root);
    let mut crates = Vec::new();
    for id in seen {
        let p = packages[id];
        let name = p["name"].as_str().unwrap_or_default().to_owned();
        let license = p["license"]
            .as_str()
            .ok_or_else(|| format!("crate {name} has no license expression"))?
            .to_owned();
        crates.push(Crate {
            version: p["version"].as_str().unwrap_or_default().to_owned(),
            authors: p["authors"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect(),
            name,
            license,
        });
    }
    crates.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    Ok(crates)
}

/// An SPDX expression in the copyright format's syntax (`or`, `and`, a
/// comma for grouping: `(A OR B) AND C` is `A or B, and C`), and the
/// license names it uses.
fn dep5_license(spdx: &str) -> Result<(String, Vec<String>), String> {
    fn simple(e: &str) -> Result<(String, Vec<String>), String> {
        if e.contains(['(', ')']) {
            return Err(format!("cannot convert license expression {e:?}"));
        }
        let mut out = Vec::new();
        let mut names = Vec::new();
        let mut words = e.split_whitespace().peekable();
        while let Some(w) = words.next() {
            match w {
                "OR" | "or" => out.push("or".to_string()),
                "AND" | "and" => out.push("and".to_string()),
                "WITH" | "with" => {
                    let exception = words.next().ok_or("WITH without an exception")?;
                    out.push(format!(
                        "with {} exception",
                        exception.trim_end_matches("-exception")
                    ));
                }
                name => {
                    // Cargo's old `MIT/Apache-2.0` form.
                    let alternatives: Vec<&str> = name.split('/').collect();
                    out.push(alternatives.join(" or "));
                    names.extend(alternatives.iter().map(|n| n.to_string()));
                }
            }
        }
        Ok((out.join(" "), names))
    }
    let spdx = spdx.trim();
    if let Some(rest) = spdx.strip_prefix('(') {
        if let Some((group, tail)) = rest.split_once(')') {
            let tail = tail.trim();
            let Some(tail) = tail.strip_prefix("AND ") else {
                return Err(format!("cannot convert license expression {spdx:?}"));
            };
            let (a, mut na) = simple(group)?;
            let (b, nb) = simple(tail)?;
            na.extend(nb);
            return Ok((format!("{a}, and {b}"), na));
        }
    }
    simple(spdx)
}

/// A field value of several lines: continuation lines start with a
/// space, empty lines are ` .`.
fn continued(text: &str) -> String {
    text.trim_end()
        .lines()
        .map(|l| {
            if l.trim().is_empty() {
                " .".to_string()
            } else {
                format!(" {}", l.trim_end())
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn generate(manifest_dir: &Path) -> Result<String, String> {
    let crates = linked_crates(manifest_dir)?;
    let mut s = String::new();
    s.push_str("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n");
    s.push_str("Upstream-Name: pdrestore\n");
    s.push_str(&format!(
        "Comment: Generated from Cargo.lock by `cargo run --example generate_copyright --\n packaging/debian/copyright`: do not edit by hand.\n .\n The pdrestore binary is statically linked with the {} Rust crates listed\n below (the normal dependencies of pdrestore for Linux in Cargo.lock), each\n under its own license. Their paragraphs name them as they sit in Cargo's\n registry (cargo-registry/NAME-VERSION/*); the Copyright field holds the\n crate's authors as its manifest gives them.\n\n",
        crates.len()
    ));
    s.push_str(&format!(
        "Files: *\nCopyright: {COPYRIGHT}\nLicense: {LICENSE}\n\n"
    ));
    let mut used: BTreeSet<String> = ["MIT", "Apache-2.0"].map(String::from).into();
    for c in &crates {
        let (license, names) =
            dep5_license(&c.license).map_err(|e| format!("crate {} {}: {e}", c.name, c.version))?;
        used.extend(names);
        let copyright = if c.authors.is_empty() {
            format!("The {} authors", c.name)
        } else {
            c.authors.join("\n")
        };
        s.push_str(&format!(
            "Files: cargo-registry/{}-{}/*\nCopyright:{}\nLicense: {license}\n\n",
            c.name,
            c.version,
            continued(&copyright)
        ));
    }
    let dir = manifest_dir.join("packaging/debian/licenses");
    for name in &used {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "license {name}: {}: {e} (read the license and add its text there)",
                path.display()
            )
        })?;
        s.push_str(&format!("License: {name}\n{}\n\n", continued(&text)));
    }
    Ok(s.trim_end().to_string() + "\n")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (check, file) = match args.as_slice() {
        [flag, f] if flag == "--check" => (true, PathBuf::from(f)),
        [f] if !f.starts_with('-') => (false, PathBuf::from(f)),
        _ => {
            eprintln!("usage: generate_copyright [--check] FILE");
            return ExitCode::from(64);
        }
    };
    let text = match generate(Path::new(env!("CARGO_MANIFEST_DIR"))) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("generate_copyright: {e}");
            return ExitCode::from(1);
        }
    };
    if check {
        let current = std::fs::read_to_string(&file).unwrap_or_default();
        if current != text {
            eprintln!(
                "{} is stale: run `cargo run --example generate_copyright -- {}`",
                file.display(),
                file.display()
            );
            return ExitCode::from(1);
        }
        eprintln!("{}: up to date", file.display());
    } else if let Err(e) = std::fs::write(&file, text) {
        eprintln!("generate_copyright: {}: {e}", file.display());
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spdx_expressions_in_the_copyright_format() {
        let d = |s| dep5_license(s).unwrap();
        assert_eq!(d("MIT OR Apache-2.0").0, "MIT or Apache-2.0");
        assert_eq!(d("MIT/Apache-2.0").0, "MIT or Apache-2.0");
        let (l, n) = d("(MIT OR Apache-2.0) AND Unicode-3.0");
        assert_eq!(l, "MIT or Apache-2.0, and Unicode-3.0");
        assert_eq!(n, ["MIT", "Apache-2.0", "Unicode-3.0"]);
        assert_eq!(
            d("Apache-2.0 WITH LLVM-exception OR MIT").0,
            "Apache-2.0 with LLVM exception or MIT"
        );
        assert!(dep5_license("(A OR B) OR (C AND D)").is_err());
    }
}
