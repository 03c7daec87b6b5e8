#!/usr/bin/env python3
"""Benchmarks: subinterpreters side by side with the alternatives.

Compares, in one run of this Python: ``subinterpreters`` (ours); the PyPI
backport ``interpreters-pep-734`` (on 3.13 a thin layer over CPython's own
C ``_interpreters``/``_interpqueues``, the code 3.14 ships); threads; and
multiprocessing (ProcessPoolExecutor).  What each benchmark does, and the
closest equivalent used where the backport lacks a feature, is described at
the top of each bench_*.py module.

    python benchmarks/run.py              # full run, ~5-10 min on 2 cores
    python benchmarks/run.py --quick      # smoke run, ~1 min
    python benchmarks/run.py --only exec,call --quick
    python benchmarks/run.py --list       # the benchmark (group) names

Output: a table per benchmark (median time per operation, spread =
(max - min) / median over the repetitions, and ours ÷ each alternative),
the PASS/MISS list of the targets, and
benchmarks/results/<python>-<date>.json.  A full run (no --quick, no
--only) also rewrites this Python's section of benchmarks/RESULTS.md and
the chart benchmarks/ratios.png (unless --no-publish); ``--publish`` forces
that for a partial run.

Internal modes (used by the orchestrator): ``--worker IMPL`` serves case
requests on stdin/stdout; ``--fresh KEY PARAMS`` runs one fresh-process
sample.
"""

import argparse
import datetime
import fnmatch
import importlib
import json
import os
import platform
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness  # noqa: E402
import _impls  # noqa: E402
from _harness import (  # noqa: E402
    BENCH_DIR, CASES, Worker, WorkerDied, WorkerError, describe_exit,
    run_fresh)

MODULES = ('bench_calls', 'bench_data', 'bench_queues', 'bench_sync',
           'bench_pools', 'bench_aio', 'bench_interrupt', 'bench_memory')
RESULTS_DIR = os.path.join(BENCH_DIR, 'results')
REPO_DIR = os.path.dirname(BENCH_DIR)

PROBE = r'''
import importlib.util, sys
import _impls
def step(name):
    print("step:", name, flush=True)
if not _impls.STDLIB and importlib.util.find_spec("interpreters_backport") is None:
    print("missing"); sys.exit(0)
import _tasks
step("import")
B = _impls.backport()
InterpreterPoolExecutor = _impls.backport_pool()
step("create")
i = B.create()
step("exec")
i.exec("pass")
step("call")
i.call(_tasks.noop)
step("queue")
q = _impls.backport_queue()
i.exec("import " + _impls.BACKPORT_QUEUE_MODULE)
i.prepare_main(q=q)
i.exec("q.put(1)")
assert q.get() == 1
step("close")
i.close()
print("ok")
'''


# ---------------------------------------------------------------------------
# environment


def probe_backport():
    """(status, detail): status is 'ok', 'missing' or 'not runnable'."""
    if _impls.STDLIB:
        detail = 'stdlib concurrent.interpreters of this Python'
    else:
        try:
            from importlib.metadata import version
            detail = ('interpreters-pep-734 '
                      + version('interpreters-pep-734'))
        except Exception:
            detail = 'interpreters-pep-734 (version unknown)'
    try:
        proc = subprocess.run([sys.executable, '-c', PROBE],
                              capture_output=True, timeout=120,
                              env=_harness.worker_env(), cwd=BENCH_DIR)
    except subprocess.TimeoutExpired:
        return 'not runnable', detail + ': probe hung for 120 s'
    out = proc.stdout.decode().strip()
    if proc.returncode == 0 and out.endswith('missing'):
        return 'missing', 'interpreters-pep-734 is not installed'
    if proc.returncode == 0 and out.endswith('ok'):
        return 'ok', detail
    steps = [line.split(None, 1)[1] for line in out.splitlines()
             if line.startswith('step: ')]
    err = proc.stderr.decode(errors='replace').strip().splitlines()
    last = next((line for line in reversed(err)
                 if line and not line.startswith(' ')), '')
    return 'not runnable', (
        f'{detail}: {describe_exit(proc.returncode)}'
        + (f' during {steps[-1]}' if steps else '')
        + (f': {last}' if last else ''))


def loadavg():
    try:
        return [float(x) for x in open('/proc/loadavg').read().split()[:3]]
    except OSError:
        return None


def git_state():
    try:
        rev = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'],
                             capture_output=True, text=True, cwd=REPO_DIR,
                             timeout=30).stdout.strip()
        dirty = subprocess.run(
            ['git', 'status', '--porcelain', '--untracked-files=no', '--',
             'src'], capture_output=True, text=True, cwd=REPO_DIR,
            timeout=30).stdout.strip()
        return rev + ('+dirty' if dirty else '') if rev else None
    except (OSError, subprocess.SubprocessError):
        return None


def ours_version():
    try:
        from importlib.metadata import version
        return version('subinterpreters')
    except Exception:
        return None


# ---------------------------------------------------------------------------
# running groups


class Orchestrator:
    def __init__(self, backport, log, quiet=False):
        self.backport = backport          # (status, detail)
        self.log = log
        self.quiet = quiet
        self.workers = {}

    def say(self, msg):
        if not self.quiet:
            print(msg, flush=True)

    def worker(self, impl):
        w = self.workers.get(impl)
        if w is None or not w.alive():
            w = self.workers[impl] = Worker(impl, stderr=self.log)
        return w

    def stop(self):
        for w in self.workers.values():
            w.stop()
        self.workers.clear()

    def calibrate_once(self, key, params, target, best=3):
        """n for which case ``key`` takes ``target`` seconds, refined on the
        fastest of ``best`` runs (a busy machine only ever slows a run)."""
        w = self.worker(CASES[key].impl)
        w.request(op='open', id='_calibrate', key=key, params=params)
        try:
            return w.request(op='calibrate', id='_calibrate', target=target,
                             best=best)
        finally:
            w.request(op='close', id='_calibrate')

    def _skip_reason(self, impl):
        if impl == 'backport' and self.backport[0] != 'ok':
            return f'backport {self.backport[0]}: {self.backport[1]}'
        return None

    def run_group(self, group, repeats=None):
        t_start = time.monotonic()
        reps = repeats or group.repeats
        rows = {}
        for spec in group.specs:
            cls = CASES[spec.key]
            label = spec.label or cls.label.format(**spec.params)
            rows[spec.name] = {'label': label, 'impl': cls.impl,
                               'key': spec.key, 'params': spec.params,
                               'n': None, 'stats': None, 'error': None,
                               'samples_raw': []}
        result = {'name': group.name, 'title': group.title,
                  'loadavg': loadavg(),
                  'unit': group.unit, 'size': group.size, 'rate': group.rate,
                  'ref': group.ref or group.specs[0].name,
                  'repeats': reps, 'note': group.note, 'rows': rows,
                  'derived': []}
        for spec in group.specs:
            reason = self._skip_reason(rows[spec.name]['impl'])
            if reason:
                rows[spec.name]['error'] = reason
        if group.prepare is not None:
            try:
                group.prepare(self, group)
                result['note'] = group.note
                for spec in group.specs:
                    rows[spec.name]['params'] = spec.params
            except (WorkerError, OSError) as exc:
                for row in rows.values():
                    row['error'] = row['error'] or f'prepare failed: {exc}'
        live = [s for s in group.specs if rows[s.name]['error'] is None]
        if group.fresh:
            self._run_fresh(group, live, rows, reps)
        else:
            self._run_workers(group, live, rows, reps)
        for row in rows.values():
            if row['samples_raw']:
                row['stats'] = _harness.summarize(row['samples_raw'])
            del row['samples_raw']
        if group.derive is not None:
            result['derived'] = group.derive(result)
        result['seconds'] = time.monotonic() - t_start
        return result

    def _run_fresh(self, group, live, rows, reps):
        for rep in range(reps):
            k = rep % len(live) if live else 0
            for spec in live[k:] + live[:k]:
                row = rows[spec.name]
                if row['error']:
                    continue
                try:
                    row['samples_raw'].append(run_fresh(
                        spec.key, spec.params, group.timeout))
                    row['n'] = 1
                except (WorkerDied, subprocess.TimeoutExpired) as exc:
                    row['error'] = str(exc)

    def _run_workers(self, group, live, rows, reps):
        opened = []
        dead = set()

        def fail(spec, exc):
            row = rows[spec.name]
            row['error'] = str(exc)
            if isinstance(exc, WorkerDied):
                dead.add(row['impl'])
                for other in live:
                    r = rows[other.name]
                    if r['impl'] == row['impl'] and r['error'] is None:
                        r['error'] = f'worker died: {exc}'

        for spec in live:
            impl = rows[spec.name]['impl']
            if impl in dead or rows[spec.name]['error']:
                continue
            sid = f'{group.name}/{spec.name}'
            try:
                w = self.worker(impl)
                w.request(timeout=group.timeout, op='open', id=sid,
                          key=spec.key, params=spec.params)
                opened.append((spec, sid))
                if group.n is None:
                    n = w.request(timeout=group.timeout, op='calibrate',
                                  id=sid, target=group.target)
                else:
                    n = group.n
                    if group.warmup:
                        w.request(timeout=group.timeout, op='run', id=sid,
                                  n=n)
                rows[spec.name]['n'] = n
            except (WorkerError, OSError) as exc:
                fail(spec, exc)
        for rep in range(reps):
            k = rep % len(opened) if opened else 0
            for spec, sid in opened[k:] + opened[:k]:
                row = rows[spec.name]
                if row['error']:
                    continue
                try:
                    value = self.worker(row['impl']).request(
                        timeout=group.timeout, op='run', id=sid, n=row['n'])
                except (WorkerError, OSError) as exc:
                    fail(spec, exc)
                    continue
                row['samples_raw'].append(
                    value / row['n'] if group.unit == 's' else value)
        for spec, sid in opened:
            impl = rows[spec.name]['impl']
            if impl in dead:
                continue
            try:
                self.worker(impl).request(timeout=group.timeout, op='close',
                                          id=sid)
            except (WorkerError, OSError) as exc:
                fail(spec, exc)


def all_groups(quick):
    groups = []
    for name in MODULES:
        groups.extend(importlib.import_module(name).groups(quick))
    return groups


def select_groups(groups, only):
    if not only:
        return groups
    patterns = [p.strip() for p in only.split(',') if p.strip()]
    chosen = [g for g in groups
              if any(fnmatch.fnmatchcase(g.name, p) for p in patterns)]
    unknown = [p for p in patterns
               if not any(fnmatch.fnmatchcase(g.name, p) for g in groups)]
    if unknown:
        raise SystemExit(f'run.py: no benchmark matches {", ".join(unknown)};'
                         f' see --list')
    return chosen


# ---------------------------------------------------------------------------
# main


def parse_args(argv):
    p = argparse.ArgumentParser(
        description='subinterpreters benchmarks (see the module docstring)')
    p.add_argument('--quick', action='store_true',
                   help='smoke run: fewer repetitions, smaller sizes (~1 min)')
    p.add_argument('--only', metavar='NAMES',
                   help='comma-separated benchmark names or glob patterns')
    p.add_argument('--list', action='store_true',
                   help='list the benchmark names and exit')
    p.add_argument('--repeats', type=int,
                   help='repetitions per case (overrides the defaults)')
    p.add_argument('--out', metavar='DIR', default=RESULTS_DIR,
                   help='where the JSON goes (default: benchmarks/results)')
    pub = p.add_mutually_exclusive_group()
    pub.add_argument('--publish', action='store_true',
                     help='update RESULTS.md and ratios.png even for a '
                          'partial run')
    pub.add_argument('--no-publish', action='store_true',
                     help='never update RESULTS.md / ratios.png')
    p.add_argument('--report-only', action='store_true',
                   help='only redraw ratios.png from RESULTS.md')
    p.add_argument('--worker', help=argparse.SUPPRESS)
    p.add_argument('--fresh', nargs=2, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return _harness._worker_loop(args.worker)
    if args.fresh:
        return _harness._fresh_main(args.fresh[0], json.loads(args.fresh[1]))

    import report
    if args.report_only:
        report.draw_chart()
        return 0

    _harness.load_cases()
    groups = select_groups(all_groups(args.quick), args.only)
    if args.list:
        for g in all_groups(args.quick):
            print(f'{g.name:20s} {g.title}')
        return 0

    py = f'{sys.version_info[0]}.{sys.version_info[1]}'
    started = datetime.datetime.now()
    os.makedirs(args.out, exist_ok=True)
    tag = f'{py}-{started:%Y%m%d-%H%M%S}' + ('-quick' if args.quick else '')
    log_path = os.path.join(args.out, f'{tag}-workers.log')
    meta = {
        'python': py,
        'python_version': sys.version.split()[0],
        'implementation': platform.python_implementation(),
        'platform': platform.platform(),
        'cpus': os.cpu_count(),
        'ours': ours_version(),
        # make bench records the commit it built; else what is checked out
        # now (which may differ from what was installed).
        'git': os.environ.get('SBI_BENCH_BUILT_FROM') or git_state(),
        'git_source': ('build' if os.environ.get('SBI_BENCH_BUILT_FROM')
                       else 'run'),
        'started': started.isoformat(timespec='seconds'),
        'quick': args.quick,
        'only': args.only,
        'loadavg_before': loadavg(),
    }
    print(f'==> Python {meta["python_version"]}, {meta["cpus"]} CPUs, '
          f'load average {meta["loadavg_before"]}, subinterpreters '
          f'{meta["ours"]} ({meta["git"]})', flush=True)
    backport = probe_backport()
    meta['backport'] = {'status': backport[0], 'detail': backport[1]}
    print(f'==> backport: {backport[0]} ({backport[1]})', flush=True)

    results = []
    with open(log_path, 'w') as log:
        orch = Orchestrator(backport, log)
        try:
            for i, group in enumerate(groups, 1):
                print(f'--> [{i}/{len(groups)}] {group.name}: {group.title}',
                      flush=True)
                res = orch.run_group(group, args.repeats)
                results.append(res)
                for name, row in res['rows'].items():
                    if row['error']:
                        print(f'    {name}: {row["error"]}', flush=True)
        finally:
            orch.stop()
    meta['loadavg_after'] = loadavg()
    meta['seconds'] = (datetime.datetime.now() - started).total_seconds()
    if os.path.getsize(log_path) == 0:
        os.unlink(log_path)

    targets = report.evaluate_targets(results, quick=args.quick)
    data = {'meta': meta, 'groups': results, 'targets': targets}
    print()
    print(report.text_tables(data))
    print(report.text_targets(data))
    json_path = os.path.join(args.out, f'{tag}.json')
    with open(json_path, 'w') as f:
        json.dump(data, f, indent=1)
    print(f'==> {json_path}')
    full = not args.quick and not args.only
    if args.publish or (full and not args.no_publish):
        md = report.update_results_md(data)
        print(f'==> {md}')
        png = report.draw_chart()
        print(f'==> {png}' if png else
              '==> ratios.png not drawn (matplotlib missing)')
    print(f'==> done in {meta["seconds"]:.0f} s; load average '
          f'{meta["loadavg_before"]} before, {meta["loadavg_after"]} after')
    return 0


if __name__ == '__main__':
    sys.exit(main())
