/* xidata.h -- cross-interpreter data.
 *
 * An sbi_xidata is a self-contained serialisation of a Python value in
 * raw memory (PyMem_Raw*), made in the sending interpreter and turned back
 * into a new object in the receiving one.  It holds no PyObject*; the only
 * things it references outside itself are counted handles (shared
 * buffers, queues), released by sbi_xidata_free() from any thread.
 *
 * Modes:
 *   SBI_XI_NATIVE  natively shareable values only (3.14's XIDATA_ONLY):
 *                  None, bool, int (any size), float, str, bytes,
 *                  memoryview and other buffers (zero copy), Queue, and
 *                  tuples of these.  Used by prepare_main.
 *   SBI_XI_FULL    the above plus native list, dict, set, frozenset,
 *                  complex, bytearray, stateless functions (as code), and
 *                  pickle for anything else (3.14's FULL_FALLBACK).  Used
 *                  by call() arguments and results and by queues.
 *   SBI_XI_DATA    FULL's native values only: no memoryviews (they tie the
 *                  data to an interpreter), functions or pickle.  Used by
 *                  SharedDict, whose data outlives every interpreter.
 */
#ifndef SBI_XIDATA_H
#define SBI_XIDATA_H

#include "common.h"
#include "state.h"
#include "handles.h"

typedef enum {
    SBI_XI_NATIVE = 0,
    SBI_XI_FULL = 1,
    SBI_XI_DATA = 2,
} sbi_xi_mode;

typedef struct sbi_xidata sbi_xidata;

/* Serialise obj (current interpreter, thread state attached).  Returns a
 * new sbi_xidata owned by the caller, or NULL with NotShareableError (or
 * MemoryError) set.  The data is self-contained: it may outlive obj and
 * be loaded in any interpreter at any time (queues). */
sbi_xidata *sbi_xidata_new(PyObject *obj, sbi_xi_mode mode);

/* As sbi_xidata_new(), but big immutable payloads (exact bytes and str,
 * pickled data; 64 KiB or more) are borrowed instead of copied: the data
 * points into them and their objects are appended to *pins, a list
 * created on first need (a new reference stored in *pins, which must
 * start NULL or hold such a list).  Only for a receiver that decodes
 * while the caller waits (call() arguments, prepare_main() values): the
 * caller keeps *pins until it has freed the data, and Py_XDECREFs it
 * then in its own interpreter -- also on failure, when *pins may have
 * been set too. */
sbi_xidata *sbi_xidata_new_pinned(PyObject *obj, sbi_xi_mode mode,
                                  PyObject **pins);

/* Serialise a callable for call(): a stateless function travels as code,
 * anything else by pickle.  NULL with NotShareableError on failure.
 * pins: NULL, or as for sbi_xidata_new_pinned(). */
sbi_xidata *sbi_xidata_new_callable(PyObject *func, PyObject **pins);

/* Rebuild the value in the current interpreter.  main_ns, when not NULL,
 * is the globals dict given to stateless functions (the target's
 * __main__.__dict__ during a session); else they get a fresh dict.
 * New reference, or NULL with an exception set.  Does not consume xd. */
PyObject *sbi_xidata_load(const sbi_xidata *xd, PyObject *main_ns);

/* Release everything xd holds.  Any thread, with or without a thread
 * state.  NULL is accepted.  A big data buffer may be kept for reuse by
 * the calling thread (one per thread, at most 4 MiB; freed when the
 * thread exits). */
void sbi_xidata_free(sbi_xidata *xd);

/* The id of the interpreter that made xd. */
int64_t sbi_xidata_owner(const sbi_xidata *xd);

/* True if xd holds handles that must be released in their owner
 * interpreter (shared buffers). */
int sbi_xidata_has_buffers(const sbi_xidata *xd);

/* is_shareable(): 1 if obj's exact type is natively shareable. */
int sbi_xidata_is_shareable(PyObject *obj);

int sbi_xidata_module_init(PyObject *m, sbi_state *st);

#endif /* SBI_XIDATA_H */
