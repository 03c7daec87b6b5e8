/* shobj.h -- the Python side every shared object type has in common
 * (see shobj.c): the object layout, the per-interpreter cache, dealloc,
 * id, hash, pickling refusal, and the one handle kind.
 */
#ifndef SBI_SHOBJ_H
#define SBI_SHOBJ_H

#include "shared.h"
#include "state.h"

/* The layout of every shared object's Python object (sync primitives,
 * SharedDict). */
typedef struct {
    PyObject_HEAD
    sbi_shared *o;  // one reference, owned
    PyObject *weakreflist;
} SharedObject;

#define SBI_SHOBJ(op) (((SharedObject *)(op))->o)

/* The Python type an object of o's raw type gets in st's interpreter. */
typedef PyTypeObject *(*sbi_shobj_type_fn)(sbi_state *st, sbi_shared *o);

/* Say which Python type objects of raw type t get (module init; the same
 * function in every interpreter).  0, or -1 with an exception. */
int sbi_shobj_register(const sbi_shared_type *t, sbi_shobj_type_fn fn);

/* Wrap o in a new object of tp and cache it in st's interpreter.  o's
 * reference passes to the object (also on failure).  New reference, or
 * NULL with an exception. */
PyObject *sbi_shobj_wrap(sbi_state *st, PyTypeObject *tp, sbi_shared *o);

/* Slots and members every shared object type uses. */
void sbi_shobj_dealloc(PyObject *op);
Py_hash_t sbi_shobj_hash(PyObject *op);
PyObject *sbi_shobj_get_id(PyObject *op, void *closure);
PyObject *sbi_shobj_reduce(PyObject *op, PyObject *unused);
extern PyMemberDef sbi_shobj_members[];

/* In the child of fork(): pickles made from now on use a new process
 * token (see shobj.c). */
void sbi_shobj_after_fork(void);

/* The cache and the handle kind (xidata.c).  Module init, before the
 * types that use them. */
int sbi_shobj_init(PyObject *m, sbi_state *st);

#endif /* SBI_SHOBJ_H */
