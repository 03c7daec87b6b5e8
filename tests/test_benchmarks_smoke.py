"""Smoke test for benchmarks/run.py, so that the benchmark suite does not rot.

Runs one cheap benchmark (exec) in quick mode in a subprocess, writing its
JSON to a temporary directory and never touching benchmarks/RESULTS.md or
ratios.png.  It does not need the backport (interpreters-pep-734): when
that is not installed, its rows must be reported as skipped, not fail.
"""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_PY = os.path.join(REPO, 'benchmarks', 'run.py')
HAVE_BACKPORT = importlib.util.find_spec('interpreters_backport') is not None


def run_bench(*args, timeout=90):
    proc = subprocess.run([sys.executable, RUN_PY, *args],
                          capture_output=True, text=True, timeout=timeout,
                          cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_list_names_every_benchmark():
    out = run_bench('--list')
    for name in ('create_close', 'exec', 'call', 'call_in_thread',
                 'bytes_in_64MiB', 'memoryview', 'queue_pingpong',
                 'pool_tiny', 'cpu_scaling', 'rss_idle_100', 'rss_cycles',
                 'sync_lock', 'event_pingpong', 'shdict_get', 'shdict_set',
                 'shdict_incr'):
        assert name in out.split(), name


@pytest.mark.timeout(120)
def test_quick_exec_benchmark(tmp_path):
    before = {p: os.path.getmtime(p) for p in (
        os.path.join(REPO, 'benchmarks', 'RESULTS.md'),
        os.path.join(REPO, 'benchmarks', 'ratios.png')) if os.path.exists(p)}
    out = run_bench('--quick', '--only', 'exec', '--out', str(tmp_path))
    assert 'exec("pass")' in out
    assert 'Targets (ours vs ' in out

    [json_file] = [p for p in tmp_path.iterdir() if p.suffix == '.json']
    data = json.loads(json_file.read_text())
    assert [g['name'] for g in data['groups']] == ['exec']
    rows = data['groups'][0]['rows']
    ours = rows['ours']
    assert ours['error'] is None
    assert ours['stats']['median'] > 0
    assert len(ours['stats']['samples']) == data['groups'][0]['repeats']
    backport = rows['backport']
    if data['meta']['backport']['status'] == 'ok':
        assert backport['stats']['median'] > 0
    else:
        assert backport['stats'] is None
        assert 'backport' in backport['error']
        if not HAVE_BACKPORT:
            assert data['meta']['backport']['status'] == 'missing'
    targets = {t['id']: t for t in data['targets']}
    assert targets['exec']['status'] in (
        ('PASS', 'MISS') if backport['stats'] else ('N/A',))
    assert targets['pool_tiny']['status'] == 'N/A'   # not run

    # A partial run must leave the committed summary alone.
    for path, mtime in before.items():
        assert os.path.getmtime(path) == mtime, path


SYNC_GROUPS = ['sync_lock', 'event_pingpong', 'shdict_get', 'shdict_set',
               'shdict_incr']


@pytest.mark.timeout(180)
def test_quick_sync_benchmarks(tmp_path):
    # bench_sync.py: every row (ours, threading, the Manager dict) runs,
    # and its targets are evaluated (PASS or MISS, never N/A).
    before = {p: os.path.getmtime(p) for p in (
        os.path.join(REPO, 'benchmarks', 'RESULTS.md'),
        os.path.join(REPO, 'benchmarks', 'ratios.png')) if os.path.exists(p)}
    out = run_bench('--quick', '--only', ','.join(SYNC_GROUPS), '--out',
                    str(tmp_path), timeout=170)
    assert 'sync.Lock acquire+release' in out

    [json_file] = [p for p in tmp_path.iterdir() if p.suffix == '.json']
    data = json.loads(json_file.read_text())
    assert [g['name'] for g in data['groups']] == SYNC_GROUPS
    for g in data['groups']:
        assert g['ref'] == 'ours'
        for name, row in g['rows'].items():
            assert row['error'] is None, (g['name'], name, row['error'])
            assert row['stats']['median'] > 0, (g['name'], name)
            assert len(row['stats']['samples']) == g['repeats']
    targets = {t['id']: t for t in data['targets']}
    for tid in ('sync_lock', 'event_pingpong', 'shdict_get', 'shdict_set',
                'shdict_get_manager', 'shdict_set_manager'):
        assert targets[tid]['status'] in ('PASS', 'MISS'), targets[tid]
    assert targets['exec']['status'] == 'N/A'          # not run

    for path, mtime in before.items():
        assert os.path.getmtime(path) == mtime, path
