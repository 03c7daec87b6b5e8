"""Everyday standard-library snippets for the real-code matrix.

Each ``snip_*`` function is ordinary user code: it imports what it needs
inside the function (so nothing is imported in the main interpreter before
the subinterpreters run it, which is how users hit import-order bugs) and
returns a small, deterministic, natively shareable value.  The matrix runs
every snippet in two live subinterpreters, through ``call()`` and through
a 2-worker pool, then runs it in the main interpreter last and compares.

Keep this module free of third-party imports (pytest included): worker
interpreters import it.
"""

import os
import sys
import time


def snip_datetime():
    import datetime
    now = datetime.datetime.now()
    d = datetime.date(2024, 2, 29) + datetime.timedelta(days=366)
    utc = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
    return (now.year >= 2024, d.isoformat(), utc.isoformat(),
            datetime.datetime.fromisoformat('2021-06-01T12:30:00').hour)


def snip_zoneinfo():
    import datetime
    import zoneinfo
    try:
        tz = zoneinfo.ZoneInfo('Europe/Paris')
    except zoneinfo.ZoneInfoNotFoundError:
        return 'no tzdata'
    t = datetime.datetime(2024, 7, 1, 12, tzinfo=tz)
    return t.utcoffset().total_seconds()


def snip_decimal():
    import decimal
    decimal.getcontext().prec = 30
    x = decimal.Decimal(1) / decimal.Decimal(7)
    with decimal.localcontext() as ctx:
        ctx.prec = 5
        y = +x
    return str(x), str(y), str(decimal.Decimal('1.10') + decimal.Decimal('2.20'))


def snip_fractions_statistics():
    import fractions
    import statistics
    f = fractions.Fraction(3, 4) + fractions.Fraction(1, 6)
    return (str(f), statistics.mean([1, 2, 3, 4]),
            statistics.median([5, 1, 3]), round(statistics.stdev([1, 2, 3, 4]), 6))


def snip_sqlite3():
    import sqlite3
    con = sqlite3.connect(':memory:')
    try:
        con.execute('create table t (k text primary key, v integer)')
        con.executemany('insert into t values (?, ?)',
                        [(f'k{i}', i * i) for i in range(50)])
        total = con.execute('select sum(v) from t').fetchone()[0]
        row = con.execute('select k, v from t where k = ?', ('k7',)).fetchone()
    finally:
        con.close()
    return total, tuple(row)


def snip_hashlib():
    import hashlib
    return (hashlib.sha256(b'abc').hexdigest(),
            hashlib.md5(b'abc', usedforsecurity=False).hexdigest(),
            hashlib.new('sha1', b'abc').hexdigest(),
            hashlib.blake2b(b'abc', digest_size=16).hexdigest(),
            hashlib.pbkdf2_hmac('sha256', b'pw', b'salt', 10).hex())


def snip_hmac_secrets():
    import hmac
    import secrets
    mac = hmac.new(b'key', b'msg', digestmod='sha256').hexdigest()
    token = secrets.token_hex(16)
    return (mac, len(token), hmac.compare_digest(mac, mac),
            secrets.randbelow(10) < 10)


def snip_gzip_zlib():
    import gzip
    import zlib
    data = b'hello world ' * 100
    c1 = zlib.compress(data, level=1)
    c2 = gzip.compress(data, compresslevel=6, mtime=0)
    co = zlib.compressobj(level=9, wbits=-15)
    c3 = co.compress(data) + co.flush()
    do = zlib.decompressobj(wbits=-15)
    return (zlib.decompress(c1) == data, gzip.decompress(c2) == data,
            do.decompress(c3) == data, zlib.crc32(data))


def snip_bz2_lzma():
    import bz2
    import lzma
    data = b'abc' * 1000
    return (bz2.decompress(bz2.compress(data, compresslevel=9)) == data,
            lzma.decompress(lzma.compress(data, preset=1)) == data)


def snip_asyncio():
    import asyncio

    async def child(i):
        await asyncio.sleep(0.001)
        return i * 2

    async def main():
        results = await asyncio.gather(*(child(i) for i in range(10)))
        q = asyncio.Queue(maxsize=2)
        await q.put(1)
        try:
            r = await asyncio.wait_for(q.get(), timeout=1)
        except TimeoutError:
            r = None
        return sum(results), r

    return asyncio.run(main())


def snip_json():
    import json
    obj = {'a': [1, 2.5, None, True], 'b': {'c': 'd\u00e9'}}
    text = json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False)
    return json.loads(text) == obj, text


def snip_re():
    import re
    pat = re.compile(r'(?P<word>\w+)@(?P<host>[\w.]+)', flags=re.IGNORECASE)
    m = pat.search('mail: Alice@example.org')
    return (m.group('word'), m['host'], re.sub(r'\d', '#', 'a1b22', count=2),
            re.split(r'[,;]', 'a,b;c', maxsplit=1))


def snip_csv():
    import csv
    import io
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=';', quoting=csv.QUOTE_MINIMAL)
    w.writerows([['a', 'b c'], ['1', 'x;y']])
    rows = list(csv.reader(io.StringIO(buf.getvalue()), delimiter=';'))
    dr = list(csv.DictReader(io.StringIO('k,v\n1,2\n')))
    return rows, dr[0]


def snip_email():
    import email.message
    import email.policy
    import email.utils
    msg = email.message.EmailMessage(policy=email.policy.SMTP)
    msg['From'] = 'a@example.org'
    msg['To'] = 'b@example.org'
    msg['Subject'] = 'hello'
    msg['Date'] = email.utils.format_datetime(
        email.utils.parsedate_to_datetime('Mon, 20 Nov 1995 19:12:08 -0500'))
    msg.set_content('body text')
    parsed = email.message_from_bytes(msg.as_bytes(),
                                      policy=email.policy.default)
    return parsed['Subject'], parsed.get_content().strip(), parsed['Date']


def snip_urllib():
    import urllib.parse
    import urllib.request
    req = urllib.request.Request('http://example.org/a?b=1',
                                 headers={'X-Test': '1'}, method='POST')
    parts = urllib.parse.urlsplit('https://u:p@h.example:8080/p?q=1#f')
    return (req.get_method(), req.host, req.get_header('X-test'),
            parts.port, urllib.parse.urlencode({'a': 'b c', 'd': 1}),
            urllib.parse.quote('a b/ü', safe='/'))


def snip_http_client():
    import http.client
    import http.cookies
    conn = http.client.HTTPConnection('localhost', 9, timeout=1)
    c = http.cookies.SimpleCookie()
    c['k'] = 'v'
    c['k']['path'] = '/'
    return (conn.host, conn.port, c.output(),
            http.client.responses[404])


def snip_logging():
    import io
    import logging
    stream = io.StringIO()
    logger = logging.getLogger('realcode')
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter('%(levelname)s:%(name)s:%(message)s'))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info('hello %s', 'world')
        logger.debug('hidden')
        logger.warning('careful')
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def snip_threading():
    import threading
    total = []
    lock = threading.Lock()
    cond = threading.Condition()
    ev = threading.Event()

    def work(i):
        with lock:
            total.append(i)
        if i == 3:
            ev.set()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with cond:
        cond.notify_all()
    return sorted(total), ev.wait(5), threading.current_thread().is_alive()


def snip_thread_pool():
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
        results = list(ex.map(pow, range(6), [2] * 6, timeout=30))
        fut = ex.submit(sum, [1, 2, 3])
        return results, fut.result(timeout=30)


def snip_subprocess():
    import subprocess
    out = subprocess.run([sys.executable, '-c', 'print(6 * 7)'],
                         capture_output=True, text=True, timeout=60,
                         check=True)
    return out.stdout.strip(), out.returncode


def snip_ssl():
    import ssl
    ctx = ssl.create_default_context()
    ctx2 = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx2.minimum_version = ssl.TLSVersion.TLSv1_2
    return (ctx.check_hostname, ctx.verify_mode == ssl.CERT_REQUIRED,
            ctx2.minimum_version == ssl.TLSVersion.TLSv1_2,
            ssl.OPENSSL_VERSION.split()[0])


def snip_socket():
    import socket
    a, b = socket.socketpair()
    try:
        a.sendall(b'ping')
        data = b.recv(16)
        b.settimeout(0.01)
        try:
            b.recv(1)
            timed_out = False
        except TimeoutError:
            timed_out = True
    finally:
        a.close()
        b.close()
    return data, timed_out, socket.getaddrinfo('127.0.0.1', 80,
                                                type=socket.SOCK_STREAM)[0][4]


def snip_selectors():
    import selectors
    import socket
    a, b = socket.socketpair()
    sel = selectors.DefaultSelector()
    try:
        sel.register(b, selectors.EVENT_READ, data='b')
        a.send(b'x')
        events = sel.select(timeout=5)
        return [key.data for key, _ in events]
    finally:
        sel.close()
        a.close()
        b.close()


def snip_tempfile():
    import pathlib
    import shutil
    import tempfile
    with tempfile.TemporaryDirectory(prefix='realcode-') as d:
        p = pathlib.Path(d, 'x.txt')
        p.write_text('content', encoding='utf-8')
        shutil.copy(p, pathlib.Path(d, 'y.txt'))
        with tempfile.NamedTemporaryFile(dir=d, delete=False) as f:
            f.write(b'abc')
        names = sorted(x.name for x in pathlib.Path(d).iterdir()
                       if x.suffix == '.txt')
        return names, pathlib.Path(d, 'y.txt').read_text(encoding='utf-8')


def snip_importlib_metadata():
    import importlib.metadata
    import importlib.resources
    v = importlib.metadata.version('pip') if _has_dist('pip') else 'none'
    files = importlib.resources.files('json')
    return bool(v), files.joinpath('__init__.py').is_file()


def _has_dist(name):
    import importlib.metadata
    try:
        importlib.metadata.distribution(name)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def snip_dataclasses_typing():
    import dataclasses
    import enum
    import typing

    class Color(enum.Enum):
        RED = 1
        BLUE = 2

    @dataclasses.dataclass(frozen=True, order=True)
    class Point:
        x: int
        y: int = 0
        tags: typing.Tuple[str, ...] = ()

    T = typing.TypeVar('T')

    def first(xs: typing.Sequence[T]) -> T:
        return xs[0]

    p = Point(1, 2)
    return (dataclasses.asdict(p), p < Point(2), first([Color.RED]).name,
            typing.get_type_hints(first)['return'] is T)


def snip_xml():
    import xml.dom.minidom
    import xml.etree.ElementTree as ET
    root = ET.fromstring('<a x="1"><b>t</b><b>u</b></a>')
    dom = xml.dom.minidom.parseString('<r><c k="v"/></r>')
    out = ET.tostring(root, encoding='unicode')
    return ([b.text for b in root.iter('b')], root.get('x'),
            dom.documentElement.firstChild.getAttribute('k'), out)


def snip_ctypes():
    import ctypes
    import ctypes.util
    buf = ctypes.create_string_buffer(b'abc', 8)
    arr = (ctypes.c_int * 3)(1, 2, 3)
    libc = ctypes.CDLL(None)
    return (buf.value, sum(arr), ctypes.sizeof(ctypes.c_int64),
            libc.abs(-5))


def snip_tracemalloc():
    import tracemalloc
    tracemalloc.start()
    try:
        data = [bytes(100) for _ in range(100)]
        current, peak = tracemalloc.get_traced_memory()
        snap = tracemalloc.take_snapshot()
        return current > 0, peak >= current, len(snap.statistics('lineno')) > 0, len(data)
    finally:
        tracemalloc.stop()


def snip_pickle_copy():
    import collections
    import copy
    import pickle
    obj = {'a': [1, 2, (3, 4)], 'b': collections.OrderedDict(x=1),
           'c': collections.Counter('hello')}
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    back = pickle.loads(data)
    return back == obj, copy.deepcopy(obj) == obj, dict(back['c'])


def snip_struct_array_binascii():
    import array
    import base64
    import binascii
    import struct
    packed = struct.pack('<iHd', 1, 2, 3.5)
    a = array.array('i', range(5))
    return (struct.unpack('<iHd', packed), a.tobytes().hex()[:8],
            base64.b64encode(b'xyz', altchars=b'-_'),
            binascii.crc_hqx(b'abc', 0), binascii.hexlify(b'ab', sep=':'))


def snip_random_math():
    import cmath
    import math
    import random
    r = random.Random(42)
    return (r.random(), r.choices('abc', k=5), r.sample(range(10), 3),
            math.isclose(math.fsum([0.1] * 10), 1.0), cmath.sqrt(-1),
            math.comb(10, 3))


def snip_itertools_functools():
    import functools
    import heapq
    import itertools
    import operator

    @functools.lru_cache(maxsize=None)
    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    return (fib(60), list(itertools.accumulate([1, 2, 3], operator.mul)),
            heapq.nsmallest(2, [5, 1, 4], key=lambda x: -x),
            functools.reduce(operator.add, range(10), 0))


def snip_textwrap_string_difflib():
    import difflib
    import string
    import textwrap
    return (textwrap.fill('word ' * 20, width=30),
            string.Template('$a-$b').substitute(a=1, b=2),
            list(difflib.unified_diff(['a\n', 'b\n'], ['a\n', 'c\n'], n=0)))


def snip_unicodedata_locale():
    import locale
    import unicodedata
    return (unicodedata.name('é'), unicodedata.normalize('NFD', 'é'),
            locale.getpreferredencoding(False) != '')


def snip_argparse_shlex():
    import argparse
    import shlex
    p = argparse.ArgumentParser(prog='x', exit_on_error=False)
    p.add_argument('--n', type=int, default=3)
    p.add_argument('files', nargs='*')
    ns = p.parse_args(shlex.split('--n 5 "a b" c'))
    return ns.n, ns.files


def snip_uuid_ipaddress():
    import ipaddress
    import uuid
    u = uuid.uuid5(uuid.NAMESPACE_DNS, 'example.org')
    net = ipaddress.ip_network('10.0.0.0/30')
    return str(u), [str(h) for h in net.hosts()], uuid.uuid4().version


def snip_contextvars_queue():
    import contextvars
    import queue
    var = contextvars.ContextVar('var', default=0)
    ctx = contextvars.copy_context()
    ctx.run(var.set, 5)
    q = queue.Queue(maxsize=1)
    q.put(1, block=False)
    try:
        q.put(2, block=True, timeout=0.01)
        full = False
    except queue.Full:
        full = True
    sq = queue.SimpleQueue()
    sq.put(3, block=False)
    return ctx[var], var.get(), q.get(block=True, timeout=1), full, sq.get(timeout=1)


def snip_multiprocessing_shared_memory():
    from multiprocessing import shared_memory
    shm = shared_memory.SharedMemory(create=True, size=16)
    try:
        shm.buf[:3] = b'abc'
        return bytes(shm.buf[:3])
    finally:
        shm.close()
        shm.unlink()


def snip_sched_time():
    import calendar
    import time as t
    return (calendar.isleap(2024), t.strftime('%Y', t.gmtime(0)),
            t.monotonic() > 0, calendar.monthrange(2024, 2))


def snip_tomllib_configparser():
    import configparser
    import tomllib
    cp = configparser.ConfigParser()
    cp.read_string('[s]\nk = v\nn = 3\n')
    return tomllib.loads('a = 1\n[t]\nb = "x"\n'), cp.getint('s', 'n')


def snip_inspect_ast_dis():
    import ast
    import dis
    import inspect
    tree = ast.parse('x = 1 + 2')
    src = inspect.getsource(snip_inspect_ast_dis).splitlines()[0]
    return (ast.dump(tree.body[0].value.op), src,
            any(i.opname == 'RETURN_VALUE' or i.opname == 'RETURN_CONST'
                for i in dis.get_instructions(lambda: None)))


def snip_requests():
    # A PyPI package, installed in the test venvs (its compiled
    # charset_normalizer refuses isolated interpreters; requests then
    # warns and goes on without it).
    import warnings
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            import requests
    except ImportError:
        return 'requests not installed'
    with requests.Session() as s:
        req = s.prepare_request(requests.Request(
            'POST', 'http://example.org/x', params={'a': 1},
            json={'k': [1, 2]}, headers={'X-T': '1'}))
    return req.url, req.body, req.headers['Content-Type']


def snip_zipfile_tarfile():
    import io
    import tarfile
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w', compression=zipfile.ZIP_DEFLATED,
                         compresslevel=5) as z:
        z.writestr('a.txt', 'zip content')
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        zc = z.read('a.txt')
    tbuf = io.BytesIO()
    with tarfile.open(fileobj=tbuf, mode='w:gz') as t:
        data = b'tar content'
        info = tarfile.TarInfo('b.txt')
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    with tarfile.open(fileobj=io.BytesIO(tbuf.getvalue()), mode='r:gz') as t:
        tc = t.extractfile('b.txt').read()
    return zc, tc


SNIPPETS = {name[len('snip_'):]: fn for name, fn in sorted(globals().items())
            if name.startswith('snip_')}


def run(name):
    """Run one snippet; used by call() and the pool (one shared entry)."""
    return SNIPPETS[name]()


def overlapping(name, delay=0.2):
    """Sleep first so that two pool workers import at the same time."""
    time.sleep(delay)
    return SNIPPETS[name]()


def pid():
    return os.getpid()
