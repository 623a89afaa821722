"""A small Rust lexer and item scanner for the .ci checks (layers.py,
fn_lengths.py).

tokens(text) returns a list of Token(kind, value, line): comments are
dropped (line, block, nested block, doc), string, byte string, raw string
and char literals become one 'str' or 'char' token each (so braces and
paths inside them are never seen), lifetimes become 'lifetime' tokens,
`$crate` is one identifier, `::` is one punctuation token.

parse_attribute() reads one attribute (is it test-only? a #[path]? serde's
path strings?), skip_item() steps over the item an attribute belongs to.
"""
import collections
import os

Token = collections.namedtuple('Token', 'kind value line')

_IDENT_START = set('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_')
_IDENT = _IDENT_START | set('0123456789')


def _is_ident_start(c):
    return c in _IDENT_START or (ord(c) > 127 and c.isidentifier())


def _is_ident(c):
    return c in _IDENT or (ord(c) > 127 and ('a' + c).isidentifier())


def tokens(text):
    out = []
    i, n, line = 0, len(text), 1

    def quoted(i, line):
        # text[i] == '"': a cooked string; returns (end, line, value).
        j = i + 1
        buf = []
        while j < n and text[j] != '"':
            if text[j] == '\\' and j + 1 < n:
                buf.append(text[j:j + 2])
                if text[j + 1] == '\n':
                    line += 1
                j += 2
                continue
            if text[j] == '\n':
                line += 1
            buf.append(text[j])
            j += 1
        return j + 1, line, ''.join(buf)

    def raw(i, line):
        # text[i] == 'r' of r"..." / r#"..."#; returns (end, line, value).
        j = i + 1
        hashes = 0
        while j < n and text[j] == '#':
            hashes += 1
            j += 1
        close = '"' + '#' * hashes
        end = text.find(close, j + 1)
        if end < 0:
            end = n
        value = text[j + 1:end]
        return end + len(close), line + value.count('\n'), value

    while i < n:
        c = text[i]
        if c == '\n':
            line += 1
            i += 1
        elif c in ' \t\r\f\v':
            i += 1
        elif text.startswith('//', i):
            j = text.find('\n', i)
            i = n if j < 0 else j
        elif text.startswith('/*', i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith('/*', j):
                    depth, j = depth + 1, j + 2
                elif text.startswith('*/', j):
                    depth, j = depth - 1, j + 2
                else:
                    if text[j] == '\n':
                        line += 1
                    j += 1
            i = j
        elif c == '"':
            start = line
            i, line, v = quoted(i, line)
            out.append(Token('str', v, start))
        elif c in 'rbc' and (text.startswith('r"', i) or text.startswith('r#"', i) or text.startswith('r##', i)):
            start = line
            i, line, v = raw(i, line)
            out.append(Token('str', v, start))
        elif c in 'bc' and (text.startswith('br"', i) or text.startswith('br#', i)
                            or text.startswith('cr"', i) or text.startswith('cr#', i)):
            start = line
            i, line, v = raw(i + 1, line)
            out.append(Token('str', v, start))
        elif c in 'bc' and i + 1 < n and text[i + 1] == '"':
            start = line
            i, line, v = quoted(i + 1, line)
            out.append(Token('str', v, start))
        elif c == 'b' and i + 1 < n and text[i + 1] == "'":
            j = i + 2
            if j < n and text[j] == '\\':
                j += 2
            while j < n and text[j] != "'":
                j += 1
            out.append(Token('char', text[i + 2:j], line))
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}', '{') or a lifetime ('a, 'static).
            if i + 1 < n and text[i + 1] == '\\':
                j = i + 3
                while j < n and text[j] != "'":
                    j += 1
                out.append(Token('char', text[i + 1:j], line))
                i = j + 1
            elif i + 2 < n and text[i + 2] == "'":
                out.append(Token('char', text[i + 1], line))
                i += 3
            else:
                j = i + 1
                while j < n and _is_ident(text[j]):
                    j += 1
                out.append(Token('lifetime', text[i:j], line))
                i = j
        elif c == '$' and text.startswith('$crate', i) and not (i + 6 < n and _is_ident(text[i + 6])):
            out.append(Token('ident', '$crate', line))
            i += 6
        elif c == 'r' and text.startswith('r#', i) and i + 2 < n and _is_ident_start(text[i + 2]):
            j = i + 2
            while j < n and _is_ident(text[j]):
                j += 1
            out.append(Token('ident', text[i + 2:j], line))
            i = j
        elif _is_ident_start(c):
            j = i + 1
            while j < n and _is_ident(text[j]):
                j += 1
            out.append(Token('ident', text[i:j], line))
            i = j
        elif c.isdigit():
            j = i + 1
            while j < n and (_is_ident(text[j])):
                j += 1
            out.append(Token('num', text[i:j], line))
            i = j
        elif text.startswith('::', i):
            out.append(Token('punct', '::', line))
            i += 2
        else:
            out.append(Token('punct', c, line))
            i += 1
    return out


ITEM_END_AT_SEMI = {'use', 'static', 'type', 'let', 'const'}
ITEM_WITH_BODY = {'fn', 'mod', 'impl', 'trait', 'struct', 'enum', 'union',
                  'macro_rules', 'extern'}
QUALIFIERS = {'pub', 'async', 'unsafe', 'default', 'const', 'extern'}


def matching(toks, i):
    """Index of the bracket closing the one at toks[i]."""
    pairs = {'(': ')', '[': ']', '{': '}'}
    stack = []
    for j in range(i, len(toks)):
        t = toks[j]
        if t.kind != 'punct':
            continue
        if t.value in pairs:
            stack.append(pairs[t.value])
        elif t.value in ')]}':
            if stack:
                stack.pop()
            if not stack:
                return j
    return len(toks) - 1


def cfg_needs_test(toks, i, j):
    """Whether the cfg predicate in toks[i:j] holds only in test builds."""
    def pred(k):
        # returns (needs_test, next index)
        t = toks[k]
        if t.kind == 'ident' and k + 1 < j and toks[k + 1].value == '(' and t.value in ('all', 'any', 'not'):
            end = matching(toks, k + 1)
            results = []
            m = k + 2
            while m < end:
                r, m = pred(m)
                results.append(r)
                while m < end and toks[m].value != ',':
                    m += 1
                m += 1
            if t.value == 'all':
                return any(results), end + 1
            if t.value == 'any':
                return bool(results) and all(results), end + 1
            return False, end + 1
        return (t.kind == 'ident' and t.value == 'test'
                and not (k + 1 < j and toks[k + 1].value == '=')), k + 1
    if i >= j:
        return False
    return pred(i)[0]


SERDE_PATH_KEYS = {'with', 'serialize_with', 'deserialize_with', 'default', 'from',
                   'try_from', 'into', 'remote', 'getter'}


def parse_attribute(toks, i):
    """toks[i] is '#'. Returns (end index past ']', inner, is_test, path, serde_paths)."""
    k = i + 1
    inner = toks[k].value == '!'
    if inner:
        k += 1
    end = matching(toks, k)  # toks[k] is '['
    body = toks[k + 1:end]
    is_test = False
    path = None
    serde = []
    if body:
        names = []
        m = 0
        while m < len(body) and (body[m].kind == 'ident' or body[m].value == '::'):
            if body[m].kind == 'ident':
                names.append(body[m].value)
            m += 1
        if names == ['cfg'] and m < len(body) and body[m].value == '(':
            close = matching(body, m)
            is_test = cfg_needs_test(body, m + 1, close)
        elif names and names[-1] == 'test' and m == len(body):
            is_test = True  # #[test], #[tokio::test]
        elif names == ['path'] and m + 1 < len(body) and body[m].value == '=' and body[m + 1].kind == 'str':
            path = body[m + 1].value
        elif names == ['serde']:
            for a in range(m, len(body) - 2):
                if (body[a].kind == 'ident' and body[a].value in SERDE_PATH_KEYS
                        and body[a + 1].value == '=' and body[a + 2].kind == 'str'):
                    segs = body[a + 2].value.split('::')
                    if all(s.isidentifier() for s in segs):
                        serde.append((segs, body[a + 2].line))
    return end + 1, inner, is_test, path, serde


def skip_item(toks, i):
    """toks[i] starts an item (or a statement, field, arm) that is test code;
    returns the index just past it."""
    k = i
    kw = None
    while k < len(toks):
        t = toks[k]
        if t.value == 'pub' and k + 1 < len(toks) and toks[k + 1].value == '(':
            k = matching(toks, k + 1) + 1
            continue
        if t.kind == 'str':  # extern "C"
            k += 1
            continue
        if t.kind == 'ident' and t.value == 'const' and k + 1 < len(toks) and \
                toks[k + 1].value in ('fn', 'unsafe', 'async', 'extern'):
            k += 1
            continue
        if t.kind == 'ident' and t.value in QUALIFIERS and t.value != 'const':
            k += 1
            continue
        kw = t.value if t.kind == 'ident' else None
        break
    j = i
    while j < len(toks):
        t = toks[j]
        if t.kind == 'punct':
            if t.value in '([':
                j = matching(toks, j) + 1
                continue
            if t.value == '{':
                j = matching(toks, j) + 1
                if kw in ITEM_WITH_BODY:
                    return j
                continue
            if t.value == ';':
                return j + 1
            if t.value == ',' and kw not in ITEM_END_AT_SEMI and kw not in ITEM_WITH_BODY:
                return j + 1
            if t.value in ')]}':
                return j  # the end of the enclosing block
        j += 1
    return j


def is_test_file(path, root):
    """Test code by its name: tests.rs, *_tests.rs, or under a tests/ directory
    of root."""
    parts = os.path.relpath(path, root).replace(os.sep, '/').split('/')
    name = parts[-1]
    return name == 'tests.rs' or name.endswith('_tests.rs') or 'tests' in parts[:-1]


def limit_and_roots(args, limit, roots):
    """The `[LIMIT] [PATH ...]` command line of the length checks."""
    args = list(args)
    if args and args[0].isdigit():
        limit = int(args.pop(0))
    return limit, (args or roots)


def production_files(roots):
    """Every .rs file under the roots that is not test code by its name."""
    for root in roots:
        for dirpath, _, files in os.walk(root):
            for f in sorted(files):
                p = os.path.join(dirpath, f)
                if f.endswith('.rs') and not is_test_file(p, root):
                    yield p


def report(over, what, limit, line):
    """Print the items over the limit (largest first) with `line`, or that
    there are none; the exit status."""
    for item in sorted(over, reverse=True):
        print(line(item))
    if not over:
        print(f'no {what} over {limit} lines')
    return 1 if over else 0
