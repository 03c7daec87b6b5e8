"""python -m subinterpreters check [MODULE ...] [--json] [--all-installed]

Says, for each module, whether it imports in an isolated interpreter (own
GIL), in a legacy one (create(isolated=False)) and in the main
interpreter, and why not.  Exit status: 0 when every module imports in an
isolated interpreter, 1 otherwise, 2 on bad usage.
"""

import argparse
import json
import os
import shutil
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor


def _parser():
    parser = argparse.ArgumentParser(
        prog='python -m subinterpreters',
        description='Tools for the subinterpreters package.')
    commands = parser.add_subparsers(dest='command', metavar='COMMAND')
    commands.required = True
    check = commands.add_parser(
        'check', help='which modules import in isolated interpreters',
        description=(
            'Check whether modules import in an isolated interpreter (its '
            'own GIL: create()), in a legacy one (the main interpreter\'s '
            'GIL: create(isolated=False)) and in the main interpreter, and '
            'say why not.  Each check runs in child processes.  Exit '
            'status: 0 when every module imports in an isolated '
            'interpreter, 1 otherwise, 2 on bad usage.'))
    check.add_argument('modules', nargs='*', metavar='MODULE',
                       help='a module name, such as numpy or xml.etree')
    check.add_argument('--all-installed', action='store_true',
                       help='check the top-level modules of every '
                            'installed distribution')
    check.add_argument('--json', action='store_true',
                       help='print a JSON list of objects with the keys '
                            'module, isolated, legacy, main and reason')
    check.add_argument('--timeout', type=float, default=120.0,
                       metavar='SECONDS',
                       help='give up on an import after this long '
                            '(default: 120)')
    check.add_argument('-j', '--jobs', type=int, default=os.cpu_count() or 1,
                       metavar='N', help='modules checked at once '
                                         '(default: the CPU count)')
    parser.check_parser = check
    return parser


def _table(results):
    yes = {True: 'yes', False: 'no'}
    width = max([len('module')] + [len(r['module']) for r in results])
    head = f'{"module":<{width}}  isolated  legacy  main  reason'
    indent = len(head) - len('reason')
    wrap = max(40, shutil.get_terminal_size((120, 20)).columns - indent)
    lines = [head, '-' * (indent + 6)]
    for r in results:
        reason = textwrap.wrap(r['reason'] or '-', wrap) or ['-']
        lines.append(f'{r["module"]:<{width}}  {yes[r["isolated"]]:<8}  '
                     f'{yes[r["legacy"]]:<6}  {yes[r["main"]]:<4}  '
                     f'{reason[0]}')
        lines.extend(' ' * indent + more for more in reason[1:])
    return '\n'.join(lines)


def _check(args, parser):
    from ._check import _NAME, check_import, installed_top_level
    modules = list(dict.fromkeys(args.modules))
    if args.all_installed:
        modules += [m for m in installed_top_level() if m not in modules]
    if not modules:
        parser.error('name at least one MODULE, or use --all-installed')
    bad = [m for m in modules if not _NAME.match(m)]
    if bad:
        parser.error(f'not a module name: {bad[0]!r}')
    if args.timeout <= 0 or args.jobs < 1:
        parser.error('--timeout and --jobs must be positive')
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(
            lambda m: check_import(m, timeout=args.timeout), modules))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(_table(results))
    return 0 if all(r['isolated'] for r in results) else 1


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return _check(args, parser.check_parser)
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
