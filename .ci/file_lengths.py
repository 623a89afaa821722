#!/usr/bin/env python3
"""List Rust files longer than a limit (default 800 lines), outside tests.

    python3 .ci/file_lengths.py [LIMIT] [PATH ...]   # default: src benches examples

Every line of the file counts (code, comments, blank lines). Skipped: files
named tests.rs or *_tests.rs and files under a tests/ directory. Exit
status 1 when some file is over the limit.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rust_source import limit_and_roots, production_files, report  # noqa: E402


def main():
    limit, roots = limit_and_roots(sys.argv[1:], 800, ['src', 'benches', 'examples'])
    over = []
    for p in production_files(roots):
        with open(p, encoding='utf-8') as fh:
            n = sum(1 for _ in fh)
        if n > limit:
            over.append((n, p))
    return report(over, 'file', limit, lambda x: f'{x[0]:5} lines  {x[1]}')


if __name__ == '__main__':
    sys.exit(main())
