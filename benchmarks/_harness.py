"""Benchmark harness: case registry, worker processes, statistics.

Model.  A *case* is one way of doing one thing (``exec("pass")`` with our
package, with the backport, ...): a class registered with ``@case(key)``
whose constructor sets up (creates interpreters, pools, buffers), whose
``run(n)`` does the operation ``n`` times and returns the elapsed seconds
(or, for memory cases, a value in bytes), and whose ``close()`` tears down.

A *group* (see ``Group``) is the set of cases compared with each other; the
first case is ours and every other row of the table gets the ratio
ours ÷ that row.  The orchestrator (``run.py``) runs every case of a group
in a long-lived worker process per implementation (``ours``, ``backport``,
``base`` for threads, multiprocessing and plain copies), so that a crash
of one implementation (the backport on 3.12.1) cannot take the others down
and no process imports what it does not measure.  Samples are interleaved:
repetition r runs every case once, in an order rotated by r, so that CPU
speed drift hits every case alike.  ``fresh`` groups (memory) instead start
a new process per sample.

Protocol between orchestrator and worker: one JSON object per line on the
worker's stdin / the worker's original stdout (the worker points fd 1 at
stderr, so stray output from any interpreter cannot corrupt the channel).
"""

import dataclasses
import json
import os
import select
import statistics
import subprocess
import sys
import time
import traceback

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
RUN_PY = os.path.join(BENCH_DIR, 'run.py')

KiB = 1024
MiB = 1024 * 1024


# ---------------------------------------------------------------------------
# cases


CASES = {}


def case(key, impl, label):
    """Register a case class under ``key``.

    ``impl`` is the worker process that runs it: ``ours``, ``backport`` or
    ``base``.  ``label`` is the table row, formatted with the case's
    parameters (``'{size}'`` ...).
    """
    def deco(cls):
        if key in CASES:
            raise ValueError(f'duplicate case {key!r}')
        cls.key, cls.impl, cls.label = key, impl, label
        CASES[key] = cls
        return cls
    return deco


def load_cases():
    """Import every bench_*.py module so that their cases register."""
    import importlib
    for name in sorted(os.listdir(BENCH_DIR)):
        if name.startswith('bench_') and name.endswith('.py'):
            importlib.import_module(name[:-3])


@dataclasses.dataclass
class Spec:
    """One row of a group: ``name`` (short, unique in the group), the case
    key, its parameters and optionally a label replacing the case's."""
    name: str
    key: str
    params: dict = dataclasses.field(default_factory=dict)
    label: str = None


@dataclasses.dataclass
class Group:
    """Cases measured side by side (see the module docstring).

    n: operations per sample, or None to calibrate each case so that one
       sample takes about ``target`` seconds.
    unit: 's' (run() returns seconds for n operations; the table shows the
       time per operation) or 'B' (run() returns bytes).
    size: bytes moved per operation; adds a bandwidth column ('param':
       each row's own ``size`` parameter).
    rate: show operations per second.
    fresh: a new process per sample (memory measurements).
    prepare: callable(orchestrator, group) run before the cases are set up;
       may fill in parameters that need a measurement first.
    derive: callable(group_result) -> list of derived rows (dicts).
    ref: the spec every other row is compared with (default: the first).
    """
    name: str
    title: str
    specs: list
    n: int = None
    target: float = 0.2
    repeats: int = 5
    warmup: bool = True
    unit: str = 's'
    size: int = None
    rate: bool = False
    fresh: bool = False
    timeout: float = 300.0
    note: str = ''
    prepare: object = None
    derive: object = None
    ref: str = None


# ---------------------------------------------------------------------------
# statistics


def summarize(values):
    """Median, min, max and spread = (max - min) / median of the samples."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    med = statistics.median(values)
    lo, hi = min(values), max(values)
    return {
        'median': med,
        'min': lo,
        'max': hi,
        'spread': (hi - lo) / med if med else 0.0,
        'samples': values,
    }


def fmt_time(seconds):
    if seconds is None:
        return '-'
    for unit, scale in (('s', 1.0), ('ms', 1e-3), ('µs', 1e-6)):
        if abs(seconds) >= scale:
            return f'{seconds / scale:.3g} {unit}'
    return f'{seconds / 1e-9:.3g} ns'


def fmt_bytes(n):
    if n is None:
        return '-'
    sign = '-' if n < 0 else ''
    n = abs(n)
    for unit, scale in (('GiB', 1 << 30), ('MiB', 1 << 20), ('KiB', 1 << 10)):
        if n >= scale:
            return f'{sign}{n / scale:.3g} {unit}'
    return f'{sign}{n:.0f} B'


def fmt_size(n):
    for unit, scale in (('MiB', MiB), ('KiB', KiB)):
        if n >= scale and n % scale == 0:
            return f'{n // scale} {unit}'
    return f'{n} B'


def fmt_rate(per_second):
    for unit, scale in (('G', 1e9), ('M', 1e6), ('k', 1e3)):
        if per_second >= scale:
            return f'{per_second / scale:.3g}{unit}/s'
    return f'{per_second:.3g}/s'


def fmt_value(value, unit):
    return fmt_bytes(value) if unit == 'B' else fmt_time(value)


# ---------------------------------------------------------------------------
# memory


def rss_bytes():
    """This process's resident set size, from /proc/self/status (VmRSS)."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
    raise RuntimeError('no VmRSS in /proc/self/status')


# ---------------------------------------------------------------------------
# worker side


def _worker_loop(impl):
    """Serve requests for the cases of ``impl`` until 'exit' or EOF."""
    proto = os.fdopen(os.dup(1), 'w', buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    load_cases()
    instances = {}

    def reply(**kw):
        proto.write(json.dumps(kw) + '\n')

    for line in sys.stdin:
        msg = json.loads(line)
        op = msg['op']
        try:
            if op == 'exit':
                for inst in instances.values():
                    inst.close()
                reply(ok=True)
                return
            elif op == 'open':
                cls = CASES[msg['key']]
                if cls.impl != impl:
                    raise ValueError(f'{msg["key"]} is not a {impl} case')
                instances[msg['id']] = cls(**msg['params'])
                reply(ok=True)
            elif op == 'run':
                value = instances[msg['id']].run(msg['n'])
                reply(ok=True, value=value)
            elif op == 'calibrate':
                n = _calibrate(instances[msg['id']], msg['target'],
                               msg.get('best', 1))
                reply(ok=True, value=n)
            elif op == 'close':
                inst = instances.pop(msg['id'], None)
                if inst is not None:
                    inst.close()
                reply(ok=True)
            else:
                raise ValueError(f'unknown op {op!r}')
        except Exception as exc:
            reply(ok=False, error=f'{type(exc).__name__}: {exc}',
                  traceback=traceback.format_exc())


def _calibrate(inst, target, best=1):
    """The n for which inst.run(n) takes about ``target`` seconds.

    The first run is a warm-up (imports, caches, first-touch page faults)
    and does not count.  With best > 1 the estimate is refined on the
    fastest of ``best`` runs of the estimated n.
    """
    inst.run(1)
    n = 1
    while True:
        elapsed = inst.run(n)
        if elapsed >= target / 4 or n >= 1 << 24:
            break
        # Grow fast while far off; never more than 10x per step.
        n *= 10 if elapsed < target / 100 else 2
    n = max(1, round(n * target / max(elapsed, 1e-9)))
    if best > 1:
        elapsed = min(inst.run(n) for _ in range(best))
        n = max(1, round(n * target / max(elapsed, 1e-9)))
    return n


def _fresh_main(key, params):
    """One sample of a fresh-process case: print its value as JSON."""
    proto = os.fdopen(os.dup(1), 'w', buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    load_cases()
    inst = CASES[key](**params)
    try:
        value = inst.run(1)
    finally:
        inst.close()
    proto.write(json.dumps({'ok': True, 'value': value}) + '\n')
    proto.flush()
    # Skip interpreter finalization: what is measured is done, and the
    # backport's teardown of many interpreters can be slow.
    os._exit(0)


def worker_env():
    env = dict(os.environ)
    path = env.get('PYTHONPATH')
    env['PYTHONPATH'] = BENCH_DIR + (os.pathsep + path if path else '')
    env.pop('PYTHONSTARTUP', None)
    return env


# ---------------------------------------------------------------------------
# orchestrator side


class WorkerError(Exception):
    pass


class WorkerDied(WorkerError):
    pass


def describe_exit(rc):
    if rc is None:
        return 'still running'
    if rc < 0:
        import signal
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f'signal {-rc}'
        return f'killed by {name}'
    return f'exit status {rc}'


class Worker:
    """A long-lived worker process for one implementation."""

    def __init__(self, impl, python=None, stderr=None):
        self.impl = impl
        self.proc = subprocess.Popen(
            [python or sys.executable, RUN_PY, '--worker', impl],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
            env=worker_env(), cwd=BENCH_DIR)
        self._buf = b''

    def alive(self):
        return self.proc.poll() is None

    def request(self, timeout=300.0, **msg):
        if not self.alive():
            raise WorkerDied(f'{self.impl} worker: '
                             f'{describe_exit(self.proc.returncode)}')
        try:
            self.proc.stdin.write((json.dumps(msg) + '\n').encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            self.proc.wait()
            raise WorkerDied(f'{self.impl} worker: '
                             f'{describe_exit(self.proc.returncode)}')
        line = self._readline(timeout)
        reply = json.loads(line)
        if not reply['ok']:
            raise WorkerError(reply['error'])
        return reply.get('value')

    def _readline(self, timeout):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b'\n' not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise WorkerDied(f'{self.impl} worker: no answer in '
                                 f'{timeout:.0f} s (killed)')
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.proc.wait()
                    raise WorkerDied(f'{self.impl} worker: '
                                     f'{describe_exit(self.proc.returncode)}')
                self._buf += chunk
        line, _, self._buf = self._buf.partition(b'\n')
        return line

    def stop(self):
        if self.alive():
            try:
                self.request(timeout=120, op='exit')
            except WorkerError:
                pass
        self.kill()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def run_fresh(key, params, timeout, python=None):
    """Run one sample of a fresh-process case; returns its value."""
    proc = subprocess.run(
        [python or sys.executable, RUN_PY, '--fresh', key, json.dumps(params)],
        capture_output=True, env=worker_env(), cwd=BENCH_DIR, timeout=timeout)
    for line in reversed(proc.stdout.decode().splitlines()):
        if line.startswith('{'):
            reply = json.loads(line)
            if reply.get('ok'):
                return reply['value']
    tail = proc.stderr.decode(errors='replace').strip().splitlines()[-3:]
    raise WorkerDied(f'{key}: {describe_exit(proc.returncode)}'
                     + (': ' + ' | '.join(tail) if tail else ''))
