#!/usr/bin/env python3
"""check_function_length.py - fails when a function in lib/ or cli/ is longer than a limit.

A long function hides its steps; the house rule is steps with names, each under ~120 lines.
This counts the lines of every function definition in the .c files under lib/ and cli/ (from
the line holding its opening brace at column 0, or a signature line ending in "{", to the
closing brace at column 0, the house layout) and fails naming each one above the limit that
the allow-list does not name. The allow-list holds "PATH FUNCTION  reason" lines (# starts a
comment); an entry naming a function that is no longer too long, or no longer exists, fails
too, so the list only shrinks.

Usage: check_function_length.py SOURCE_ROOT [--limit N (default 150)] [--allow FILE]
       check_function_length.py --selftest
"""
import os
import re
import sys
import tempfile

SIGNATURE = re.compile(r'^[A-Za-z_][^;]*?\b([A-Za-z_][A-Za-z0-9_]*)\s*\(')


def functions(path):
    """Yields (name, first line, line count) of each function defined in the file."""
    with open(path, encoding='utf-8', errors='replace') as f:
        lines = f.read().split('\n')
    name = None
    start = None
    for i, line in enumerate(lines):
        if start is None:
            m = SIGNATURE.match(line)
            if m and not line.rstrip().endswith(';'):
                name = m.group(1)
            if name and (line.startswith('{') or (m and line.rstrip().endswith('{'))):
                start = i
            elif line.startswith('}'):
                name = None
        elif line.startswith('}'):
            yield name, start + 1, i - start + 1
            name = None
            start = None


def read_allow(path):
    allow = {}
    if not path:
        return allow
    with open(path, encoding='utf-8') as f:
        for n, line in enumerate(f, 1):
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            parts = line.split(None, 2)
            if len(parts) < 3:
                raise SystemExit(f'{path}:{n}: want "PATH FUNCTION reason", got "{line}"')
            allow[(parts[0], parts[1])] = n
    return allow


def check(root, limit, allow_path):
    allow = read_allow(allow_path)
    seen = set()
    bad = 0
    count = 0
    for top in ('lib', 'cli'):
        base = os.path.join(root, top)
        if not os.path.isdir(base):
            print(f'check_function_length: no {top}/ under {root}')
            return 1
        for d, _, files in sorted(os.walk(base)):
            for fn in sorted(files):
                if not fn.endswith('.c'):
                    continue
                path = os.path.join(d, fn)
                rel = os.path.relpath(path, root)
                for name, first, n in functions(path):
                    count += 1
                    if n <= limit:
                        continue
                    if (rel, name) in allow:
                        seen.add((rel, name))
                        continue
                    print(f'{rel}:{first}: {name} is {n} lines (limit {limit}): '
                          'split it into named steps')
                    bad += 1
    for (rel, name), n in sorted(allow.items()):
        if (rel, name) not in seen:
            print(f'{allow_path}:{n}: {rel} {name} is no longer over {limit} lines '
                  '(or gone): remove the entry')
            bad += 1
    if count == 0:
        print('check_function_length: found no functions (wrong root?)')
        return 1
    if bad:
        print(f'check_function_length: {bad} problem(s) in {count} functions')
        return 1
    print(f'ok: {count} functions, none over {limit} lines but the {len(allow)} allowed')
    return 0


def selftest():
    """Proves the checker can fail: a long function, a stale entry, a bad entry."""
    body = lambda n: 'int f%s(void)\n{\n' + '    x++;\n' * n + '    return 0;\n}\n'
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, 'lib'))
        os.makedirs(os.path.join(tmp, 'cli'))
        src = os.path.join(tmp, 'lib', 'a.c')
        allow = os.path.join(tmp, 'allow.txt')

        def run(text, allow_text, want):
            nonlocal failures
            with open(src, 'w') as f:
                f.write(text)
            with open(allow, 'w') as f:
                f.write(allow_text)
            try:
                rc = check(tmp, 20, allow)
            except SystemExit as e:
                rc = 2 if e.code else 0
                print(e.code)
            if (rc == 0) != want:
                print(f'SELFTEST FAIL: expected {"success" if want else "failure"}, got {rc}')
                failures += 1

        short = body(5) % 'short'
        long_ = body(30) % 'long'
        same_line = 'static int g(int a) {\n' + '    a++;\n' * 30 + '    return a;\n}\n'
        run(short, '', True)
        run(short + long_, '', False)
        run(short + long_, 'lib/a.c flong  a table too long to split\n', True)
        run(short, 'lib/a.c flong  stale\n', False)
        run(short + long_, 'lib/a.c flong\n', False)
        run(same_line, '', False)
        run('/* f(x) in a comment\n */\n' + short, '', True)
    print('selftest: ok' if failures == 0 else f'selftest: {failures} failed')
    return 1 if failures else 0


def main(argv):
    if argv[1:2] == ['--selftest']:
        return selftest()
    if len(argv) < 2:
        print(__doc__)
        return 2
    root = argv[1]
    limit = 150
    allow = None
    i = 2
    while i < len(argv):
        if argv[i] == '--limit' and i + 1 < len(argv):
            limit = int(argv[i + 1])
            i += 2
        elif argv[i] == '--allow' and i + 1 < len(argv):
            allow = argv[i + 1]
            i += 2
        else:
            print(f'check_function_length: unknown argument {argv[i]}')
            return 2
    return check(root, limit, allow)


if __name__ == '__main__':
    sys.exit(main(sys.argv))
