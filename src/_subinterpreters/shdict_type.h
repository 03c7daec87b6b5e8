/* shdict_type.h -- the Python layer of SharedDict (see shdict_type.c).
 */
#ifndef SBI_SHDICT_TYPE_H
#define SBI_SHDICT_TYPE_H

#include "state.h"

/* Create the SharedDict type and register its handle kind.  Module
 * init. */
int sbi_shdict_type_init(PyObject *m, sbi_state *st);

#endif /* SBI_SHDICT_TYPE_H */
