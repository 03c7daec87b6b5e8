/* wire.h -- the wire format of cross-interpreter data, shared by the
 * encoder (xidata.c) and the decoder (xidecode.c), and the two error
 * helpers both sides use.
 *
 * One tag byte per value, then its payload; integers are written in
 * native byte order with memcpy (the data never leaves the process).
 * Containers write their length then their items.  A blob (the payload
 * of bytes, str, pickles, ...) is a u64 length then the data, or -- when
 * borrowed (xidata.c, "Borrowed blobs") -- the length with BLOB_BORROWED
 * set then the u64 address of the sender's data.
 */
#ifndef SBI_WIRE_H
#define SBI_WIRE_H

#include "common.h"
#include "state.h"
#include "handles.h"
#include "shbuf.h"

enum {
    TAG_NONE = 'N',
    TAG_TRUE = 'T',
    TAG_FALSE = 'F',
    TAG_INT = 'i',     // int64
    TAG_BIGINT = 'I',  // u64 length + hex digits
    TAG_FLOAT = 'f',
    TAG_COMPLEX = 'c',
    TAG_STR = 's',  // u8 kind + blob (length in bytes)
    TAG_BYTES = 'b',
    TAG_BYTEARRAY = 'a',
    TAG_TUPLE = 't',
    TAG_LIST = 'l',
    TAG_DICT = 'd',
    TAG_SET = 'S',
    TAG_FROZENSET = 'Z',
    TAG_PICKLE = 'P',   // u64 length + data + u64 length + main file,
                        // and if there is one, u64 length + description
    TAG_FUNC = 'C',     // u64 length + marshalled code + u64 token
    TAG_FUNCDEF = 'D',  // as TAG_FUNC, then __defaults__, __kwdefaults__
    TAG_BUFFER = 'M',   // u64 index into bufs
    TAG_HANDLE = 'Q',   // u8 handle kind + int64 id (queues, ...)
    TAG_GLOBAL = 'G',   // u64 length + module + u64 length + qualname
};

/* Borrowed blobs: the flag in a blob's length word (the smallest payload
 * worth borrowing is SBI_BORROW_MIN). */
#define BLOB_BORROWED ((uint64_t)1 << 63)

/* The layout of cross-interpreter data (opaque above this layer:
 * xidata.h).  Made by xidata.c, read by xidecode.c. */
struct sbi_xidata {
    int64_t owner;
    char *data;  // PyMem_Raw (or a scratch buffer)
    size_t len;
    size_t cap;        // allocated size of data
    int borrows;       // has borrowed blobs: load only while the
                       // maker's pins live
    sbi_shbuf **bufs;  // PyMem_Raw array, one reference each
    Py_ssize_t nbufs;
    sbi_handle_ref *handles;  // PyMem_Raw array, one binding each
    Py_ssize_t nhandles;
};

/* The module's NotShareableError (borrowed), or NULL with an exception.
 * Thread state attached. */
static inline PyObject *
sbi_wire_not_shareable_type(void)
{
    sbi_state *st = sbi_state_current();
    if (st == NULL) {
        return NULL;
    }
    return st->NotShareableError;
}

/* An interrupt (KeyboardInterrupt, or any BaseException that is not an
 * Exception) that cut a transfer short must reach the caller as itself,
 * not wrapped as a sharing failure.  Returns 0 if such an exception is
 * set (leave it), 1 otherwise. */
static inline int
sbi_wire_keep_interrupt(void)
{
    return !(PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_Exception));
}

#endif /* SBI_WIRE_H */
