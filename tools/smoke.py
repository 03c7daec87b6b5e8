"""Smoke run of the whole API, small enough for valgrind ("make valgrind").

Touches every part of the C core once or a few times: create/close,
exec/call/call_in_thread/prepare_main, exceptions and transfer failures,
interrupt() and exec(timeout=), queues across interpreters (blocking
and not, unbound items), nested interpreters, the pool, and process exit
with an interpreter still alive, a thread inside it and a blocked queue
waiter (the exit hook).  Exits 0 and prints "smoke ok" when every check
passes.

    python tools/smoke.py
"""

import threading
import time

import subinterpreters as interpreters
from subinterpreters import (ExecutionFailed, InterpreterError,
                             InterpreterNotFoundError, NotShareableError)


def square(x):
    return x * x


def relay(src, dst):
    dst.put(src.get(timeout=30))
    return 'moved'


def spin():
    while True:
        pass


class Unpicklable:
    def __reduce__(self):
        raise ValueError('no')


def check_basics():
    interp = interpreters.create()
    interp.exec('x = 40 + 2')
    assert interp.call(eval, 'x') == 42
    assert interp.call(square, 7) == 49
    assert interp.call(sorted, [3, 1, 2]) == [1, 2, 3]
    value = {'a': [1, 2.5, None], 'b': (b'x', 'é𝄞', 2**100), 'c': {1, 2},
             'd': frozenset('ab'), 'e': bytearray(b'yz'), 'f': 1 + 2j}
    assert interp.call(square.__class__(square.__code__, {}), 3) == 9
    assert interp.call(eval, 'v', {'v': value}) == value
    interp.prepare_main(a=1, b='two', c=(3.0, b'four', None))
    assert interp.call(eval, '(a, b, c)') == (1, 'two', (3.0, b'four', None))
    t = interp.call_in_thread(square, 5)
    t.join()
    assert interpreters.is_shareable((1, 'a', b'b'))
    assert not interpreters.is_shareable([1])
    assert interp in interpreters.list_all()
    assert interpreters.get_current().id == 0
    interp.close()
    try:
        interp.exec('pass')
    except InterpreterNotFoundError:
        pass
    else:
        raise AssertionError('exec after close')


def check_failures():
    interp = interpreters.create()
    try:
        interp.exec('raise ValueError("boom")')
    except ExecutionFailed as exc:
        assert exc.excinfo.type.__name__ == 'ValueError'
    try:
        interp.call(square, Unpicklable())
    except NotShareableError:
        pass
    try:
        interp.call(threading.Lock)
    except NotShareableError:
        pass
    try:
        interp.prepare_main(bad=[1])
    except NotShareableError:
        pass
    try:
        interp.exec('1 +')
    except (ExecutionFailed, SyntaxError):
        pass
    # interrupt() and exec(timeout=)
    timer = threading.Timer(0.2, interp.interrupt)
    timer.start()
    try:
        interp.call(spin)
    except ExecutionFailed as exc:
        assert exc.excinfo.type.__name__ == 'KeyboardInterrupt'
    timer.join()
    try:
        interp.exec('while True: pass', timeout=0.2)
    except TimeoutError:
        pass
    assert interp.interrupt() is False
    # close() refused while running
    t = threading.Thread(target=interp.exec,
                         args=('import time; time.sleep(0.5)',))
    t.start()
    while not interp.is_running():
        time.sleep(0.01)
    try:
        interp.close()
    except InterpreterError:
        pass
    t.join()
    interp.close()


def check_queues():
    a = interpreters.create()
    b = interpreters.create()
    q1 = interpreters.create_queue(maxsize=2)
    q2 = interpreters.create_queue()
    q1.put(('item', [1, 2]))
    assert b.call(relay, q1, q2) == 'moved'
    assert q2.get(timeout=5) == ('item', [1, 2])
    # blocking get in one interpreter, put from another
    t = b.call_in_thread(relay, q1, q2)
    a.prepare_main(q=q1)
    a.exec('q.put(b"from a")')
    t.join()
    assert q2.get(timeout=5) == b'from a'
    # unbound items: the putting interpreter goes away
    a.exec('q.put("gone", unbounditems=__import__("subinterpreters").UNBOUND)')
    a.close()
    assert q1.get(timeout=5) is interpreters.UNBOUND
    # full / empty
    q1.put_nowait(1)
    q1.put_nowait(2)
    try:
        q1.put_nowait(3)
    except interpreters.QueueFull:
        pass
    q1.get_nowait()
    q1.get_nowait()
    try:
        q1.get(timeout=0.05)
    except interpreters.QueueEmpty:
        pass
    b.close()


def check_nested_and_pool():
    outer = interpreters.create()
    outer.exec('import subinterpreters as I\n'
               'inner = I.create()\n'
               'r = inner.call(eval, "6 * 7")\n'
               'inner.close()\n')
    assert outer.call(eval, 'r') == 42
    outer.close()
    with interpreters.InterpreterPoolExecutor(max_workers=2) as pool:
        assert list(pool.map(square, range(6))) == [0, 1, 4, 9, 16, 25]
        future = pool.submit(square, Unpicklable())
        try:
            future.result()
        except Exception:
            pass


def take_until_interrupted(lock, started):
    try:
        started.set()
        lock.acquire()
    except KeyboardInterrupt:
        pass


def check_shared_state():
    # Sync primitives and SharedDict: created here and in an interpreter,
    # used from both, a wait ended by interrupt(), freed at the end.
    from subinterpreters import SharedDict, sync
    interp = interpreters.create()
    lock, ev, d = sync.Lock(), sync.Event(), SharedDict(a=[1, {2: 3}])
    interp.prepare_main(lock=lock, ev=ev, d=d)
    interp.exec('with lock:\n'
                '    d["b"] = (d["a"], frozenset({1.0, 2}))\n'
                '    d.incr("n", 5)\n'
                'ev.set()\n'
                'import subinterpreters.sync as s\n'
                'd["made_here"] = s.Condition(s.RLock())\n')
    assert ev.wait(10) and d['n'] == 5 and d['b'][1] == frozenset({1, 2})
    cond = d.pop('made_here')
    with cond:
        assert cond.wait(0.01) is False
    lock.acquire()
    started = sync.Event()
    t = interp.call_in_thread(take_until_interrupted, lock, started)
    assert started.wait(10)
    interp.interrupt()
    t.join()
    assert lock.locked()
    lock.release()
    b = sync.Barrier(2, timeout=5)
    t = interp.call_in_thread(b.wait)
    b.wait()
    t.join()
    interp.close()
    d.clear()


def leave_for_exit():
    # Left for the exit hook: a live interpreter with a thread that
    # finishes by itself, and one with a thread blocked on a queue.
    q = interpreters.create_queue()
    live = interpreters.create()
    live.prepare_main(q=q)
    live.exec('import threading, time\n'
              'def wait():\n'
              '    try:\n'
              '        q.get()\n'
              '    except Exception:\n'
              '        pass    # woken at exit: "shutting down"\n'
              'threading.Thread(target=time.sleep, args=(0.2,)).start()\n'
              'threading.Thread(target=wait).start()\n')
    return live, q


def main():
    check_basics()
    check_failures()
    check_queues()
    check_nested_and_pool()
    check_shared_state()
    keep = leave_for_exit()
    print('smoke ok', flush=True)
    return keep


if __name__ == '__main__':
    _keep = main()
