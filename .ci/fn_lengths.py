#!/usr/bin/env python3
"""List Rust functions longer than a limit (default 100 lines), outside
tests and generated code.

    python3 .ci/fn_lengths.py [LIMIT] [PATH ...]     # default: src

A function's length counts the lines from its `fn` line to its closing
brace. Skipped: `#[cfg(test)]` modules, files named tests.rs or *_tests.rs,
and `tests/`, `benches/`, `fuzz/`, `examples/` unless named. Exit status 1
when some function is over the limit.
"""
import os
import re
import sys

FN = re.compile(r'^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?(extern\s+"[^"]*"\s+)?fn\s+([A-Za-z_][A-Za-z0-9_]*)')


def strip(line):
    # Drop string and char literals and line comments well enough for brace counting.
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])'", "''", line)
    return line.split('//', 1)[0]


def functions(path):
    lines = open(path, encoding='utf-8').read().split('\n')
    out = []
    i = 0
    skip_depth = None
    depth = 0
    pending_cfg_test = False
    while i < len(lines):
        raw = lines[i]
        s = strip(raw)
        if skip_depth is None and re.match(r'^\s*#\[cfg\(test\)\]', raw):
            pending_cfg_test = True
        m = FN.match(raw)
        if skip_depth is None and m and not pending_cfg_test:
            # Find the body: from the first '{' to its match.
            start = i
            d = 0
            opened = False
            j = i
            while j < len(lines):
                t = strip(lines[j])
                if not opened and ';' in t and '{' not in t:
                    break  # a declaration without a body
                for c in t:
                    if c == '{':
                        d += 1
                        opened = True
                    elif c == '}':
                        d -= 1
                if opened and d == 0:
                    break
                j += 1
            if opened:
                out.append((m.group(7), start + 1, j - start + 1))
        if pending_cfg_test and ('mod ' in s or 'fn ' in s):
            if '{' in s:
                skip_depth = depth
            pending_cfg_test = False
        for c in s:
            if c == '{':
                depth += 1
            elif c == '}':
                depth -= 1
                if skip_depth is not None and depth == skip_depth:
                    skip_depth = None
        i += 1
    return out


def main():
    args = sys.argv[1:]
    limit = 100
    if args and args[0].isdigit():
        limit = int(args.pop(0))
    roots = args or ['src']
    over = []
    for root in roots:
        for dirpath, _, files in os.walk(root):
            for f in files:
                if not f.endswith('.rs') or f == 'tests.rs' or f.endswith('_tests.rs'):
                    continue
                p = os.path.join(dirpath, f)
                for name, line, n in functions(p):
                    if n > limit:
                        over.append((n, p, line, name))
    for n, p, line, name in sorted(over, reverse=True):
        print(f'{n:5} lines  {p}:{line}  fn {name}')
    if not over:
        print(f'no function over {limit} lines')
    return 1 if over else 0


if __name__ == '__main__':
    sys.exit(main())
