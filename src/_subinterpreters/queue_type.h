/* queue_type.h -- the Python layer of the queues (see queue_type.c).
 *
 * Queues reach the rest of the extension by registering with lower
 * layers (a handle kind with handles.c, hooks with hooks.c); module.c
 * only calls their init.
 */
#ifndef SBI_QUEUE_TYPE_H
#define SBI_QUEUE_TYPE_H

#include "common.h"
#include "state.h"

int sbi_queue_type_init(PyObject *m, sbi_state *st);

#endif /* SBI_QUEUE_TYPE_H */
