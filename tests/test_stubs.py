"""The type stubs describe the real API (checked with mypy)."""

import os
import subprocess
import sys
import textwrap

import pytest

import subinterpreters

SAMPLE = textwrap.dedent("""
    import threading
    import subinterpreters as interpreters

    def square(n: int) -> int:
        return n * n

    interp: interpreters.Interpreter = interpreters.create()
    interp.exec("x = 1", timeout=1.0)
    n: int = interp.call(square, 3)
    t: threading.Thread = interp.call_in_thread(square, 3)
    interp.prepare_main({"a": 1}, b=2)
    running: bool = interp.is_running()
    stopped: bool = interp.interrupt()
    unwound: bool = interp.interrupt(unwind=True)

    async def use_asyncio(q: interpreters.Queue) -> int:
        await q.aput(1, timeout=1.0)
        got = await q.aget(timeout=1.0)
        return await interp.acall(square, 3)
    q: interpreters.Queue = interpreters.create_queue(3)
    q.put(1, timeout=0.5)
    item = q.get(timeout=0.5)
    ok: bool = interpreters.is_shareable(1)
    ids: list[int] = [i.id for i in interpreters.list_all()]
    with interpreters.InterpreterPoolExecutor(2) as pool:
        fut = pool.submit(square, 2)
    try:
        pass
    except interpreters.ExecutionFailed as exc:
        info = exc.excinfo
    lock = interpreters.sync.Lock()
    with lock:
        held: bool = lock.locked()
    ev = interpreters.sync.Event()
    was_set: bool = ev.wait(0.1)
    barrier = interpreters.sync.Barrier(2, timeout=1.0)
    d = interpreters.SharedDict(a=1)
    d["b"] = [1, 2]
    total = d.incr("n", 2)
    plain: dict = d.copy()
    interp.close()
""")

BAD = textwrap.dedent("""
    import subinterpreters as interpreters
    interpreters.create().exec(42)
""")


def run_mypy(tmp_path, source):
    path = tmp_path / 'sample.py'
    path.write_text(source)
    return subprocess.run(
        [sys.executable, '-m', 'mypy', '--no-incremental',
         '--cache-dir', os.devnull, str(path)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300)


def test_stubs_are_installed():
    pkg = os.path.dirname(subinterpreters.__file__)
    for name in ('__init__.pyi', '_core.pyi', 'sync.pyi', 'py.typed'):
        assert os.path.exists(os.path.join(pkg, name)), name


@pytest.mark.timeout(300)
def test_sample_type_checks(tmp_path):
    proc = run_mypy(tmp_path, SAMPLE)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.timeout(300)
def test_misuse_is_reported(tmp_path):
    proc = run_mypy(tmp_path, BAD)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'exec' in proc.stdout
