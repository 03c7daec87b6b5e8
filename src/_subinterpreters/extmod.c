/* extmod.c -- which init an extension module's shared library uses.
 *
 * A single-phase module's PyInit function builds its module with
 * PyModule_Create2() (what the PyModule_Create() macro calls); a
 * multi-phase one returns its definition through PyModuleDef_Init() and
 * lets the import system build the module.  Both are functions of
 * libpython, so a shared library that uses one lists it among its
 * undefined dynamic symbols, which can be read from the file without
 * loading it: loading would run its constructors, and calling its PyInit
 * would run a single-phase module's whole initialisation, which is what
 * must not happen in an isolated interpreter on 3.12 (gh-119450,
 * compat.h SBI_REFUSE_SINGLE_PHASE).
 *
 * Only 64-bit ELF files are read (Linux); anything else, or a library
 * that uses both functions or neither, is UNKNOWN, and callers then
 * leave the decision to CPython.
 *
 * Calls compat.h and common.h only (layers: docs/design.md).  No lock:
 * no state.
 */
#include "extmod.h"

#if defined(__ELF__)
#  include <elf.h>
#  include <fcntl.h>
#  include <string.h>
#  include <sys/stat.h>
#  include <unistd.h>

enum { USES_CREATE = 1, USES_DEF_INIT = 2 };

/* The most read of a file at once (section headers, a symbol table or
 * its names): 64 MiB, far above any real library's, and below SIZE_MAX
 * on 32-bit hosts. */
#  define SBI_EXTMOD_MAX_READ ((uint64_t)64 * 1024 * 1024)

/* Does [off, off + n) lie inside a file of size size? */
static int
in_file(uint64_t off, uint64_t n, uint64_t size)
{
    return off <= size && n <= size - off;
}

/* n bytes of fd at off, in new raw memory (PyMem_RawFree), or NULL.
 * Read rather than mapped: a file truncated meanwhile (a package being
 * reinstalled) must not raise SIGBUS. */
static void *
read_at(int fd, uint64_t off, uint64_t n)
{
    if (n > SBI_EXTMOD_MAX_READ) {
        return NULL;  // no symbol table is that big: not one to trust
    }
    char *buf = PyMem_RawMalloc(n > 0 ? (size_t)n : 1);
    size_t done = 0;
    while (buf != NULL && done < n) {
        ssize_t r =
            pread(fd, buf + done, (size_t)(n - done), (off_t)(off + done));
        if (r <= 0) {
            PyMem_RawFree(buf);
            return NULL;
        }
        done += (size_t)r;
    }
    return buf;
}

/* USES_* of the undefined symbols of one dynamic symbol table (syms,
 * nsyms) whose names are in (names, nnames). */
static int
scan_syms(const Elf64_Sym *syms, uint64_t nsyms, const char *names,
          uint64_t nnames)
{
    int flags = 0;
    for (uint64_t k = 0; k < nsyms; k++) {
        if (syms[k].st_shndx != SHN_UNDEF || syms[k].st_name >= nnames) {
            continue;
        }
        const char *name = names + syms[k].st_name;
        size_t room = (size_t)(nnames - syms[k].st_name);
        if (strnlen(name, room) == room) {
            continue;  // not terminated inside the table
        }
        if (strcmp(name, "PyModule_Create2") == 0) {
            flags |= USES_CREATE;
        }
        else if (strcmp(name, "PyModuleDef_Init") == 0) {
            flags |= USES_DEF_INIT;
        }
    }
    return flags;
}

/* The USES_* flags of the ELF file fd of size size, or -1 if it is not
 * one we can read. */
static int
scan_elf(int fd, uint64_t size)
{
    Elf64_Ehdr eh;
    if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_ident[EI_DATA] !=
            (PY_LITTLE_ENDIAN ? ELFDATA2LSB : ELFDATA2MSB) ||
        eh.e_shentsize != sizeof(Elf64_Shdr) ||
        !in_file(eh.e_shoff, (uint64_t)eh.e_shnum * sizeof(Elf64_Shdr), size))
    {
        return -1;
    }
    Elf64_Shdr *sh =
        read_at(fd, eh.e_shoff, (uint64_t)eh.e_shnum * sizeof(Elf64_Shdr));
    if (sh == NULL) {
        return -1;
    }
    int flags = -1;
    for (unsigned i = 0; i < eh.e_shnum; i++) {
        if (sh[i].sh_type != SHT_DYNSYM) {
            continue;
        }
        const Elf64_Shdr *strs =
            sh[i].sh_link < eh.e_shnum ? &sh[sh[i].sh_link] : NULL;
        if (strs == NULL || sh[i].sh_entsize != sizeof(Elf64_Sym) ||
            !in_file(sh[i].sh_offset, sh[i].sh_size, size) ||
            !in_file(strs->sh_offset, strs->sh_size, size))
        {
            flags = -1;
            break;
        }
        Elf64_Sym *syms = read_at(fd, sh[i].sh_offset, sh[i].sh_size);
        char *names = read_at(fd, strs->sh_offset, strs->sh_size);
        if (syms != NULL && names != NULL) {
            flags = (flags < 0 ? 0 : flags) |
                    scan_syms(syms, sh[i].sh_size / sizeof(Elf64_Sym), names,
                              strs->sh_size);
        }
        PyMem_RawFree(syms);
        PyMem_RawFree(names);
        if (syms == NULL || names == NULL) {
            flags = -1;
            break;
        }
    }
    PyMem_RawFree(sh);
    return flags;
}

sbi_extmod_kind
sbi_extmod_kind_of(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return SBI_EXTMOD_UNKNOWN;
    }
    struct stat st;
    int flags = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        flags = scan_elf(fd, (uint64_t)st.st_size);
    }
    (void)close(fd);
    switch (flags) {
    case USES_CREATE:
        return SBI_EXTMOD_SINGLE_PHASE;
    case USES_DEF_INIT:
        return SBI_EXTMOD_MULTI_PHASE;
    default:
        return SBI_EXTMOD_UNKNOWN;
    }
}

#else /* not ELF */

sbi_extmod_kind
sbi_extmod_kind_of(const char *path)
{
    return SBI_EXTMOD_UNKNOWN;
}

#endif

const char *
sbi_extmod_kind_name(sbi_extmod_kind kind)
{
    switch (kind) {
    case SBI_EXTMOD_SINGLE_PHASE:
        return "single-phase";
    case SBI_EXTMOD_MULTI_PHASE:
        return "multi-phase";
    default:
        return "unknown";
    }
}

PyObject *
sbi_extmod_py_kind(PyObject *m, PyObject *path)
{
    PyObject *bytes = NULL;
    if (!PyUnicode_FSConverter(path, &bytes)) {
        return NULL;
    }
    sbi_extmod_kind kind;
    Py_BEGIN_ALLOW_THREADS
    kind = sbi_extmod_kind_of(PyBytes_AS_STRING(bytes));
    Py_END_ALLOW_THREADS
    Py_DECREF(bytes);
    return PyUnicode_FromString(sbi_extmod_kind_name(kind));
}
