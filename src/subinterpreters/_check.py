"""check_import(): does a module import in an isolated interpreter, in a
legacy one, and in the main interpreter -- and if not, why?

Every check runs in child processes (``sys.executable``), so that a
module that crashes or hangs while it is imported cannot take the caller
down.  Two children per module:

- "main": a fresh process imports the module in its main interpreter and
  lists the extension modules that import loaded (with their kind of
  init, read from their shared libraries without loading them again);
- "sub": a fresh process imports it in an isolated interpreter first (as
  a program that never imported it in main would), then in the main
  interpreter, then in two legacy interpreters (legacy interpreters are
  usually used beside a main interpreter that has the package too, and
  a pool has several).

The children print one JSON line per step, so a crash still tells which
step it was.  ``python -m subinterpreters check`` is the command line.
"""

import json
import os
import re
import subprocess
import sys

__all__ = ['check_import']

_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z')
_REFUSED = 'does not support loading in subinterpreters'
DEFAULT_TIMEOUT = 120.0


# ---------------------------------------------------------------------------
# What runs in the children


def _is_extension(mod):
    spec = getattr(mod, '__spec__', None)
    loader = type(getattr(spec, 'loader', None)).__name__
    return loader in ('ExtensionFileLoader', 'BuiltinImporter')


def _extensions():
    return sorted(name for name, mod in list(sys.modules.items())
                  if mod is not None and _is_extension(mod))


def _short(exc):
    """'Type: last line of the message', at most 300 characters."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = f'{type(exc).__name__}: {lines[-1] if lines else ""}'.rstrip(': ')
    return text if len(text) <= 300 else text[:297] + '...'


def _probe(name):
    """Import name in the current interpreter.  Returns a dict: ok, error
    (str or None), refused ([name, origin, message] of each extension
    module whose creation raised ImportError, even if the import then fell
    back to something else), ext (extension modules loaded in this
    interpreter afterwards) and warnings (their messages)."""
    import _imp
    import importlib
    import warnings

    refused = []

    def watch(orig):
        def create(spec, *args):
            try:
                return orig(spec, *args)
            except ImportError as exc:
                refused.append([spec.name, getattr(spec, 'origin', None),
                                str(exc)])
                raise
        return create

    saved = _imp.create_dynamic, _imp.create_builtin
    _imp.create_dynamic = watch(saved[0])
    _imp.create_builtin = watch(saved[1])
    error = None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            importlib.import_module(name)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt too
        error = _short(exc)
    finally:
        _imp.create_dynamic, _imp.create_builtin = saved
    messages = []
    for w in caught:
        first = str(w.message).strip().splitlines()
        text = f'{w.category.__name__}: {first[0] if first else ""}'
        if text not in messages:
            messages.append(text[:300])
    return {'ok': error is None, 'error': error, 'refused': refused,
            'ext': _extensions(), 'warnings': messages}


def _emit(step, result):
    print(json.dumps(dict(result, step=step)), flush=True)


def _child_main(name):
    before = set(_extensions())
    result = _probe(name)
    from . import _core
    kinds = {}
    for ext in result['ext']:
        if ext in before:
            continue
        origin = getattr(getattr(sys.modules.get(ext), '__spec__', None),
                         'origin', None)
        kinds[ext] = (_core._extension_kind(origin)
                      if origin and os.path.isfile(origin) else 'built-in')
    result['kinds'] = kinds
    _emit('main', result)


def _child_sub(name):
    from . import create
    interp = create()
    try:
        _emit('isolated', interp.call(_probe, name))
    finally:
        interp.close()
    _emit('main', _probe(name))
    legacy = [create(isolated=False) for _ in range(2)]
    try:
        for i, interp in enumerate(legacy):
            _emit(f'legacy{i + 1}', interp.call(_probe, name))
    finally:
        for interp in legacy:
            interp.close()


def _child(argv):
    import warnings
    warnings.filterwarnings('ignore', category=RuntimeWarning,
                            message='CPython 3')
    kind, name = argv
    {'main': _child_main, 'sub': _child_sub}[kind](name)


# ---------------------------------------------------------------------------
# The parent


def _run_child(kind, name, timeout):
    """Run a child; returns ({step: result}, problem or None)."""
    cmd = [sys.executable, '-c',
           'import sys; from subinterpreters._check import _child; '
           '_child(sys.argv[1:])', kind, name]
    env = dict(os.environ, PYTHONFAULTHANDLER='0')
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              errors='replace', timeout=timeout, env=env,
                              stdin=subprocess.DEVNULL)
        out, rc = proc.stdout, proc.returncode
        problem = None
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or ''
        if isinstance(out, bytes):
            out = out.decode('utf-8', 'replace')
        rc = None
        problem = f'timed out after {timeout:g} s'
    steps = {}
    for line in out.splitlines():
        try:
            data = json.loads(line)
        except ValueError:
            continue  # the module printed something
        if isinstance(data, dict) and 'step' in data:
            steps[data.pop('step')] = data
    if problem is None and rc != 0:
        problem = (f'crashed the process (signal {-rc})' if rc < 0
                   else f'ended the process (exit status {rc})')
    return steps, problem


def _refusal(result, kinds):
    """The extension module that refused (the one the import's error
    names, else the last: earlier ones may have been fallen back from)
    and what it is; or None."""
    refused = [r for r in result.get('refused', ()) if _REFUSED in r[2]]
    error = result.get('error') or ''
    named = [r for r in refused
             if f'module {r[0]} ' in error
             or f'module {r[0].rpartition(".")[2]} ' in error]
    for modname, origin, message in (named or refused)[-1:]:
        kind = kinds.get(modname)
        if kind is None and origin and os.path.isfile(origin):
            from . import _core
            kind = _core._extension_kind(origin)
        what = {
            'single-phase': 'a single-phase extension module',
            'multi-phase': ('an extension module that does not declare '
                            'per-interpreter GIL support'),
        }.get(kind, 'an extension module that does not declare '
                    'per-interpreter GIL support')
        return modname, what
    return None


def _legacy_reason(steps, problem):
    bad = [s for s in ('legacy1', 'legacy2') if not steps.get(s, {}).get(
        'ok', False)]
    if not bad:
        return None
    first = steps.get(bad[0])
    if first is None:
        return f'in a legacy interpreter it {problem or "did not run"}'
    error = first['error'] or ''
    if 'PyO3' in error:
        return ('legacy interpreters refuse it too: PyO3 modules load only '
                'in the first interpreter that imports them')
    if bad == ['legacy2'] or 'once' in error or 'one interpreter' in error:
        return ('it loads in one interpreter per process only, so legacy '
                f'interpreters beside the main one refuse it ({error})')
    return f'in a legacy interpreter: {error}'


def check_import(name, *, timeout=DEFAULT_TIMEOUT):
    """Check whether module *name* imports in an isolated interpreter (own
    GIL), in a legacy interpreter (``create(isolated=False)``, beside a
    main interpreter that imported it too) and in the main interpreter.

    Returns a dict with the keys ``module``, ``isolated``, ``legacy``,
    ``main`` (booleans) and ``reason``: None when the module imports
    everywhere as in the main interpreter, else a sentence saying why not
    (or what it falls back to).  The imports run in child processes, so a
    module that crashes or hangs cannot take the caller down.
    """
    if not isinstance(name, str):
        raise TypeError(f'module name must be a str, not '
                        f'{type(name).__name__}')
    if not _NAME.match(name):
        raise ValueError(f'not a module name: {name!r}')
    main_steps, main_problem = _run_child('main', name, timeout)
    main = main_steps.get('main')
    result = {'module': name, 'isolated': False, 'legacy': False,
              'main': bool(main and main['ok'] and main_problem is None),
              'reason': None}
    if not result['main']:
        why = (main['error'] if main and main['error']
               else f'importing it {main_problem}')
        result['reason'] = f'does not import in the main interpreter: {why}'
        return result
    kinds = main.get('kinds', {})
    steps, problem = _run_child('sub', name, timeout)
    iso = steps.get('isolated')
    result['isolated'] = bool(iso and iso['ok'])
    result['legacy'] = all(steps.get(s, {}).get('ok', False)
                           for s in ('legacy1', 'legacy2'))
    reasons = []
    if iso is None:
        reasons.append(f'importing it in an isolated interpreter '
                       f'{problem or "failed"}')
    else:
        refusal = _refusal(iso, kinds)
        if refusal is not None:
            modname, what = refusal
            subject = (f'{modname} is' if modname == name
                       else f'it needs {modname},')
            if iso['ok']:
                reasons.append(
                    f'it imports, but without {modname} ({what}, which '
                    f'isolated interpreters refuse): a slower pure-Python '
                    f'fallback is used')
            else:
                reasons.append(f'{subject} {what}, which isolated '
                               f'interpreters refuse')
        elif not iso['ok']:
            reasons.append(f'in an isolated interpreter: {iso["error"]}')
        else:
            missing = sorted(set(kinds) - set(iso['ext']))
            if missing:
                reasons.append(
                    f'it imports, but without {", ".join(missing)} '
                    f'(loaded in the main interpreter): a pure-Python '
                    f'fallback is used')
    if result['isolated'] or iso is not None:
        legacy = _legacy_reason(steps, problem)
        if legacy:
            reasons.append(legacy)
        elif result['legacy']:
            warned = steps['legacy1'].get('warnings') or []
            if warned:
                reasons.append(f'legacy interpreters load it with a warning '
                               f'({warned[0]})')
    result['reason'] = '; '.join(reasons) or None
    return result


def installed_top_level():
    """Top-level module names of every installed distribution."""
    import importlib.metadata
    names = set()
    for name in importlib.metadata.packages_distributions():
        if _NAME.match(name) and name != '__pycache__':
            names.add(name)
    return sorted(names, key=str.lower)
