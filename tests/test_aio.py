"""asyncio: Interpreter.acall(), Queue.aget() / Queue.aput(), and an
InterpreterPoolExecutor as an event loop's default executor."""

import asyncio
import contextvars
import functools
import os
import random
import threading

import pytest

import subinterpreters as interpreters
from subinterpreters import (
    ExecutionFailed, QueueEmpty, QueueFull, create_queue,
)
from subinterpreters import _aio, _core
from subinterpreters.executor import InterpreterPoolExecutor

import _defs  # noqa: F401  (importable in subinterpreters: see conftest)


def run(coro, timeout=60):
    """asyncio.run(coro), failing the test instead of hanging."""
    async def bounded():
        async with asyncio.timeout(timeout):
            return await coro
    return asyncio.run(bounded())


def open_fds():
    return len(os.listdir('/proc/self/fd'))


# -- functions sent to interpreters (stateless: they travel as code) ------

def digest(data):
    import hashlib
    return hashlib.sha256(data).hexdigest()


def fail(msg):
    raise ValueError(msg)


def spin():
    while True:
        pass


def stubborn():
    # Catches the first two interrupts and goes on.
    caught = 0
    while True:
        try:
            while True:
                pass
        except KeyboardInterrupt:
            caught += 1
            if caught > 2:
                raise


def meet(mine, theirs):
    # Returns only if the other side runs at the same time.
    mine.put('here')
    return theirs.get(timeout=20)


def put_later(q, value, delay):
    import time
    time.sleep(delay)
    q.put(value)


def produce(q, n):
    for i in range(n):
        q.put(i)


def stats(values):
    import statistics
    return statistics.fmean(values), statistics.median(values)


# -- acall --------------------------------------------------------------

def test_acall_gives_what_call_gives(new_interp):
    interp = new_interp()
    data = os.urandom(1000)
    assert run(interp.acall(digest, data)) == interp.call(digest, data)
    assert run(interp.acall(pow, 2, 10)) == 1024
    assert run(interp.acall(stats, values=[1, 2, 3, 10])) == (4.0, 2.5)

    with pytest.raises(ExecutionFailed) as sync:
        interp.call(fail, 'no')
    with pytest.raises(ExecutionFailed) as aio:
        run(interp.acall(fail, 'no'))
    assert type(aio.value) is type(sync.value)
    assert aio.value.excinfo.type.__name__ == 'ValueError'
    assert str(aio.value.excinfo.msg) == 'no'


def test_acall_argument_errors():
    interp = interpreters.create()
    with pytest.raises(TypeError, match='callable'):
        interp.acall()
    coro = interp.acall(lambda: None)  # a coroutine: nothing runs yet
    assert asyncio.iscoroutine(coro)
    coro.close()


def test_acalls_run_in_parallel(new_interp):
    a, b = new_interp(), new_interp()
    qa, qb = create_queue(), create_queue()

    async def main():
        return await asyncio.gather(a.acall(meet, qa, qb),
                                    b.acall(meet, qb, qa))
    assert run(main()) == ['here', 'here']


@pytest.mark.parametrize('func', [spin, stubborn])
def test_cancelling_acall_interrupts_the_call(new_interp, func):
    interp = new_interp()

    async def main():
        task = asyncio.create_task(interp.acall(func))
        while not interp.is_running():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The call has stopped when the cancellation arrives.
        assert not interp.is_running()
        return await interp.acall(pow, 3, 3)
    assert run(main()) == 27


def test_acall_from_an_event_loop_in_a_subinterpreter(new_interp):
    interp = new_interp()
    out = create_queue()
    interp.prepare_main(out=out)
    interp.exec("""if True:
        import asyncio
        import subinterpreters as interpreters
        from _defs import spam_returns_arg

        async def main():
            other = interpreters.create()
            try:
                results = await asyncio.gather(
                    other.acall(pow, 2, 8), asyncio.sleep(0, 'slept'))
            finally:
                other.close()
            await out.aput(results)
        asyncio.run(main())
        """)
    assert out.get(timeout=10) == [256, 'slept']


# -- aget / aput ------------------------------------------------------

def test_aget_waits_for_another_interpreter(new_interp):
    interp = new_interp()
    q = create_queue()

    async def main():
        interp.call_in_thread(put_later, q, {'k': [1, 2]}, 0.1)
        return await q.aget(timeout=20)
    assert run(main()) == {'k': [1, 2]}


def test_waiters_hold_no_thread_and_one_descriptor():
    fds = None
    q = create_queue()
    threads, fds_before = threading.active_count(), open_fds()

    async def main():
        nonlocal fds
        fds = open_fds()  # the loop's own descriptors are open now
        tasks = [asyncio.create_task(q.aget()) for _ in range(200)]
        await asyncio.sleep(0.05)
        during = threading.active_count() - threads, open_fds() - fds
        for i in range(200):
            q.put(i)
        return during, await asyncio.gather(*tasks)
    (more_threads, more_fds), got = run(main())
    assert more_threads == 0
    assert more_fds == 1          # one watch for 200 waiters
    assert got == list(range(200))  # oldest waiter first
    assert open_fds() == fds_before  # the watch is closed again
    assert not _aio._waiters
    assert _core._queue_refs(q.id) == 1


def test_timeouts_raise_queue_empty_and_full():
    q = create_queue(maxsize=1)

    async def main():
        with pytest.raises(QueueEmpty):
            await q.aget(timeout=0.05)
        with pytest.raises(QueueEmpty):
            await q.aget(timeout=0)
        await q.aput('x', timeout=0)
        with pytest.raises(QueueFull):
            await q.aput('y', timeout=0.05)
        with pytest.raises(QueueFull):
            await q.aput('y', timeout=0)
        return await q.aget(timeout=0)
    assert run(main()) == 'x'


@pytest.mark.parametrize('bad, exc', [(-1, ValueError),
                                      (float('nan'), ValueError),
                                      ('1', TypeError)])
def test_bad_timeouts_are_refused_as_get_refuses_them(bad, exc):
    q = create_queue()
    with pytest.raises(exc) as sync:
        q.get(timeout=bad)
    with pytest.raises(exc) as aio:
        run(q.aget(timeout=bad))
    assert type(aio.value) is type(sync.value)
    with pytest.raises(exc):
        run(q.aput(1, timeout=bad))
    assert q.qsize() == 0


def test_aput_waits_for_room_and_sends_the_object_as_it_was():
    q = create_queue(maxsize=1)

    async def main():
        await q.aput('first')
        item = ['a']
        task = asyncio.create_task(q.aput(item))
        await asyncio.sleep(0.05)
        assert not task.done()
        item.append('changed after aput()')
        assert q.get_nowait() == 'first'
        await asyncio.wait_for(task, 10)
        return q.get_nowait()
    assert run(main()) == ['a']


def test_aput_refuses_what_put_refuses():
    q = create_queue()
    lock = threading.Lock()
    with pytest.raises(interpreters.NotShareableError):
        run(q.aput(lock))
    assert q.qsize() == 0


def test_cancelled_waiters_lose_no_item(new_interp):
    # Consumers give up at random moments (wait_for cancels them) while
    # another interpreter produces: every item is received exactly once
    # or still queued.
    interp = new_interp()
    q = create_queue()
    n = 400
    rng = random.Random(7)

    async def consumer(got):
        while len(got) < n:
            try:
                got.append(await asyncio.wait_for(q.aget(),
                                                  rng.random() * 0.002))
            except TimeoutError:
                pass
            await asyncio.sleep(0)

    async def main():
        got = []
        producer = interp.call_in_thread(produce, q, n)
        consumers = [asyncio.create_task(consumer(got)) for _ in range(8)]
        while producer.is_alive():
            await asyncio.sleep(0.01)
        while len(got) + q.qsize() < n:
            await asyncio.sleep(0.01)
        for c in consumers:
            c.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
        return got
    got = run(main())
    rest = []
    while not q.empty():
        rest.append(q.get_nowait())
    assert sorted(got + rest) == list(range(n))
    assert not _aio._waiters


def test_cancelled_waiter_passes_its_turn_on():
    q = create_queue()

    async def main():
        first = asyncio.create_task(q.aget())
        second = asyncio.create_task(q.aget())
        await asyncio.sleep(0.02)
        (waiters,) = _aio._waiters.values()
        entry = waiters.entries[0]
        q.put('only')
        while not entry.fut.done():  # first is woken...
            await asyncio.sleep(0)
        first.cancel()  # ...but cancelled before it could take the item
        with pytest.raises(asyncio.CancelledError):
            await first
        return await asyncio.wait_for(second, 10)
    assert run(main()) == 'only'


def test_destroying_the_queue_wakes_its_waiters():
    q = create_queue()

    async def main():
        task = asyncio.create_task(q.aget())
        await asyncio.sleep(0.02)
        _core._queue_destroy(q.id)
        with pytest.raises(interpreters.QueueNotFoundError):
            await asyncio.wait_for(task, 10)
    run(main())
    assert not _aio._waiters


def test_loops_in_two_threads_share_a_queue():
    q = create_queue()
    results = {}

    def loop_thread(name):
        async def main():
            return [await q.aget(timeout=20) for _ in range(50)]
        results[name] = asyncio.run(main())

    threads = [threading.Thread(target=loop_thread, args=(i,))
               for i in range(2)]
    for t in threads:
        t.start()
    for i in range(100):
        q.put(i)
    for t in threads:
        t.join(30)
    assert sorted(results[0] + results[1]) == list(range(100))


def test_aget_in_a_subinterpreter_loop_fed_by_main(new_interp):
    interp = new_interp()
    q_in, q_out = create_queue(), create_queue()
    interp.prepare_main(q_in=q_in, q_out=q_out)
    t = threading.Thread(target=interp.exec, args=("""if True:
        import asyncio
        async def main():
            total = 0
            while (x := await q_in.aget(timeout=20)) is not None:
                total += x
            await q_out.aput(total)
        asyncio.run(main())
        """,))
    t.start()
    for i in range(100):
        q_in.put(i)
    q_in.put(None)
    assert q_out.get(timeout=20) == sum(range(100))
    t.join(20)


# -- the pool as the loop's default executor ------------------------------

def test_pool_as_default_executor_runs_to_thread():
    async def main():
        loop = asyncio.get_running_loop()
        with InterpreterPoolExecutor(2) as pool:
            loop.set_default_executor(pool)
            a = await asyncio.to_thread(stats, [1, 2, 3, 10])
            b = await asyncio.to_thread(digest, data=b'abc')
            c = await loop.run_in_executor(None, digest, b'abc')
            ctx = contextvars.copy_context()
            d = await loop.run_in_executor(
                None, functools.partial(contextvars.Context.run, ctx,
                                        pow, 2, 5))
            # Other partials are not unwrapped.
            e = await loop.run_in_executor(
                None, functools.partial(pow, 3), 2)
            many = await asyncio.gather(*(asyncio.to_thread(pow, i, 2)
                                          for i in range(20)))
            return a, b == c == digest(b'abc'), d, e, many
    a, same, d, e, many = run(main())
    assert a == (4.0, 2.5)
    assert same
    assert (d, e) == (32, 9)
    assert many == [i * i for i in range(20)]


def test_unwrap_context_run_keeps_the_call():
    from subinterpreters.executor import _unwrap_context_run
    ctx = contextvars.copy_context()
    p = functools.partial(ctx.run, pow, 2, mod=5)
    assert _unwrap_context_run(p, (3,), {}) == (pow, (2, 3), {'mod': 5})
    p = functools.partial(contextvars.Context.run, ctx, pow, 2)
    assert _unwrap_context_run(p, (3,), {'mod': 4}) == \
        (pow, (2, 3), {'mod': 4})
    for p in (functools.partial(pow, 2), functools.partial(ctx.run),
              functools.partial(contextvars.Context.run, 1, pow)):
        assert _unwrap_context_run(p, (1,), {}) == (p, (1,), {})


# -- a real program, in a fresh process ------------------------------------

def test_asyncio_program_exits_cleanly(run_python):
    rc, out, err = run_python("""
        import asyncio, hashlib
        import subinterpreters as interpreters
        from subinterpreters.executor import InterpreterPoolExecutor

        def work(n):
            import hashlib
            h = b''
            for i in range(n):
                h = hashlib.sha256(h).digest()
            return h.hex()

        async def main():
            loop = asyncio.get_running_loop()
            loop.set_default_executor(InterpreterPoolExecutor(2))
            interp = interpreters.create()
            q = interpreters.create_queue()
            async def consume():
                return [await q.aget(timeout=30) for _ in range(4)]
            consumer = asyncio.create_task(consume())
            results = await asyncio.gather(
                interp.acall(work, 1000),
                *(asyncio.to_thread(work, 500 + i) for i in range(3)))
            for r in results:
                await q.aput(r)
            assert await consumer == results
            interp.close()
            print('ok', len(set(results)))
        asyncio.run(main())
        """, script=True)
    assert (rc, out, err) == (0, 'ok 4\n', '')
