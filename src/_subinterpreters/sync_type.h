/* sync_type.h -- the Python layer of the sync primitives (see
 * sync_type.c).
 */
#ifndef SBI_SYNC_TYPE_H
#define SBI_SYNC_TYPE_H

#include "state.h"

/* Create the types (exported by subinterpreters.sync) and register the
 * handle kind and the BrokenBarrierError loader.  Module init. */
int sbi_sync_type_init(PyObject *m, sbi_state *st);

#endif /* SBI_SYNC_TYPE_H */
