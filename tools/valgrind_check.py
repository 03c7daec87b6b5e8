"""Read a valgrind memcheck log and decide whether our C code is clean.

Usage: python tools/valgrind_check.py LOGFILE

CPython does not free everything at exit (interned strings, objects made
while importing or creating an interpreter, ...), so with
PYTHONMALLOC=malloc a plain "python -c pass" already reports about 100 KB
"definitely lost".  tools/valgrind-python.supp hides the leaks that are
CPython's alone (runtime start-up, interpreter creation, interning); this
script sorts the rest:

* every memcheck error that is not a leak (invalid read/write, use of
  uninitialised memory, bad free, ...) fails the check;
* a "definitely lost" block fails the check when our code allocated it:
  walking the allocation stack up from malloc, a frame of ours (a source
  file under src/_subinterpreters/, or the _core*.so object) comes before
  any CPython entry point that runs other code on our behalf (calling
  Python, importing, compiling, unmarshalling, creating or ending an
  interpreter).  Blocks allocated inside such an entry point belong to
  CPython even when our code called it.

Prints a summary and the stacks of the offending records; exits 1 if
there are any.
"""

import os
import re
import sys

# A frame line: "   at 0x4841: malloc (in /usr/...so)" or
# "   by 0x5D6: sbi_lifecycle_create (lifecycle.c:461)".
FRAME = re.compile(r'^\s+(?:at|by) 0x[0-9A-Fa-f]+: (\S+) \((.*)\)$')

ALLOCATORS = re.compile(
    r'^(malloc|calloc|realloc|memalign|posix_memalign|aligned_alloc'
    r'|_?PyMem_\w+|_?PyObject_(Malloc|Calloc|Realloc|New|NewVar|GC_New'
    r'|GC_NewVar|GC_Resize)\w*|_PyObject_GC_\w+|gc_alloc|_Py_\w*[Aa]lloc'
    r'\w*|\w*_alloc|\w*_malloc|\w*_realloc|\w*_new_impl)$')

# CPython entry points that run other code (Python code, imports, the
# compiler, marshal, interpreter creation/teardown) or intern strings
# (the *String() dict/attribute functions intern their key, and interned
# strings of a subinterpreter are never freed on 3.12/3.13): what they
# allocate is CPython's business.
BOUNDARIES = re.compile(
    r'^(_?PyObject_(Call|Vectorcall|VectorcallTstate|CallMethod|CallFunction'
    r'|CallOneArg|CallNoArgs|CallObject)\w*|callmethod|object_vacall'
    r'|_PyObject_CallFunctionVa|_?PyEval_\w+|PyRun_\w+|_?PyImport_\w+'
    r'|Py_NewInterpreter\w*|Py_EndInterpreter|Py_Initialize\w*'
    r'|_?Py_Finalize\w*|PyMarshal_\w+|Py_CompileString\w*|_PyAST_\w+'
    r'|PyErr_Print\w*|PyErr_Display\w*|_?PyUnicode_Intern\w*'
    r'|PyDict_SetItemString|PyDict_GetItemString\w*|PyModule_Add\w*'
    r'|PyObject_(Get|Set|Has)AttrString\w*'
    r'|PyUnicode_InternFromString|_PyThreadState_Bind|pymain_\w+'
    r'|Py_RunMain|Py_BytesMain)$')

# Our C files, by name: valgrind often prints a frame as "file.c:line".
_C_FILES = sorted(
    name[:-2] for name in os.listdir(os.path.join(
        os.path.dirname(os.path.abspath(__file__)), '..', 'src',
        '_subinterpreters'))
    if name.endswith('.c'))
OURS_SOURCE = re.compile(r'(^|/)_subinterpreters/|^(%s)\.c:\d+$'
                         % '|'.join(map(re.escape, _C_FILES)))
OURS_OBJECT = re.compile(r'/_core\.cpython-[^/]*\.so$|/_core\.\w+\.so$')


def records(text):
    """Yield (header, frames) for every error or leak record."""
    text = re.sub(r'^==\d+== ?', '', text, flags=re.MULTILINE)
    for block in re.split(r'\n\s*\n', text):
        lines = block.strip('\n').splitlines()
        if not lines:
            continue
        frames = []
        for line in lines[1:]:
            m = FRAME.match(line)
            if m:
                frames.append((m.group(1), m.group(2)))
        if frames:
            yield lines[0].strip(), frames, block


def is_ours(func, where):
    if func.startswith('sbi_'):
        return True
    if where.startswith('in '):
        return bool(OURS_OBJECT.search(where[3:]))
    return bool(OURS_SOURCE.search(where))


def classify_leak(frames):
    """'ours' or 'cpython' for a leak's allocation stack."""
    for func, where in frames:
        if ALLOCATORS.match(func) and not is_ours(func, where):
            continue
        if is_ours(func, where):
            return 'ours'
        if BOUNDARIES.match(func):
            return 'cpython'
    return 'cpython'


def main(path):
    with open(path, encoding='utf-8', errors='replace') as f:
        text = f.read()
    bad = []
    leaks = {'ours': 0, 'cpython': 0}
    leak_bytes = {'ours': 0, 'cpython': 0}
    errors = 0
    for header, frames, block in records(text):
        if 'definitely lost' in header or 'possibly lost' in header \
                or 'indirectly lost' in header:
            if 'definitely lost' not in header:
                continue        # shown only with --show-leak-kinds=all
            kind = classify_leak(frames)
            leaks[kind] += 1
            m = re.match(r'([\d,]+) (?:\([\d,]+ direct, [\d,]+ indirect\) )?'
                         r'bytes', header)
            if m:
                leak_bytes[kind] += int(m.group(1).replace(',', ''))
            if kind == 'ours':
                bad.append(block)
        elif re.match(r'(Invalid|Conditional jump|Use of uninitialised'
                      r'|Syscall param|Mismatched|Source and destination'
                      r'|Argument|Jump to|Process terminating)', header):
            errors += 1
            bad.append(block)
    summary = re.search(r'ERROR SUMMARY: .*', text)
    print(f'valgrind_check: {path}')
    print(f'  {summary.group(0) if summary else "no ERROR SUMMARY line"}'
          ' (unsuppressed, as valgrind counts them)')
    print(f'  memory errors: {errors}')
    print(f'  definitely lost, allocated by CPython: {leaks["cpython"]} '
          f'records, {leak_bytes["cpython"]} bytes (not ours; ignored)')
    print(f'  definitely lost, allocated by our code: {leaks["ours"]} '
          f'records, {leak_bytes["ours"]} bytes')
    if not summary:
        print('  the log is incomplete (did valgrind crash?)')
        return 1
    for block in bad:
        print('\n' + block.strip('\n'))
    return 1 if bad else 0


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
