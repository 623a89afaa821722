#!/usr/bin/env python3
"""List Rust functions longer than a limit (default 100 lines), outside
tests and generated code.

    python3 .ci/fn_lengths.py [LIMIT] [PATH ...]     # default: src

A function's length counts the lines from its `fn` line to its closing
brace. The source is read by a lexer (.ci/rust_source.py), so braces in
strings, chars and comments do not count. Skipped: items under
`#[cfg(test)]` or `#[test]`, files named tests.rs or *_tests.rs, files
under a tests/ directory, and `tests/`, `benches/`, `fuzz/`, `examples/`
unless named. Exit status 1 when some function is over the limit.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rust_source import (  # noqa: E402
    limit_and_roots, matching, parse_attribute, production_files, report, skip_item, tokens)


def functions(path):
    """(name, first line, length in lines) of every function with a body."""
    toks = tokens(open(path, encoding='utf-8').read())
    out = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if t.value == '#' and i + 1 < len(toks) and toks[i + 1].value in ('[', '!'):
            i, inner, is_test, _, _ = parse_attribute(toks, i)
            if is_test and inner:
                return []
            if is_test:
                while i < len(toks) and toks[i].value == '#':
                    i = parse_attribute(toks, i)[0]
                i = skip_item(toks, i)
            continue
        if t.kind == 'ident' and t.value == 'fn' and i + 1 < len(toks) and toks[i + 1].kind == 'ident':
            j = i + 2
            while j < len(toks) and toks[j].value not in ('{', ';'):
                if toks[j].value in ('(', '['):
                    j = matching(toks, j)
                j += 1
            if j < len(toks) and toks[j].value == '{':
                end = matching(toks, j)
                out.append((toks[i + 1].value, t.line, toks[end].line - t.line + 1))
        i += 1
    return out


def main():
    limit, roots = limit_and_roots(sys.argv[1:], 100, ['src'])
    over = []
    for p in production_files(roots):
        for name, line, n in functions(p):
            if n > limit:
                over.append((n, p, line, name))
    return report(over, 'function', limit, lambda x: f'{x[0]:5} lines  {x[1]}:{x[2]}  fn {x[3]}')


if __name__ == '__main__':
    sys.exit(main())
