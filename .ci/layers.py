#!/usr/bin/env python3
"""Check that modules only use the modules below them.

    python3 .ci/layers.py        # prints every edge that breaks the layering; exit 1 if any

The layers (a module may use the ones listed for it, nothing else of the
crate): proto at the bottom; transport, routes, requestor, recovery, server,
snoop, decode each on proto (recovery also on routes, requestor and server
on transport); config and identity on those; agent and follow on everything
below; the command line (cli, docs, demo, main) on top.
"""
import os
import re
import sys

ALLOWED = {
    'proto': set(),
    'netns': set(),
    'transport': {'proto'},
    'routes': {'proto'},
    'requestor': {'proto', 'transport'},
    'recovery': {'proto', 'routes'},
    'server': {'proto', 'transport'},
    'snoop': {'proto'},
    'decode': {'proto'},
    'identity': {'proto'},
    'metrics': None,  # renders agent::Summary (and follow's counters)
    'config': {'proto', 'routes', 'recovery', 'requestor', 'snoop'},
    'agent': None,   # anything below the command line
    'follow': None,
    'cli': None,
    'docs': None,
    'demo': None,
    'main': None,
    'lib': None,
}
TOP = {'cli', 'docs', 'demo', 'main', 'lib'}
USE = re.compile(r'\bcrate::([a-z_]+)')


def module_of(path):
    rel = os.path.relpath(path, 'src')
    first = rel.split(os.sep)[0]
    return first[:-3] if first.endswith('.rs') else first


def main():
    bad = []
    for dirpath, _, files in os.walk('src'):
        for f in files:
            if not f.endswith('.rs'):
                continue
            p = os.path.join(dirpath, f)
            m = module_of(p)
            allowed = ALLOWED.get(m, set())
            text = open(p, encoding='utf-8').read()
            # Test modules may reach further; skip everything after #[cfg(test)].
            text = text.split('#[cfg(test)]')[0]
            for n, line in enumerate(text.split('\n'), 1):
                if line.lstrip().startswith('//'):
                    continue
                for used in USE.findall(line):
                    if used == m:
                        continue
                    if allowed is None:
                        if used in TOP and m not in TOP:
                            bad.append(f'{p}:{n}: {m} uses {used}, a command-line module')
                        continue
                    if used not in allowed:
                        bad.append(f'{p}:{n}: {m} uses {used}')
    for b in bad:
        print(b)
    if not bad:
        print('no module uses one above it')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
