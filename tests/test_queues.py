"""Queues between interpreters: create_queue(), Queue, the unbounditems
policies, blocking put()/get() and queue lifetimes.

Reference: CPython 3.14 concurrent.interpreters queues.  Our deliberate
differences from 3.14 (each checked below):

* blocking put()/get() wait on a condition variable instead of polling,
  and honour float timeouts (3.14 truncates them with int());
* Ctrl-C interrupts a blocked put()/get() in the main thread;
* a queue destroyed while threads are blocked on it (_queue_destroy()),
  and process exit, wake them with an error instead of leaving them
  blocked;
* the sentinels print as ``subinterpreters.UNBOUND`` (and
  ``subinterpreters.UNBOUND_ERROR`` / ``UNBOUND_REMOVE``, plain objects
  in 3.14) and pickle as themselves;
* Queue.unbounditems works for queues created in other interpreters with
  any policy (3.14 raises for UNBOUND_ERROR / UNBOUND_REMOVE there).
"""

import gc
import pickle
import queue as stdqueue
import threading
import time

import pytest

import subinterpreters as interpreters
from subinterpreters import (
    NotShareableError, Queue, QueueEmpty, QueueFull, create_queue,
)
from subinterpreters import _core

import _defs  # noqa: F401  (importable in subinterpreters: see conftest)


QueueError = interpreters.QueueError
QueueNotFoundError = interpreters.QueueNotFoundError
ItemInterpreterDestroyed = interpreters.ItemInterpreterDestroyed
UNBOUND = interpreters.UNBOUND
UNBOUND_ERROR = interpreters.UNBOUND_ERROR
UNBOUND_REMOVE = interpreters.UNBOUND_REMOVE


# -- stateless functions, sent to other interpreters with call() ------------

def _get(q):
    return q.get()


def _get_nowait(q):
    return q.get_nowait()


def _put(q, obj):
    q.put(obj)


def _qsize(q):
    return q.qsize()


def _queue_id(q):
    return q.id


def _produce(q, start, n):
    for i in range(start, start + n):
        q.put(i)
    return n


def _consume(q):
    items = []
    while True:
        x = q.get()
        if x is None:
            return items
        items.append(x)


def _get_empty_in_fresh_interpreter(q):
    # No import of subinterpreters here: the Queue arrived as an argument.
    try:
        q.get_nowait()
    except Exception as exc:
        import queue
        return (type(exc).__name__, isinstance(exc, queue.Empty))
    return None


def _echo_queue(inq, outq):
    outq.put(inq.get())


# ---------------------------------------------------------------------------
# creation and identity


class TestCreate:

    def test_maxsize(self):
        assert create_queue().maxsize == 0
        assert create_queue(3).maxsize == 3
        assert create_queue(100).maxsize == 100
        assert create_queue(0).maxsize == 0
        assert create_queue(-10).maxsize == -10
        assert create_queue(maxsize=5).maxsize == 5

    def test_bad_maxsize(self):
        with pytest.raises(TypeError):
            create_queue('1')
        with pytest.raises(TypeError):
            create_queue(1.5)
        with pytest.raises(OverflowError):
            create_queue(2**100)

    def test_ids_increase(self):
        q1 = create_queue()
        q2 = create_queue()
        assert isinstance(q1.id, int)
        assert q2.id > q1.id > 0

    def test_ids_not_reused(self):
        q = create_queue()
        old = q.id
        del q
        gc.collect()
        assert create_queue().id > old

    def test_custom_id_not_found(self):
        with pytest.raises(QueueNotFoundError):
            Queue(1_000_000)

    def test_bad_ids(self):
        with pytest.raises(TypeError):
            Queue('1')
        with pytest.raises(TypeError):
            Queue(1.0)
        with pytest.raises(ValueError):
            Queue(-1)
        with pytest.raises(OverflowError):
            Queue(2**64)
        with pytest.raises(TypeError):
            Queue()
        q = create_queue()
        with pytest.raises(TypeError):
            Queue(q.id, 2)

    def test_singleton(self):
        q = create_queue()
        assert Queue(q.id) is q
        assert interpreters.Queue(q.id) is q

    def test_readonly(self):
        q = create_queue(10)
        with pytest.raises(AttributeError):
            q.id = 1_000_000
        with pytest.raises(AttributeError):
            q.maxsize = 1_000_000
        with pytest.raises(AttributeError):
            q.unbounditems = UNBOUND_ERROR

    def test_not_subclassable(self):
        with pytest.raises(TypeError):
            class MyQueue(Queue):
                pass

    def test_repr(self):
        q = create_queue()
        assert repr(q) == f'Queue({q.id})'

    def test_hash_and_equality(self):
        q1 = create_queue()
        q2 = create_queue()
        assert hash(q1) == hash(q1.id)
        assert q1 == q1
        assert q1 != q2
        assert len({q1, q2, Queue(q1.id)}) == 2

    @pytest.mark.parametrize('proto', range(pickle.HIGHEST_PROTOCOL + 1))
    def test_pickle(self, proto):
        q = create_queue()
        data = pickle.dumps(q, proto)
        assert pickle.loads(data) is q

    def test_reduce(self):
        q = create_queue()
        assert q.__reduce__() == (Queue, (q.id,))

    def test_unpickle_destroyed(self):
        q = create_queue()
        data = pickle.dumps(q)
        del q
        gc.collect()
        with pytest.raises(QueueNotFoundError):
            pickle.loads(data)

    def test_unbounditems_attribute(self):
        assert create_queue().unbounditems is UNBOUND
        for op in (UNBOUND, UNBOUND_ERROR, UNBOUND_REMOVE):
            assert create_queue(unbounditems=op).unbounditems is op

    def test_unbounditems_attribute_foreign(self, new_interp):
        # 3.14 raises here for UNBOUND_ERROR / UNBOUND_REMOVE queues.
        interp = new_interp()
        for name in ('UNBOUND', 'UNBOUND_ERROR', 'UNBOUND_REMOVE'):
            q = create_queue(unbounditems=getattr(interpreters, name))
            interp.prepare_main(q=q)
            interp.exec(
                'import subinterpreters as I\n'
                f'assert q.unbounditems is I.{name}, q.unbounditems\n'
            )

    def test_list_all(self):
        q1 = create_queue()
        q2 = create_queue()
        all_queues = interpreters._queues.list_all()
        assert q1 in all_queues and q2 in all_queues
        assert all_queues.index(q1) < all_queues.index(q2)


# ---------------------------------------------------------------------------
# operations


class TestOps:

    def test_empty(self):
        q = create_queue()
        before = q.empty()
        q.put(None)
        during = q.empty()
        q.get()
        after = q.empty()
        assert (before, during, after) == (True, False, True)

    def test_full(self):
        q = create_queue(3)
        actual = []
        for _ in range(3):
            actual.append(q.full())
            q.put(None)
        actual.append(q.full())
        for _ in range(3):
            q.get()
            actual.append(q.full())
        assert actual == [False, False, False, True, False, False, False]

    @pytest.mark.parametrize('maxsize', [0, -1, -10])
    def test_unbounded_never_full(self, maxsize):
        q = create_queue(maxsize)
        for i in range(1000):
            q.put_nowait(i)
        assert not q.full()
        assert q.qsize() == 1000

    def test_qsize(self):
        q = create_queue()
        actual = []
        for _ in range(3):
            actual.append(q.qsize())
            q.put(None)
        actual.append(q.qsize())
        q.get()
        actual.append(q.qsize())
        q.put(None)
        actual.append(q.qsize())
        for _ in range(3):
            q.get()
            actual.append(q.qsize())
        q.put(None)
        actual.append(q.qsize())
        q.get()
        actual.append(q.qsize())
        assert actual == [0, 1, 2, 3, 2, 3, 2, 1, 0, 1, 0]

    def test_put_nowait_full(self):
        q = create_queue(2)
        q.put_nowait(None)
        q.put_nowait(None)
        with pytest.raises(QueueFull):
            q.put_nowait(None)
        q.get()
        q.put_nowait(None)
        assert q.qsize() == 2

    def test_put_full_no_block(self):
        q = create_queue(1)
        q.put(1)
        with pytest.raises(QueueFull):
            q.put(2, block=False)
        with pytest.raises(QueueFull):
            q.put(2, False, 100)  # timeout ignored when not blocking

    def test_put_timeout(self):
        q = create_queue(2)
        q.put(None)
        q.put(None)
        with pytest.raises(QueueFull):
            q.put(None, timeout=0.1)
        q.get()
        q.put(None)

    def test_get_nowait_empty(self):
        q = create_queue()
        with pytest.raises(QueueEmpty):
            q.get_nowait()
        with pytest.raises(QueueEmpty):
            q.get(block=False)
        with pytest.raises(QueueEmpty):
            q.get(False, 100)

    def test_get_timeout(self):
        q = create_queue()
        with pytest.raises(QueueEmpty):
            q.get(timeout=0.1)
        with pytest.raises(QueueEmpty):
            q.get(timeout=0)

    def test_error_messages(self):
        q = create_queue(1)
        with pytest.raises(QueueEmpty, match=f'queue {q.id} is empty'):
            q.get_nowait()
        q.put(1)
        with pytest.raises(QueueFull, match=f'queue {q.id} is full'):
            q.put_nowait(1)
        with pytest.raises(QueueNotFoundError,
                           match='queue 1000000 not found'):
            Queue(1_000_000)

    def test_exception_types(self):
        assert issubclass(QueueError, RuntimeError)
        assert issubclass(QueueNotFoundError, QueueError)
        assert issubclass(ItemInterpreterDestroyed, QueueError)
        q = create_queue(1)
        with pytest.raises(QueueEmpty) as excinfo:
            q.get_nowait()
        assert isinstance(excinfo.value, stdqueue.Empty)
        assert isinstance(excinfo.value, QueueError)
        q.put(1)
        with pytest.raises(QueueFull) as excinfo:
            q.put_nowait(2)
        assert isinstance(excinfo.value, stdqueue.Full)
        assert isinstance(excinfo.value, QueueError)
        # catchable the stdlib way
        try:
            q.put_nowait(2)
        except stdqueue.Full:
            pass

    def test_negative_timeout(self):
        q = create_queue(1)
        with pytest.raises(ValueError):
            q.get(timeout=-1)
        with pytest.raises(ValueError):
            q.get(timeout=-0.5)
        with pytest.raises(ValueError):
            q.get(timeout=float('nan'))
        q.put(1)
        with pytest.raises(ValueError):
            q.put(2, timeout=-1)
        assert q.qsize() == 1

    def test_bad_timeout_type(self):
        q = create_queue()
        with pytest.raises(TypeError):
            q.get(timeout='1')

    def test_bad_arguments(self):
        q = create_queue()
        with pytest.raises(TypeError):
            q.put()
        with pytest.raises(TypeError):
            q.put(1, True, None, None)
        with pytest.raises(TypeError):
            q.put(1, spam=1)
        with pytest.raises(TypeError):
            q.put(1, obj=1)
        with pytest.raises(TypeError):
            q.get(True, None, 1)
        with pytest.raises(TypeError):
            q.get_nowait(1)
        with pytest.raises(TypeError):
            q.qsize(1)
        with pytest.raises(TypeError):
            create_queue(1, UNBOUND)  # unbounditems is keyword-only

    def test_keyword_arguments(self):
        q = create_queue()
        q.put(obj=1, block=True, timeout=1, unbounditems=UNBOUND_ERROR)
        q.put_nowait(obj=2, unbounditems=None)
        assert q.get(block=True, timeout=1.5) == 1
        assert q.get(timeout=None) == 2

    def test_fifo(self):
        q = create_queue()
        for i in range(20):
            q.put(i)
        assert [q.get() for _ in range(20)] == list(range(20))

    @pytest.mark.parametrize('obj', [
        [1, 2, 3], {'a': 1, 'b': [2]}, {1, 2}, bytearray(b'xy'), 1 + 2j,
        ValueError('x'),
    ], ids=repr)
    def test_pickled_values(self, obj):
        q = create_queue()
        q.put(obj)
        got = q.get()
        assert type(got) is type(obj)
        assert got is not obj
        if isinstance(obj, Exception):
            assert got.args == obj.args
        else:
            assert got == obj

    @pytest.mark.parametrize('obj', [
        None, True, 10, -10, 2**70, 1.5, 'spam', b'spam', (1, ('a', b'b')),
    ], ids=repr)
    def test_native_values(self, obj):
        q = create_queue()
        q.put(obj)
        assert q.get() == obj

    def test_bytes_copied(self):
        q = create_queue()
        orig = b'spam' * 10
        q.put(orig)
        obj = q.get()
        assert obj == orig
        assert obj is not orig

    def test_memoryview_shared(self):
        buf = bytearray(b'abcdef')
        q = create_queue()
        q.put(memoryview(buf))
        view = q.get()
        assert isinstance(view, memoryview)
        assert bytes(view) == b'abcdef'
        buf[0] = ord('X')
        assert bytes(view[:1]) == b'X'
        view.release()

    def test_not_shareable(self):
        q = create_queue()
        with pytest.raises(NotShareableError):
            q.put(lambda: threading)  # a closure over a module: unpicklable
        with pytest.raises(NotShareableError):
            q.put_nowait(threading.Lock())
        assert q.qsize() == 0

    def test_not_shareable_on_full_queue(self):
        # The value is converted first, so the error is NotShareableError
        # even when the queue is full, and nothing is queued.
        q = create_queue(1)
        q.put(1)
        with pytest.raises(NotShareableError):
            q.put_nowait(threading.Lock())
        assert q.qsize() == 1

    def test_many_threads_one_interpreter(self):
        q = create_queue(8)
        n_threads, n_items = 4, 500
        results = []

        def consumer():
            got = []
            while True:
                x = q.get(timeout=30)
                if x is None:
                    break
                got.append(x)
            results.append(got)

        def producer(base):
            for i in range(n_items):
                q.put(base + i, timeout=30)

        consumers = [threading.Thread(target=consumer)
                     for _ in range(n_threads)]
        producers = [threading.Thread(target=producer, args=(k * n_items,))
                     for k in range(n_threads)]
        for t in consumers + producers:
            t.start()
        for t in producers:
            t.join()
        for _ in consumers:
            q.put(None)
        for t in consumers:
            t.join()
        everything = sorted(x for got in results for x in got)
        assert everything == list(range(n_threads * n_items))


# ---------------------------------------------------------------------------
# queues and other interpreters


class TestCrossInterpreter:

    def test_queue_through_queue_same_interpreter(self):
        q1 = create_queue()
        q2 = create_queue()
        q1.put(q2)
        assert q1.get() is q2
        q1.put((q2, [q2]))
        t = q1.get()
        assert t[0] is q2 and t[1][0] is q2

    def test_queue_through_queue_to_subinterpreter(self, exec_output):
        q1 = create_queue()
        interp = interpreters.create()
        interp.prepare_main(q1=q1)
        q4 = create_queue()
        q1.put(q4)
        out = exec_output(interp, 'print(q1.get().id)')
        assert int(out) == q4.id

    def test_queue_from_subinterpreter(self, exec_output):
        q1 = create_queue()
        interp = interpreters.create()
        interp.prepare_main(q1=q1)
        out = exec_output(interp, """
            import subinterpreters as interpreters
            q5 = interpreters.create_queue()
            q1.put(q5)
            print(q5.id)
            """)
        q5 = q1.get()
        assert q5.id == int(out)
        assert isinstance(q5, Queue)

    def test_put_get_different_interpreters(self, exec_output):
        interp = interpreters.create()
        q1 = create_queue()
        q2 = create_queue()
        orig = b'spam'
        q1.put(orig)
        interp.prepare_main(q1=q1, q2=q2)
        out = exec_output(interp, f"""
            assert q1.qsize() == 1, q1.qsize()
            obj = q1.get()
            assert q1.qsize() == 0
            assert obj == b'spam'
            assert id(obj) != {id(orig)}
            obj2 = b'eggs'
            print(id(obj2))
            assert q2.qsize() == 0
            q2.put(obj2)
            assert q2.qsize() == 1
            """)
        assert q1.qsize() == 0
        assert q2.qsize() == 1
        obj2 = q2.get()
        assert obj2 == b'eggs'
        assert id(obj2) != int(out)

    def test_round_trip_through_subinterpreter(self):
        interp = interpreters.create()
        q = create_queue()
        q.put({'x': [1, 2]})
        interp.prepare_main(q=q)
        interp.exec('obj = q.get(); obj["y"] = 3; q.put(obj)')
        assert q.get() == {'x': [1, 2], 'y': 3}

    def test_no_import_ritual_prepare_main(self, exec_output):
        # The subinterpreter never imports subinterpreters itself.
        q = create_queue()
        interp = interpreters.create()
        interp.prepare_main(q=q)
        out = exec_output(interp, """
            import queue
            try:
                q.get_nowait()
            except queue.Empty as exc:
                print(type(exc).__name__)
            q.put(7)
            """)
        assert out == 'QueueEmpty\n'
        assert q.get_nowait() == 7

    def test_no_import_ritual_call(self):
        q = create_queue()
        interp = interpreters.create()
        assert interp.call(_get_empty_in_fresh_interpreter, q) == \
            ('QueueEmpty', True)
        q.put(5)
        assert interp.call(_get_nowait, q) == 5
        interp.call(_put, q, 'back')
        assert q.get_nowait() == 'back'

    def test_call_returns_queue(self):
        q = create_queue()
        interp = interpreters.create()
        assert interp.call(_queue_id, q) == q.id

    def test_unbound_sentinel_crosses(self):
        q = create_queue()
        interp = interpreters.create()
        q.put(UNBOUND)  # pickled by name
        assert q.get() is UNBOUND
        interp.prepare_main(q=q)
        interp.exec('import subinterpreters as I; q.put(I.UNBOUND)')
        assert q.get() is UNBOUND

    def test_item_bound_to_reputter(self, new_interp):
        # Checklist 87: an item re-put by another interpreter is bound to
        # that interpreter, not to the one that first put the value.
        q = create_queue()
        interp1 = interpreters.create()
        interp2 = interpreters.create()
        interp1.prepare_main(q=q)
        interp2.prepare_main(q=q)
        interp1.exec('q.put(b"spam", unbounditems=__import__('
                     '"subinterpreters").UNBOUND_REMOVE)')
        interp2.exec('obj = q.get(); q.put(obj, unbounditems=__import__('
                     '"subinterpreters").UNBOUND_REMOVE)')
        interp1.close()
        assert q.qsize() == 1
        assert q.get() == b'spam'
        interp2.exec('q.put(b"eggs", unbounditems=__import__('
                     '"subinterpreters").UNBOUND_REMOVE)')
        q.put(b'ham', unbounditems=UNBOUND_REMOVE)  # main re-puts
        interp2.close()
        assert q.qsize() == 1
        assert q.get() == b'ham'

    def test_bindings_in_transit_released(self):
        q = create_queue()
        carrier = create_queue()
        assert _core._queue_refs(q.id) == 1
        carrier.put(q)
        assert _core._queue_refs(q.id) == 2  # the copy in transit
        assert carrier.get() is q
        assert _core._queue_refs(q.id) == 1
        interp = interpreters.create()
        for _ in range(3):
            assert interp.call(_queue_id, q) == q.id
        gc.collect()
        assert _core._queue_refs(q.id) == 1
        interp.prepare_main(q=q)
        assert _core._queue_refs(q.id) == 2  # the subinterpreter's Queue
        interp.close()
        assert _core._queue_refs(q.id) == 1

    def test_queue_item_dropped_with_queue(self):
        inner = create_queue()
        outer = create_queue()
        outer.put(inner)
        assert _core._queue_refs(inner.id) == 2
        del outer
        gc.collect()
        assert _core._queue_refs(inner.id) == 1


# ---------------------------------------------------------------------------
# unbound items


def _put_from(interp, q, source):
    interp.prepare_main(q=q)
    interp.exec('import subinterpreters as I\n' + source)


class TestUnbound:

    def test_default_replace(self):
        q = create_queue()
        interp = interpreters.create()
        _put_from(interp, q, 'q.put(b"spam")\nq.put(b"eggs")')
        assert q.qsize() == 2
        assert q.get() == b'spam'
        interp.close()
        assert q.qsize() == 1
        assert q.get() is UNBOUND
        assert q.qsize() == 0
        with pytest.raises(QueueEmpty):
            q.get_nowait()

    def test_error(self):
        q = create_queue(unbounditems=UNBOUND_ERROR)
        interp = interpreters.create()
        _put_from(interp, q, 'q.put(b"spam")')
        interp.close()
        assert q.qsize() == 1
        with pytest.raises(ItemInterpreterDestroyed,
                           match="item's original interpreter destroyed"):
            q.get()
        assert q.qsize() == 0
        with pytest.raises(QueueEmpty):
            q.get_nowait()

    def test_error_get_nowait(self):
        q = create_queue()
        interp = interpreters.create()
        _put_from(interp, q, 'q.put(1, unbounditems=I.UNBOUND_ERROR)')
        interp.close()
        with pytest.raises(ItemInterpreterDestroyed):
            q.get_nowait()
        assert q.empty()

    def test_remove(self):
        q = create_queue(unbounditems=UNBOUND_REMOVE)
        interp = interpreters.create()
        q.put(b'main1')
        _put_from(interp, q, 'q.put(b"spam")\nq.put(b"eggs")')
        q.put(b'main2', unbounditems=UNBOUND_REMOVE)
        assert q.qsize() == 4
        interp.close()
        assert q.qsize() == 2
        assert q.get() == b'main1'
        assert q.get() == b'main2'
        assert q.empty()

    def test_remove_frees_space(self):
        q = create_queue(2, unbounditems=UNBOUND_REMOVE)
        interp = interpreters.create()
        _put_from(interp, q, 'q.put(1)\nq.put(2)')
        assert q.full()
        interp.close()
        assert not q.full()
        q.put_nowait(3)
        assert q.get() == 3

    def test_remove_wakes_blocked_putter(self):
        q = create_queue(1, unbounditems=UNBOUND_REMOVE)
        interp = interpreters.create()
        _put_from(interp, q, 'q.put(1)')
        done = threading.Event()

        def putter():
            q.put('main', timeout=30)
            done.set()

        t = threading.Thread(target=putter)
        t.start()
        time.sleep(0.1)
        assert not done.is_set()
        interp.close()
        t.join(10)
        assert done.is_set()
        assert q.get_nowait() == 'main'

    def test_mixed(self):
        # Checklist 86.
        q = create_queue()
        interp = interpreters.create()
        _put_from(interp, q, """
            q.put(1, unbounditems=I.UNBOUND)
            q.put(2, unbounditems=I.UNBOUND_ERROR)
            q.put(3)
            q.put(4, unbounditems=I.UNBOUND_REMOVE)
            q.put(5, unbounditems=I.UNBOUND)
            """.replace('\n            ', '\n'))
        assert q.qsize() == 5
        interp.close()
        assert q.qsize() == 4
        assert q.get() is UNBOUND
        with pytest.raises(ItemInterpreterDestroyed):
            q.get()
        assert q.get() is UNBOUND
        assert q.get() is UNBOUND
        assert q.qsize() == 0

    def test_other_interpreters_untouched(self):
        q = create_queue(unbounditems=UNBOUND_REMOVE)
        a = interpreters.create()
        b = interpreters.create()
        q.put('m0')
        _put_from(a, q, 'q.put("a0")')
        _put_from(b, q, 'q.put("b0")')
        q.put('m1')
        _put_from(a, q, 'q.put("a1", unbounditems=I.UNBOUND)')
        _put_from(b, q, 'q.put("b1")')
        a.close()
        assert q.qsize() == 5
        assert [q.get() for _ in range(5)] == \
            ['m0', 'b0', 'm1', UNBOUND, 'b1']

    def test_unbound_across_queues(self):
        q1 = create_queue()
        q2 = create_queue(unbounditems=UNBOUND_ERROR)
        interp = interpreters.create()
        interp.prepare_main(q1=q1, q2=q2)
        interp.exec('q1.put(1); q2.put(2)')
        interp.close()
        assert q1.get() is UNBOUND
        with pytest.raises(ItemInterpreterDestroyed):
            q2.get()

    def test_unbound_queue_item_releases_binding(self):
        inner = create_queue()
        q = create_queue()
        interp = interpreters.create()
        interp.prepare_main(q=q, inner=inner)
        interp.exec('q.put(inner); del inner')
        interp.close()
        gc.collect()
        assert _core._queue_refs(inner.id) == 1  # only ours left
        assert q.get() is UNBOUND

    def test_unbound_repr(self):
        assert repr(UNBOUND) == 'subinterpreters.UNBOUND'
        assert repr(UNBOUND_ERROR) == 'subinterpreters.UNBOUND_ERROR'
        assert repr(UNBOUND_REMOVE) == 'subinterpreters.UNBOUND_REMOVE'

    def test_unbound_not_instantiable(self):
        with pytest.raises(Exception, match='use subinterpreters.UNBOUND'):
            type(UNBOUND)()
        with pytest.raises(Exception):
            type(UNBOUND_ERROR)()

    def test_sentinels_pickle_by_identity(self):
        for obj in (UNBOUND, UNBOUND_ERROR, UNBOUND_REMOVE):
            assert pickle.loads(pickle.dumps(obj)) is obj

    def test_sentinels_exported(self):
        from subinterpreters import _queues
        assert interpreters.UNBOUND is _queues.UNBOUND
        assert interpreters.UNBOUND_ERROR is _queues.UNBOUND_ERROR
        assert interpreters.UNBOUND_REMOVE is _queues.UNBOUND_REMOVE
        assert interpreters.QueueEmpty is _queues.QueueEmpty
        assert interpreters.create_queue is _queues.create_queue

    @pytest.mark.parametrize('bad', [None, object(), 1, 'UNBOUND',
                                     ItemInterpreterDestroyed])
    def test_invalid_unbounditems(self, bad):
        if bad is not None:
            with pytest.raises(NotImplementedError):
                create_queue(unbounditems=bad)
        q = create_queue()
        if bad is None:
            q.put(1, unbounditems=None)  # None means the queue's default
            return
        with pytest.raises(NotImplementedError):
            q.put(1, unbounditems=bad)
        with pytest.raises(NotImplementedError):
            q.put_nowait(1, unbounditems=bad)
        assert q.qsize() == 0


# ---------------------------------------------------------------------------
# lifetime


class TestLifetime:

    def test_destroyed_with_last_object(self):
        q = create_queue()
        qid = q.id
        assert qid in _core._queue_list_ids()
        del q
        gc.collect()
        assert qid not in _core._queue_list_ids()
        with pytest.raises(QueueNotFoundError):
            Queue(qid)

    def test_kept_alive_by_subinterpreter(self):
        q = create_queue()
        qid = q.id
        q.put('kept')
        interp = interpreters.create()
        interp.prepare_main(q=q)
        del q
        gc.collect()
        assert qid in _core._queue_list_ids()
        q = Queue(qid)
        assert q.get() == 'kept'
        del q
        gc.collect()
        interp.close()
        assert qid not in _core._queue_list_ids()

    def test_kept_alive_by_item_in_transit(self):
        carrier = create_queue()
        q = create_queue()
        qid = q.id
        q.put('x')
        carrier.put(q)
        del q
        gc.collect()
        assert qid in _core._queue_list_ids()
        q = carrier.get()
        assert q.id == qid and q.get() == 'x'

    def test_destroy_drops_items_and_fails_later_use(self):
        q = create_queue()
        q.put(1)
        _core._queue_destroy(q.id)
        assert q.id not in _core._queue_list_ids()
        with pytest.raises(QueueNotFoundError):
            q.qsize()
        with pytest.raises(QueueNotFoundError):
            q.put(1)
        with pytest.raises(QueueNotFoundError):
            q.get_nowait()
        with pytest.raises(QueueNotFoundError):
            _core._queue_destroy(q.id)
        with pytest.raises(QueueNotFoundError):
            create_queue().put(q)  # cannot be bound any more
        assert Queue(q.id) is q  # the existing object, still unusable
        qid = q.id
        del q
        gc.collect()
        with pytest.raises(QueueNotFoundError):
            Queue(qid)

    @pytest.mark.parametrize('op', ['get', 'put'])
    def test_destroy_wakes_blocked_threads(self, op):
        q = create_queue(1)
        if op == 'put':
            q.put(0)
        errors = []

        def waiter():
            try:
                if op == 'get':
                    q.get(timeout=30)
                else:
                    q.put(1, timeout=30)
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=waiter) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.2)
        start = time.monotonic()
        _core._queue_destroy(q.id)
        for t in threads:
            t.join(10)
        assert time.monotonic() - start < 2
        assert len(errors) == 3
        assert all(isinstance(e, QueueNotFoundError) for e in errors)
        assert 'destroyed' in str(errors[0])

    def test_no_leak_of_queues(self):
        gc.collect()
        before = set(_core._queue_list_ids())
        interp = interpreters.create()
        for _ in range(50):
            q = create_queue()
            q.put(q)
            other = create_queue()
            q.put(other)
            interp.prepare_main(q=q)
            interp.exec('q.get(); q.get(); q.put([1]); del q')
            assert q.get() == [1]
        del q, other
        gc.collect()
        interp.close()
        assert set(_core._queue_list_ids()) == before


# ---------------------------------------------------------------------------
# blocking (beyond 3.14)


class TestBlocking:

    def test_float_timeout_get(self):
        q = create_queue()
        start = time.monotonic()
        with pytest.raises(QueueEmpty):
            q.get(timeout=0.3)
        elapsed = time.monotonic() - start
        assert 0.25 <= elapsed <= 1.0

    def test_float_timeout_put(self):
        q = create_queue(1)
        q.put(0)
        start = time.monotonic()
        with pytest.raises(QueueFull):
            q.put(1, timeout=0.3)
        elapsed = time.monotonic() - start
        assert 0.25 <= elapsed <= 1.0

    def test_small_timeout_waits(self):
        # 3.14 truncates 0.5 to 0: no wait at all.
        q = create_queue()

        def later():
            time.sleep(0.1)
            q.put('late')

        t = threading.Thread(target=later)
        t.start()
        assert q.get(timeout=0.5) == 'late'
        t.join()

    def test_blocked_get_woken_by_put(self):
        q = create_queue()
        got = []

        def getter():
            got.append((q.get(timeout=30), time.monotonic()))

        t = threading.Thread(target=getter)
        t.start()
        time.sleep(0.2)
        start = time.monotonic()
        q.put('x')
        t.join(10)
        assert got and got[0][0] == 'x'
        assert got[0][1] - start < 0.5

    def test_blocked_get_woken_by_other_interpreter(self):
        q = create_queue()
        interp = interpreters.create()
        interp.prepare_main(q=q)
        got = []

        def getter():
            got.append((q.get(timeout=30), time.monotonic()))

        t = threading.Thread(target=getter)
        t.start()
        time.sleep(0.2)
        start = time.monotonic()
        interp.exec('q.put("from sub")')
        t.join(10)
        assert got and got[0][0] == 'from sub'
        assert got[0][1] - start < 0.5

    def test_blocked_get_in_subinterpreter(self):
        q = create_queue()
        interp = interpreters.create()
        results = []
        t = threading.Thread(
            target=lambda: results.append(interp.call(_get, q)))
        t.start()
        time.sleep(0.2)
        q.put(('hello', 42))
        t.join(10)
        assert results == [('hello', 42)]

    def test_blocked_put_woken_by_get(self):
        q = create_queue(1)
        q.put(0)
        done = []

        def putter():
            q.put(1, timeout=30)
            done.append(time.monotonic())

        t = threading.Thread(target=putter)
        t.start()
        time.sleep(0.2)
        start = time.monotonic()
        assert q.get() == 0
        t.join(10)
        assert done and done[0] - start < 0.5
        assert q.get_nowait() == 1

    def test_ping_pong(self):
        # Two interpreters answering each other: fast because nobody polls.
        ping = create_queue()
        pong = create_queue()
        interp = interpreters.create()
        interp.prepare_main(ping=ping, pong=pong)
        t = threading.Thread(target=interp.exec, args=(
            'while (x := ping.get()) is not None:\n'
            '    pong.put(x + 1)\n',))
        t.start()
        n = 500
        start = time.monotonic()
        for i in range(n):
            ping.put(i)
            assert pong.get(timeout=10) == i + 1
        elapsed = time.monotonic() - start
        ping.put(None)
        t.join(10)
        # 3.14's 10 ms polling needs >= 5 s for this; allow slow machines.
        assert elapsed < 4.0

    def test_multi_producer_multi_consumer(self):
        n_producers, n_consumers, per_producer = 3, 3, 2000
        q = create_queue(16)
        producers = [interpreters.create() for _ in range(n_producers)]
        consumers = [interpreters.create() for _ in range(n_consumers)]
        results = [None] * n_consumers
        errors = []

        def run_consumer(i):
            try:
                results[i] = consumers[i].call(_consume, q)
            except BaseException as exc:
                errors.append(exc)

        def run_producer(i):
            try:
                producers[i].call(_produce, q, i * per_producer,
                                  per_producer)
            except BaseException as exc:
                errors.append(exc)

        cthreads = [threading.Thread(target=run_consumer, args=(i,))
                    for i in range(n_consumers)]
        pthreads = [threading.Thread(target=run_producer, args=(i,))
                    for i in range(n_producers)]
        for t in cthreads + pthreads:
            t.start()
        for t in pthreads:
            t.join(60)
        for _ in range(n_consumers):
            q.put(None, timeout=30)
        for t in cthreads:
            t.join(60)
        assert not errors, errors
        total = n_producers * per_producer
        counts = [len(r) for r in results]
        everything = [x for r in results for x in r]
        assert sum(counts) == total
        assert sum(everything) == total * (total - 1) // 2
        assert sorted(everything) == list(range(total))
        # each producer's items arrive in order at any single consumer
        for r in results:
            for p in range(n_producers):
                mine = [x for x in r if x // per_producer == p]
                assert mine == sorted(mine)
        assert q.qsize() == 0


# ---------------------------------------------------------------------------
# Ctrl-C and process exit (subprocesses)


CTRL_C_SCRIPT = """
import os, signal, threading, time
import subinterpreters as interpreters
q = interpreters.create_queue({maxsize})
if {maxsize}:
    q.put(0)
sub = interpreters.create()
sub.prepare_main(q=q)

def fire():
    time.sleep(0.3)
    os.kill(os.getpid(), signal.SIGINT)

threading.Thread(target=fire).start()
start = time.monotonic()
try:
    {op}
except KeyboardInterrupt:
    print('interrupted', time.monotonic() - start)
else:
    print('not interrupted')
# the queue still works afterwards
q.put_nowait(1) if not {maxsize} else None
print('ok')
"""


@pytest.mark.parametrize('op,maxsize', [
    ('q.get()', 0),
    ('q.get(timeout=60)', 0),
    ('q.put(1)', 1),
    # the main thread blocked in a subinterpreter's queue get()
    ('sub.exec("q.get()")', 0),
])
def test_ctrl_c_interrupts_blocked_call(run_python, op, maxsize):
    rc, out, err = run_python(CTRL_C_SCRIPT.format(op=op, maxsize=maxsize),
                              timeout=30)
    assert rc == 0, err
    lines = out.split('\n')
    assert lines[0].startswith('interrupted'), out + err
    assert 0.25 <= float(lines[0].split()[1]) < 1.3
    assert lines[1] == 'ok'


@pytest.mark.parametrize('source', ['q.get()', 'full.put(1)'])
def test_interrupt_blocked_call(source):
    # Interpreter.interrupt() reaches a put()/get() blocked in the
    # interpreter's __main__.
    q = create_queue()
    full = create_queue(1)
    full.put(0)
    interp = interpreters.create()
    interp.prepare_main(q=q, full=full)
    errors = []

    def run():
        try:
            interp.exec(source)
        except interpreters.ExecutionFailed as exc:
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 10
    while not interp.is_running():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.2)  # blocked in the queue by now
    start = time.monotonic()
    assert interp.interrupt() is True
    t.join(10)
    assert not t.is_alive()
    assert time.monotonic() - start < 1.0
    assert [e.excinfo.type.__name__ for e in errors] == ['KeyboardInterrupt']
    # the queues still work
    q.put(1)
    assert interp.call(_get, q) == 1


def test_exit_with_blocked_threads(run_python):
    rc, out, err = run_python("""
        import threading, time
        import subinterpreters as interpreters
        q = interpreters.create_queue()
        full = interpreters.create_queue(1)
        full.put(0)
        # daemon threads of the main interpreter, blocked
        threading.Thread(target=q.get, daemon=True).start()
        threading.Thread(target=full.put, args=(1,), daemon=True).start()
        # a (non-daemon) thread of a subinterpreter, blocked: it must be
        # woken for the subinterpreter to be destroyed at exit
        interp = interpreters.create()
        interp.prepare_main(q=q)
        interp.exec('import threading\\n'
                    'def f():\\n'
                    '    try:\\n'
                    '        q.get()\\n'
                    '    except Exception as exc:\\n'
                    '        print("woken:", type(exc).__name__,\\n'
                    '              flush=True)\\n'
                    't = threading.Thread(target=f)\\n'
                    't.start()\\n')
        # (A daemon thread blocked inside exec() is not tested: any daemon
        # thread still running a session at exit crashes the process,
        # queue or no queue -- a lifecycle issue, not a queue one.)
        time.sleep(0.3)
        print('exiting', flush=True)
        """, timeout=60)
    assert rc == 0, err
    assert 'exiting' in out
    assert 'woken: QueueError' in out
