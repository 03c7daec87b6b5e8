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
import os
import subinterpreters as interpreters
from subinterpreters import InterpreterPoolExecutor

def spin(*args):
    os.write(READY_FD, b'x')        # running now (the fd is the process's)
    while True:
        pass

def spin_then_eval(*args):
    # eval() in another thread after the main thread's KeyboardInterrupt
    # cleared 3.12/3.13's "ended by Ctrl-C" flag (exit status 1 then).
    try:
        spin()
    except KeyboardInterrupt:
        eval('1 + 1')
        raise
'''

# case -> (body of the script's main block, how many tasks must be running)
CASES = {
    'pool_submit_result': ('''
        with InterpreterPoolExecutor(1) as pool:
            pool.submit(spin).result()
    ''', 1),
    'pool_map': ('''
        with InterpreterPoolExecutor(2) as pool:
            list(pool.map(spin, range(6)))
    ''', 2),
    'pool_without_with': ('''
        pool = InterpreterPoolExecutor(2)
        futs = [pool.submit(spin) for _ in range(4)]
        futs[0].result()
    ''', 2),
    'call_in_thread_join': ('''
        interpreters.create().call_in_thread(spin).join()
    ''', 1),
    'call_in_thread_eval': ('''
        interpreters.create().call_in_thread(spin_then_eval).join()
    ''', 1),
}


def run_and_interrupt(tmp_path, body, running):
    r, w = os.pipe()
    script = tmp_path / 'script.py'
    script.write_text(f'READY_FD = {w}\n' + SPIN + '\nif __name__ == "__main__":\n'
                      + textwrap.indent(textwrap.dedent(body), '    '))
    proc = subprocess.Popen([sys.executable, str(script)], pass_fds=(w,),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL)
    os.close(w)
    try:
        for _ in range(running):
            read_with_timeout(r, timeout=HANG_LIMIT)
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=HANG_LIMIT)
    except BaseException:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f'no prompt end after one Ctrl-C\n{err}')
    finally:
        os.close(r)
    return proc.returncode, time.monotonic() - start, out, err


@pytest.mark.parametrize('case', sorted(CASES))
def test_one_ctrl_c_ends_the_program(tmp_path, case):
    rc, took, out, err = run_and_interrupt(tmp_path, *CASES[case])
    assert rc == -signal.SIGINT, (rc, err)
    assert took < 10, took          # measured: under 0.1 s
    assert 'KeyboardInterrupt' in err
    assert 'Fatal Python error' not in err and 'Segmentation' not in err
    print(f'{case}: ended {took:.2f} s after SIGINT')


def test_normal_exit_still_waits_for_threads(run_python):
    # Without Ctrl-C -- or with one the program caught -- the program
    # waits for a call_in_thread() thread, as Python waits for non-daemon
    # threads.
    rc, out, err = run_python('''
        import subinterpreters as interpreters
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            pass
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
