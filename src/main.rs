//! The `pdrestore` binary: the command line is [`pdrestore::cli`].

fn main() -> std::process::ExitCode {
    pdrestore::cli::main()
}
