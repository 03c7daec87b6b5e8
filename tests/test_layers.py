"""The C core stays layered: a file includes the headers of, and calls
the functions of, lower layers only (docs/design.md, "Layers").

A feature that needs a higher layer to tell it something subscribes to
a hook (hooks.h) or registers itself (xidata.h handle kinds) instead.
"""

import os
import re

import pytest

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), 'src', '_subinterpreters')

# stem -> layer.  Every file of src/_subinterpreters must be listed: a new
# file says where it belongs.
LAYERS = {
    'compat': 0,       # version guards, workarounds of CPython bugs
    'tuning': 0,       # every timeout, retry count and limit, with reasons
    'common': 1,       # error codes, defensive macros, env switches
    'lock': 2,         # the one lock abstraction
    'state': 3,        # module state, per-interpreter blocks, the raise
    'hooks': 3,        # subscriber lists: interpreter closed, exiting
    'arena': 3,        # releasing ended interpreters' arenas
    'shared': 3,       # process-global shared objects: ids, references
    'wake': 3,         # waking blocked waits: interrupts, close()
    'extmod': 3,       # single- or multi-phase init, from a library's symbols
    'notify': 3,       # a descriptor event loops watch, signalled anywhere
    'handles': 3,      # handle kinds: objects crossing as an id
    'shield': 4,       # shields against CPython bugs
    'excinfo': 5,      # exception snapshots, ExecutionFailed
    'shbuf': 5,        # shared buffers: zero-copy memoryviews
    'code': 5,         # bytecode inspection, code shipping and its caches
    'pickling': 5,     # the pickle fallback, the '<fake __main__>' re-run
    'wire': 6,         # the wire format: tags, the data's layout
    'funcship': 6,     # which functions travel as code; qualnames
    'xidecode': 7,     # rebuilding values from the wire format
    'xidata': 8,       # encoding, the data's lifetime, scratch buffers
    'registry': 9,     # our interpreters, ids, whence
    'interrupt': 10,   # interrupts, exec(timeout=) watchdog
    'sigint': 11,      # Ctrl-C forwarding
    'session': 12,     # switching a thread in and out, the call template
    'park': 12,        # reusing closed pristine interpreters
    'sleep': 12,       # time.sleep() that interrupts cut short
    'sync': 12,        # sync primitives, raw: Lock ... Barrier
    'shdict': 12,      # SharedDict, raw: the hash table of blobs
    'queue': 12,       # queues, raw: registry, FIFO, blocking put/get
    'lifecycle': 13,   # create, close, owners, reaping orphans
    'queue_aio': 13,   # queue watches and packed items for aget/aput
    'shobj': 13,       # Python objects of shared objects: cache, handle kind
    'process': 14,     # exit hook, fork guard, reset in a forked child
    'run': 14,         # exec, prepare_main, call
    'sync_type': 14,   # the sync types, their handle kind
    'shdict_type': 14, # the SharedDict type, canonical keys
    'queue_type': 14,  # the Queue type: a handle kind, hook subscriber
    'interp_type': 15, # the Interpreter type, create(), list_all()
    'module': 16,      # PyInit and module_exec: wiring only
}


def sources():
    return sorted(f for f in os.listdir(SRC) if f.endswith(('.c', '.h')))


def stem(name):
    return os.path.splitext(name)[0]


def read(name):
    with open(os.path.join(SRC, name), encoding='utf-8') as f:
        return f.read()


def strip_comments(text):
    text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)
    return re.sub(r'//[^\n]*', ' ', text)


def definitions(files):
    """sbi_* function -> the file stem that defines it (extern functions
    of .c files, static inline functions of headers)."""
    defs = {}
    for name, text in files.items():
        if name.endswith('.c'):
            pattern = r'^(?!static\b)[A-Za-z_][\w \*]*\n(sbi_\w+)\('
        else:
            pattern = r'^static inline [\w \*]*?\n?(sbi_\w+)\('
        for m in re.finditer(pattern, text, re.M):
            defs[m.group(1)] = stem(name)
    return defs


def violations(files, layers):
    """(file, what, target) for every include or call that goes up or
    sideways to another file of the same layer."""
    defs = definitions(files)
    found = []
    for name, text in files.items():
        me = stem(name)
        code = strip_comments(text)
        for m in re.finditer(r'#\s*include\s+"(\w+)\.h"', code):
            target = m.group(1)
            if target != me and layers[target] >= layers[me]:
                found.append((name, 'includes', target + '.h'))
        if not name.endswith('.c'):
            continue
        for m in re.finditer(r'\b(sbi_\w+)\s*\(', code):
            target = defs.get(m.group(1))
            if target is not None and target != me and \
                    layers[target] >= layers[me]:
                found.append((name, 'calls', f'{m.group(1)} ({target})'))
    return sorted(set(found))


def load_all():
    return {name: read(name) for name in sources()}


def test_every_file_has_a_layer():
    missing = sorted({stem(n) for n in sources()} - set(LAYERS))
    assert not missing, f'add these to LAYERS (and docs/design.md): {missing}'
    gone = sorted(set(LAYERS) - {stem(n) for n in sources()})
    assert not gone, f'no longer in src/_subinterpreters: {gone}'


def test_files_use_only_lower_layers():
    found = violations(load_all(), LAYERS)
    assert not found, '\n'.join(' '.join(v) for v in found)


@pytest.mark.parametrize('user, used', [('queue', 'xidata'),
                                        ('interp_type', 'registry'),
                                        ('module', 'state'),
                                        ('sigint', 'interrupt')])
def test_the_check_sees_a_back_edge(user, used):
    # Swap the layers of a file and one it uses: the checker must find
    # the includes and the calls that now go up.
    layers = dict(LAYERS)
    layers[user], layers[used] = LAYERS[used], LAYERS[user]
    found = violations(load_all(), layers)
    assert (user + '.c', 'includes', used + '.h') in found, found
    assert any(v[0] == user + '.c' and v[1] == 'calls' and
               v[2].endswith(f'({used})') for v in found), found


def test_header_inline_functions_are_known():
    defs = definitions(load_all())
    assert defs.get('sbi_current_cid') == 'common', defs
    assert defs.get('sbi_state_of') == 'state', defs
    assert defs.get('sbi_mutex_lock') == 'lock', defs


def test_the_check_sees_calls_without_includes():
    files = load_all()
    files['registry.c'] += '\nstatic void f(void) { sbi_hooks_run_exiting(); }\n'
    layers = dict(LAYERS, hooks=LAYERS['registry'] + 1)
    assert ('registry.c', 'calls', 'sbi_hooks_run_exiting (hooks)') in \
        violations(files, layers)
