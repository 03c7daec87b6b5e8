#!/usr/bin/env python3
"""What the shields against CPython bugs add to the first create().

    python benchmarks/shield_cost.py [--runs N]

Runs N fresh processes with the shields on and N with them off
(SUBINTERPRETERS_NO_SHIELDS=1), interleaved, each timing its first
create() and the RSS it added, and prints the medians and the difference.
On a CPython that needs no shield both columns measure the same thing.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r'''
import json, os, time
def rss():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
import subinterpreters
r0 = rss()
t0 = time.perf_counter()
interp = subinterpreters.create()
t1 = time.perf_counter()
r1 = rss()
interp.close()
print(json.dumps({'seconds': t1 - t0, 'rss': r1 - r0,
                  'shields': subinterpreters._core._shields()}))
'''


def sample(shields):
    env = dict(os.environ)
    env.pop('SUBINTERPRETERS_NO_SHIELDS', None)
    if not shields:
        env['SUBINTERPRETERS_NO_SHIELDS'] = '1'
    env['PYTHONWARNINGS'] = 'ignore::RuntimeWarning'
    out = subprocess.run([sys.executable, '-c', CHILD], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--runs', type=int, default=9)
    args = parser.parse_args()
    on, off = [], []
    for _ in range(args.runs):
        on.append(sample(True))
        off.append(sample(False))
    names = ', '.join(on[0]['shields']) or 'none needed'

    def med(samples, key):
        return statistics.median(s[key] for s in samples)

    t_on, t_off = med(on, 'seconds'), med(off, 'seconds')
    r_on, r_off = med(on, 'rss'), med(off, 'rss')
    print(f'Python {sys.version.split()[0]}: shields on: {names}')
    print(f'first create(): {t_on * 1e3:.1f} ms with shields, '
          f'{t_off * 1e3:.1f} ms without (+{(t_on - t_off) * 1e3:.1f} ms); '
          f'RSS +{r_on / 2**20:.1f} MiB vs +{r_off / 2**20:.1f} MiB '
          f'(+{(r_on - r_off) / 2**20:.1f} MiB); medians of {args.runs}')


if __name__ == '__main__':
    main()
