/* shbuf.h -- shared buffers: a buffer of one interpreter viewed from
 * others without a copy (see shbuf.c).
 */
#ifndef SBI_SHBUF_H
#define SBI_SHBUF_H

#include "common.h"
#include "state.h"

typedef struct sbi_shbuf sbi_shbuf;

/* Take a buffer of obj (in its interpreter, which owns the record) with
 * one reference.  NULL with an exception on failure. */
sbi_shbuf *sbi_shbuf_new(PyObject *obj);

/* Drop a reference: the last releases the buffer in its owner, at once
 * if attached there, else at the owner's next drain.  Any thread, with
 * or without a thread state. */
void sbi_shbuf_decref(sbi_shbuf *b);

/* A memoryview over b in the current interpreter (it takes a reference
 * on b).  NULL with an exception on failure. */
PyObject *sbi_shbuf_to_memoryview(sbi_shbuf *b);

/* Release, in the current interpreter, every shared buffer whose last
 * view went away elsewhere.  Thread state attached in that interpreter. */
void sbi_shbuf_drain_current(void);

/* Number of shared buffers exported by interpreter id still referenced. */
Py_ssize_t sbi_shbuf_count_owned(int64_t id);

/* Forget buffers owned by id without releasing them (process exit). */
void sbi_shbuf_abandon(int64_t id);

/* Module init: the SharedBuffer type (exporter of received views). */
int sbi_shbuf_module_init(PyObject *m, sbi_state *st);

/* In the child of fork(). */
void sbi_shbuf_after_fork(void);

#endif /* SBI_SHBUF_H */
