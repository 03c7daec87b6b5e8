"""Parallel CPU-bound Python with subinterpreters.

Counts the primes below a limit with deliberately naive pure-Python trial
division, split into two halves, and times three ways of running the two
halves:

  (a) one subinterpreter, the two halves one after the other;
  (b) two subinterpreters, one half each, in parallel (one thread each);
  (c) two plain threads in the main interpreter (they share one GIL).

Each subinterpreter has its own GIL, so (b) should take about half as long
as (a) and (c) on a machine with two free cores.  Every mode is measured
--repeat times, interleaved, and the best time is kept, because timings
drift on a busy machine.  All results must agree.

Run it with "make demo", or with a Python where subinterpreters is
installed:  python examples/demo.py [--limit N] [--repeat R]
"""

import argparse
import os
import sys
import threading
import time

import subinterpreters as interpreters

# About 1.5-2 s of work for the whole range on one core of the reference
# machine (2 cores, CPython 3.12/3.13).
DEFAULT_LIMIT = 700_000
BLOCK = 10_000


def count_primes(limit, part, nparts, block):
    """Count the primes n < limit in blocks part, part+nparts, ...

    The range is cut into blocks of `block` numbers and dealt out round-robin
    so that every part gets about the same amount of work.  Self-contained on
    purpose (no globals, closures or defaults, only builtins): a
    subinterpreter runs it from its code alone.
    """
    count = 0
    start = part * block
    step = nparts * block
    while start < limit:
        stop = start + block
        if stop > limit:
            stop = limit
        n = start
        if n < 2:
            n = 2
        while n < stop:
            if n < 4:
                count += 1
            elif n % 2:
                d = 3
                while d * d <= n:
                    if n % d == 0:
                        break
                    d += 2
                else:
                    count += 1
            n += 1
        start += step
    return count


def run_one_subinterpreter(interp, limit):
    # (a) both halves, one after the other, in the same subinterpreter.
    return [interp.call(count_primes, limit, part, 2, BLOCK) for part in (0, 1)]


def run_two_subinterpreters(interps, limit):
    # (b) one half per subinterpreter, each driven by its own thread.
    results = [None, None]
    errors = []

    def worker(part):
        try:
            results[part] = interps[part].call(
                count_primes, limit, part, 2, BLOCK)
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(part,))
               for part in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def run_two_threads(limit):
    # (c) one half per thread, both in the main interpreter.
    results = [None, None]

    def worker(part):
        results[part] = count_primes(limit, part, 2, BLOCK)

    threads = [threading.Thread(target=worker, args=(part,))
               for part in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def timed(func, *args):
    t0 = time.perf_counter()
    result = func(*args)
    return time.perf_counter() - t0, result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                        help="count primes below this (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="measurements per mode, best kept (default 3)")
    args = parser.parse_args(argv)
    limit, repeat = args.limit, max(1, args.repeat)

    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; "
          f"counting primes below {limit:,}, best of {repeat}")

    expected = count_primes(limit, 0, 1, BLOCK)  # reference, main interpreter

    modes = [
        ("(a) 1 subinterpreter, 2 halves in sequence", "a"),
        ("(b) 2 subinterpreters in parallel", "b"),
        ("(c) 2 threads in the main interpreter", "c"),
    ]
    best = {key: float("inf") for _, key in modes}
    ok = True

    interps = [interpreters.create(), interpreters.create()]
    try:
        # Warm up: the first call into an interpreter pays one-off costs.
        for interp in interps:
            interp.call(count_primes, 1000, 0, 1, BLOCK)

        for _ in range(repeat):
            runs = {
                "a": lambda: run_one_subinterpreter(interps[0], limit),
                "b": lambda: run_two_subinterpreters(interps, limit),
                "c": lambda: run_two_threads(limit),
            }
            for _, key in modes:
                elapsed, parts = timed(runs[key])
                best[key] = min(best[key], elapsed)
                if sum(parts) != expected:
                    print(f"MISMATCH in mode {key}: {parts} "
                          f"(sum {sum(parts)}) != {expected}")
                    ok = False
    finally:
        for interp in interps:
            interp.close()

    width = max(len(label) for label, _ in modes)
    print()
    print(f"{'mode':<{width}}  {'best (s)':>8}")
    print(f"{'-' * width}  {'-' * 8}")
    for label, key in modes:
        print(f"{label:<{width}}  {best[key]:8.3f}")
    print()
    print(f"primes below {limit:,}: {expected:,} "
          f"({'all modes agree' if ok else 'MODES DISAGREE'})")
    print(f"speed-up of (b) over (a): {best['a'] / best['b']:.2f}x")
    print(f"speed-up of (b) over (c): {best['c'] / best['b']:.2f}x")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
