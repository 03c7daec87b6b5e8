"""One Ctrl-C ends a program blocked on work in our interpreters.

Each case runs a real script in a child process, sends it one SIGINT once
it is blocked, and checks that it dies by that signal (as a Python
program ended by Ctrl-C does: the shell sees 130) without waiting for
the work, which would never end.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from _helpers import read_with_timeout

HANG_LIMIT = 30  # seconds: far above the prompt exit, only to catch a hang

SPIN = '''
import subinterpreters as interpreters
from subinterpreters import InterpreterPoolExecutor

def spin(*args):
    while True:
        pass
'''

CASES = {
    'pool_submit_result': '''
        with InterpreterPoolExecutor(1) as pool:
            fut = pool.submit(spin)
            ready()
            fut.result()
    ''',
    'pool_map': '''
        with InterpreterPoolExecutor(2) as pool:
            ready()
            list(pool.map(spin, range(6)))
    ''',
    'pool_without_with': '''
        pool = InterpreterPoolExecutor(2)
        futs = [pool.submit(spin) for _ in range(4)]
        ready()
        futs[0].result()
    ''',
    'call_in_thread_join': '''
        t = interpreters.create().call_in_thread(spin)
        ready()
        t.join()
    ''',
}


def run_and_interrupt(tmp_path, body):
    r, w = os.pipe()
    script = tmp_path / 'script.py'
    script.write_text(SPIN + textwrap.dedent(f'''
        import os, time
        def ready():
            time.sleep(0.3)          # let the work start
            os.write({w}, b'x')
        if __name__ == '__main__':
    ''') + textwrap.indent(textwrap.dedent(body), '    '))
    proc = subprocess.Popen([sys.executable, str(script)], pass_fds=(w,),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL)
    os.close(w)
    try:
        read_with_timeout(r, timeout=HANG_LIMIT)
    finally:
        os.close(r)
    time.sleep(0.2)
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=HANG_LIMIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f'still running {HANG_LIMIT} s after one Ctrl-C\n{err}')
    return proc.returncode, time.monotonic() - start, out, err


@pytest.mark.parametrize('case', sorted(CASES))
def test_one_ctrl_c_ends_the_program(tmp_path, case):
    rc, took, out, err = run_and_interrupt(tmp_path, CASES[case])
    assert rc == -signal.SIGINT, (rc, err)
    assert 'KeyboardInterrupt' in err
    assert 'Fatal Python error' not in err and 'Segmentation' not in err
    print(f'{case}: ended {took:.2f} s after SIGINT')


def test_normal_exit_still_waits_for_threads(run_python):
    # Without Ctrl-C, the program waits for a call_in_thread() thread, as
    # Python waits for non-daemon threads.
    rc, out, err = run_python('''
        import subinterpreters as interpreters
        def slow():
            import time
            time.sleep(0.5)
            print('thread done', flush=True)
        interpreters.create().call_in_thread(slow)
    ''', script=True)
    assert rc == 0, err
    assert out.strip() == 'thread done'


def test_exception_out_of_with_still_waits_for_tasks(run_python):
    # An ordinary exception leaving the with block waits for the running
    # task, as ThreadPoolExecutor does; only interrupts cancel.
    rc, out, err = run_python('''
        from subinterpreters import InterpreterPoolExecutor, SharedDict
        def slow(d):
            import time
            time.sleep(0.5)
            d['done'] = True
        if __name__ == '__main__':
            d = SharedDict()
            try:
                with InterpreterPoolExecutor(1) as pool:
                    pool.submit(slow, d)
                    raise ValueError('boom')
            except ValueError:
                pass
            print(d.get('done'))
    ''', script=True)
    assert rc == 0, err
    assert out.strip() == 'True'
