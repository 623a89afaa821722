//! The exit statuses of the `pdrestore` command, in one place: 0-2 for the
//! outcome of a run, the rest named after sysexits(3). Every subcommand's
//! documented exit codes are these.

/// Success: every server answered whole and every planned route is in
/// place (`recover`); a clean stop (`follow`); everything decoded.
pub const OK: u8 = 0;
/// Partial: something was restored, but a server, a route or an interface
/// failed, or the prune rail refused a prune (`recover`); an answer was not
/// whole (`query`); something did not decode (`decode`).
pub const PARTIAL: u8 = 1;
/// Nothing was restored and something failed (`recover`).
pub const NOTHING: u8 = 2;
/// EX_USAGE: the command line is wrong.
pub const USAGE: u8 = 64;
/// EX_DATAERR: an input file (lab-server bindings) is malformed.
pub const DATAERR: u8 = 65;
/// EX_NOINPUT: an input file cannot be read.
pub const NOINPUT: u8 = 66;
/// EX_UNAVAILABLE: a service cannot be offered (a listening port is taken).
pub const UNAVAILABLE: u8 = 69;
/// EX_SOFTWARE: an internal error (the route table unusable, a server
/// called our query malformed, a thread or runtime that cannot start).
pub const SOFTWARE: u8 = 70;
/// EX_IOERR: standard output (or another output) cannot be written.
pub const IOERR: u8 = 74;
/// EX_TEMPFAIL: another pdrestore writes the routes now (`follow`, or a
/// `recover`): this run was refused before it did anything (see
/// [`crate::lock`]). Try again later, or resync a running `follow` with
/// `systemctl reload pdrestore-follow`.
pub const TEMPFAIL: u8 = 75;
/// EX_NOPERM: no permission (CAP_NET_ADMIN to change routes, CAP_NET_RAW
/// to snoop).
pub const NOPERM: u8 = 77;
/// EX_CONFIG: the configuration (or the state directory) is wrong.
pub const CONFIG: u8 = 78;
