#!/usr/bin/env python3
"""Check that modules only use the modules below them, and that no modules
use each other in a cycle.

    python3 .ci/layers.py              # exit 1 on any upward edge or cycle
    python3 .ci/layers.py --self-test  # the checker's own tests
    python3 .ci/layers.py --edges      # also list every module edge found

What it reads. The module tree comes from the files: src/lib.rs and every
`mod x;` it declares (src/x.rs, src/x/mod.rs, src/x/y.rs, or a `#[path]`),
plus inline `mod x { ... }` blocks. In each module's code it finds every
path into the crate: `use` items of every form (`use crate::a::b;`,
`pub use`, grouped and nested `use crate::{a::{b, c}, d};`, `use super::..`,
`super::super::..`, `self::..`, a child module's name), paths in code
(`crate::x::y(..)`, `super::rank::Rank`, across line breaks) and serde's
path strings (`#[serde(with = "super::duration")]`). Comments, strings and
char literals are skipped by a lexer; so is test code: items under
`#[cfg(test)]` or `#[test]`, modules declared `#[cfg(test)] mod x;`, files
named tests.rs or *_tests.rs and files under a tests/ directory. Each path
resolves to the deepest module it names; that is one edge of the module
graph.

What it checks.
- The floors: every top-level module has the set of top-level modules it
  may use (ALLOWED below; lib.rs and main.rs may use anything). A module
  missing from the table is an error: give a new module its floor here.
- Cycles, at every level of the tree: siblings a::b and a::c are joined
  when anything inside a::b uses anything inside a::c; every cycle among
  siblings is reported with one example line per edge. Edges between a
  module and its own ancestors (a child using its parent's `super::Type`,
  a parent re-exporting its child) are not sibling edges.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rust_source import is_test_file, matching, parse_attribute, skip_item, tokens  # noqa: E402

# The floors, bottom up: a top-level module may use only the ones listed.
ALLOWED = {
    'proto': set(),
    'netns': set(),
    'exit': set(),  # sysexits codes
    'lock': set(),  # the writer lock in the state directory
    'files': set(),  # files replaced atomically
    'transport': {'proto'},
    'routes': {'proto'},
    'snoop': {'proto'},
    'decode': {'proto'},
    'identity': {'proto', 'files'},
    'requestor': {'proto', 'transport'},
    'server': {'proto', 'transport'},
    'recovery': {'proto', 'routes', 'files'},
    'config': {'proto', 'routes', 'recovery', 'requestor', 'snoop'},
    'agent': {'proto', 'exit', 'files', 'routes', 'requestor', 'recovery', 'config', 'identity'},
    'metrics': {'proto', 'exit', 'files', 'routes', 'recovery', 'requestor', 'agent'},
    'follow': {'proto', 'exit', 'routes', 'snoop', 'recovery', 'requestor', 'config',
               'identity', 'agent', 'metrics'},
    'demo': {'proto', 'exit', 'netns', 'routes', 'recovery', 'requestor', 'server',
             'config', 'identity', 'agent'},
    'status': {'routes', 'recovery', 'agent', 'follow'},
    'cli': {'proto', 'exit', 'files', 'lock', 'netns', 'transport', 'routes', 'snoop', 'decode',
            'identity', 'requestor', 'server', 'recovery', 'config', 'agent', 'metrics',
            'follow', 'demo', 'status'},
    'docs': {'cli', 'config', 'exit', 'proto', 'routes', 'recovery', 'requestor', 'snoop'},
}
ROOT = 'lib'  # src/lib.rs: may use anything (so may src/main.rs, a crate of its own)


def parse_use_tree(toks, i, prefix, out):
    """Parses one use tree at toks[i]; appends (segments, line) to out."""
    segs = list(prefix)
    line = toks[i].line if i < len(toks) else 0
    if i < len(toks) and toks[i].value == '::':
        i += 1
        segs.append('::')  # a global path: an external crate
    while i < len(toks):
        t = toks[i]
        if t.kind == 'ident':
            segs.append(t.value)
            line = t.line
            i += 1
            if i < len(toks) and toks[i].value == '::':
                i += 1
                continue
            break
        if t.value == '{':
            end = matching(toks, i)
            i += 1
            while i < end:
                i = parse_use_tree(toks, i, segs, out)
                while i < end and toks[i].value != ',':
                    i += 1
                i += 1
            return end + 1
        if t.value == '*':
            out.append((segs, t.line))
            return i + 1
        break
    if i < len(toks) and toks[i].value == 'as':
        i += 2
    if segs:
        out.append((segs, line))
    return i


class FileInfo:
    def __init__(self):
        self.uses = []       # (module path at the site, segments, line)
        self.decls = []      # (module path at the site, name, path attr, line)
        self.inline = []     # module paths of inline modules
        self.test_decls = []  # like decls, for `#[cfg(test)] mod x;`
        self.is_test = False


def scan(text, module):
    """Finds module declarations and crate paths in one file's text."""
    toks = tokens(text)
    info = FileInfo()
    stack = []  # per open '{': the inline module name or None
    pending_path = None
    i = 0

    def here():
        return module + [s for s in stack if s is not None]

    while i < len(toks):
        t = toks[i]
        v = t.value
        if v == '#' and i + 1 < len(toks) and toks[i + 1].value in ('[', '!'):
            i, inner, is_test, path, serde = parse_attribute(toks, i)
            for segs, line in serde:
                info.uses.append((here(), segs, line))
            if inner:
                if is_test and not stack:
                    info.is_test = True
                    return info
                continue
            if is_test:
                # Skip the other attributes, then the item they belong to
                # (noting a test module's file, which is not an orphan).
                test_path = path if path is not None else pending_path
                while i < len(toks) and toks[i].value == '#':
                    i, _, _, more, _ = parse_attribute(toks, i)
                    test_path = more if more is not None else test_path
                k = i
                if toks[k].value == 'pub' and k + 1 < len(toks) and toks[k + 1].value == '(':
                    k = matching(toks, k + 1) + 1
                elif toks[k].value == 'pub':
                    k += 1
                if k + 2 < len(toks) and toks[k].value == 'mod' and toks[k + 2].value == ';':
                    info.test_decls.append((here(), toks[k + 1].value, test_path, toks[k].line))
                i = skip_item(toks, i)
                pending_path = None
                continue
            if path is not None:
                pending_path = path
            continue
        if t.kind == 'ident' and v == 'pub' and i + 1 < len(toks) and toks[i + 1].value == '(':
            i = matching(toks, i + 1) + 1  # a visibility, pub(in crate::x) included
            continue
        if t.kind == 'ident' and v == 'mod' and i + 2 < len(toks) and toks[i + 1].kind == 'ident':
            name = toks[i + 1].value
            if toks[i + 2].value == ';':
                info.decls.append((here(), name, pending_path, t.line))
                i += 3
            elif toks[i + 2].value == '{':
                stack.append(name)
                info.inline.append(here())
                i += 3
            else:
                i += 1
            pending_path = None
            continue
        pending_path = None
        if t.kind == 'ident' and v == 'use' and (i == 0 or toks[i - 1].value != '::'):
            found = []
            i = parse_use_tree(toks, i + 1, [], found)
            for segs, line in found:
                info.uses.append((here(), segs, line))
            continue
        if t.kind == 'ident' and v in ('crate', '$crate', 'super', 'self') and \
                i + 1 < len(toks) and toks[i + 1].value == '::' and \
                (i == 0 or toks[i - 1].value != '::'):
            segs = [v]
            line = t.line
            i += 1
            while i + 1 < len(toks) and toks[i].value == '::' and toks[i + 1].kind == 'ident':
                segs.append(toks[i + 1].value)
                i += 2
            info.uses.append((here(), segs, line))
            continue
        if v == '{':
            stack.append(None)
        elif v == '}':
            if stack:
                stack.pop()
        i += 1
    return info


def resolve(segs, here, modules):
    """The deepest module the path names, as a tuple; None outside the crate."""
    first = segs[0]
    if first in ('crate', '$crate'):
        base, rest = [], segs[1:]
    elif first in ('super', 'self'):
        base, rest = list(here), list(segs)
        while rest and rest[0] in ('super', 'self'):
            if rest[0] == 'super':
                if not base:
                    return None
                base = base[:-1]
            rest = rest[1:]
    elif tuple(here) + (first,) in modules:
        base, rest = list(here), list(segs)  # a child module by its name
    else:
        return None  # another crate, std, or a name imported earlier
    path = base + [s for s in rest if s not in ('self', '*')]
    for k in range(len(path), -1, -1):
        if tuple(path[:k]) in modules:
            return tuple(path[:k])
    return ()


def load(src):
    """Reads the crate under src; returns (modules, uses, notes).
    modules: set of module paths (tuples; () is the crate root).
    uses: list of (file, line, from module, segments)."""
    modules = {()}
    uses = []
    notes = []
    seen = set()
    test_code = set()  # files of `#[cfg(test)] mod x;`, and their directories (with a slash)
    todo = [(os.path.join(src, 'lib.rs'), (), True)]
    while todo:
        path, module, owns_dir = todo.pop()
        seen.add(os.path.normpath(path))
        if is_test_file(path, src):
            continue
        info = scan(open(path, encoding='utf-8').read(), list(module))
        if info.is_test:
            continue
        for m in info.inline:
            modules.add(tuple(m))
        for at, segs, line in info.uses:
            uses.append((path, line, tuple(at), segs))
        here_dir = os.path.dirname(path)
        if not owns_dir:
            here_dir = os.path.join(here_dir, os.path.splitext(os.path.basename(path))[0])
        def candidates(at, name, attr):
            inner = list(at[len(module):])
            if attr is not None:
                base = os.path.dirname(path) if not inner else os.path.join(here_dir, *inner)
                return [(os.path.join(base, attr), True)]
            base = os.path.join(here_dir, *inner)
            return [(os.path.join(base, name + '.rs'), False),
                    (os.path.join(base, name, 'mod.rs'), True)]
        for at, name, attr, line in info.test_decls:
            for c, owns in candidates(at, name, attr):
                c = os.path.normpath(c)
                test_code.add(c)
                owned = os.path.dirname(c) if owns or c.endswith('mod.rs') else os.path.splitext(c)[0]
                test_code.add(owned + os.sep)
        for at, name, attr, line in info.decls:
            child = tuple(at) + (name,)
            for c, owns in candidates(at, name, attr):
                if os.path.exists(c):
                    modules.add(child)
                    todo.append((c, child, owns or os.path.basename(c) == 'mod.rs'))
                    break
            else:
                notes.append(f'{path}:{line}: no file for mod {name}')
    for dirpath, _, files in os.walk(src):
        for f in files:
            p = os.path.normpath(os.path.join(dirpath, f))
            if f.endswith('.rs') and p not in seen and not is_test_file(p, src) \
                    and p != os.path.normpath(os.path.join(src, 'main.rs')) \
                    and p not in test_code \
                    and not any(p.startswith(t) for t in test_code if t.endswith(os.sep)):
                notes.append(f'{p}: not in the module tree (not compiled?)')
    return modules, uses, notes


def name(m):
    return '::'.join(m) if m else ROOT


def check(src, allowed):
    """Returns (problems, notes, edges) for the crate under src."""
    modules, uses, notes = load(src)
    problems = []
    edges = {}  # (from, to) -> the first (file, line)
    tops = sorted({m[0] for m in modules if m})
    for top in tops:
        if top not in allowed:
            problems.append(f'{os.path.join(src, top)}: top-level module {top} has no floor: '
                            f'add it to ALLOWED in .ci/layers.py')
    for path, line, at, segs in sorted(uses, key=lambda u: (u[0], u[1])):
        target = resolve(segs, at, modules)
        if target is None or target == at:
            continue
        edges.setdefault((at, target), (path, line))
        ta = at[0] if at else ROOT
        tb = target[0] if target else ROOT
        if ta == ROOT or ta == tb or ta not in allowed or tb in allowed[ta]:
            continue
        may = ', '.join(sorted(allowed[ta])) or 'nothing of the crate'
        problems.append(f'{path}:{line}: {ta} uses {tb} ({ta} may use: {may})')
    # Cycles among siblings, at every level.
    levels = {}  # parent -> {child -> {child -> (file, line)}}
    for (a, b), where in sorted(edges.items(), key=lambda e: e[1]):
        k = 0
        while k < len(a) and k < len(b) and a[k] == b[k]:
            k += 1
        if k == len(a) or k == len(b):
            continue  # a module and its ancestor
        parent = a[:k]
        graph = levels.setdefault(parent, {})
        graph.setdefault(a[:k + 1], {}).setdefault(b[:k + 1], where)
    for parent in sorted(levels):
        graph = levels[parent]
        for cycle in cycles(graph):
            problems.append('cycle: ' + ' -> '.join(name(m) for m in cycle + [cycle[0]]))
            for x, y in zip(cycle, cycle[1:] + [cycle[0]]):
                f, line = graph[x][y]
                problems.append(f'    {f}:{line}: {name(x)} uses {name(y)}')
    return problems, notes, edges


def cycles(graph, limit=100):
    """Every elementary cycle of a small graph (each listed once, starting
    at its least node)."""
    nodes = sorted(set(graph) | {b for a in graph for b in graph[a]})
    found = []
    for s in nodes:
        stack = [(s, [s])]
        while stack:
            node, trail = stack.pop()
            for nxt in sorted(graph.get(node, {}), reverse=True):
                if nxt == s:
                    found.append(trail)
                    if len(found) >= limit:
                        return found
                elif nxt > s and nxt not in trail:
                    stack.append((nxt, trail + [nxt]))
    return sorted(found, key=lambda c: (len(c), c))


def main(argv):
    if '--self-test' in argv:
        return self_test()
    src = 'src'
    problems, notes, edges = check(src, ALLOWED)
    if '--edges' in argv:
        for (a, b), (f, line) in sorted(edges.items()):
            print(f'edge: {name(a)} -> {name(b)}  ({f}:{line})')
    for n in notes:
        print('note:', n)
    for p in problems:
        print(p)
    if not problems:
        print('no module uses one above it; no import cycle')
    return 1 if problems else 0


def self_test():
    import shutil
    import tempfile
    import textwrap

    def tree(files):
        d = tempfile.mkdtemp(prefix='layers-self-test-')
        for rel, text in files.items():
            p = os.path.join(d, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, 'w', encoding='utf-8') as f:
                f.write(textwrap.dedent(text))
        return d

    table = {'low': set(), 'mid': {'low'}, 'high': {'low', 'mid'}}
    lib = 'pub mod low;\npub mod mid;\npub mod high;\n'
    # (title, files, lines expected in the output, how many problems)
    cases = [
        ('a grouped, nested import across lines', {
            'lib.rs': lib, 'high.rs': '', 'mid.rs': '',
            'low.rs': 'use crate::{\n    mid::{self,\n  X},\n};\n',
        }, ['low.rs:2: low uses mid (low may use: nothing of the crate)'], 2),
        ('pub use, pub(crate) use, and a use inside a function', {
            'lib.rs': lib, 'high.rs': '', 'mid.rs': 'pub(crate) use crate::high::H;\n',
            'low.rs': 'fn f() {\n    use crate::mid as m;\n}\n',
        }, ['low.rs:2: low uses mid', 'mid.rs:1: mid uses high (mid may use: low)'], 2),
        ('super and super::super paths, in use and in code', {
            'lib.rs': lib, 'high.rs': '', 'mid.rs': '',
            'low/mod.rs': 'mod a;\n',
            'low/a.rs': 'use super::super::high;\nfn f() { let x = super::super::mid::\n    g(); }\n',
        }, ['low/a.rs:1: low uses high', 'low/a.rs:2: low uses mid'], 2),
        ('inline paths, $crate, lifetimes, serde paths', {
            'lib.rs': lib, 'high.rs': '',
            'mid.rs': '#[serde(with = "crate::high::dur")]\nstruct S;\n',
            'low.rs': "fn f<'a>(x: &'a str) -> char {\n    crate::mid::g(x);\n"
                      "    '{'\n}\nmacro_rules! m { () => { $crate::high::h() } }\n",
        }, ['low.rs:2: low uses mid', 'low.rs:5: low uses high', 'mid.rs:1: mid uses high'], 3),
        ('comments, strings, chars and test code are skipped', {
            'lib.rs': lib, 'high.rs': '', 'mid.rs': '',
            'low.rs': textwrap.dedent('''\
                // use crate::high;
                /* use crate::high; /* nested */ crate::high::x */
                /// [`crate::high`]
                const S: &str = "use crate::high;";
                const R: &str = r#"crate::high::x " "#;
                const C: char = '"';
                const Q: (char, u8, &[u8]) = ('\\'', b'"', br##"crate::high"#"##);
                fn f<'a>(x: &'a str) -> &'a str { x }
                #[cfg(test)]
                fn helper() { crate::high::x(); }
                #[test]
                fn t() { crate::high::x(); }
                #[cfg(all(test, unix))]
                use crate::high::Y;
                #[cfg(test)]
                mod tests {
                    use crate::high::Z;
                    fn g() { { } }
                }
                #[cfg(test)]
                #[path = "low_tests.rs"]
                mod more;
                '''),
            'low_tests.rs': 'use crate::high;\n',
            'tests.rs': 'use crate::high;\n',
            'tests/x.rs': 'use crate::high;\n',
        }, [], 0),
        ('code after a test module, and under cfg(any(test, ..)), is checked', {
            'lib.rs': lib, 'high.rs': '', 'mid.rs': '',
            'low.rs': '#[cfg(test)]\nmod tests {\n    fn f() {}\n}\nfn g() { crate::mid::h(); }\n'
                      '#[cfg(any(test, feature = "x"))]\nuse crate::high::H;\n',
        }, ['low.rs:5: low uses mid', 'low.rs:7: low uses high'], 2),
        ('#[path] modules and inline modules resolve super', {
            'lib.rs': lib, 'high.rs': '', 'mid.rs': '',
            'low.rs': '#[path = "other/x.rs"]\nmod x;\nmod inner {\n    use super::x::Y;\n'
                      '    use super::super::mid::M;\n}\n',
            'other/x.rs': 'use crate::high::H;\n',
        }, ['other/x.rs:1: low uses high', 'low.rs:5: low uses mid'], 2),
        ('a test-only module tree is not an orphan; a stray file is', {
            'lib.rs': lib, 'high.rs': '', 'mid.rs': '',
            'low/mod.rs': '#[cfg(test)]\npub(crate) mod reference;\n',
            'low/reference/mod.rs': 'mod plan;\n',
            'low/reference/plan.rs': 'use crate::high;\n',
            'low/stray.rs': 'use crate::high;\n',
        }, ['note: low/stray.rs: not in the module tree'], 0),
        ('a module without a floor', {
            'lib.rs': lib + 'pub mod extra;\n', 'high.rs': '', 'mid.rs': '', 'low.rs': '',
            'extra.rs': '',
        }, ['top-level module extra has no floor'], 1),
        ('a cycle between siblings; parent and child edges are not cycles', {
            'lib.rs': lib, 'high.rs': '', 'mid.rs': '',
            'low/mod.rs': 'mod a;\nmod b;\nmod c;\npub use a::A;\npub struct T;\n',
            'low/a.rs': 'use super::{b::B, T};\n',
            'low/b.rs': 'use crate::low::c::C;\n',
            'low/c.rs': 'fn f() -> super::a::A { todo!() }\n',
        }, ['cycle: low::a -> low::b -> low::c -> low::a', '    low/a.rs:1: low::a uses low::b',
            '    low/b.rs:1: low::b uses low::c', '    low/c.rs:1: low::c uses low::a'], 1),
        ('a top-level cycle', {
            'lib.rs': lib, 'low.rs': '', 'mid.rs': 'use crate::high::X;\n',
            'high.rs': 'use crate::mid::Y;\n',
        }, ['mid.rs:1: mid uses high', 'cycle: high -> mid -> high'], 2),
    ]
    failed = 0
    for title, files, expect, count in cases:
        d = tree(files)
        try:
            problems, notes, _ = check(d, table)
        finally:
            shutil.rmtree(d)
        lines = [p.replace(d + os.sep, '') for p in problems + ['note: ' + n for n in notes]]
        ok = all(any(e in line for line in lines) for e in expect) and \
            len([p for p in lines if not p.startswith(('    ', 'note: '))]) == count and \
            len([p for p in lines if p.startswith('note: ')]) == len(
                [e for e in expect if e.startswith('note: ')])
        print(('ok    ' if ok else 'FAIL  ') + title)
        if not ok:
            failed += 1
            print('  expected:', expect)
            print('  got:\n' + textwrap.indent('\n'.join(lines) or '(nothing)', '    '))
    print(f'layers self-test: {len(cases) - failed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
