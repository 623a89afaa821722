//! Write the generated documentation: man pages, shell completions and the
//! configuration reference (see `pdrestore::docs`).
//!
//! ```sh
//! cargo run --example generate_docs -- docs
//! ```

fn main() -> std::process::ExitCode {
    let dir = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "docs".into());
    match pdrestore::docs::generate(&dir) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("generate_docs: {}: {e}", dir.display());
            std::process::ExitCode::from(74)
        }
    }
}
