//! What the namespace benchmarks share: the root check and the sizes to
//! run, from the command line.
#![allow(dead_code)]

/// The sizes given on the command line (`cargo bench --bench X -- N ...`),
/// or `default`; `None` (and a line saying so) when the benchmark cannot
/// make network namespaces here.
pub fn sizes<T: std::str::FromStr + Clone>(bench: &str, default: &[T]) -> Option<Vec<T>> {
    if !pdrestore::netns::can_create() {
        eprintln!("{bench} benchmark skipped: needs root to create network namespaces");
        return None;
    }
    let args: Vec<T> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    Some(if args.is_empty() {
        default.to_vec()
    } else {
        args
    })
}
