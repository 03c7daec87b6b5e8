"""Pools: 10,000 tiny tasks through each pool, and CPU-bound scaling.

Every pool is created and warmed up (all its workers started) outside the
timed region; a sample is ``for r in pool.map(f, items): ...``.

CPU scaling: the same batch of equal pure-Python chunks (``_tasks.spin``)
runs serially in one thread, through our InterpreterPoolExecutor with 1
and 2 workers, and through ProcessPoolExecutor with 1 and 2 workers.  The
five modes are interleaved in every repetition (CPU speed drifts), and the
speed-ups are computed per repetition, then the median is taken.
"""

import concurrent.futures as cf
import statistics
import time

import _impls
import _tasks
from _harness import Group, Spec, case


class _Pool:
    def _start(self, pool, workers):
        self.pool = pool
        # Start every worker: as many concurrent ~20 ms tasks as workers.
        list(pool.map(_tasks.spin, [200_000] * workers))
        list(pool.map(_tasks.tiny, range(100)))

    def run(self, n):
        pool, tiny = self.pool, _tasks.tiny
        t0 = time.perf_counter()
        total = 0
        for r in pool.map(tiny, range(n)):
            total += r
        elapsed = time.perf_counter() - t0
        assert total == n * (n + 1) // 2
        return elapsed

    def close(self):
        self.pool.shutdown(wait=True)


@case('pool/ours', 'ours',
      'subinterpreters: InterpreterPoolExecutor({workers})')
class PoolOurs(_Pool):
    def __init__(self, workers):
        self._start(_impls.ours().InterpreterPoolExecutor(workers), workers)


@case('pool/backport', 'backport',
      'backport: InterpreterPoolExecutor({workers})')
class PoolBackport(_Pool):
    def __init__(self, workers):
        self._start(_impls.backport_pool()(workers), workers)


@case('pool/process', 'base', 'ProcessPoolExecutor({workers})')
class PoolProcess(_Pool):
    def __init__(self, workers):
        self._start(cf.ProcessPoolExecutor(workers), workers)


@case('pool/thread', 'base', 'ThreadPoolExecutor({workers})')
class PoolThread(_Pool):
    def __init__(self, workers):
        self._start(cf.ThreadPoolExecutor(workers), workers)


# --- CPU-bound scaling ------------------------------------------------------

@case('spin/base', 'base', 'spin(n) in the main thread')
class Spin:
    """Used to size the CPU chunks: run(n) = one spin(n)."""

    def __init__(self):
        pass

    def run(self, n):
        t0 = time.perf_counter()
        _tasks.spin(n)
        return time.perf_counter() - t0

    def close(self):
        pass


class _Cpu:
    def __init__(self, workers, chunks, spin):
        self.workers, self.chunks, self.spin = workers, chunks, spin
        self.pool = self._make_pool(workers)
        list(self.pool.map(_tasks.spin, [200_000] * workers))

    def run(self, n):
        pool, items = self.pool, [self.spin] * self.chunks
        t0 = time.perf_counter()
        for _ in range(n):
            results = list(pool.map(_tasks.spin, items))
        elapsed = time.perf_counter() - t0
        assert len(set(results)) == 1
        return elapsed

    def close(self):
        self.pool.shutdown(wait=True)


@case('cpu/serial', 'base', 'serial: spin() chunks in the main thread')
class CpuSerial:
    def __init__(self, chunks, spin):
        self.chunks, self.spin = chunks, spin

    def run(self, n):
        spin = _tasks.spin
        t0 = time.perf_counter()
        for _ in range(n):
            for _ in range(self.chunks):
                spin(self.spin)
        return time.perf_counter() - t0

    def close(self):
        pass


@case('cpu/ours', 'ours',
      'subinterpreters: InterpreterPoolExecutor({workers})')
class CpuOurs(_Cpu):
    def _make_pool(self, workers):
        return _impls.ours().InterpreterPoolExecutor(workers)


@case('cpu/process', 'base', 'ProcessPoolExecutor({workers})')
class CpuProcess(_Cpu):
    def _make_pool(self, workers):
        return cf.ProcessPoolExecutor(workers)


def _prepare_cpu(chunk_seconds):
    def prepare(orch, group):
        spin = orch.calibrate_once('spin/base', {}, chunk_seconds)
        for spec in group.specs:
            spec.params['spin'] = spin
        group.note = (group.note + f' One chunk = spin({spin}), about '
                      f'{chunk_seconds * 1e3:.0f} ms on one core.').strip()
    return prepare


def _speedup(result, num, den):
    """Per-repetition ratios num/den (same repetition, so the same CPU
    speed), summarized."""
    a = result['rows'].get(num, {}).get('stats')
    b = result['rows'].get(den, {}).get('stats')
    if not a or not b:
        return None
    ratios = [x / y for x, y in zip(a['samples'], b['samples'])]
    med = statistics.median(ratios)
    return {'median': med, 'min': min(ratios), 'max': max(ratios),
            'spread': (max(ratios) - min(ratios)) / med, 'samples': ratios}


def _derive_cpu(result):
    out = []
    for impl, label in (('ours', 'subinterpreters'),
                        ('process', 'ProcessPoolExecutor')):
        for workers in (1, 2):
            s = _speedup(result, 'serial', f'{impl}_{workers}')
            out.append({'name': f'{impl}_speedup_{workers}_vs_serial',
                        'label': f'{label}, {workers} worker(s): '
                                 'speed-up vs serial',
                        'impl': impl, 'workers': workers, 'stats': s})
        s = _speedup(result, f'{impl}_1', f'{impl}_2')
        out.append({'name': f'{impl}_speedup_2',
                    'label': f'{label}: speed-up 2 workers vs 1',
                    'impl': impl, 'workers': 2, 'stats': s})
    return out


def groups(quick):
    chunk = 0.04 if quick else 0.25
    cpu = {'chunks': 4}
    return [
        Group('pool_tiny', f'{1000 if quick else 10000:,} tiny tasks through '
              'pool.map (time per task)', [
                  Spec('ours', 'pool/ours', {'workers': 2}),
                  Spec('backport', 'pool/backport', {'workers': 2}),
                  Spec('process', 'pool/process', {'workers': 2}),
                  Spec('thread', 'pool/thread', {'workers': 2}),
              ], n=1000 if quick else 10000, repeats=2 if quick else 5,
            rate=True),
        Group('cpu_scaling', 'CPU-bound: 4 equal chunks of pure Python '
              '(time per batch)', [
                  Spec('serial', 'cpu/serial', dict(cpu)),
                  Spec('ours_1', 'cpu/ours', dict(cpu, workers=1)),
                  Spec('ours_2', 'cpu/ours', dict(cpu, workers=2)),
                  Spec('process_1', 'cpu/process', dict(cpu, workers=1)),
                  Spec('process_2', 'cpu/process', dict(cpu, workers=2)),
              ], n=1, repeats=3 if quick else 7,
            prepare=_prepare_cpu(chunk), derive=_derive_cpu, ref='ours_2',
            note='Ratios are against ours_2 (lower = ours faster).'),
    ]
