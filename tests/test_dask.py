"""Dask tasks on interpreter pools (subinterpreters.dask), against a real
LocalCluster of two worker processes on loopback.

make test installs dask and distributed from PyPI into the test venvs;
elsewhere these tests are skipped when they are missing.
"""

import pytest

pytest.importorskip('distributed')

from subinterpreters.dask import InterpreterPoolPlugin  # noqa: E402

# The client script: its functions and its class live in its __main__,
# so they reach the workers pickled by value, as users' code does.
CLIENT = r'''
import sys
import dask
from distributed import Client, LocalCluster
from subinterpreters.dask import InterpreterPoolPlugin


def collatz_steps(n):
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


def where(_=None):
    import subinterpreters
    return subinterpreters.get_current().id


def fail(x):
    raise KeyError(f'no such thing: {x}')


class Total:
    def __init__(self, value):
        self.value = value


def total(values):
    return Total(sum(values))


def report(name, value):
    print(name, value, flush=True)


if __name__ == '__main__':
    with LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                      host='127.0.0.1', dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.register_plugin(InterpreterPoolPlugin())
        with dask.annotate(executor='interpreters'):
            steps = client.map(collatz_steps, range(1, 2001))
            summed = client.submit(total, steps)   # depends on 2000 tasks
            places = client.map(where, range(8), pure=False)
            bad = client.submit(fail, 'x')
        expected = [collatz_steps(n) for n in range(1, 2001)]
        report('map', client.gather(steps) == expected)
        result = summed.result()
        report('dependency', (type(result).__name__, result.value ==
                              sum(expected)))
        report('in subinterpreters', all(client.gather(places)))
        try:
            bad.result()
        except KeyError as exc:
            report('error', repr(exc))
        # Not annotated: the default executor, as before.
        report('default', client.submit(where, pure=False).result())
    report('closed', True)
'''


@pytest.mark.timeout(300)
def test_tasks_run_on_interpreter_pools_of_a_local_cluster(run_python):
    rc, out, err = run_python(CLIENT, script=True, timeout=240)
    assert rc == 0, err
    assert out.splitlines() == [
        'map True',
        "dependency ('Total', True)",
        'in subinterpreters True',
        """error KeyError('no such thing: x')""",
        'default 0',
        'closed True',
    ], err
    # A worker that crashed would have been restarted by its nanny, and the
    # tasks recomputed: the results alone would not show it.
    assert 'Fatal Python error' not in err, err
    assert 'Restarting worker' not in err, err


def test_plugin_arguments():
    plugin = InterpreterPoolPlugin()
    assert (plugin.name, plugin.max_workers) == ('interpreters', None)
    plugin = InterpreterPoolPlugin(name='pool', max_workers=3)
    assert (plugin.name, plugin.max_workers) == ('pool', 3)
    with pytest.raises(TypeError):
        InterpreterPoolPlugin(name='')
    with pytest.raises(ValueError):
        InterpreterPoolPlugin(max_workers=0)


def test_plugin_pickles_for_the_workers():
    import pickle
    plugin = pickle.loads(pickle.dumps(InterpreterPoolPlugin('p', 2)))
    assert (plugin.name, plugin.max_workers) == ('p', 2)
