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
from rust_source import is_test_file  # noqa: E402


def main():
    args = sys.argv[1:]
    limit = 800
    if args and args[0].isdigit():
        limit = int(args.pop(0))
    roots = args or ['src', 'benches', 'examples']
    over = []
    for root in roots:
        for dirpath, _, files in os.walk(root):
            for f in files:
                p = os.path.join(dirpath, f)
                if not f.endswith('.rs') or is_test_file(p, root):
                    continue
                with open(p, encoding='utf-8') as fh:
                    n = sum(1 for _ in fh)
                if n > limit:
                    over.append((n, p))
    for n, p in sorted(over, reverse=True):
        print(f'{n:5} lines  {p}')
    if not over:
        print(f'no file over {limit} lines')
    return 1 if over else 0


if __name__ == '__main__':
    sys.exit(main())
