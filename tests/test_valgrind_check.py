"""tools/valgrind_check.py (the verdict of "make valgrind") on small
hand-made memcheck logs: CPython's leaks pass, ours and memory errors
fail.  Valgrind itself is not needed."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECK = os.path.join(ROOT, 'tools', 'valgrind_check.py')

HEADER = '''==1== Memcheck, a memory error detector
==1== Command: python tools/smoke.py
==1==
'''
FOOTER = '''==1== LEAK SUMMARY:
==1==    definitely lost: 1 bytes in 1 blocks
==1==
==1== ERROR SUMMARY: 1 errors from 1 contexts (suppressed: 9 from 9)
'''

CPYTHON_LEAK = '''==1== 44 bytes in 1 blocks are definitely lost in loss record 1 of 9
==1==    at 0x48417B4: malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==1==    by 0x49F8650: PyUnicode_New (unicodeobject.c:1329)
==1==    by 0x4942A63: _PyObject_VectorcallTstate (pycore_call.h:168)
==1==    by 0x49430EC: PyObject_CallMethod (call.c:645)
==1==    by 0x5D61450: format_exception (excinfo.c:52)
==1==    by 0x5D61450: sbi_excinfo_capture (excinfo.c:90)
==1==
'''

OUR_RAW_LEAK = '''==1== 123 bytes in 1 blocks are definitely lost in loss record 2 of 9
==1==    at 0x48417B4: malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==1==    by 0x4A00000: PyMem_RawMalloc (obmalloc.c:661)
==1==    by 0x5D6244C: sbi_xidata_new (xidata.c:1392)
==1==    by 0x494F4E7: method_vectorcall_NOARGS (descrobject.c:447)
==1==    by 0x48E060A: _PyEval_EvalFrameDefault (generated_cases.c.h:813)
==1==
'''

OUR_OBJECT_LEAK = '''==1== 43 bytes in 1 blocks are definitely lost in loss record 3 of 9
==1==    at 0x48417B4: malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==1==    by 0x493CF99: PyBytes_FromString (bytesobject.c:163)
==1==    by 0x5D6244C: Interpreter_is_running (interp_type.c:232)
==1==    by 0x48E060A: _PyEval_EvalFrameDefault (generated_cases.c.h:813)
==1==
'''

INVALID_READ = '''==1== Invalid read of size 8
==1==    at 0x4A11111: PyObject_Hash (object.c:100)
==1==    by 0x4A22222: PyDict_GetItem (dictobject.c:200)
==1==  Address 0x0 is not stack'd, malloc'd or (recently) free'd
==1==
'''


def run_check(tmp_path, *records, footer=FOOTER):
    log = tmp_path / 'memcheck.log'
    log.write_text(HEADER + ''.join(records) + footer)
    proc = subprocess.run([sys.executable, CHECK, str(log)],
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout


def test_cpython_leak_through_our_call_is_not_ours(tmp_path):
    rc, out = run_check(tmp_path, CPYTHON_LEAK)
    assert rc == 0, out
    assert 'allocated by CPython: 1 records, 44 bytes' in out
    assert 'allocated by our code: 0 records' in out


@pytest.mark.parametrize('record', [OUR_RAW_LEAK, OUR_OBJECT_LEAK])
def test_leak_allocated_by_our_code_fails(tmp_path, record):
    rc, out = run_check(tmp_path, CPYTHON_LEAK, record)
    assert rc == 1, out
    assert 'allocated by our code: 1 records' in out
    assert record.splitlines()[0].split('== ', 1)[1] in out


def test_memory_error_fails_even_inside_cpython(tmp_path):
    rc, out = run_check(tmp_path, INVALID_READ)
    assert rc == 1, out
    assert 'memory errors: 1' in out
    assert 'Invalid read of size 8' in out


def test_truncated_log_fails(tmp_path):
    rc, out = run_check(tmp_path, CPYTHON_LEAK, footer='')
    assert rc == 1, out
    assert 'incomplete' in out
