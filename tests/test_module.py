"""The package itself: public names, the C extension, importing it in
subinterpreters, re-importing and reloading."""

import importlib
import importlib.machinery
import sys
import types

import pytest

import subinterpreters as interpreters

# concurrent.interpreters.__all__ in CPython 3.14 literally.
CONCURRENT_INTERPRETERS_ALL = [
    'get_current', 'get_main', 'create', 'list_all', 'is_shareable',
    'Interpreter',
    'InterpreterError', 'InterpreterNotFoundError', 'ExecutionFailed',
    'NotShareableError',
    'create_queue', 'Queue', 'QueueEmpty', 'QueueFull',
]

CORE_NAMES = [
    'create', 'list_all', 'get_current', 'get_main', 'is_shareable',
    'Interpreter', 'InterpreterError', 'InterpreterNotFoundError',
    'ExecutionFailed', 'NotShareableError', 'create_queue', 'Queue',
]


@pytest.mark.parametrize('name', CONCURRENT_INTERPRETERS_ALL)
def test_exposes_every_name_of_concurrent_interpreters(name):
    assert hasattr(interpreters, name), name


def test_dunder_all_covers_3_14_all():
    assert hasattr(interpreters, '__all__')
    missing = set(CONCURRENT_INTERPRETERS_ALL) - set(interpreters.__all__)
    assert not missing, missing
    for name in interpreters.__all__:
        assert hasattr(interpreters, name), name


def test_star_import():
    ns = {}
    exec('from subinterpreters import *', ns)
    for name in CONCURRENT_INTERPRETERS_ALL:
        assert ns[name] is getattr(interpreters, name)


def test_private_queue_names_not_reexported():
    # As 3.14: the UNBOUND* constants and the other queue errors live in
    # the private queues module, not at the top level.
    for name in ('UNBOUND', 'UNBOUND_ERROR', 'UNBOUND_REMOVE'):
        assert name not in getattr(interpreters, '__all__', ())


def test_public_callables_and_classes():
    for name in ('create', 'list_all', 'get_current', 'get_main',
                 'is_shareable', 'create_queue'):
        assert callable(getattr(interpreters, name)), name
    for name in ('Interpreter', 'Queue'):
        assert isinstance(getattr(interpreters, name), type), name


def test_exception_hierarchy():
    assert issubclass(interpreters.InterpreterError, Exception)
    assert issubclass(interpreters.InterpreterNotFoundError,
                      interpreters.InterpreterError)
    assert issubclass(interpreters.ExecutionFailed,
                      interpreters.InterpreterError)
    assert issubclass(interpreters.NotShareableError, TypeError)
    # Not the other way round, and not siblings by accident.
    assert not issubclass(interpreters.InterpreterError, TypeError)
    assert not issubclass(interpreters.NotShareableError,
                          interpreters.InterpreterError)
    assert not issubclass(interpreters.ExecutionFailed,
                          interpreters.InterpreterNotFoundError)


def test_core_is_a_c_extension():
    core = importlib.import_module('subinterpreters._core')
    assert core.__name__ == 'subinterpreters._core'
    spec = core.__spec__
    assert isinstance(spec.loader, importlib.machinery.ExtensionFileLoader)
    assert core.__file__.endswith(
        tuple(importlib.machinery.EXTENSION_SUFFIXES)), core.__file__


def test_import_twice_returns_same_module():
    mod1 = importlib.import_module('subinterpreters')
    mod2 = importlib.import_module('subinterpreters')
    assert mod1 is mod2 is interpreters
    assert sys.modules['subinterpreters'] is interpreters


def test_reload_package(run_python):
    # gh-115490: reloading the high-level module works.  Done in a fresh
    # process so that the other tests keep the classes they imported.
    rc, out, err = run_python("""
        import importlib
        import subinterpreters as interpreters
        from subinterpreters import ExecutionFailed
        interp1 = interpreters.create()
        reloaded = importlib.reload(interpreters)
        assert reloaded is interpreters
        assert reloaded.get_main().id == 0
        assert reloaded.get_main().whence == 'runtime init'
        interp = reloaded.create()
        assert interp.id > interp1.id
        assert interp in reloaded.list_all()
        assert reloaded.Interpreter(interp.id) is interp
        try:
            interp.exec('raise ValueError("after reload")')
        except reloaded.ExecutionFailed as exc:
            assert exc.excinfo.type.__name__ == 'ValueError'
        else:
            raise AssertionError('no ExecutionFailed')
        assert interp.call(len, 'spam') == 4
        interp.close()
        try:
            interp.close()
        except reloaded.InterpreterNotFoundError:
            pass
        else:
            raise AssertionError('closed twice')
        # The interpreter created before the reload is still usable.
        interp1.exec('x = 1')
        interp1.close()
        print('ok')
        """)
    assert rc == 0, err
    assert out == 'ok\n'


def test_import_in_fresh_subinterpreter(exec_output):
    interp = interpreters.create()
    out = exec_output(interp, """
        import subinterpreters
        import subinterpreters._core
        print(subinterpreters.get_main().id,
              subinterpreters.get_main().whence)
        print(subinterpreters.get_current().id)
        print(subinterpreters.get_current().whence)
        """)
    assert out.splitlines() == [
        '0 runtime init',
        str(interp.id),
        '_interpreters module',
    ]


def test_subinterpreter_can_create_and_call(exec_output):
    interp = interpreters.create()
    out = exec_output(interp, """
        import subinterpreters as I
        nested = I.create()
        print(nested.whence)
        print(nested.call(eval, '6 * 7'))
        nested.exec('x = 5')
        print(nested.call(eval, 'x + 1'))
        print(nested.id > I.get_current().id)
        nested.close()
        print(nested.id in [i.id for i in I.list_all()])
        """)
    assert out.splitlines() == [
        '_interpreters module', '42', '6', 'True', 'False']


def test_import_in_nested_subinterpreter(exec_output):
    interp = interpreters.create()
    out = exec_output(interp, """
        import subinterpreters as I
        nested = I.create()
        nested.exec('import subinterpreters, subinterpreters._core')
        print(nested.call(eval, 'subinterpreters.get_current().id')
              == nested.id)
        nested.close()
        """)
    assert out.strip() == 'True'


def test_module_state_is_per_interpreter(exec_output):
    core = importlib.import_module('subinterpreters._core')
    assert not hasattr(core, '_xtest_probe')
    interp = interpreters.create()
    out = exec_output(interp, """
        import subinterpreters._core as core
        print(hasattr(core, '_xtest_probe'))
        core._xtest_probe = 1
        print(hasattr(core, '_xtest_probe'))
        """)
    assert out.split() == ['False', 'True']
    # The attribute set in the subinterpreter did not leak into ours.
    assert not hasattr(core, '_xtest_probe')
    # And the other way round.
    core._xtest_probe = 2
    try:
        other = interpreters.create()
        out = exec_output(other, """
            import subinterpreters._core as core
            print(hasattr(core, '_xtest_probe'))
            """)
        assert out.strip() == 'False'
    finally:
        del core._xtest_probe


def test_module_objects_differ_per_interpreter(exec_output):
    # The module and its classes are separate objects in each interpreter
    # (multi-phase init); the per-interpreter singleton cache is separate
    # too, so get_current() in the subinterpreter is a different object
    # from the caller's Interpreter object for the same id.
    interp = interpreters.create()
    out = exec_output(interp, """
        import subinterpreters as I
        cur = I.get_current()
        print(id(cur) == id(I.get_current()))
        print(id(cur))
        """)
    same, objid = out.split()
    assert same == 'True'
    assert int(objid) != id(interp)


def test_two_subinterpreters_import_independently(exec_output):
    a = interpreters.create()
    b = interpreters.create()
    a.exec('import subinterpreters; subinterpreters._xtest_marker = "a"')
    out = exec_output(b, """
        import subinterpreters
        print(getattr(subinterpreters, '_xtest_marker', None))
        """)
    assert out.strip() == 'None'
    assert not hasattr(interpreters, '_xtest_marker')


def test_module_is_a_package_module():
    assert isinstance(interpreters, types.ModuleType)
    assert interpreters.__name__ == 'subinterpreters'
