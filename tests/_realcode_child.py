"""One case of the real-code matrix, run as its own process.

    python _realcode_child.py exec|call|pool SNIPPET
    python _realcode_child.py modules MODULE [MODULE ...]

exec, call: two live subinterpreters run the snippet of _realcode_defs
(through exec() and through call()), then both are closed.  pool: a
2-worker InterpreterPoolExecutor runs it twice with overlapping tasks.
modules: two live subinterpreters import every MODULE, then both close.
Afterwards the snippet runs in the main interpreter (last, so the main
interpreter imported nothing first) and one JSON line is printed:
{"results": [...], "expected": ..., "errors": [[type, message], ...]}.
The parent checks the exit code, stderr and this line.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import subinterpreters as interpreters  # noqa: E402


def describe(exc):
    """(type name, message) of what the user got, looking through
    ExecutionFailed at the exception raised in the interpreter."""
    if isinstance(exc, interpreters.ExecutionFailed):
        info = exc.excinfo
        return [info.type.__name__, str(info.msg)]
    return [type(exc).__name__, str(exc)]


def new_interp():
    interp = interpreters.create()
    interp.exec(f"import sys; sys.path[:] = {sys.path!r}")
    return interp


def main_result():
    import __main__
    return __main__.result


def run_pair(mode, name):
    import _realcode_defs as defs
    interps = [new_interp(), new_interp()]
    results, errors = [], []
    for interp in interps:
        try:
            if mode == 'exec':
                interp.exec("import _realcode_defs\n"
                            f"result = _realcode_defs.run({name!r})\n")
                results.append(interp.call(main_result))
            else:
                results.append(interp.call(defs.run, name))
        except Exception as exc:
            errors.append(describe(exc))
    for interp in interps:
        interp.close()
    return results, errors


def run_pool(name):
    import _realcode_defs as defs
    results, errors = [], []
    with interpreters.InterpreterPoolExecutor(2) as pool:
        futures = [pool.submit(defs.overlapping, name) for _ in range(2)]
        for fut in futures:
            try:
                results.append(fut.result(timeout=120))
            except Exception as exc:
                errors.append(describe(exc))
    return results, errors


def run_modules(names):
    interps = [new_interp(), new_interp()]
    errors = []
    for name in names:
        for interp in interps:
            try:
                interp.exec(f"import {name}")
            except Exception as exc:
                errors.append([name, *describe(exc)])
    for interp in interps:
        interp.close()
    return errors


def main(argv):
    mode, names = argv[1], argv[2:]
    if mode == 'modules':
        errors = run_modules(names)
        print(json.dumps({'errors': errors}), flush=True)
        return
    (name,) = names
    if mode == 'pool':
        results, errors = run_pool(name)
    else:
        results, errors = run_pair(mode, name)
    import _realcode_defs as defs
    expected = defs.run(name)
    # JSON turns tuples into lists on both sides alike.
    print(json.dumps({'results': results, 'expected': expected,
                      'errors': errors}, default=repr), flush=True)


if __name__ == '__main__':
    main(sys.argv)
