"""Moving bytes into an interpreter and back, and sharing a memoryview.

- in:  ours ``call(size, data)`` (the bytes are copied into the
  interpreter, which returns len(data)); backport ``prepare_main(data=...)``
  + ``exec("n = len(data)")``.
- round trip: ours ``call(echo, data)`` returns a copy; backport
  ``prepare_main`` + ``exec("q.put(data)")`` + ``q.get()`` on a
  ``syncobj=True`` queue (bytes are shareable, so no pickling).
- references: a plain memcpy into a preallocated, already touched
  bytearray (``dst[:] = src``) and ``bytes(memoryview(src))``, which has
  to allocate (and page-fault) the new object like any receiver does.
- memoryview: a memoryview of a 1 KiB and of a 64 MiB bytearray passed in,
  the interpreter reads len(mv); shared without copying, so the time must
  not depend on the size.
"""

import time

import _impls
import _tasks
from _harness import KiB, MiB, Group, Spec, case, fmt_size


def _payload(size):
    # Real bytes on real pages (bytes(size) could be lazily zero-mapped).
    return bytes(range(256)) * (size // 256) + bytes(size % 256)


# --- into the interpreter ---------------------------------------------------

@case('bytes_in/ours', 'ours', 'subinterpreters: call(size, data)')
class BytesInOurs:
    def __init__(self, size):
        self.interp = _impls.ours().create()
        self.data = _payload(size)

    def run(self, n):
        call, size, data = self.interp.call, _tasks.size, self.data
        t0 = time.perf_counter()
        for _ in range(n):
            call(size, data)
        elapsed = time.perf_counter() - t0
        assert call(size, data) == len(data)
        return elapsed

    def close(self):
        self.interp.close()


@case('bytes_in/backport', 'backport',
      'backport: prepare_main(data=data) + exec("n = len(data)")')
class BytesInBackport:
    def __init__(self, size):
        self.interp = _impls.backport().create()
        self.data = _payload(size)

    def run(self, n):
        prep, run, data = self.interp.prepare_main, self.interp.exec, \
            self.data
        t0 = time.perf_counter()
        for _ in range(n):
            prep(data=data)
            run('n = len(data)')
        return time.perf_counter() - t0

    def close(self):
        self.interp.close()


@case('memcpy/base', 'base', 'memcpy: dst[:] = src (preallocated)')
class Memcpy:
    def __init__(self, size):
        self.src = _payload(size)
        self.dst = bytearray(size)
        self.dst[:] = self.src      # touch every page once

    def run(self, n):
        src, dst = self.src, self.dst
        t0 = time.perf_counter()
        for _ in range(n):
            dst[:] = src
        return time.perf_counter() - t0

    def close(self):
        pass


@case('bytes_copy/base', 'base', 'bytes(memoryview(src)) (allocates)')
class BytesCopy:
    def __init__(self, size, times=1):
        self.src = memoryview(_payload(size))
        self.times = times

    def run(self, n):
        src = self.src
        t0 = time.perf_counter()
        for _ in range(n * self.times):
            bytes(src)
        return time.perf_counter() - t0

    def close(self):
        pass


# --- into the interpreter and back ------------------------------------------

@case('bytes_rt/ours', 'ours', 'subinterpreters: call(echo, data) -> copy')
class BytesRoundTripOurs(BytesInOurs):
    def run(self, n):
        call, echo, data = self.interp.call, _tasks.echo, self.data
        t0 = time.perf_counter()
        for _ in range(n):
            call(echo, data)
        elapsed = time.perf_counter() - t0
        assert call(echo, data) == data
        return elapsed


@case('bytes_rt/backport', 'backport',
      'backport: prepare_main + exec("q.put(data)") + q.get()')
class BytesRoundTripBackport:
    def __init__(self, size):
        self.interp = _impls.backport_interp(_impls.BACKPORT_QUEUE_MODULE)
        self.queue = _impls.backport_queue()
        self.interp.prepare_main(q=self.queue)
        self.data = _payload(size)

    def run(self, n):
        prep, run, get, data = self.interp.prepare_main, self.interp.exec, \
            self.queue.get, self.data
        t0 = time.perf_counter()
        for _ in range(n):
            prep(data=data)
            run('q.put(data)')
            get()
        elapsed = time.perf_counter() - t0
        prep(data=data)
        run('q.put(data)')
        assert get() == data
        return elapsed

    def close(self):
        self.interp.close()


# --- a shared memoryview ----------------------------------------------------

@case('memoryview/ours', 'ours', 'subinterpreters: call(size, mv)')
class MemoryviewOurs:
    def __init__(self, size):
        self.interp = _impls.ours().create()
        self.buf = bytearray(_payload(size))

    def run(self, n):
        call, size, mv = self.interp.call, _tasks.size, memoryview(self.buf)
        t0 = time.perf_counter()
        for _ in range(n):
            call(size, mv)
        elapsed = time.perf_counter() - t0
        assert call(size, mv) == len(self.buf)
        mv.release()
        return elapsed

    def close(self):
        self.interp.close()


@case('memoryview/backport', 'backport',
      'backport: prepare_main(mv=mv) + exec("n = len(mv)")')
class MemoryviewBackport:
    def __init__(self, size):
        # The backport shares a memoryview only with an interpreter that
        # has imported _interpreters (it registers the buffer type there).
        self.interp = _impls.backport_interp('_interpreters')
        self.buf = bytearray(_payload(size))

    def run(self, n):
        prep, run, mv = self.interp.prepare_main, self.interp.exec, \
            memoryview(self.buf)
        t0 = time.perf_counter()
        for _ in range(n):
            prep(mv=mv)
            run('n = len(mv)')
        elapsed = time.perf_counter() - t0
        run('del mv')
        mv.release()
        return elapsed

    def close(self):
        self.interp.close()


SIZES = (1 * KiB, 1 * MiB, 64 * MiB)


def groups(quick):
    out = []
    for size in SIZES:
        big = size >= 64 * MiB
        reps = (2 if big else 3) if quick else (5 if big else 7)
        n = 1 if big else None
        p = {'size': size}
        s = fmt_size(size)
        out.append(Group(
            f'bytes_in_{s.replace(" ", "")}', f'{s} of bytes into an '
            'interpreter', [
                Spec('ours', 'bytes_in/ours', p),
                Spec('backport', 'bytes_in/backport', p),
                Spec('memcpy', 'memcpy/base', p),
                Spec('bytes_copy', 'bytes_copy/base', p),
            ], n=n, repeats=reps, size=size,
            target=0.05 if quick else 0.2))
        out.append(Group(
            f'bytes_rt_{s.replace(" ", "")}', f'{s} of bytes into an '
            'interpreter and back', [
                Spec('ours', 'bytes_rt/ours', p),
                Spec('backport', 'bytes_rt/backport', p),
                Spec('bytes_copy_x2', 'bytes_copy/base', dict(p, times=2),
                     label='2 x bytes(memoryview(src)) (allocates)'),
            ], n=n, repeats=reps, size=size,
            target=0.05 if quick else 0.2))
    small, large = {'size': 1 * KiB}, {'size': 64 * MiB}
    out.append(Group(
        'memoryview', 'sharing a memoryview (1 KiB vs 64 MiB buffer)', [
            Spec('ours_64MiB', 'memoryview/ours', large,
                 'subinterpreters: call(size, mv), 64 MiB buffer'),
            Spec('ours_1KiB', 'memoryview/ours', small,
                 'subinterpreters: call(size, mv), 1 KiB buffer'),
            Spec('backport_64MiB', 'memoryview/backport', large,
                 'backport: prepare_main(mv=mv) + exec("n = len(mv)"), '
                 '64 MiB'),
            Spec('backport_1KiB', 'memoryview/backport', small,
                 'backport: prepare_main(mv=mv) + exec("n = len(mv)"), '
                 '1 KiB'),
            Spec('memcpy_64MiB', 'memcpy/base', large,
                 'memcpy of the 64 MiB buffer: dst[:] = src'),
        ], repeats=3 if quick else 7, target=0.05 if quick else 0.2,
        size='param',
        note='Ratios here are against ours_64MiB; ours_1KiB shows the size '
             'independence (ratio ~1 means constant time); "rate" is the '
             'bandwidth a copy would need to match.'))
    return out
