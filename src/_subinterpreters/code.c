/* code.c -- bytecode inspection: is a function stateless (3.14's
 * definition: no closure, no defaults, no globals but builtins and
 * modules), is a code object a script (no arguments, no free variables,
 * returns only None)?
 *
 * co_code (PyCode_GetCode) is the unspecialised bytecode with inline
 * caches zeroed, so a linear walk of 2-byte units sees every instruction;
 * cache units decode as opcode 0 (CACHE), which we ignore.
 *
 * And the per-interpreter caches that make shipping code cheap: code
 * marshalled once per code object, unmarshalled once per token, exec()
 * sources compiled once, verdicts on functions.
 *
 * Calls state.c (layers: docs/design.md).
 */
#include "code.h"
#include "state.h"
#include "tuning.h"
#include <marshal.h>

typedef struct {
    int op;
    int arg;
} instr;

/* Decode the instructions of code into a new PyMem array.  Returns the
 * count, or -1 with an exception set. */
static Py_ssize_t
code_instrs(PyObject *code, instr **out)
{
    PyObject *raw = PyCode_GetCode((PyCodeObject *)code);
    if (raw == NULL) {
        return -1;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(raw) / 2;
    const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(raw);
    instr *ins = PyMem_Malloc(sizeof(instr) * (n ? n : 1));
    if (ins == NULL) {
        Py_DECREF(raw);
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t count = 0;
    uint32_t ext = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int op = b[2 * i];
        uint32_t arg = b[2 * i + 1] | ext;
        if (op == EXTENDED_ARG) {
            ext = (arg << 8) & 0x7fffffffu;
            continue;
        }
        ext = 0;
        ins[count].op = op;
        ins[count].arg = (int)(arg & 0x7fffffffu);
        count++;
    }
    Py_DECREF(raw);
    *out = ins;
    return count;
}

static PyObject *
code_attr_tuple(PyObject *code, const char *name)
{
    PyObject *t = PyObject_GetAttrString(code, name);
    if (t != NULL && !PyTuple_Check(t)) {
        Py_DECREF(t);
        PyErr_Format(PyExc_TypeError, "%s is not a tuple", name);
        return NULL;
    }
    return t;
}

/* Check that code (and nested code) reads no name bound in globals and
 * writes no global.  1 ok, 0 not (*bad set to a new ref of the name), -1
 * error. */
static int
code_uses_no_globals(PyObject *code, PyObject *globals, PyObject **bad,
                     int depth)
{
    int rc = -1;
    instr *ins = NULL;
    PyObject *names = NULL;
    PyObject *consts = NULL;
    if (depth > 50) {
        return 0;
    }
    Py_ssize_t n = code_instrs(code, &ins);
    if (n < 0) {
        goto done;
    }
    names = code_attr_tuple(code, "co_names");
    consts = code_attr_tuple(code, "co_consts");
    if (names == NULL || consts == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        int op = ins[i].op;
        Py_ssize_t idx;
        if (op == LOAD_GLOBAL) {
            idx = ins[i].arg >> 1;
        }
        else if (op == STORE_GLOBAL || op == DELETE_GLOBAL ||
                 op == LOAD_NAME || op == STORE_NAME || op == DELETE_NAME ||
                 op == LOAD_FROM_DICT_OR_GLOBALS)
        {
            idx = ins[i].arg;
        }
        else {
            continue;
        }
        if (idx < 0 || idx >= PyTuple_GET_SIZE(names)) {
            continue;
        }
        PyObject *name = PyTuple_GET_ITEM(names, idx);  // borrowed
        // As 3.14: a name bound in the function's globals is a global
        // (even if a builtin has that name, like __name__); others are
        // builtins or unknown, which the target resolves itself.
        int bad_name = op != LOAD_GLOBAL && op != LOAD_NAME &&
                       op != LOAD_FROM_DICT_OR_GLOBALS;
        if (!bad_name) {
            bad_name = PyDict_Contains(globals, name);
            if (bad_name < 0) {
                goto done;
            }
        }
        if (bad_name) {
            *bad = Py_NewRef(name);
            rc = 0;
            goto done;
        }
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(consts); i++) {
        PyObject *c = PyTuple_GET_ITEM(consts, i);  // borrowed
        if (PyCode_Check(c)) {
            int sub = code_uses_no_globals(c, globals, bad, depth + 1);
            if (sub <= 0) {
                rc = sub;
                goto done;
            }
        }
    }
    rc = 1;
done:
    PyMem_Free(ins);
    Py_XDECREF(names);
    Py_XDECREF(consts);
    return rc;
}

static int
code_int_attr(PyObject *code, const char *name, long *out)
{
    PyObject *v = PyObject_GetAttrString(code, name);
    if (v == NULL) {
        return -1;
    }
    *out = PyLong_AsLong(v);
    Py_DECREF(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

/* 1 if code has free variables (it is or needs a closure). */
static int
code_has_freevars(PyObject *code)
{
    PyObject *fv = PyCode_GetFreevars((PyCodeObject *)code);
    if (fv == NULL) {
        return -1;
    }
    int has = PyTuple_GET_SIZE(fv) > 0;
    Py_DECREF(fv);
    return has;
}

/* Arguments, *args or **kwargs?  1 yes, 0 no, -1 error. */
static int
code_takes_args(PyObject *code)
{
    long argc, kwonly, flags;
    if (code_int_attr(code, "co_argcount", &argc) < 0 ||
        code_int_attr(code, "co_kwonlyargcount", &kwonly) < 0 ||
        code_int_attr(code, "co_flags", &flags) < 0)
    {
        return -1;
    }
    return argc > 0 || kwonly > 0 || (flags & (CO_VARARGS | CO_VARKEYWORDS));
}

/* The oparg with which LOAD_COMMON_CONSTANT loads None (3.15+), learnt
 * once from the bytecode of "None"; -1 if that is not how None loads.
 * Any interpreter: the table is the same in all.  Never fails. */
static int
common_constant_none(void)
{
    static int index = -2;  // benign race: every thread finds the same
    if (index == -2 && LOAD_COMMON_CONSTANT < 0) {
        index = -1;
    }
    if (index == -2) {
        int found = -1;
        instr *ins = NULL;
        PyObject *co = Py_CompileString("None", "<none>", Py_eval_input);
        Py_ssize_t n = co != NULL ? code_instrs(co, &ins) : -1;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (ins[i].op == LOAD_COMMON_CONSTANT) {
                found = ins[i].arg;
            }
        }
        if (n >= 0) {
            index = found;  // else (an error) try again next time
        }
        PyErr_Clear();  // not learnt: "return None" then needs LOAD_CONST
        PyMem_Free(ins);
        Py_XDECREF(co);
        return found;
    }
    return index;
}

/* Does instruction *load* push None?  consts: the code's co_consts. */
static int
loads_none(const instr *load, PyObject *consts)
{
    if (load->op == LOAD_CONST) {
        return load->arg < PyTuple_GET_SIZE(consts) &&
               PyTuple_GET_ITEM(consts, load->arg) == Py_None;
    }
    return load->op == LOAD_COMMON_CONSTANT &&
           load->arg == common_constant_none();
}

/* 1 if every return in code returns None, 0 if not, -1 on error. */
static int
code_returns_only_none(PyObject *code)
{
    instr *ins = NULL;
    PyObject *consts = NULL;
    int rc = -1;
    Py_ssize_t n = code_instrs(code, &ins);
    if (n < 0) {
        goto done;
    }
    consts = code_attr_tuple(code, "co_consts");
    if (consts == NULL) {
        goto done;
    }
    rc = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        int op = ins[i].op;
        if (op == RETURN_VALUE) {
            if (i == 0 || !loads_none(&ins[i - 1], consts)) {
                rc = 0;
                break;
            }
        }
#if SBI_HAVE_RETURN_CONST
        else if (op == RETURN_CONST) {
            instr load = {LOAD_CONST, ins[i].arg};
            if (!loads_none(&load, consts)) {
                rc = 0;
                break;
            }
        }
#endif
    }
done:
    PyMem_Free(ins);
    Py_XDECREF(consts);
    return rc;
}

int
sbi_code_check_script(PyObject *code)
{
    int r = code_takes_args(code);
    if (r != 0) {
        if (r > 0) {
            PyErr_SetString(PyExc_ValueError, "code with args not supported");
        }
        return -1;
    }
    r = code_has_freevars(code);
    if (r != 0) {
        if (r > 0) {
            PyErr_SetString(PyExc_ValueError, "closures not supported");
        }
        return -1;
    }
    r = code_returns_only_none(code);
    if (r <= 0) {
        if (r == 0) {
            PyErr_SetString(PyExc_ValueError,
                            "code that returns a value is not a script");
        }
        return -1;
    }
    return 0;
}

int
sbi_code_is_stateless(PyObject *code, PyObject *globals, PyObject **why)
{
    *why = NULL;
    int r = code_has_freevars(code);
    if (r < 0) {
        return -1;
    }
    if (r > 0) {
        *why = PyUnicode_FromString("it is a closure");
        return *why ? 0 : -1;
    }
    PyObject *bad = NULL;
    r = code_uses_no_globals(code, globals, &bad, 0);
    if (r != 0) {
        return r;
    }
    *why = bad ? PyUnicode_FromFormat("it uses the global %R", bad)
               : PyUnicode_FromString("its code is nested too deeply");
    Py_XDECREF(bad);
    return *why ? 0 : -1;
}

/* ---------------------------------------------------------------------
 * Per-interpreter code caches, in the interpreter's state dict
 * (sbi_state_local()), so they work in interpreters that never imported
 * our module, and die with the interpreter.
 *
 * The caches on the sending side are keyed by the code object's address,
 * not the code object: hashing a code object walks its bytecode (it is
 * not cached), and call() looks up two functions twice each per call.
 * Each entry holds the code object, so the address is not reused while
 * the entry lives.
 */
typedef struct {
    PyObject *code_out;  // {id(code): (code, token, marshalled bytes)}
    PyObject *code_in;   // {token: code}
    PyObject *sources;   // {source str: code} (exec)
    PyObject *verdicts;  // {id(code): (code, None if stateless, else why)}
} code_cache;

static void
code_cache_clear(void *p)
{
    code_cache *c = p;
    Py_CLEAR(c->code_out);
    Py_CLEAR(c->code_in);
    Py_CLEAR(c->sources);
    Py_CLEAR(c->verdicts);
}

/* Borrowed pointer valid while the interpreter lives; NULL with an
 * exception on failure. */
static code_cache *
code_cache_get(void)
{
    return sbi_state_local("sbi.code", sizeof(code_cache), NULL,
                           code_cache_clear);
}

/* A cache dict, created on first use and emptied when full.  Borrowed or
 * NULL. */
static PyObject *
cache_dict(PyObject **slot)
{
    if (*slot == NULL) {
        *slot = PyDict_New();
    }
    else if (PyDict_GET_SIZE(*slot) >= SBI_CODE_CACHE_MAX) {
        PyDict_Clear(*slot);
    }
    return *slot;
}

int
sbi_code_pack(PyObject *code, uint64_t *token, PyObject **data)
{
    static uint64_t next_token = 0;
    code_cache *c = code_cache_get();
    PyObject *d = c ? cache_dict(&c->code_out) : NULL;
    PyObject *key = d ? PyLong_FromVoidPtr(code) : NULL;
    PyObject *entry = NULL;
    int rc = -1;
    if (key == NULL || PyDict_GetItemRef(d, key, &entry) < 0) {
        goto done;
    }
    if (entry == NULL) {
        PyObject *bytes =
            PyMarshal_WriteObjectToString(code, Py_MARSHAL_VERSION);
        if (bytes == NULL) {
            goto done;
        }
        uint64_t t = __atomic_add_fetch(&next_token, 1, __ATOMIC_RELAXED);
        entry = Py_BuildValue("(OKN)", code, (unsigned long long)t, bytes);
        if (entry == NULL || PyDict_SetItem(d, key, entry) < 0) {
            goto done;
        }
    }
    assert(PyTuple_GET_ITEM(entry, 0) == code);
    *token = (uint64_t)PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(entry, 1));
    *data = Py_NewRef(PyTuple_GET_ITEM(entry, 2));
    rc = 0;
done:
    Py_XDECREF(entry);
    Py_XDECREF(key);
    return rc;
}

PyObject *
sbi_code_unpack(uint64_t token, const char *data, Py_ssize_t n)
{
    code_cache *c = code_cache_get();
    PyObject *d = c ? cache_dict(&c->code_in) : NULL;
    if (d == NULL) {
        return NULL;
    }
    PyObject *key = PyLong_FromUnsignedLongLong(token);
    if (key == NULL) {
        return NULL;
    }
    PyObject *code = NULL;
    if (PyDict_GetItemRef(d, key, &code) == 0) {
        code = PyMarshal_ReadObjectFromString(data, n);
        if (code != NULL && !PyCode_Check(code)) {
            Py_CLEAR(code);
            PyErr_SetString(PyExc_RuntimeError, "corrupt code data");
        }
        if (code != NULL && PyDict_SetItem(d, key, code) < 0) {
            Py_CLEAR(code);
        }
    }
    Py_DECREF(key);
    return code;
}

PyObject *
sbi_code_compile_cached(PyObject *source, const char *utf8)
{
    code_cache *c = code_cache_get();
    PyObject *d = c ? cache_dict(&c->sources) : NULL;
    PyObject *code = NULL;
    if (d == NULL || PyDict_GetItemRef(d, source, &code) != 0) {
        return code;
    }
    code = Py_CompileString(utf8, "<script>", Py_file_input);
    if (code != NULL && PyDict_SetItem(d, source, code) < 0) {
        Py_CLEAR(code);
    }
    return code;
}

int
sbi_code_func_is_stateless(PyObject *func, PyObject **why)
{
    *why = NULL;
    if (!PyFunction_Check(func)) {
        *why = PyUnicode_FromString("it is not a plain function");
        return *why ? 0 : -1;
    }
    if (PyFunction_GetClosure(func) != NULL) {
        *why = PyUnicode_FromString("it is a closure");
        return *why ? 0 : -1;
    }
    PyObject *code = PyFunction_GetCode(func);  // borrowed
    // The verdict on the code is cached (by address, see code_cache): scanning
    // bytecode is costly and call() asks for every call.  (Builtins do not
    // change in practice.)
    code_cache *c = code_cache_get();
    PyObject *verdicts = c ? cache_dict(&c->verdicts) : NULL;
    PyObject *key = verdicts ? PyLong_FromVoidPtr(code) : NULL;
    PyObject *cached = NULL, *entry = NULL;
    int stateless = -1;
    if (key == NULL || PyDict_GetItemRef(verdicts, key, &cached) < 0) {
        goto done;
    }
    if (cached != NULL) {
        assert(PyTuple_GET_ITEM(cached, 0) == code);
        PyObject *verdict = PyTuple_GET_ITEM(cached, 1);  // borrowed
        stateless = verdict == Py_None;
        if (!stateless) {
            *why = Py_NewRef(verdict);
        }
        goto done;
    }
    stateless = sbi_code_is_stateless(code, PyFunction_GetGlobals(func), why);
    if (stateless < 0) {
        goto done;
    }
    entry = PyTuple_Pack(2, code, stateless ? Py_None : *why);
    if (entry == NULL || PyDict_SetItem(verdicts, key, entry) < 0) {
        Py_CLEAR(*why);
        stateless = -1;
    }
done:
    Py_XDECREF(entry);
    Py_XDECREF(cached);
    Py_XDECREF(key);
    return stateless;
}
