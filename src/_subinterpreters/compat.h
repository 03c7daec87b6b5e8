/* compat.h -- every CPython version guard of the project lives here.
 *
 * Each shim names the CPython change it covers and when it can go.
 * No pycore_* header is included and no Py_BUILD_CORE is defined.
 */
#ifndef SBI_COMPAT_H
#define SBI_COMPAT_H

#include <Python.h>

#if PY_VERSION_HEX < 0x030C0000
#  error "subinterpreters needs CPython 3.12 or newer"
#endif

/* Opcode numbers: public <opcode.h> on 3.12 (defines them directly) and
 * 3.13+ (through opcode_ids.h).  Used to inspect bytecode in code.c. */
#include <opcode.h>

/* RETURN_CONST exists in 3.12 and 3.13 only (removed in 3.14). */
#ifdef RETURN_CONST
#  define SBI_HAVE_RETURN_CONST 1
#else
#  define SBI_HAVE_RETURN_CONST 0
#endif

/* LOAD_COMMON_CONSTANT (3.15) loads None and a few builtins from a table
 * of the interpreter, so "return None" compiles without LOAD_CONST.  The
 * table index of None is internal: code.c learns it by compiling "None".
 * (-1 where the opcode does not exist: no instruction matches it.) */
#ifndef LOAD_COMMON_CONSTANT
#  define LOAD_COMMON_CONSTANT (-1)
#endif

/* LOAD_FROM_DICT_OR_GLOBALS was added in 3.12 (class bodies). */
#ifndef LOAD_FROM_DICT_OR_GLOBALS
#  define LOAD_FROM_DICT_OR_GLOBALS (-1)
#endif

/* Per-interpreter at-exit callbacks.  3.13 made it public-unstable
 * (PyUnstable_AtExit); 3.12 exports the same function as _Py_AtExit from
 * cpython/pylifecycle.h.  Remove the 3.12 branch when 3.12 is dropped. */
#if PY_VERSION_HEX >= 0x030D0000
#  define sbi_compat_atexit PyUnstable_AtExit
#else
#  define sbi_compat_atexit _Py_AtExit
#endif

/* __main__ module of an interpreter: public-unstable in 3.13,
 * underscore-named in 3.12 (cpython/pystate.h).  Borrowed reference. */
#if PY_VERSION_HEX >= 0x030D0000
#  define sbi_compat_main_module PyUnstable_InterpreterState_GetMainModule
#else
#  define sbi_compat_main_module _PyInterpreterState_GetMainModule
#endif

/* PyWeakref_GetRef: added in 3.13 (gh-105927). */
#if PY_VERSION_HEX < 0x030D0000
static inline int
PyWeakref_GetRef(PyObject *ref, PyObject **pobj)
{
    if (ref == NULL || !PyWeakref_Check(ref)) {
        *pobj = NULL;
        PyErr_SetString(PyExc_TypeError, "expected a weakref");
        return -1;
    }
    PyObject *obj = PyWeakref_GetObject(ref);  // borrowed
    if (obj == Py_None) {
        *pobj = NULL;
        return 0;
    }
    *pobj = Py_NewRef(obj);
    return 1;
}
#endif

/* PyDict_GetItemRef: added in 3.13 (gh-106307). */
#if PY_VERSION_HEX < 0x030D0000
static inline int
PyDict_GetItemRef(PyObject *mp, PyObject *key, PyObject **result)
{
    PyObject *item = PyDict_GetItemWithError(mp, key);  // borrowed
    if (item != NULL) {
        *result = Py_NewRef(item);
        return 1;
    }
    *result = NULL;
    return PyErr_Occurred() ? -1 : 0;
}
static inline int
PyDict_GetItemStringRef(PyObject *mp, const char *key, PyObject **result)
{
    PyObject *k = PyUnicode_FromString(key);
    if (k == NULL) {
        *result = NULL;
        return -1;
    }
    int rc = PyDict_GetItemRef(mp, k, result);
    Py_DECREF(k);
    return rc;
}
#endif

/* PyImport_AddModuleRef: added in 3.13 (gh-105922). */
#if PY_VERSION_HEX < 0x030D0000
static inline PyObject *
PyImport_AddModuleRef(const char *name)
{
    PyObject *m = PyImport_AddModule(name);  // borrowed
    return Py_XNewRef(m);
}
#endif

/* PyLong_AsInt: public since 3.13 (gh-108014). */
#if PY_VERSION_HEX < 0x030D0000
#  define PyLong_AsInt _PyLong_AsInt
#endif

/* PyThreadState_GetUnchecked: public since 3.13; 3.12 has
 * _PyThreadState_UncheckedGet (cpython/pystate.h). */
#if PY_VERSION_HEX < 0x030D0000
#  define PyThreadState_GetUnchecked _PyThreadState_UncheckedGet
#endif

/* PyErr_FormatUnraisable: public since 3.13. */
#if PY_VERSION_HEX < 0x030D0000
#  define sbi_compat_write_unraisable(msg) PyErr_WriteUnraisable(NULL)
#else
#  define sbi_compat_write_unraisable(msg) PyErr_FormatUnraisable(msg)
#endif

/* Py_mod_gil (free-threading) exists from 3.13 (PEP 703). */
#ifdef Py_mod_gil
#  define SBI_HAVE_MOD_GIL 1
#else
#  define SBI_HAVE_MOD_GIL 0
#endif

/* Not a bug: time.sleep() raises the audit event "time.sleep" in 3.13
 * and later, not in 3.12.1 (measured); sleep.c, which replaces it in our
 * interpreters, does as the running release does. */
#if PY_VERSION_HEX >= 0x030D0000
#  define SBI_AUDIT_TIME_SLEEP 1
#else
#  define SBI_AUDIT_TIME_SLEEP 0
#endif

/* Not a CPython version: Linux has eventfd(2), one descriptor that
 * counts wake-ups (notify.c); elsewhere a pipe does the same. */
#ifdef __linux__
#  define SBI_HAVE_EVENTFD 1
#else
#  define SBI_HAVE_EVENTFD 0
#endif

/* ---------------------------------------------------------------------
 * Shields against CPython bugs that crash real programs (shield.c applies
 * them).  Each is on for exactly the releases that need it.  Most work by
 * running Python source in the main interpreter once, before its first
 * subinterpreter exists: the state these bugs leave to whichever
 * interpreter touches it first is then owned by the main interpreter,
 * which outlives every subinterpreter.  The source catches the failures it
 * expects (a module the build lacks), so it never raises.
 */

/* One shield: on while first <= Py_Version < end.  Py_Version is the
 * running CPython, which may be another patch release than the headers
 * this was built with.  Every field but the range may be NULL. */
typedef struct {
    const char *bug;  // the CPython issue, "gh-NNNNNN"
    unsigned long first, end;
    const char *main_code;  // run once in the main interpreter
    const char *new_code;   // run in every new interpreter of ours
    const char *warning;    // a crash left: RuntimeWarning at first create()
} sbi_shield;

/* gh-136421, gh-136423: 3.13's _datetime sets up the static types behind
 * its C API (date, datetime, time, timedelta, tzinfo) in whichever
 * interpreter imports it first and tears them down when that interpreter
 * ends, while other interpreters still use them: two subinterpreters that
 * import datetime (sqlite3, email, urllib.request, ... import it) crash the
 * process at close() ("munmap_chunk(): invalid pointer", "double free").
 * Fixed in 3.14.0 (gh-136583: the types are set up at interpreter start);
 * not backported: 3.13.18 still crashes (measured).  Shield: the main
 * interpreter imports _datetime first. */
#if PY_VERSION_HEX >= 0x030D0000 && PY_VERSION_HEX < 0x030E0000
#  define SBI_SHIELD_DATETIME_TYPES                                           \
    {"gh-136421",                                                             \
     0x030D0000,                                                              \
     0x030E0000,                                                              \
     "try:\n    import _datetime\nexcept ImportError:\n    pass\n",           \
     NULL,                                                                    \
     NULL},
#else
#  define SBI_SHIELD_DATETIME_TYPES
#endif

/* gh-119450 (3.12 only): an isolated interpreter refuses a single-phase
 * extension module only after running its init function.  3.12's
 * _datetime and _decimal are single-phase (3.13 isolated them, gh-117398,
 * gh-117399) and their init readies process-global static types with
 * objects of the importing subinterpreter, freed when it ends: the next
 * import anywhere crashes ("double free or corruption").  A module the main
 * interpreter already loaded is refused before its init runs.  Every 3.12
 * release.  Shield: the main interpreter loads both first; subinterpreters
 * go on using _pydatetime and _pydecimal.  And as 3.12's _zoneinfo needs
 * _datetime's C API, it fails there with AttributeError instead of letting
 * zoneinfo fall back to pure Python: our isolated interpreters mark it
 * missing (legacy ones load _datetime from the main interpreter's copy). */
#if PY_VERSION_HEX < 0x030D0000
#  define SBI_SHIELD_SINGLE_PHASE                                             \
    {"gh-119450",                                                             \
     0x030C0000,                                                              \
     0x030D0000,                                                              \
     "for name in ('_datetime', '_decimal'):\n"                               \
     "    try:\n        __import__(name)\n"                                   \
     "    except ImportError:\n        pass\n",                               \
     "if isolated:\n"                                                         \
     "    import sys\n"                                                       \
     "    sys.modules.setdefault('_zoneinfo', None)\n",                       \
     NULL},
#else
#  define SBI_SHIELD_SINGLE_PHASE
#endif

/* gh-119450 again (every 3.12): the same early init runs for every
 * single-phase extension module an isolated interpreter tries to import
 * that no interpreter has loaded yet -- third-party ones (regex, msgspec,
 * ujson, psutil, cffi's _cffi_backend) and 3.12's own pyexpat, _ctypes,
 * readline, _curses...  Their C statics then point into the refusing
 * interpreter's memory, freed when it ends: measured on 3.12.1 with
 * CPython's own _xxsubinterpreters, a legacy and an isolated interpreter
 * importing regex, then msgspec, abort ("munmap_chunk(): invalid
 * pointer").  Shield: our isolated interpreters wrap
 * _imp.create_dynamic and refuse a module whose shared library is
 * single-phase (extmod.c reads its symbols; the library is not loaded)
 * with CPython's own ImportError, before anything runs.  3.13 refuses
 * before the init function runs. */
#if PY_VERSION_HEX < 0x030D0000
#  define SBI_REFUSE_SINGLE_PHASE 1
#else
#  define SBI_REFUSE_SINGLE_PHASE 0
#endif

/* 3.12 only (3.13 fixed it when gh-112175 moved the eval breaker to the
 * thread state): a thread waiting for a GIL asks *its own* interpreter's
 * threads to drop it (SET_GIL_DROP_REQUEST(waiter's interp)), so with a
 * GIL shared between interpreters -- a legacy interpreter and the main
 * one -- a thread running Python code in one keeps the GIL from threads
 * of the others until it blocks or returns.  Measured on 3.12.1 with
 * CPython's own _xxsubinterpreters: the main thread waited 3 s for a
 * legacy interpreter's 3 s loop.  Ctrl-C, interrupt() and exec(timeout=)
 * then wait as well (they need the GIL to deliver).  No workaround: the
 * drop request is private state; create(isolated=False) warns once. */
#if PY_VERSION_HEX < 0x030D0000
#  define SBI_LEGACY_GIL_WARNING                                              \
    "CPython 3.12: a thread running Python code in a legacy interpreter "     \
    "(isolated=False) keeps the GIL it shares with the main interpreter "     \
    "from the other interpreter's threads until it blocks or returns, and "   \
    "the other way round, so Ctrl-C, interrupt() and exec(timeout=) can "     \
    "wait for it (fixed in CPython 3.13, gh-112175)"
#else
#  define SBI_LEGACY_GIL_WARNING NULL
#endif

/* gh-119213 (fixed in 3.12.4 by gh-119331): a C function of an extension
 * module built with Argument Clinic creates the tuple of its keyword names
 * on its first call with keywords, in whichever interpreter makes it; once
 * that interpreter has ended, the process aborts at exit ("free(): invalid
 * pointer").  hashlib, hmac, secrets, gzip, zlib.compress(level=...),
 * pickle.dumps(protocol=...) and asyncio.run() all do it.  Shield: the
 * main interpreter makes that first call for every function and type of
 * the extension modules everyday code uses, with a keyword nothing takes,
 * which parses the arguments (creating the tuple) and raises TypeError
 * before any work is done; likewise the methods of one object of each
 * type users make (queues, hashes, compressors, picklers, sockets, asyncio
 * futures and tasks).  (asyncio is imported before _asyncio: on 3.12.1,
 * importing _asyncio first leaves asyncio.current_task() always None.)
 * Other extension modules stay exposed, so a RuntimeWarning at the first
 * create() names the release to upgrade to. */
#if PY_VERSION_HEX < 0x030D0000
#  define SBI_SHIELD_KEYWORD_PARSERS                                          \
    {"gh-119213",                                                             \
     0x030C0000,                                                              \
     0x030C04F0,                                                              \
     "import asyncio\n"                                                       \
     "def warm(f, *args):\n"                                                  \
     "    try:\n        f(*args, __subinterpreters_shield__=None)\n"          \
     "    except Exception:\n        pass\n"                                  \
     "for name in ('_asyncio', '_bisect', '_blake2', '_bz2', '_csv',\n"       \
     "             '_hashlib', '_heapq', '_json', '_lzma', '_md5',\n"         \
     "             '_multiprocessing', '_pickle', '_posixshmem', '_queue',\n" \
     "             '_random', '_sha1', '_sha2', '_sha3', '_socket',\n"        \
     "             '_sqlite3', '_ssl', '_statistics', '_struct', '_uuid',\n"  \
     "             'array', 'binascii', 'cmath', 'math', 'mmap', 'select',\n" \
     "             'unicodedata', 'zlib'):\n"                                 \
     "    try:\n        mod = __import__(name)\n"                             \
     "    except ImportError:\n        continue\n"                            \
     "    for attr in dir(mod):\n"                                            \
     "        obj = getattr(mod, attr, None)\n"                               \
     "        if type(obj).__name__ == 'builtin_function_or_method' or (\n"   \
     "                isinstance(obj, type) and obj.__module__ != "           \
     "'builtins'\n"                                                           \
     "                and not issubclass(obj, BaseException)):\n"             \
     "            warm(obj)\n"                                                \
     "import io\n"                                                            \
     "def instances():\n"                                                     \
     "    import _asyncio\n"                                                  \
     "    yield _asyncio.Future.__new__(_asyncio.Future)\n"                   \
     "    yield _asyncio.Task.__new__(_asyncio.Task)\n"                       \
     "    for expr in ('_queue.SimpleQueue()', '_random.Random()',\n"         \
     "                 '_bz2.BZ2Compressor()', '_bz2.BZ2Decompressor()',\n"   \
     "                 '_lzma.LZMACompressor()', "                            \
     "'_lzma.LZMADecompressor()',\n"                                          \
     "                 'zlib.compressobj()', 'zlib.decompressobj()',\n"       \
     "                 '_pickle.Pickler(io.BytesIO())',\n"                    \
     "                 '_pickle.Unpickler(io.BytesIO())', "                   \
     "'_blake2.blake2b()',\n"                                                 \
     "                 '_blake2.blake2s()', '_hashlib.new(\"sha256\")',\n"    \
     "                 'select.epoll()', '_socket.socket()'):\n"              \
     "        try:\n"                                                         \
     "            mod = __import__(expr.split('.', 1)[0])\n"                  \
     "            yield eval(expr, {mod.__name__: mod, 'io': io})\n"          \
     "        except Exception:\n"                                            \
     "            pass\n"                                                     \
     "for obj in instances():\n"                                              \
     "    for cls in type(obj).__mro__[:-1]:\n"                               \
     "        for meth in vars(cls).values():\n"                              \
     "            if type(meth).__name__ == 'method_descriptor':\n"           \
     "                warm(meth, obj)\n"                                      \
     "    if hasattr(type(obj), 'close'):\n"                                  \
     "        obj.close()\n"                                                  \
     "obj = None\n",                                                          \
     NULL,                                                                    \
     "this CPython release can crash at exit after a subinterpreter is "      \
     "the first to call a C function of an extension module with keyword "    \
     "arguments (gh-119213); subinterpreters prepares the standard "          \
     "library's common modules, but not other packages: upgrade to CPython "  \
     "3.12.4 or newer"},
#else
#  define SBI_SHIELD_KEYWORD_PARSERS
#endif

/* gh-113055, gh-113993: 3.12 never frees an isolated interpreter's object
 * arenas when it ends, and 3.13 only when no block in them is still
 * allocated, which never happens (immortal interned strings stay): each
 * destroyed interpreter keeps 1.5-2.5 MiB.  3.14 frees them.  arena.c
 * frees the arenas an ended interpreter of ours left, unless it may have
 * left objects in process-wide C state (see there); on by default,
 * SUBINTERPRETERS_RELEASE_ARENAS=0 turns it off.  Not on 3.12.0-3.12.3,
 * where every extension function's keyword tuple is such an object
 * (gh-119213, fixed in 3.12.4). */
#if PY_VERSION_HEX < 0x030E0000
#  define SBI_ARENA_RELEASE 1
#else
#  define SBI_ARENA_RELEASE 0
#endif
#define SBI_ARENA_RELEASE_FIRST 0x030C04F0

/* Modules of the standard library whose use in a subinterpreter can leave
 * its objects, or pointers into its memory, in process-wide state on
 * 3.12/3.13, so that an interpreter that imported one keeps its arenas.
 * faulthandler keeps the file of enable() and dump_traceback_later() in
 * _PyRuntime; _tracemalloc traces the whole process and keeps the file
 * names of the frames it saw; syslog keeps openlog()'s ident in a C
 * static; readline, _curses, _curses_panel and _tkinter keep callbacks and
 * windows in C statics (single-phase, so refused, but their init function
 * runs first); _ctypes hands C libraries pointers into objects (putenv()
 * keeps its argument; callbacks); CPython's own _interpreters,
 * _interpqueues and _interpchannels (_xx* on 3.12) keep cross-interpreter
 * data, buffers included, in process-wide registries. */
#define SBI_ARENA_UNSAFE_MODULES                                              \
  {                                                                           \
    "faulthandler", "_tracemalloc", "syslog", "readline", "_curses",          \
        "_curses_panel", "_tkinter", "_ctypes", "_interpreters",              \
        "_interpqueues", "_interpchannels", "_xxsubinterpreters",             \
        "_xxinterpchannels", "_xxinterpqueues", NULL                          \
  }

/* gh-95795, gh-116909 (fixed in 3.14 by gh-129824): the counter that gives
 * types their method-cache version tag is shared by all interpreters and
 * incremented without a lock, so two interpreters looking up attributes
 * of not yet tagged types at the same moment can give two types the same
 * tag, and then a lookup on one finds the other's attribute (seen: a new
 * pool worker failing to start with "descriptor 'close' for
 * '_io.BufferedReader' objects doesn't apply to a '_io.FileIO' object").
 * Shield: the main interpreter tags every class it has (the static types
 * every interpreter shares among them) before the first subinterpreter,
 * by looking each up once; run last, after the other shields' imports.
 * Types created later in subinterpreters remain exposed. */
#if PY_VERSION_HEX < 0x030E0000
#  define SBI_SHIELD_TYPE_TAGS                                                \
    {"gh-116909",                                                             \
     0x030C0000,                                                              \
     0x030E0000,                                                              \
     "seen = set()\n"                                                         \
     "todo = [object]\n"                                                      \
     "while todo:\n"                                                          \
     "    t = todo.pop()\n"                                                   \
     "    if id(t) in seen:\n"                                                \
     "        continue\n"                                                     \
     "    seen.add(id(t))\n"                                                  \
     "    try:\n"                                                             \
     "        type.__getattribute__(t, '__subinterpreters_shield__')\n"       \
     "    except AttributeError:\n"                                           \
     "        pass\n"                                                         \
     "    todo.extend(type.__subclasses__(t))\n",                             \
     NULL,                                                                    \
     NULL},
#else
#  define SBI_SHIELD_TYPE_TAGS
#endif

/* gh-129824, gh-127108, gh-116909 (3.12 and 3.13; fixed in 3.14): an
 * interpreter's start-up readies every static builtin type again and tags
 * types from counters shared without a lock, so interpreters starting at
 * the same moment damage each other's view of those types; one of them
 * then fails to start, its import of encodings broken ("interpreter
 * creation failed: failed to get the Python codec of the filesystem
 * encoding", seen under ASan on 3.12.1 when a pool started its two
 * workers).  Shield: our interpreters start one at a time, and a start
 * that fails is tried again, SBI_CREATE_TRIES times in all (a failure
 * that repeats is not this race). */
#if PY_VERSION_HEX < 0x030E0000
#  define SBI_SERIAL_CREATE 1
#  define SBI_CREATE_TRIES 2
#else
#  define SBI_SERIAL_CREATE 0
#  define SBI_CREATE_TRIES 1
#endif

/* gh-134604, gh-144172, gh-131566 (open in 3.15): tracemalloc is one
 * process-wide tracer.  tracemalloc.start() in two interpreters at once
 * installs its allocator hooks twice (measured on 3.12.1: both workers of
 * a pool then spin in nested tracemalloc_alloc_gil() for ever), and it
 * keeps the file names of every interpreter's frames, which dangle once
 * that interpreter ends (use-after-free at stop() or at exit).  No
 * workaround exists, so our interpreters refuse to import _tracemalloc
 * (and so tracemalloc) with an ImportError that says why; tracing from
 * the main interpreter still sees their allocations. */
#define SBI_SHIELD_TRACEMALLOC                                                \
  {"gh-134604",                                                               \
   0x030C0000,                                                                \
   0xFFFFFFFF,                                                                \
   NULL,                                                                      \
   "import sys\n"                                                             \
   "class _SubinterpretersNoTracemalloc:\n"                                   \
   "    @staticmethod\n"                                                      \
   "    def find_spec(name, path=None, target=None):\n"                       \
   "        if name == '_tracemalloc':\n"                                     \
   "            raise ImportError(\n"                                         \
   "                'tracemalloc cannot be used in a subinterpreter: it '\n"  \
   "                'traces the whole process, and CPython hangs or '\n"      \
   "                'crashes when subinterpreters start it or end while '\n"  \
   "                'it traces (gh-134604, gh-144172); start it in the '\n"   \
   "                'main interpreter, which then traces every '\n"           \
   "                'interpreter', name=name)\n"                              \
   "sys.meta_path.insert(0, _SubinterpretersNoTracemalloc)\n",                \
   NULL},

/* gh-158364 (fixed in 3.13.18, 3.14.10 and 3.15.2 as measured here; 3.12
 * is security-only and keeps it): sys._current_frames() walks the threads
 * of every interpreter and makes frame objects for the frames another
 * interpreter is running, from its own allocator; that interpreter frees
 * them later into its own (measured on 3.12.1 and 3.13.0: "free(): invalid
 * pointer" in a Dask worker, whose profiler samples every 10 ms while its
 * interpreter pool runs tasks).  Shield: in the main interpreter (before
 * its first subinterpreter) and in each of ours, sys._current_frames is
 * replaced by one that reports the current interpreter's threads only,
 * which is what the fix does.  No source: shield.c installs it. */
#define SBI_SHIELD_CURRENT_FRAMES                                             \
  {"gh-158364", 0x030C0000, 0x030D12F0, NULL, NULL, NULL},                    \
      {"gh-158364", 0x030E0000, 0x030E0AF0, NULL, NULL, NULL},                \
      {"gh-158364", 0x030F0000, 0x030F02F0, NULL, NULL, NULL},

#define SBI_SHIELDS                                                           \
  {                                                                           \
    SBI_SHIELD_DATETIME_TYPES SBI_SHIELD_SINGLE_PHASE                         \
        SBI_SHIELD_KEYWORD_PARSERS SBI_SHIELD_TYPE_TAGS                       \
            SBI_SHIELD_TRACEMALLOC SBI_SHIELD_CURRENT_FRAMES                  \
    {                                                                         \
      NULL, 0, 0, NULL, NULL, NULL                                            \
    }                                                                         \
  }

/* 3.12's threading._shutdown() asserts that the interpreter's _MainThread
 * still holds its tstate lock; in a subinterpreter that object belongs to
 * whichever session thread first imported threading, whose thread state
 * is long gone or is the keeper (deleted right before the end), so
 * Py_EndInterpreter prints an AssertionError.  We hand it a fresh held
 * lock before ending the interpreter.  3.13 tracks threads
 * with handles instead (gh-114271).  Remove with 3.12. */
#if PY_VERSION_HEX < 0x030D0000
#  define SBI_FIX_MAIN_THREAD_TSTATE_LOCK 1
#else
#  define SBI_FIX_MAIN_THREAD_TSTATE_LOCK 0
#endif

/* Run Python source in namespace ns of the current interpreter: a new
 * reference or NULL with an exception.  Not PyRun_String(): on every
 * release it starts by clearing the runtime's "unhandled
 * KeyboardInterrupt" flag (run_eval_code_obj() in pythonrun.c), so code
 * run in main by an atexit hook would make a program ended by Ctrl-C
 * exit with status 1 instead of dying by SIGINT (130 in a shell). */
static inline PyObject *
sbi_compat_run_string(const char *source, PyObject *ns)
{
    PyObject *code =
        Py_CompileString(source, "<subinterpreters>", Py_file_input);
    if (code == NULL) {
        return NULL;
    }
    PyObject *r = PyEval_EvalCode(code, ns, ns);
    Py_DECREF(code);
    return r;
}

/* 3.12 and 3.13 (fixed in 3.14 by gh-128130): whether the program ended
 * with an unhandled KeyboardInterrupt -- so that it dies by SIGINT (exit
 * status 130 in a shell) -- is one process-wide flag that every eval()
 * or PyRun_String() of any thread of any interpreter clears first
 * (run_eval_code_obj() in pythonrun.c).  After Ctrl-C, a thread of ours
 * that still ran eval() (functools' namedtuple, in an interrupted worker)
 * made the process exit with status 1 instead (measured on 3.13.0 with
 * gdb's watchpoint on the flag).  The exit hook sets it again through the
 * same door: a string evaluated with PyRun_String() that raises
 * KeyboardInterrupt sets it (called when subinterpreters'
 * _ended_by_ctrl_c() decided the program ends so).  Best effort: code run
 * after our hook (older atexit hooks, finalizers) can clear it again. */
static inline void
sbi_compat_reassert_sigint_exit(void)
{
#if PY_VERSION_HEX < 0x030E0000
    PyObject *exc = PyErr_GetRaisedException();
    PyObject *ns = PyDict_New();
    PyObject *r =
        ns ? PyRun_String("raise KeyboardInterrupt", Py_file_input, ns, ns)
           : NULL;
    Py_XDECREF(r);
    Py_XDECREF(ns);
    PyErr_Clear();
    PyErr_SetRaisedException(exc);
#endif
}

#endif /* SBI_COMPAT_H */
