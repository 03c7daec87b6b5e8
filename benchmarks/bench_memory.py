"""Memory: RSS per idle interpreter, and RSS kept after create+close cycles.

Each sample runs in a fresh process (``Group.fresh``) that imports the
implementation, reads VmRSS from /proc/self/status, does the work, and
reads it again.  An "idle" interpreter is one that was created and ran
``exec("pass")`` once (so that nothing lazy is left unmeasured).  The
cycles measurement does one warm-up cycle first, so that one-time costs
(module imports, first-use caches) are not counted as kept memory.
"""

import gc

import _impls
from _harness import Group, Spec, case, rss_bytes


@case('rss_idle/ours', 'ours', 'subinterpreters: RSS per idle interpreter')
class RssIdleOurs:
    def __init__(self, count):
        self.mod = self._module()
        self.count = count
        self.interps = []

    def _module(self):
        return _impls.ours()

    def run(self, n):
        gc.collect()
        before = rss_bytes()
        for _ in range(self.count):
            interp = self.mod.create()
            interp.exec('pass')
            self.interps.append(interp)
        return (rss_bytes() - before) / self.count

    def close(self):
        pass    # the process exits right after the sample


@case('rss_idle/backport', 'backport', 'backport: RSS per idle interpreter')
class RssIdleBackport(RssIdleOurs):
    def _module(self):
        return _impls.backport()


@case('rss_cycles/ours', 'ours',
      'subinterpreters: RSS kept after {cycles} create+close')
class RssCyclesOurs:
    def __init__(self, cycles):
        self.mod = self._module()
        self.cycles = cycles

    def _module(self):
        return _impls.ours()

    def _cycle(self):
        interp = self.mod.create()
        interp.exec('pass')
        interp.close()

    def run(self, n):
        self._cycle()
        gc.collect()
        before = rss_bytes()
        for _ in range(self.cycles):
            self._cycle()
        gc.collect()
        return rss_bytes() - before

    def close(self):
        pass


@case('rss_cycles/backport', 'backport',
      'backport: RSS kept after {cycles} create+close')
class RssCyclesBackport(RssCyclesOurs):
    def _module(self):
        return _impls.backport()


def groups(quick):
    reps = 1 if quick else 3
    out = []
    for count in ((10,) if quick else (10, 50, 100)):
        p = {'count': count}
        out.append(Group(
            f'rss_idle_{count}', f'RSS per idle interpreter, {count} '
            'interpreters (fresh process)', [
                Spec('ours', 'rss_idle/ours', p),
                Spec('backport', 'rss_idle/backport', p),
            ], n=1, repeats=reps, unit='B', fresh=True, timeout=600))
    cycles = 20 if quick else 200
    p = {'cycles': cycles}
    out.append(Group(
        'rss_cycles', f'RSS kept after {cycles} create+close cycles '
        '(fresh process)', [
            Spec('ours', 'rss_cycles/ours', p),
            Spec('backport', 'rss_cycles/backport', p),
        ], n=1, repeats=reps, unit='B', fresh=True, timeout=600,
        derive=lambda r: _per_cycle(r, cycles)))
    return out


def _per_cycle(result, cycles):
    out = []
    for name, row in result['rows'].items():
        stats = row.get('stats')
        out.append({'name': f'{name}_per_cycle',
                    'label': f'{row["label"]}: per cycle',
                    'unit': 'B',
                    'stats': None if not stats else {
                        k: (v / cycles if k in ('median', 'min', 'max')
                            else v)
                        for k, v in stats.items() if k != 'samples'}})
    return out
