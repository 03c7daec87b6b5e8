/* xidecode.h -- the decoder of cross-interpreter data (xidecode.c).
 */
#ifndef SBI_XIDECODE_H
#define SBI_XIDECODE_H

#include "wire.h"

/* Rebuild the value xd holds in the current interpreter (thread state
 * attached).  main_ns: as for sbi_xidata_load().  New reference, or
 * NULL with an exception.  Does not consume xd. */
PyObject *sbi_xidecode_load(const struct sbi_xidata *xd, PyObject *main_ns);

#endif /* SBI_XIDECODE_H */
