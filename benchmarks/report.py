"""Tables, the issue-5 targets, RESULTS.md and the ratios chart.

Every ratio is ours ÷ the alternative, of time per operation (or of
bytes): below 1 means ours is faster (or smaller).  A target phrased as a
speed-up (ping-pong ≥ 100×) is checked on the inverse, alternative ÷ ours.
"""

import json
import os
import re

from _harness import (BENCH_DIR, fmt_bytes, fmt_rate, fmt_time, fmt_value)

RESULTS_MD = os.path.join(BENCH_DIR, 'RESULTS.md')
CHART_PNG = os.path.join(BENCH_DIR, 'ratios.png')


# ---------------------------------------------------------------------------
# lookups


def _group(results, name):
    for g in results:
        if g['name'] == name:
            return g
    return None


def _row(results, group, row):
    g = _group(results, group)
    return None if g is None else g['rows'].get(row)


def _stats(results, group, row):
    r = _row(results, group, row)
    return None if r is None else r['stats']


def _why_missing(results, group, *rows):
    g = _group(results, group)
    if g is None:
        return f'{group} not run'
    for name in rows:
        r = g['rows'].get(name)
        if r is None:
            return f'{group}/{name} not defined'
        if r['error']:
            return r['error']
        if not r['stats']:
            return f'{group}/{name}: no samples'
    return 'no data'


def row_ratio(group, name):
    """ours (the group's reference row) ÷ row ``name``, from medians."""
    ref = group['rows'].get(group['ref'])
    row = group['rows'].get(name)
    if name == group['ref'] or not ref or not row:
        return None
    if not ref['stats'] or not row['stats'] or not row['stats']['median']:
        return None
    return ref['stats']['median'] / row['stats']['median']


# ---------------------------------------------------------------------------
# targets: what each ratio must reach


def fmt_ratio(value):
    """Enough digits to tell 1.004 from 1 when a target is 1.0x."""
    if value is None:
        return '-'
    return f'{value:.3f}' if 0.1 <= value < 10 else f'{value:.3g}'


def _result(status, value, measured, note=''):
    return {'status': status, 'value': value, 'measured': measured,
            'note': note}


def _ratio_target(results, group, a, b, limit, what):
    sa, sb = _stats(results, group, a), _stats(results, group, b)
    if not sa or not sb:
        return _result('N/A', None, _why_missing(results, group, a, b))
    value = sa['median'] / sb['median']
    return _result('PASS' if value <= limit else 'MISS', value,
                   f'{fmt_ratio(value)}x ({fmt_time(sa["median"])} vs '
                   f'{fmt_time(sb["median"])} {what})')


def _speedup_target(results, group, a, b, limit, what):
    sa, sb = _stats(results, group, a), _stats(results, group, b)
    if not sa or not sb:
        return _result('N/A', None, _why_missing(results, group, a, b))
    value = sb['median'] / sa['median']
    return _result('PASS' if value >= limit else 'MISS', value,
                   f'{fmt_ratio(value)}x faster ({fmt_time(sa["median"])} vs '
                   f'{fmt_time(sb["median"])} {what})')


def _t_bandwidth(results):
    group = 'bytes_in_64MiB'
    sa, sb = _stats(results, group, 'ours'), _stats(results, group, 'memcpy')
    if not sa or not sb:
        return _result('N/A', None,
                       _why_missing(results, group, 'ours', 'memcpy'))
    size = _group(results, group)['size']
    value = sb['median'] / sa['median']
    sc = _stats(results, group, 'bytes_copy')

    def gbs(stats):
        return f'{size / stats["median"] / 1e9:.3g} GB/s'

    extra = f'; an allocating bytes() copy does {gbs(sc)}' if sc else ''
    return _result('PASS' if value >= 0.9 else 'MISS', value,
                   f'{fmt_ratio(value)}x ({gbs(sa)} vs memcpy {gbs(sb)}'
                   f'{extra})')


def _t_memoryview(results):
    group = 'memoryview'
    sa = _stats(results, group, 'ours_64MiB')
    sb = _stats(results, group, 'ours_1KiB')
    if not sa or not sb:
        return _result('N/A', None, _why_missing(results, group, 'ours_64MiB',
                                                 'ours_1KiB'))
    value = sa['median'] / sb['median']
    return _result('PASS' if value <= 1.5 else 'MISS', value,
                   f'64 MiB takes {fmt_ratio(value)}x the 1 KiB time '
                   f'({fmt_time(sa["median"])} vs {fmt_time(sb["median"])})',
                   'constant time = at most 1.5x the 1 KiB time')


def _t_cpu(results):
    g = _group(results, 'cpu_scaling')
    if g is None:
        return _result('N/A', None, 'cpu_scaling not run')
    d = {x['name']: x['stats'] for x in g['derived']}
    ours, proc = d.get('ours_speedup_2'), d.get('process_speedup_2')
    if not ours or not proc:
        return _result('N/A', None, _why_missing(
            results, 'cpu_scaling', 'ours_1', 'ours_2', 'process_1',
            'process_2'))
    o, p = ours['median'], proc['median']
    ok = o >= 1.9 and o >= 0.95 * p
    return _result('PASS' if ok else 'MISS', o,
                   f'{o:.3f} (ProcessPoolExecutor {p:.3f} in the same run)',
                   'equal = at least 0.95x ProcessPoolExecutor\'s')


def _t_rss_idle(results):
    groups = sorted((g for g in results if g['name'].startswith('rss_idle_')),
                    key=lambda g: int(g['name'].rsplit('_', 1)[1]))
    if not groups:
        return _result('N/A', None, 'rss_idle not run')
    parts, worst = [], None
    for g in groups:
        a, b = g['rows']['ours']['stats'], g['rows']['backport']['stats']
        if not a or not b:
            return _result('N/A', None, _why_missing(
                results, g['name'], 'ours', 'backport'))
        value = a['median'] / b['median']
        worst = value if worst is None else max(worst, value)
        parts.append(f'{g["name"].rsplit("_", 1)[1]}: {fmt_bytes(a["median"])}'
                     f' vs {fmt_bytes(b["median"])} = {fmt_ratio(value)}x')
    return _result('PASS' if worst <= 1.0 else 'MISS', worst,
                   '; '.join(parts), 'worst of the interpreter counts')


def _t_rss_cycles(results):
    group = 'rss_cycles'
    a, b = _stats(results, group, 'ours'), _stats(results, group, 'backport')
    if not a or not b:
        return _result('N/A', None,
                       _why_missing(results, group, 'ours', 'backport'))
    measured = (f'{fmt_bytes(a["median"])} vs {fmt_bytes(b["median"])} kept')
    if b['median'] <= 0:
        return _result('N/A', None, measured + ' (backport kept nothing)')
    value = a['median'] / b['median']
    return _result('PASS' if value <= 0.1 else 'MISS', value,
                   f'{fmt_ratio(value)}x ({measured})')


TARGETS = [
    ('call', 'call round trip <= 0.3x backport',
     lambda r: _ratio_target(r, 'call', 'ours', 'backport', 0.3,
                             'backport call(noop)')),
    ('exec', 'exec("pass") <= 0.3x backport',
     lambda r: _ratio_target(r, 'exec', 'ours', 'backport', 0.3, 'backport')),
    ('create_close', 'create+close <= 1.0x backport',
     lambda r: _ratio_target(r, 'create_close', 'ours', 'backport', 1.0,
                             'backport')),
    ('call_in_thread', 'call_in_thread+join <= 1.1x bare thread start+join',
     lambda r: _ratio_target(r, 'call_in_thread', 'ours', 'thread', 1.1,
                             'bare thread')),
    ('bytes_in_64MiB', '64 MiB bytes in >= 0.9x memcpy bandwidth',
     _t_bandwidth),
    ('memoryview', '64 MiB memoryview shared in constant time',
     _t_memoryview),
    ('queue_pingpong', 'queue ping-pong >= 100x backport',
     lambda r: _speedup_target(r, 'queue_pingpong', 'ours', 'backport', 100,
                               'per round trip, backport')),
    ('pool_tiny', 'pool tiny tasks >= 3x backport',
     lambda r: _speedup_target(r, 'pool_tiny', 'ours', 'backport', 3,
                               'per task, backport')),
    ('cpu_scaling', 'CPU speed-up with 2 workers >= 1.9 and equal to '
     'ProcessPoolExecutor\'s', _t_cpu),
    ('rss_idle', 'RSS per idle interpreter <= 1.0x backport', _t_rss_idle),
    ('rss_cycles', 'RSS kept after create+close cycles <= 0.1x backport',
     _t_rss_cycles),
    ('sync_lock', 'sync.Lock acquire+release <= 2x threading.Lock',
     lambda r: _ratio_target(r, 'sync_lock', 'ours', 'threads', 2.0,
                             'threading.Lock')),
    ('event_pingpong', 'sync.Event ping-pong across interpreters <= 1x '
     'threading.Event across threads',
     lambda r: _ratio_target(r, 'event_pingpong', 'ours', 'threads', 1.0,
                             'per round trip, threading.Event')),
    ('shdict_get', 'SharedDict get <= 3x a Lock-guarded dict',
     lambda r: _ratio_target(r, 'shdict_get', 'ours', 'locked', 3.0,
                             'Lock-guarded dict')),
    ('shdict_set', 'SharedDict set <= 3x a Lock-guarded dict',
     lambda r: _ratio_target(r, 'shdict_set', 'ours', 'locked', 3.0,
                             'Lock-guarded dict')),
    ('shdict_get_manager', 'SharedDict get >= 50x Manager().dict()',
     lambda r: _speedup_target(r, 'shdict_get', 'ours', 'manager', 50,
                               'Manager().dict()')),
    ('shdict_set_manager', 'SharedDict set >= 50x Manager().dict()',
     lambda r: _speedup_target(r, 'shdict_set', 'ours', 'manager', 50,
                               'Manager().dict()')),
]


def evaluate_targets(results, quick=False):
    out = []
    for tid, text, fn in TARGETS:
        res = fn(results)
        res.update(id=tid, target=text)
        out.append(res)
    return out


# ---------------------------------------------------------------------------
# text and markdown tables


def _cells(group, name, row):
    st = row['stats']
    if row['error']:
        return [row['label'], '-', '-', '-', '-', row['error']]
    if not st:
        return [row['label'], '-', '-', '-', '-', 'no samples']
    med = st['median']
    extra = ''
    size = group.get('size')
    if size == 'param':          # each row moves its own 'size' bytes
        size = row['params'].get('size')
    if group['unit'] == 's' and med > 0:
        if size:
            extra = f'{size / med / 1e9:.3g} GB/s'
        elif group.get('rate'):
            extra = fmt_rate(1 / med)
    ratio = row_ratio(group, name)
    return [row['label'], fmt_value(med, group['unit']),
            f'±{st["spread"] * 50:.0f}%', extra,
            '' if ratio is None else fmt_ratio(ratio),
            '' if row['n'] in (None, 1) else f'n={row["n"]}']


def _derived_cells(group, d):
    st = d['stats']
    if not st:
        return [d['label'], '-', '-', '', '', 'no data']
    if d.get('unit') == 'B':
        return [d['label'], fmt_bytes(st['median']), '', '', '', '']
    return [d['label'], f'{st["median"]:.3g}x',
            f'±{st["spread"] * 50:.0f}%', '', '', '']


def _load(group):
    load = group.get('loadavg')
    return f', load average {load[0]:.2f} at its start' if load else ''


HEAD = ['case', 'median/op', 'spread', 'rate', 'ours÷this', 'note']


def _relabel(text, data):
    """On 3.14+ the reference implementation is the standard library
    itself (benchmarks/_impls.py); its rows keep the key 'backport', but
    what is printed says 'stdlib'."""
    if data['meta']['backport']['detail'].startswith('stdlib'):
        return text.replace('backport', 'stdlib')
    return text


def text_tables(data):
    lines = ['Median per operation over the repetitions; spread = ±half of '
             '(max-min)/median;', 'ours÷this < 1 means ours is faster '
             '(or smaller).', '']
    for g in data['groups']:
        rows = [_cells(g, n, r) for n, r in g['rows'].items()]
        rows += [_derived_cells(g, d) for d in g['derived']]
        widths = [max(len(HEAD[i]), *(len(r[i]) for r in rows))
                  for i in range(len(HEAD))]
        widths[0] = min(widths[0], 64)
        lines.append(f'## {g["title"]}  [{g["name"]}]{_load(g)}')
        lines.append('  '.join(h.ljust(w) for h, w in zip(HEAD, widths))
                     .rstrip())
        for r in rows:
            lines.append('  '.join(c.ljust(w) if i == 0 else c.rjust(w)
                                   if i < 5 else c
                                   for i, (c, w) in enumerate(zip(r, widths)))
                         .rstrip())
        if g.get('note'):
            lines.append(f'   note: {g["note"]}')
        lines.append('')
    return _relabel('\n'.join(lines), data)


def text_targets(data):
    lines = [f'Targets (ours vs the backport on Python '
             f'{data["meta"]["python_version"]}):']
    for t in data['targets']:
        lines.append(f'  {t["status"]:4s}  {t["target"]}: {t["measured"]}'
                     + (f'  [{t["note"]}]' if t['note'] else ''))
    return _relabel('\n'.join(lines) + '\n', data)


def _md_escape(text):
    return text.replace('|', '\\|')


def markdown_section(data):
    m = data['meta']
    load = m.get('loadavg_before'), m.get('loadavg_after')
    out = [f'## Python {m["python_version"]} — {m["started"][:10]}', '',
           f'- subinterpreters {m.get("ours")} ({_git(m)}); '
           f'backport: {m["backport"]["status"]} ({m["backport"]["detail"]})',
           f'- {m["cpus"]} CPUs, {m["platform"]}; load average '
           f'{load[0]} before, {load[1]} after; {m["seconds"]:.0f} s'
           + (' (quick run)' if m.get('quick') else ''),
           '', '### Targets', '',
           '| | target | measured |', '| --- | --- | --- |']
    for t in data['targets']:
        out.append(f'| {t["status"]} | {_md_escape(t["target"])} | '
                   f'{_md_escape(t["measured"])}'
                   + (f' ({_md_escape(t["note"])})' if t['note'] else '')
                   + ' |')
    out += ['', '### Measurements', '',
            'Median per operation; spread = ±half of (max-min)/median over '
            'the repetitions; ours÷this < 1 means ours is faster (or '
            'smaller).', '']
    for g in data['groups']:
        out += [f'#### {g["title"]} (`{g["name"]}`){_load(g)}', '',
                '| ' + ' | '.join(HEAD) + ' |',
                '|' + ' --- |' * len(HEAD)]
        rows = [_cells(g, n, r) for n, r in g['rows'].items()]
        rows += [_derived_cells(g, d) for d in g['derived']]
        for r in rows:
            out.append('| ' + ' | '.join(_md_escape(c) for c in r) + ' |')
        if g.get('note'):
            out += ['', _md_escape(g['note'])]
        out.append('')
    text = _relabel('\n'.join(out), data)
    return text + f'\n<!-- bench-data: {json.dumps(chart_data(data))} -->'


def _git(meta):
    if meta.get('git_source') == 'build':
        return f'built from git {meta.get("git")}'
    return f'git {meta.get("git")} checked out at run time'


MD_HEADER = '''# Benchmark results

Written by `benchmarks/run.py` (`make bench`): one section per CPython,
each from one full run on the machine named in it.  Timings on shared
machines vary by 10-70% between runs, so read the same-run ratios, not the
absolute numbers.  Ratios are ours ÷ the alternative (time per operation,
or bytes): below 1 means `subinterpreters` is faster or smaller.  Each
section gives the load average: above the number of CPUs, other work
competed for the cores, and the CPU-scaling numbers then describe the
machine more than the package.

![ours ÷ alternative, and CPU scaling](ratios.png)
'''


def update_results_md(data, path=RESULTS_MD):
    """Replace (or add) this Python's section of RESULTS.md."""
    py = data['meta']['python']
    sections = {}
    if os.path.exists(path):
        text = open(path, encoding='utf-8').read()
        for m in re.finditer(r'<!-- bench:(\S+) begin -->\n(.*?)\n'
                             r'<!-- bench:\1 end -->', text, re.S):
            sections[m.group(1)] = m.group(2)
    sections[py] = markdown_section(data)
    order = sorted(sections, key=lambda v: tuple(int(x) for x in v.split('.')),
                   reverse=True)
    body = [MD_HEADER]
    for v in order:
        body.append(f'<!-- bench:{v} begin -->\n{sections[v]}\n'
                    f'<!-- bench:{v} end -->\n')
    with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(body))
    return path


# ---------------------------------------------------------------------------
# chart


def chart_data(data):
    """The compact numbers the chart needs, stored in RESULTS.md."""
    ratios = []
    cpu = {}
    for g in data['groups']:
        if g['name'] == 'cpu_scaling':
            for d in g['derived']:
                if d['name'].endswith('_vs_serial') and d['stats']:
                    cpu.setdefault(d['impl'], {})[d['workers']] = \
                        round(d['stats']['median'], 4)
            continue
        if g['name'] == 'memoryview':
            continue
        for name in g['rows']:
            r = row_ratio(g, name)
            if r is not None:
                ratios.append([g['name'], name, round(r, 5)])
    m = data['meta']
    return {'python': m['python_version'], 'date': m['started'][:10],
            'ratios': ratios, 'cpu': cpu}


def draw_chart(md_path=RESULTS_MD, png_path=CHART_PNG):
    """Redraw the chart from every section of RESULTS.md; returns the path,
    or None when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    runs = []
    if os.path.exists(md_path):
        for m in re.finditer(r'<!-- bench-data: (.*?) -->',
                             open(md_path, encoding='utf-8').read()):
            runs.append(json.loads(m.group(1)))
    runs.sort(key=lambda r: r['python'])
    labels = []
    # Benchmark order, from the run that has the most rows first.
    for run in sorted(runs, key=lambda r: -len(r['ratios'])):
        for g, name, _ in run['ratios']:
            if f'{g}: vs {name}' not in labels:
                labels.append(f'{g}: vs {name}')
    fig, (ax, ax2) = plt.subplots(
        1, 2, figsize=(14, max(6, 0.32 * len(labels) + 2)),
        gridspec_kw={'width_ratios': [2.2, 1]})
    height = 0.8 / max(1, len(runs))
    colors = ['tab:blue', 'tab:orange', 'tab:green', 'tab:purple']
    for i, run in enumerate(runs):
        values = {f'{g}: vs {n}': v for g, n, v in run['ratios']}
        ys = [k + i * height for k, lab in enumerate(labels)
              if lab in values]
        xs = [values[lab] for lab in labels if lab in values]
        ax.barh(ys, xs, height=height, color=colors[i % len(colors)],
                label=f'Python {run["python"]} ({run["date"]})')
        for y, x in zip(ys, xs):
            ax.annotate(f'{x:.3g}', (x, y), xytext=(3, 0),
                        textcoords='offset points', va='center', fontsize=6)
    ax.set_yticks([k + height * (len(runs) - 1) / 2
                   for k in range(len(labels))])
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale('log')
    ax.axvline(1.0, color='black', linewidth=1)
    ax.set_xlabel('ours ÷ alternative (time or bytes; < 1: ours better)')
    ax.set_title('subinterpreters vs alternatives, same run')
    ax.grid(axis='x', which='both', alpha=0.3)
    if runs:
        ax.legend(fontsize=8, loc='lower right')
    ax2.plot([0, 1, 2], [0, 1, 2], '--', color='grey', label='ideal')
    markers = {'ours': 'o-', 'process': 's--'}
    names = {'ours': 'subinterpreters pool', 'process': 'ProcessPoolExecutor'}
    for i, run in enumerate(runs):
        for impl, points in sorted(run['cpu'].items()):
            ws = sorted(int(w) for w in points)
            ax2.plot([0] + ws, [0] + [points[str(w)] if str(w) in points
                                      else points[w] for w in ws],
                     markers.get(impl, 'x-'), color=colors[i % len(colors)],
                     label=f'{names.get(impl, impl)}, {run["python"]}')
    ax2.set_xlim(0, 2.2)
    ax2.set_ylim(0, 2.2)
    ax2.set_xticks([0, 1, 2])
    ax2.set_xlabel('workers')
    ax2.set_ylabel('speed-up vs serial (same run)')
    ax2.set_title('CPU-bound scaling')
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8, loc='upper left')
    fig.tight_layout()
    fig.savefig(png_path, dpi=90)
    plt.close(fig)
    return png_path
