#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
Benchmark galileo-credential against a floor program, secret-tool, curl,
git's credential helpers and docker-credential-secretservice on one private
keyring and HTTPS token endpoint (tests/integration/harness.py): cache hit,
cold token, the first call inside the refresh margin, 64 simultaneous cold
calls, 1/10/100 stored servers, and where the time goes (callgrind, the
dynamic loader's statistics, strace).  Writes bench/RESULTS.md and prints
it; progress goes to stderr.  See bench/README.md.

    GC_BUILDDIR=<build dir> /usr/bin/python3 bench/bench.py    (or: scripts/bench)

Every timed row is its own process, spawned by bench/runner.c (no shell),
the rows interleaved.  Targets are reported, never enforced.  No key or
token is printed, written to the results or put in any argv.
"""

import datetime
import json
import os
import platform
import re
import secrets
import shlex
import shutil
import statistics
import subprocess
import sys
import time
import types

sys.dont_write_bytecode = True     # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, 'tests', 'integration'))
import harness  # noqa: E402


def knob(name, default):
    return int(os.environ.get(name) or default)


HIT_ROUNDS = knob('BENCH_RUNS', 200)            # interleaved rounds, cache hit
COLD_ROUNDS = knob('BENCH_COLD_RUNS', 60)
MARGIN_ROUNDS = knob('BENCH_MARGIN_RUNS', 30)
SCALE_ROUNDS = knob('BENCH_SCALE_RUNS', 100)
SCALE_STATUS_ROUNDS = knob('BENCH_SCALE_STATUS_RUNS', 10)
RACE_ROUNDS = knob('BENCH_RACE_ROUNDS', 5)
WARMUP = 3                  # untimed rounds before each timed section
RACE_N = 64
SINGLES = 3                 # single cold calls per race round
RACE_TIMEOUT = 60           # s for one batch of processes
TOKEN_LIFETIME = 900        # s: fresh for the whole run; kernel keys go soon after
MARGIN = 300                # s: the default refresh-margin (helper/session.h)
MARGIN_DELAY = 0.2          # s: the slow endpoint of section 3
MARGIN_LEFT = 60            # s left on an aged token: inside min(margin, lifetime/2)
MARGIN_ORG = 'bench-margin'
SCALE = (1, 10, 100)        # stored servers
RESULTS = os.path.join(HERE, 'RESULTS.md')
TRUE = '/bin/true'
LIBSECRET_SRC = '/usr/share/doc/git/contrib/credential/libsecret/git-credential-libsecret.c'
ST_ATTRS = ['service', 'bench', 'user', 'bench']    # secret-tool attributes of the baseline item
KEY_HEADER = 'Galileo-API-Key: '

KERNEL_ENV_ROW = 'galileo-credential token, GALILEO_API_KEY (kernel keyring)'
FILE_ROW = 'galileo-credential token, GALILEO_API_KEY, token-cache=file'
CONTAINER_ROW = 'keyctl-refused galileo-credential token, GALILEO_API_KEY (a container)'
WRAPPER_ROW = 'keyctl-refused /bin/true (the wrapper alone)'

HIT_FLOOR_TARGET = 1.10     # x the floor program
CONTAINER_TARGET = 2.0      # a container's hit, x the kernel-keyring hit
HIT_ST_TARGET = 0.10        # x secret-tool lookup
COLD_TARGET = 0.75          # x secret-tool lookup + curl
MARGIN_TARGET = 2.0         # x a hit
SCALE_TARGET = 1.0          # hit with 100 servers x hit with 1


class BenchError(Exception):
    pass


def log(msg):
    print('bench: ' + msg, file=sys.stderr, flush=True)


def first_line(argv, env=None):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, env=env, timeout=30)
    return r.stdout.decode('utf-8', 'replace').strip().split('\n')[0]


def ms(x):
    return '%.2f' % (x * 1000.0)


def yes_no(ok):
    return 'yes' if ok else '**no**'


def group(n):
    return '{:,}'.format(int(n))


def elide(w, text):
    text = text.replace(w.url, 'https://127.0.0.1:PORT').replace(w.host, '127.0.0.1:PORT')
    text = text.replace(w.env.root, '$ROOT').replace(harness.builddir(), '$BUILD')
    return text.replace(TOP + os.sep, '')


def has_secret(w, text):
    return any(s and s in text for s in w.env.keys + list(w.server.issued))


def safe(w, text):
    """the first line of a program's stderr, fit to show a person"""
    text = (text or '').strip().split('\n')[0]
    return '(suppressed)' if has_secret(w, text) else elide(w, text)


def run(w, what, argv, input=None, env=None, stdin_file=None):
    """argv in the private world: its stdout, or BenchError when it fails"""
    fin = open(stdin_file, 'rb') if stdin_file else None
    try:
        r = subprocess.run(argv, input=None if input is None else input.encode(),
                           stdin=fin if fin else (subprocess.DEVNULL if input is None else None),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=env or w.cenv, cwd=w.env.home, timeout=harness.RUN_TIMEOUT)
    finally:
        if fin:
            fin.close()
    if r.returncode != 0:
        raise BenchError('%s failed (exit %d): %s' % (
            what, r.returncode, safe(w, r.stderr.decode('utf-8', 'replace'))))
    return r.stdout.decode('utf-8', 'replace')


def loadavg():
    return ' '.join('%.2f' % x for x in os.getloadavg())


# -- rows and the runner ---------------------------------------------------------

class Row:
    """
    One timed command: argv (argv[0] an absolute path), stdin from a file or
    /dev/null, extra environment, an untimed prepare command before each
    run, and optionally a second argv run after it with its stdout (after
    `prefix`) on stdin.
    """

    def __init__(self, name, argv, stdin=None, env=None, prep=None, then=None, prefix=None,
                 expect=None):
        self.name, self.argv, self.stdin = name, list(argv), stdin
        self.env, self.prep, self.then, self.prefix = dict(env or {}), prep, then, prefix
        self.expect = expect    # 'key', 'token' or None: what its stdout must hold

    def show(self):
        def one(argv, stdin):
            return ' '.join(shlex.quote(a) for a in argv) + (' <' + stdin if stdin else '')
        # the key is in the runner's spec file only (mode 0600, in the private world)
        text = ''.join('%s=%s ' % (k, 'KEY' if k == 'GALILEO_API_KEY' else v)
                       for k, v in sorted(self.env.items()))
        text += one(self.argv, self.stdin)
        if self.then:
            text += ' | %s   # %r written into the pipe first' % (one(self.then, None),
                                                                   self.prefix)
        if self.prep:
            text = '(before each run, untimed: %s)  %s' % (' '.join(self.prep), text)
        return text


def runner(w, label, rows, rounds, warmup=WARMUP):
    """the rows interleaved by bench/runner.c; each row gets .times, .cpu, stats"""
    spec = os.path.join(w.bdir, label + '.spec')
    out = os.path.join(w.bdir, label + '.out')
    if os.path.exists(spec):
        os.unlink(spec)
    with os.fdopen(os.open(spec, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), 'w') as f:
        for r in rows:
            f.write('row %s\n' % r.name)
            for a in r.argv:
                f.write('arg %s\n' % a)
            if r.stdin:
                f.write('in %s\n' % r.stdin)
            for k, v in sorted(r.env.items()):
                f.write('env %s=%s\n' % (k, v))
            for a in r.prep or []:
                f.write('prep %s\n' % a)
            if r.then:
                f.write('step -\n')
                for a in r.then:
                    f.write('arg %s\n' % a)
                if r.prefix:
                    f.write('prefix %s\n' % r.prefix)
    log('runner: %s (%d rows, %d warm-up + %d interleaved rounds)'
        % (label, len(rows), warmup, rounds))
    before = w.server.count
    load0 = os.getloadavg()
    t0 = time.time()
    p = subprocess.run([w.tools['runner'], spec, out, str(rounds), str(warmup)],
                       stdin=subprocess.DEVNULL, stdout=sys.stderr, stderr=sys.stderr,
                       env=w.cenv, cwd=w.env.home)
    if p.returncode != 0:
        raise BenchError('the runner (%s) failed, exit %d' % (label, p.returncode))
    w.sections.append((label, time.time() - t0, load0, os.getloadavg()))
    for r in rows:
        r.times, r.cpu, r.user, r.sys, r.minflt, r.status = [], [], [], [], [], []
    with open(out) as f:
        for line in f:
            i, _round, wall, user, sys_, minflt, st = (int(x) for x in line.split())
            rows[i].times.append(wall / 1e9)
            rows[i].cpu.append((user + sys_) / 1e6)
            rows[i].user.append(user / 1e6)
            rows[i].sys.append(sys_ / 1e6)
            rows[i].minflt.append(minflt)
            if st:
                rows[i].status.append(st)
    for r in rows:
        if r.status:
            raise BenchError('%s: %d of %d runs failed (wait status %d)'
                             % (r.name, len(r.status), len(r.times), r.status[0]))
        q = statistics.quantiles(r.times, n=4) if len(r.times) > 1 else r.times * 3
        r.median, r.p25, r.p75 = statistics.median(r.times), q[0], q[2]
        r.cpu_median = statistics.median(r.cpu)
        r.user_median, r.sys_median = statistics.median(r.user), statistics.median(r.sys)
        r.minflt_median = statistics.median(r.minflt)
        r.wait_median = statistics.median(t - c for t, c in zip(r.times, r.cpu))
        r.min = min(r.times)
    return w.server.count - before


def check_row(w, r):
    """run a row once, outside the runner: it works and prints what it should"""
    out = run(w, r.name, r.argv, stdin_file=r.stdin, env=dict(w.cenv, **r.env))
    if r.then:
        out = run(w, r.name, r.then, input=r.prefix + out, env=dict(w.cenv, **r.env))
    if r.expect == 'key' and w.key not in out:
        raise BenchError('%s: did not print the stored key' % r.name)
    if r.expect == 'token' and not any(t in out for t in w.server.issued):
        raise BenchError('%s: printed no token the endpoint issued' % r.name)


# -- setup ---------------------------------------------------------------------

def gcc(w, name, srcs, libs):
    out = os.path.join(w.tooldir, name)
    argv = ['gcc', '-O2', '-o', out] + srcs + libs
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise BenchError('gcc %s: %s' % (name, r.stdout.decode('utf-8', 'replace').strip()[-2000:]))
    w.tools[name] = out
    w.compiled.append(' '.join(shlex.quote(a) for a in argv))
    return out


def build_libsecret(w):
    """git-credential-libsecret from git's contrib source: (path or None, note)"""
    if not os.path.exists(LIBSECRET_SRC):
        return None, 'skipped: %s not present (Debian package git ships it)' % LIBSECRET_SRC
    flags = subprocess.run(['pkg-config', '--cflags', '--libs', 'libsecret-1', 'glib-2.0'],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if flags.returncode != 0:
        return None, 'skipped: pkg-config finds no libsecret-1 (Debian package libsecret-1-dev)'
    try:
        out = gcc(w, 'git-credential-libsecret', [LIBSECRET_SRC], flags.stdout.decode().split())
    except BenchError as e:
        log(str(e))
        return None, 'skipped: compiling %s failed' % LIBSECRET_SRC
    return out, 'compiled at bench time from git\'s contrib source'


def start_git_cache(w):
    """git credential-cache--daemon on a private socket, holding the key once"""
    d = os.path.join(w.env.root, 'git-cache')
    os.makedirs(d, 0o700)
    w.git_sock = os.path.join(d, 'socket')
    log_f = open(os.path.join(w.env.logdir, 'git-cache.log'), 'wb')
    p = subprocess.Popen([w.git, 'credential-cache--daemon', w.git_sock], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=log_f, env=w.cenv, cwd=w.env.home,
                         start_new_session=True)
    log_f.close()
    w.git_daemon = p
    if p.stdout.readline().strip() != b'ok':     # it says ok once it listens
        raise BenchError('git credential-cache--daemon did not start')
    p.stdout.close()
    run(w, 'git credential-cache store',
        [w.git, 'credential-cache', '--socket', w.git_sock, '--timeout', '3600', 'store'],
        input='protocol=https\nhost=%s\nusername=bench\npassword=%s\n\n' % (w.host, w.key))


def stop_git_cache(w):
    p = getattr(w, 'git_daemon', None)
    if not p:
        return
    subprocess.run([w.git, 'credential-cache', '--socket', w.git_sock, 'exit'],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env=w.cenv, timeout=10)
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        p.kill()            # the daemon this bench started, by its pid
        p.wait(5)


def setup_container(w):
    """
    tests/keyctl-refused (built here when make check has not) and the file
    tier primed: one exchange for the GALILEO_API_KEY rows of section 1
    """
    w.refused = harness.keyctl_refused_path()
    if not os.access(w.refused, os.X_OK):
        run(w, 'make tests/keyctl-refused', ['make', '-C', harness.builddir(),
                                             'tests/keyctl-refused'])
    w.env_key = {'GALILEO_API_KEY': w.key}
    before = w.server.count
    run(w, 'keyctl-refused galileo-credential token', [w.refused, w.gc, 'token'],
        env=dict(w.cenv, **w.env_key))
    run(w, 'galileo-credential token (token-cache=file)', [w.gc, 'token'],
        env=dict(w.cenv, GALILEO_CREDENTIAL_TOKEN_CACHE='file', **w.env_key))
    w.container_primed = w.server.count - before


def write_secret_file(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(text)


def setup(env, box):
    """the private world, the same key stored for every tool, the tools compiled"""
    w = types.SimpleNamespace(env=env, server=env.server, url=env.server_url, sections=[],
                              tools={}, compiled=[], dummy_keys=[])
    box.append(w)       # for the clean-up, should setup fail half-way
    w.host = w.url.split('://', 1)[1]
    w.bdir = os.path.join(env.root, 'bench')
    w.tooldir = os.path.join(env.root, 'tools')
    os.makedirs(w.bdir, 0o700)
    os.makedirs(w.tooldir, 0o700)
    w.cenv = env.child_env()
    w.cenv['PATH'] = os.pathsep.join([env.bindir, w.tooldir,
                                      os.environ.get('PATH') or '/usr/bin:/bin'])
    w.run_id = secrets.token_hex(3)     # org slugs not seen before, even by the kernel keyring
    w.seq = 0
    w.lockdir = os.path.join(env.runtime, 'galileo-credential')
    for name in ('secret-tool', 'curl', 'git', 'docker-credential-secretservice', 'valgrind',
                 'strace'):
        setattr(w, name.replace('-', '_'), shutil.which(name))
    w.gc = os.path.join(env.bindir, 'galileo-credential')
    w.gc_git = os.path.join(env.bindir, 'git-credential-galileo')
    w.gc_docker = os.path.join(env.bindir, 'docker-credential-galileo')

    gcc(w, 'runner', [os.path.join(HERE, 'runner.c')], [])
    gcc(w, 'floor', [os.path.join(HERE, 'floor.c')], ['-lkeyutils'])
    # the floor linked like galileo-credential (libjansson too), to price that library
    gcc(w, 'floor-jansson', [os.path.join(HERE, 'floor.c')],
        ['-Wl,--no-as-needed', '-ljansson', '-lkeyutils'])
    gcc(w, 'agekey', [os.path.join(HERE, 'agekey.c')], ['-lkeyutils'])

    env.write_config(token_cache=None)  # the default token cache (keyctl)
    w.inline_config = env.write_config(token_cache=None, extra='refresh = inline\n',
                                       path=os.path.join(env.root, 'config-inline'))
    w.server.lifetime = TOKEN_LIFETIME
    w.key = env.new_key()
    w.server.accept_key(w.key)

    run(w, 'galileo-credential login', [w.gc, 'login', '--server', w.url], input=w.key + '\n')
    run(w, 'galileo-credential token', [w.gc, 'token'])
    descs = [k.raw_description for k in env.kernel_keys()
             if k.description == env.token_key_desc('')]
    if len(descs) != 1:
        raise BenchError('found %d kernel keys for the token' % len(descs))
    w.hit_desc = descs[0]       # galileo-credential:token:CONTEXT:SERVER#
    setup_container(w)
    run(w, 'galileo-credential token (token-cache=keystore)', [w.gc, 'token'],
        env=dict(w.cenv, GALILEO_CREDENTIAL_TOKEN_CACHE='keystore'))     # primes that cache
    run(w, 'secret-tool store',
        [w.secret_tool, 'store', '--label=galileo bench'] + ST_ATTRS, input=w.key)
    run(w, 'docker-credential-secretservice store', [w.docker_credential_secretservice, 'store'],
        input=json.dumps({'ServerURL': w.url, 'Username': 'bench', 'Secret': w.key}))
    w.git_in = os.path.join(w.bdir, 'git-get.in')
    with open(w.git_in, 'w') as f:
        f.write('protocol=https\nhost=%s\n\n' % w.host)
    w.docker_in = os.path.join(w.bdir, 'docker-get.in')
    with open(w.docker_in, 'w') as f:
        f.write(w.url + '\n')
    w.header_in = os.path.join(w.bdir, 'curl-header.in')     # the key, for curl alone
    write_secret_file(w.header_in, KEY_HEADER + w.key + '\n')
    w.libsecret, w.libsecret_note = build_libsecret(w)
    if w.libsecret:
        run(w, 'git-credential-libsecret store', [w.libsecret, 'store'],
            input='protocol=https\nhost=%s\nusername=bench\npassword=%s\n\n' % (w.host, w.key))
    start_git_cache(w)
    return w


# -- the sections ----------------------------------------------------------------

def hit_rows(w):
    rows = [Row('/bin/true', [TRUE]),
            Row('floor (bench/floor.c)', [w.tools['floor'], w.hit_desc], expect='token'),
            Row('floor linked with libjansson too', [w.tools['floor-jansson'], w.hit_desc],
                expect='token'),
            Row('galileo-credential --version (its start-up alone)', [w.gc, '--version']),
            Row('galileo-credential token', [w.gc, 'token'], expect='token'),
            Row('git-credential-galileo get', [w.gc_git, 'get'], stdin=w.git_in, expect='token'),
            Row('docker-credential-galileo get', [w.gc_docker, 'get'], stdin=w.docker_in,
                expect='token'),
            Row('secret-tool lookup', [w.secret_tool, 'lookup'] + ST_ATTRS, expect='key')]
    if w.libsecret:
        rows.append(Row('git-credential-libsecret get', [w.libsecret, 'get'], stdin=w.git_in,
                        expect='key'))
    rows += [Row('git credential-cache get', [w.git, 'credential-cache', '--socket', w.git_sock,
                                              'get'], stdin=w.git_in, expect='key'),
             Row('docker-credential-secretservice get', [w.docker_credential_secretservice,
                                                         'get'], stdin=w.docker_in, expect='key'),
             Row('galileo-credential token, token-cache=keystore (reference)', [w.gc, 'token'],
                 env={'GALILEO_CREDENTIAL_TOKEN_CACHE': 'keystore'}, expect='token')]
    return rows + container_rows(w)


def container_rows(w):
    """
    A container: GALILEO_API_KEY, keyctl refused by the seccomp wrapper, so
    the sealed file tier; beside the same key's kernel-keyring hit and what
    the wrapper itself costs.
    """
    key = w.env_key
    return [Row(KERNEL_ENV_ROW, [w.gc, 'token'], env=key, expect='token'),
            Row(FILE_ROW, [w.gc, 'token'], expect='token',
                env=dict(key, GALILEO_CREDENTIAL_TOKEN_CACHE='file')),
            Row(CONTAINER_ROW, [w.refused, w.gc, 'token'], env=key, expect='token'),
            Row(WRAPPER_ROW, [w.refused, TRUE])]


def section_hit(w):
    rows = hit_rows(w)
    before = w.server.count
    for r in rows:
        check_row(w, r)
    if w.server.count != before:
        raise BenchError('the cache-hit commands asked the endpoint: not a cache hit')
    req = runner(w, 'hit', rows, HIT_ROUNDS)
    return rows, req


def cold_rows(w):
    curl = [w.curl, '-sf', '--cacert', w.env.ca_file, '-H', '@-', w.url + '/v1/token']
    return [Row('galileo-credential token --refresh', [w.gc, 'token', '--refresh'],
                expect='token'),
            Row('secret-tool lookup, then curl', [w.secret_tool, 'lookup'] + ST_ATTRS,
                then=curl, prefix=KEY_HEADER, expect='token'),
            Row('secret-tool lookup alone', [w.secret_tool, 'lookup'] + ST_ATTRS, expect='key'),
            Row('curl alone', curl, stdin=w.header_in, expect='token')]


def section_cold(w):
    rows = cold_rows(w)
    for r in rows:
        check_row(w, r)
    req = runner(w, 'cold', rows, COLD_ROUNDS)
    return rows, req


def wait_locks(w):
    subprocess.run([w.tools['agekey'], w.lockdir, '-', w.url], stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=w.cenv)


def margin_rows(w):
    argv = [w.gc, 'token', '--org-slug', MARGIN_ORG]

    def age(desc, left):
        return [w.tools['agekey'], w.lockdir, desc, str(left)]
    return [Row('hit (a fresh token)', argv, prep=age(w.margin_desc, TOKEN_LIFETIME),
                expect='token'),
            Row('inside the margin, refresh = background (default)', argv,
                prep=age(w.margin_desc, MARGIN_LEFT), expect='token'),
            Row('inside the margin, refresh = inline', argv,
                prep=age(w.margin_inline_desc, MARGIN_LEFT),
                env={'GALILEO_CREDENTIAL_CONFIG': w.inline_config}, expect='token')]


def margin_key(w, env):
    """
    the kernel key a first `token --org-slug MARGIN_ORG` with env caches: the
    inline row's configuration file is another context, with a key of its own
    """
    def descs():
        return {k.raw_description for k in w.env.kernel_keys()
                if k.description == w.env.token_key_desc(MARGIN_ORG)}
    before = descs()
    run(w, 'galileo-credential token --org-slug', [w.gc, 'token', '--org-slug', MARGIN_ORG],
        env=env)
    new = descs() - before
    if len(new) != 1:
        raise BenchError('found %d new kernel keys for the margin token' % len(new))
    return new.pop()


def section_margin(w):
    """the token of organization MARGIN_ORG aged into the margin before each run"""
    w.margin_desc = margin_key(w, w.cenv)
    w.margin_inline_desc = margin_key(w, dict(w.cenv, GALILEO_CREDENTIAL_CONFIG=w.inline_config))
    rows = margin_rows(w)
    w.server.push(harness.delayed(w.server.token_reply(), MARGIN_DELAY), times=None)
    try:
        # once by hand: background serves the cached token at once and refreshes
        # behind; inline waits for the slow endpoint
        checks = {}
        for r in rows:
            if subprocess.run(r.prep, env=w.cenv).returncode:
                raise BenchError('agekey failed')
            issued = len(w.server.issued)
            t0 = time.perf_counter()
            out = run(w, r.name, r.argv, env=dict(w.cenv, **r.env))
            took = time.perf_counter() - t0
            if out.strip() not in w.server.issued:
                raise BenchError('%s printed no token the endpoint issued' % r.name)
            fresh = out.strip() in w.server.issued[issued:]
            wait_locks(w)
            checks[r.name] = (took, fresh, len(w.server.issued) - issued)
        w.margin_checks = checks
        before = w.server.count
        runner(w, 'margin', rows, MARGIN_ROUNDS)
        wait_locks(w)       # the last run's detached refresh, done
        req = w.server.count - before
        w.margin_timeline = margin_timeline(w)
    finally:
        w.server.push(None, times=None)     # the endpoint answers at once again
    return rows, req


def margin_timeline(w, n=5):
    """
    n background calls inside the margin under `strace -f -ttt` (forks, waits
    and exits only): the median ms from the parent's fork to the first
    child's first system call, from that child's exit to the parent's wait4
    return, and the parent's whole life.  strace slows every fork down: these
    show where the wall time waits, not how long it is without strace.
    """
    out = os.path.join(w.bdir, 'timeline.out')
    starts, reaps, lives = [], [], []
    for _ in range(n):
        if subprocess.run(margin_rows(w)[1].prep, env=w.cenv).returncode:
            raise BenchError('agekey failed')
        subprocess.run([w.strace, '-f', '-ttt', '-e', 'trace=clone,clone3,fork,vfork,wait4,'
                        'exit_group,execve', '-o', out, w.gc, 'token', '--org-slug', MARGIN_ORG],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=w.cenv, cwd=w.env.home, timeout=60)
        wait_locks(w)
        ev = []
        with open(out) as f:
            for line in f:
                m = re.match(r'(\d+) +(\d+\.\d+) (.*)', line)
                if m:
                    ev.append((int(m.group(1)), float(m.group(2)), m.group(3)))
        if not ev:
            continue
        parent = ev[0][0]
        fork_ret = next(((t, int(re.search(r'= (\d+)$', x).group(1))) for p, t, x in ev
                         if p == parent and re.search(r'clone.*= \d+$', x)), None)
        if not fork_ret:
            continue
        t_fork, child = fork_ret
        t_child = next((t for p, t, x in ev if p == child), None)
        t_exit = next((t for p, t, x in ev if p == child and 'exited' in x), None)
        t_reap = next((t for p, t, x in ev if p == parent and 'wait4' in x
                       and re.search(r'= %d$' % child, x)), None)
        t_end = next((t for p, t, x in ev if p == parent and 'exited' in x), None)
        if None in (t_child, t_exit, t_reap, t_end):
            continue
        starts.append(max(0.0, t_child - t_fork))
        reaps.append(max(0.0, t_reap - t_exit))
        lives.append(t_end - ev[0][1])
    if not starts:
        return None
    return {'n': len(starts), 'start': statistics.median(starts),
            'reap': statistics.median(reaps), 'life': statistics.median(lives)}


def spawn(w, argv, n):
    """n argv spawned one after the other (Popen, no shell): (wall s, [(rc, out, err)])"""
    t0 = time.perf_counter()
    procs = [subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=w.cenv, cwd=w.env.home)
             for _ in range(n)]
    res = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=max(0.1, t0 + RACE_TIMEOUT - time.perf_counter()))
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        res.append((p.returncode, out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')))
    return time.perf_counter() - t0, res


def cold_trial(w, kind, n):
    """n simultaneous `token --org-slug bench-KIND-RUN-SEQ`, a new organization"""
    w.seq += 1
    before = w.server.count
    wall, res = spawn(w, [w.gc, 'token', '--org-slug',
                          'bench-%s-%s-%d' % (kind, w.run_id, w.seq)], n)
    issued = set(w.server.issued)
    toks, errors = [], []
    for rc, out, err in res:
        if rc == 0 and out.count('\n') == 1 and out[:-1] in issued:
            toks.append(out[:-1])
        else:
            errors.append('exit %d: %s' % (rc, safe(w, err) or '(no message)'))
    return {'wall': wall, 'exchanges': w.server.count - before, 'ok': len(toks),
            'distinct': len(set(toks)), 'errors': errors}


def section_race(w):
    """RACE_ROUNDS rounds of: single cold calls, the floor, RACE_N simultaneous cold calls"""
    rounds, singles = [], []
    load0, t0 = os.getloadavg(), time.time()
    for i in range(1, RACE_ROUNDS + 1):
        log('race round %d/%d' % (i, RACE_ROUNDS))
        singles += [cold_trial(w, 'cold', 1) for _ in range(SINGLES)]
        floor, res = spawn(w, [TRUE], RACE_N)
        if any(rc != 0 for rc, _, _ in res):
            raise BenchError('%s failed' % TRUE)
        rounds.append(dict(cold_trial(w, 'race', RACE_N), floor=floor))
    w.sections.append(('race', time.time() - t0, load0, os.getloadavg()))
    return rounds, singles


def user_keyring_size():
    r = harness.keyctl(['rlist', '@u'])
    return len(r.stdout.split()) if r.returncode == 0 else -1


def dummy_token_key(w, server):
    """
    a `user` key in @u described as galileo-credential's cached token for
    server, so that @u holds what N servers with cached tokens put there; its
    payload is a made-up token, no secret.  Removed at the end (by serial).
    """
    ctx = w.hit_desc.split(':')[2]      # the context of the bench's own calls
    desc = 'galileo-credential:token:%s:%s#' % (ctx, server)
    payload = 'gc2 %d %d %s %s %s bench-made-up-token' % (
        time.time() + TOKEN_LIFETIME, TOKEN_LIFETIME, '0' * 16, '0' * 16, ctx)
    r = subprocess.run(['keyctl', 'padd', 'user', desc, '@u'], input=payload.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    if r.returncode != 0:
        raise BenchError('keyctl padd failed: %s' % r.stderr.decode('utf-8', 'replace').strip())
    serial = r.stdout.decode().strip()
    w.dummy_keys.append(serial)
    harness.keyctl(['timeout', serial, '1800'])     # gone by itself, should the bench die


def drop_dummy_keys(w):
    for serial in w.dummy_keys:
        harness.keyctl(['invalidate', serial])
        harness.keyctl(['unlink', serial, '@u'])
    w.dummy_keys = []


def section_scale(w):
    """/bin/true, floor, hit and status with 1, 10 and 100 stored servers"""
    blocks = []
    stored = 1
    for n in SCALE:
        for i in range(stored + 1, n + 1):
            server = 'https://s%d.%s.example' % (i, w.run_id)
            run(w, 'login --no-verify', [w.gc, 'login', '--no-verify', '--server', server],
                input=w.env.new_key() + '\n')
            dummy_token_key(w, server)
        stored = n
        out = run(w, 'galileo-credential status', [w.gc, 'status'])
        listed = len([l for l in out.split('\n') if l.startswith('https://')])
        if listed != n:
            raise BenchError('status lists %d servers, %d are stored' % (listed, n))
        rows = [Row('/bin/true', [TRUE]),
                Row('floor', [w.tools['floor'], w.hit_desc], expect='token'),
                Row('galileo-credential token', [w.gc, 'token'], expect='token')]
        status = Row('galileo-credential status', [w.gc, 'status'])
        for r in rows + [status]:
            check_row(w, r)
        # status apart: the keyring daemon's work after a long status would land on the
        # short rows that follow it
        req = runner(w, 'scale-%d' % n, rows, SCALE_ROUNDS)
        req += runner(w, 'scale-%d-status' % n, [status], SCALE_STATUS_ROUNDS, warmup=1)
        rows.append(status)
        cg = {r.name: callgrind(w, r.argv) for r in rows[2:]}
        blocks.append({'n': n, 'rows': rows, 'req': req, 'keys': user_keyring_size(),
                       'ir': {k: v[0] for k, v in cg.items()}, 'cg': cg})
    return blocks


# -- where the time goes -------------------------------------------------------------

def callgrind(w, argv, stdin=None, env=None):
    """parse_callgrind() of one run of argv under callgrind"""
    out = os.path.join(w.bdir, 'callgrind.out')
    if os.path.exists(out):
        os.unlink(out)
    fin = open(stdin, 'rb') if stdin else subprocess.DEVNULL
    try:
        r = subprocess.run([w.valgrind, '--tool=callgrind', '--callgrind-out-file=' + out,
                            '--trace-children=no'] + argv,
                           stdin=fin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           env=dict(w.cenv, **(env or {})), cwd=w.env.home, timeout=300)
    finally:
        if stdin:
            fin.close()
    if r.returncode != 0:
        raise BenchError('callgrind %s failed: %s' % (os.path.basename(argv[0]),
                                                     safe(w, r.stderr.decode('utf-8', 'replace')
                                                          .split('\n')[-2])))
    return parse_callgrind(out)


def inclusive(w):
    """{function: inclusive Ir} of the last callgrind() run (callgrind_annotate --inclusive)"""
    out = os.path.join(w.bdir, 'callgrind.out')
    r = subprocess.run(['callgrind_annotate', '--inclusive=yes', '--threshold=100', out],
                       stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=120)
    inc = {}
    for line in r.stdout.decode('utf-8', 'replace').split('\n'):
        m = re.match(r'\s*([\d,]+) \(\s*[\d.]+%\)\s+(\S.*?) \[(.+)\]$', line)
        if not m:
            continue
        fn = re.sub(r"'\d+$", '', m.group(2).rsplit(':', 1)[-1])
        inc[fn] = max(inc.get(fn, 0), int(m.group(1).replace(',', '')))
    return inc


# phases of a cold call, by the functions that own them (inclusive instructions); work that
# GLib hands to its D-Bus thread is not under its caller, so libsecret has no row of its own
PHASES = [
    ('_dl_start', 'ld.so: loading and relocating the libraries linked in'),
    ('dlopen@@GLIBC_2.34', 'dlopen: loading the modules and their libraries'),
    ('gcry_mpi_powm', 'libsecret\'s encrypted session: the Diffie-Hellman exponentiation'),
    ('OPENSSL_init_ssl', 'OpenSSL: initialise'),
    ('curl_easy_perform', 'libcurl: the request'),
    ('SSL_connect', '... of which the TLS handshake'),
    ('RAND_status', '... of which seeding OpenSSL\'s random generator'),
    ('X509_STORE_load_file', '... of which loading the CA file'),
]


def parse_callgrind(path):
    """
    (total Ir, {object: self Ir}, {(object, function): self Ir}) from a
    callgrind out file (with its name compression)
    """
    names = {'ob': {}, 'fn': {}}
    per, fns, total = {}, {}, 0
    ob, fn = '?', '?'
    skip = False

    def name(kind, spec):
        m = re.match(r'\((\d+)\)(?: (.*))?$', spec)
        if not m:
            return spec
        if m.group(2) is not None:
            names[kind][m.group(1)] = m.group(2)
        return names[kind].get(m.group(1), '?')
    with open(path, errors='replace') as f:
        for line in f:
            line = line.rstrip('\n')
            if line.startswith('ob='):
                ob = name('ob', line[3:])
            elif line.startswith('fn='):
                fn = name('fn', line[3:])
            elif line.startswith('cob='):
                name('ob', line[4:])
            elif line.startswith('cfn='):
                name('fn', line[4:])
            elif line.startswith('calls='):
                skip = True         # the next cost line is the call's inclusive cost
            elif line.startswith(('summary:', 'totals:')):
                total = int(line.split()[1])
            elif line[:1].isdigit() or line[:1] in '+-*':
                if skip:
                    skip = False
                    continue
                parts = line.split()
                if len(parts) >= 2:
                    n = int(parts[1])
                    per[ob] = per.get(ob, 0) + n
                    fns[(ob, fn)] = fns.get((ob, fn), 0) + n
    return total or sum(per.values()), per, fns


def short_object(path, self_name=None):
    base = os.path.basename(path)
    if base == self_name:
        return 'the program itself'
    return re.sub(r'\.so[.\d]*$', '', base) or path


def ld_stats(w, argv, stdin=None, env=None, n=7):
    """LD_DEBUG=statistics: (median startup cycles, relocations) over n runs"""
    cycles, relocs = [], None
    for _ in range(n):
        fin = open(stdin, 'rb') if stdin else subprocess.DEVNULL
        try:
            r = subprocess.run(argv, stdin=fin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=dict(w.cenv, LD_DEBUG='statistics', **(env or {})),
                               cwd=w.env.home, timeout=60)
        finally:
            if stdin:
                fin.close()
        text = r.stderr.decode('utf-8', 'replace')
        m = re.search(r'total startup time in dynamic loader: (\d+) cycles', text)
        if m:
            cycles.append(int(m.group(1)))
        f = re.findall(r'final number of relocations: (\d+)', text)
        if f:
            relocs = int(f[-1])
    return (statistics.median(cycles) if cycles else None), relocs


def strace_counts(w, argv, stdin=None, env=None):
    """strace -f -c: ({syscall: calls}, total calls) of one run"""
    out = os.path.join(w.bdir, 'strace.out')
    fin = open(stdin, 'rb') if stdin else subprocess.DEVNULL
    try:
        subprocess.run([w.strace, '-f', '-c', '-o', out] + argv, stdin=fin,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=dict(w.cenv, **(env or {})), cwd=w.env.home, timeout=120)
    finally:
        if stdin:
            fin.close()
    calls = {}
    with open(out) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != 'total':
                try:
                    calls[parts[-1]] = int(parts[3])
                except ValueError:
                    pass
    return calls, sum(calls.values())


def shared_objects(w, argv, stdin=None, env=None):
    """shared objects the process maps (LD_DEBUG=files: loaded at start and by dlopen)"""
    fin = open(stdin, 'rb') if stdin else subprocess.DEVNULL
    try:
        r = subprocess.run(argv, stdin=fin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           env=dict(w.cenv, LD_DEBUG='files', **(env or {})), cwd=w.env.home,
                           timeout=60)
    finally:
        if stdin:
            fin.close()
    return len(set(re.findall(r'file=(\S+) \[\d+\];  generating link map',
                              r.stderr.decode('utf-8', 'replace'))))


def section_explain(w):
    """instruction counts, loader statistics and system calls of the programs timed"""
    log('where the time goes: callgrind, LD_DEBUG=statistics, strace')
    t0, load0 = time.time(), os.getloadavg()
    curl = cold_rows(w)[3]
    progs = [('floor', [w.tools['floor'], w.hit_desc], None, None),
             ('floor linked with libjansson too', [w.tools['floor-jansson'], w.hit_desc], None, None),
             ('galileo-credential --version', [w.gc, '--version'], None, None),
             ('galileo-credential token', [w.gc, 'token'], None, None),
             ('git-credential-galileo get', [w.gc_git, 'get'], w.git_in, None),
             ('docker-credential-galileo get', [w.gc_docker, 'get'], w.docker_in, None),
             ('galileo-credential token --refresh', [w.gc, 'token', '--refresh'], None, None),
             ('secret-tool lookup', [w.secret_tool, 'lookup'] + ST_ATTRS, None, None),
             ('curl alone', curl.argv, curl.stdin, None),
             (KERNEL_ENV_ROW, [w.gc, 'token'], None, w.env_key),
             (FILE_ROW, [w.gc, 'token'], None, dict(w.env_key,
                                                     GALILEO_CREDENTIAL_TOKEN_CACHE='file'))]
    res = []
    for name, argv, stdin, env in progs:
        total, per, fns = callgrind(w, argv, stdin, env)
        inc = inclusive(w)
        cycles, relocs = ld_stats(w, argv, stdin, env)
        calls, ncalls = strace_counts(w, argv, stdin, env)
        res.append({'name': name, 'self': os.path.basename(os.path.realpath(argv[0])),
                    'ir': total, 'per': per, 'fns': fns, 'inc': inc, 'ld_cycles': cycles,
                    'relocs': relocs, 'calls': calls, 'ncalls': ncalls,
                    'objects': shared_objects(w, argv, stdin, env)})
    w.sections.append(('explain', time.time() - t0, load0, os.getloadavg()))
    return res


# -- report ----------------------------------------------------------------------------

def perf_note():
    if not shutil.which('perf'):
        return 'no perf here'
    r = subprocess.run(['perf', 'stat', '-x,', '-e', 'instructions', TRUE],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=30)
    text = r.stderr.decode('utf-8', 'replace')
    if r.returncode != 0 or 'not supported' in text or 'not counted' in text:
        return '`perf stat -e instructions %s` counts nothing here (not supported in this VM)' % TRUE
    return '`perf stat -e instructions` works here, but is not used'


def machine():
    with open('/proc/cpuinfo') as f:
        cpu = next((line.split(':', 1)[1].strip() for line in f
                    if line.startswith('model name')), '?')
    return len(os.sched_getaffinity(0)), platform.release(), cpu


def versions(w):
    def dpkg(pkg):
        return first_line(['dpkg-query', '-W', '-f=${Version}', pkg])
    v = [('galileo-credential', first_line([w.gc, '--version'], w.cenv)
          + ' (build: `%s`)' % os.path.relpath(harness.builddir(), TOP)),
         ('secret-tool', 'libsecret-tools ' + dpkg('libsecret-tools')),
         ('docker-credential-secretservice',
          'golang-docker-credential-helpers ' + dpkg('golang-docker-credential-helpers'))]
    if w.libsecret:
        v.append(('git-credential-libsecret', 'contrib source of %s, libsecret %s' % (
            first_line(['git', '--version']),
            first_line(['pkg-config', '--modversion', 'libsecret-1']))))
    for tool in ('git', 'curl', 'gcc', 'valgrind', 'strace', 'gnome-keyring-daemon', 'dbus-daemon'):
        v.append((tool, first_line([tool, '--version'])))
    return v + [('libjansson4', dpkg('libjansson4')), ('libkeyutils1', dpkg('libkeyutils1')),
                ('python3', platform.python_version())]


def pct(x):
    return '%+.0f%%' % (x * 100.0)


def report(w, load0, hit, hit_req, cold, cold_req, margin, margin_req, rounds, singles,
           scale, explain):
    L = []

    def add(*lines):
        L.extend(lines)

    def table(head, rows):
        add('| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head))
        add(*('| ' + ' | '.join(str(c).replace('|', '\\|') for c in r) + ' |' for r in rows))
        add('')

    def timing_table(rows, bases):
        head = ['command', 'median ms', 'p25-p75 ms', 'min ms'] + \
            ['x ' + b for b, _ in bases] + ['CPU ms', 'wall-CPU ms', 'minor faults']
        table(head, [[r.name, ms(r.median), ms(r.p25) + '-' + ms(r.p75), ms(r.min)] +
                     ['%.2fx' % (r.median / b.median) for _, b in bases] +
                     [ms(r.cpu_median), ms(r.wait_median), '%d' % r.minflt_median]
                     for r in rows])

    by = {r.name: r for r in hit}
    floor, st = by['floor (bench/floor.c)'], by['secret-tool lookup']
    true = by['/bin/true']
    gc_hits = [by['galileo-credential token'], by['git-credential-galileo get'],
               by['docker-credential-galileo get']]
    ex = {e['name']: e for e in explain}
    cby = {r.name: r for r in cold}
    chain = cby['secret-tool lookup, then curl']
    refresh = cby['galileo-credential token --refresh']
    mby = {r.name: r for r in margin}
    m_hit, m_bg = (mby['hit (a fresh token)'],
                   mby['inside the margin, refresh = background (default)'])

    nproc, kernel, cpu = machine()
    add('# galileo-credential benchmark results', '',
        'Generated by `scripts/bench` (bench/bench.py) from one run; see bench/README.md. '
        'Times in ms (medians; p25-p75 is the interquartile range); ratios are within one '
        'interleaved section; targets are reported, never enforced.', '',
        '- date: ' + datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
        '- machine: nproc %d, kernel %s, CPU `%s`' % (nproc, kernel, cpu),
        '- load average (1/5/15 min) at the start: %s; at the end (includes the bench '
        'itself): %s; per section below. The machine is shared with other sessions, whose '
        'work is in these numbers too.'
        % (' '.join('%.2f' % x for x in load0), loadavg()),
        '- a private dbus-daemon and gnome-keyring, a TLS token endpoint on 127.0.0.1 '
        '(Python, tokens valid %d s), config with `server` and `ca-file` only (so the '
        'default token cache, the kernel keyring, and `refresh = background`)' % TOKEN_LIFETIME,
        '')
    table(['section', 'took s', 'load at start', 'load at end'],
          [(name, '%.0f' % took, ' '.join('%.2f' % x for x in a), ' '.join('%.2f' % x for x in b))
           for name, took, a, b in w.sections])

    add('## How the rows are timed', '',
        'hyperfine here is %s: it has no `--input` (stdin from a file came in 1.16) and runs '
        'all runs of one command before the next. So the timed rows run under '
        '`bench/runner.c`, compiled at bench time: each row is its own process, started with '
        '`posix_spawn` of an absolute path (no shell, no PATH search), stdin a file or '
        '`/dev/null` opened before the clock starts, stdout and stderr `/dev/null`; the clock '
        '(CLOCK_MONOTONIC) runs from just before the spawn to the return of `wait4`, and CPU is '
        'the child\'s user+sys from `wait4`. The rows of a section are INTERLEAVED: each round '
        'runs every row once, starting one row further on each round, so a change in load '
        'touches every row alike. %d untimed warm-up rounds precede each section. There is no '
        'wrapper in any timed row, so no wrapper row. Hardware counters: %s; so instructions '
        'are counted with callgrind (section 6).'
        % (w.hyperfine or 'not installed', WARMUP, perf_note()), '')

    add('## Tool versions', '')
    table(['tool', 'version'], versions(w))

    # ---- 1
    add('## 1. Cache hit', '',
        '%d interleaved rounds. The floor is `bench/floor.c`: `keyctl_search` in @u for '
        'the token key\'s description (`galileo-credential:token:CONTEXT:SERVER#`), '
        '`keyctl_read`, print the token part. '
        'The last row is `token` with its token cached in the Secret Service, for reference. '
        'Endpoint requests during these runs: %d (expected 0).' % (HIT_ROUNDS, hit_req), '')
    timing_table(hit, [('floor', floor), ('secret-tool lookup', st)])
    add('git-credential-libsecret: %s. git credential-cache: `git credential-cache--daemon` on a '
        'private socket, the key stored into it once with `git credential-cache store`; the '
        'timed command is `git` itself, which runs `git-credential-cache`.'
        % w.libsecret_note, '')

    container_report(add, timing_table, by, ex, hit_req, w)

    # ---- 2
    add('## 2. Cold token', '',
        '%d interleaved rounds. `token --refresh` reads the key from the keyring (D-Bus), '
        'exchanges it (HTTPS) and caches the token, against `secret-tool lookup` and then '
        '`curl` (run one after the other by the runner, no shell: secret-tool\'s stdout goes '
        'into a pipe that already holds `%s`, and that pipe is curl\'s stdin, `-H @-`), and '
        'against each alone (curl with the header from a file). Endpoint requests: %d '
        '(expected %d).' % (COLD_ROUNDS, KEY_HEADER.strip(), cold_req,
                            3 * (COLD_ROUNDS + WARMUP)), '')
    timing_table(cold, [('secret-tool+curl', chain)])
    st_alone, curl_alone = cby['secret-tool lookup alone'], cby['curl alone']
    add('The two alone add up to %s ms (the chain: %s ms).'
        % (ms(st_alone.median + curl_alone.median), ms(chain.median)), '')

    # ---- 3
    mc = w.margin_checks
    add('## 3. The first call inside the refresh margin, %d ms endpoint' % (MARGIN_DELAY * 1000),
        '',
        '%d interleaved rounds, organization `%s`, every endpoint answer delayed %d ms. Before '
        'each run, untimed, `bench/agekey.c` waits until no exchange lock is held and no '
        '`galileo-credential refresh-ahead` process of this server is left (the detached refresh '
        'of the previous run, which keeps running a little after it let go of the lock) and '
        'rewrites the row\'s cached token\'s kernel key payload (the inline row\'s '
        'configuration file is another context, so its token is another key) '
        '(`gc2 EXPIRES LIFETIME FINGERPRINT GENERATION CONTEXT TOKEN`) to %d s left: inside '
        'the margin (%d s, '
        'capped at half the %d s lifetime), or %d s left for the hit row. Rewriting the payload '
        'gives the same state every run, where a short-lived token would depend on timing. '
        'Endpoint requests: %d (expected %d: one per run of the two margin rows).'
        % (MARGIN_ROUNDS, MARGIN_ORG, MARGIN_DELAY * 1000, MARGIN_LEFT, MARGIN, TOKEN_LIFETIME,
           TOKEN_LIFETIME, margin_req, 2 * (MARGIN_ROUNDS + WARMUP)), '')
    timing_table(margin, [('hit', m_hit)])
    tl = w.margin_timeline
    if tl:
        add('Under `strace -f -ttt` (forks, waits and exits traced; %d background calls, '
            'medians; strace slows forks, so this shows where the call waits, not for how '
            'long without strace): the first forked child made its first system call %s ms '
            'after the parent\'s fork returned; the parent\'s wait4 returned %s ms after that '
            'child exited; the parent lived %s ms.'
            % (tl['n'], ms(tl['start']), ms(tl['reap']), ms(tl['life'])), '')
    add('Checked once by hand before the timed runs:', '')
    for name, (took, fresh, exchanges) in mc.items():
        add('- %s: %s ms, printed %s, endpoint exchanges by then (after waiting for the lock): %d'
            % (name, ms(took), 'a token just issued' if fresh else 'the token cached before',
               exchanges))
    add('')

    # ---- 4
    add('## 4. %d simultaneous cold `token` calls' % RACE_N, '',
        'Each round: %d single cold calls, %d x `%s` (what creating %d processes costs here), '
        'then %d simultaneous cold calls, each round a new organization; all spawned from '
        'Python (subprocess.Popen, no shell), wall = first spawn to last exit. A call is '
        'served when it exits 0 and prints a token the endpoint issued.'
        % (SINGLES, RACE_N, TRUE, RACE_N, RACE_N), '')
    table(['round', 'wall ms', '64 x true ms', 'exchanges', 'served', 'distinct tokens'],
          [(str(i), ms(r['wall']), ms(r['floor']), str(r['exchanges']),
            '%d/%d' % (r['ok'], RACE_N), str(r['distinct'])) for i, r in enumerate(rounds, 1)])
    single = statistics.median([s['wall'] for s in singles])
    rfloor = statistics.median([r['floor'] for r in rounds])
    wall = statistics.median([r['wall'] for r in rounds])
    table(['median of', 'ms', 'x one cold call'], [
        ('one cold call (n=%d, %d served, %s exchange(s) each)' % (
            len(singles), sum(s['ok'] for s in singles),
            '/'.join(sorted({str(s['exchanges']) for s in singles}))), ms(single), '1.00x'),
        ('%d x `%s`' % (RACE_N, TRUE), ms(rfloor), '%.2fx' % (rfloor / single)),
        ('%d simultaneous, wall' % RACE_N, ms(wall), '%.2fx' % (wall / single)),
        ('the same less %d x true' % RACE_N, ms(wall - rfloor), '%.2fx' % ((wall - rfloor) / single))])
    errors = [e for t in rounds + singles for e in t['errors']]
    if errors:
        add('Failures (count, first stderr line):', '')
        add(*('- %d x `%s`' % (errors.count(e), e.replace('`', "'")) for e in sorted(set(errors))))
        add('')

    # ---- 5
    add('## 5. Stored servers: 1, 10, 100', '',
        'The extra servers are stored with `login --no-verify --server https://sN.RUN.example` '
        '(a key on stdin each). So that the user keyring also holds what that many servers '
        'with cached tokens would, the bench adds for each extra server a `user` key '
        '`galileo-credential:token:https://sN.RUN.example#` to @u (`keyctl padd`, a made-up '
        'payload in the cache format; removed at the end). The hit is for the endpoint\'s '
        'server. Each block: %d interleaved rounds of `/bin/true`, the floor and the hit, then '
        '%d runs of `status` on their own (a long `status` leaves gnome-keyring busy for a '
        'moment, which would land on the short rows after it). The blocks run one after the '
        'other, so compare them through `/bin/true` (which touches no keyring) and the '
        'instruction counts (callgrind: user space only, repeatable), not the raw ms; "min" '
        'columns use the fastest run of each row, the least touched by the load of the moment. '
        '"keys in @u" counts every key linked in the user keyring, other sessions\' too.'
        % (SCALE_ROUNDS, SCALE_STATUS_ROUNDS), '')
    srows = []
    for b in scale:
        t, f, h, s_ = b['rows']
        srows.append((str(b['n']), str(b['keys']), ms(t.median), ms(f.median),
                      '%.2fx' % (f.median / t.median), ms(h.median), '%.2fx' % (h.median / t.median),
                      '%.2fx' % (h.min / t.min), group(b['ir']['galileo-credential token']),
                      ms(s_.median), group(b['ir']['galileo-credential status']), str(b['req'])))
    table(['servers', 'keys in @u', 'true ms', 'floor ms', 'floor x true', 'hit ms', 'hit x true',
           'hit x true (min)', 'hit instructions', 'status ms', 'status instructions',
           'endpoint requests'], srows)
    b1, b100 = scale[0], scale[-1]
    hit_ir_ratio = b100['ir']['galileo-credential token'] / b1['ir']['galileo-credential token']
    hit_norm = ((b100['rows'][2].median / b100['rows'][0].median) /
                (b1['rows'][2].median / b1['rows'][0].median))
    hit_norm_min = ((b100['rows'][2].min / b100['rows'][0].min) /
                    (b1['rows'][2].min / b1['rows'][0].min))
    st1, st100 = b1['cg']['galileo-credential status'], b100['cg']['galileo-credential status']
    add('`status` grows with the servers: %s instructions with %d server(s), %s with %d '
        '(%s per extra server), by object with %d: %s.'
        % (group(st1[0]), b1['n'], group(st100[0]), b100['n'],
           group((st100[0] - st1[0]) / max(1, b100['n'] - b1['n'])), b100['n'],
           top_objects({'per': st100[1], 'self': 'galileo-credential'}, 6)), '')

    # ---- 6
    add('## 6. Where the time goes (measured)', '',
        'One run each, outside the timed sections. Instructions: `valgrind --tool=callgrind` '
        '(user-space instructions of the process, repeatable; not the kernel, not gnome-keyring '
        'or the endpoint), split by the object they ran in. Loader: `LD_DEBUG=statistics`, '
        'median of 7 runs (startup cycles; relocations at exit, dlopen included). Objects: '
        'shared objects mapped (`LD_DEBUG=files`). System calls: `strace -f -c`.', '')
    table(['program', 'instructions', 'in ld.so', 'in libc', 'in the program', 'in other libs',
           'objects', 'ld.so startup cycles', 'relocations', 'system calls'],
          [(e['name'], group(e['ir']), group(obj_sum(e, 'ld-linux')), group(obj_sum(e, 'libc')),
            group(obj_sum(e, 'the program itself')),
            group(e['ir'] - obj_sum(e, 'ld-linux') - obj_sum(e, 'libc')
                  - obj_sum(e, 'the program itself')),
            str(e['objects']), group(e['ld_cycles'] or 0), str(e['relocs']), str(e['ncalls']))
           for e in explain])
    add('Top objects by instructions:', '')
    for e in explain:
        top = sorted(((short_object(o, e['self']), n) for o, n in e['per'].items()),
                     key=lambda x: -x[1])
        merged = {}
        for o, n in top:
            merged[o] = merged.get(o, 0) + n
        top = sorted(merged.items(), key=lambda x: -x[1])[:6]
        add('- %s: %s' % (e['name'], ', '.join('%s %s' % (o, group(n)) for o, n in top)))
    add('')
    add('Top functions by instructions (self):', '')
    for name in ('floor', 'galileo-credential token', 'git-credential-galileo get',
                 'docker-credential-galileo get', 'galileo-credential token --refresh'):
        e = ex[name]
        top = sorted(e['fns'].items(), key=lambda x: -x[1])[:8]
        add('- %s: %s' % (name, ', '.join('`%s` (%s) %s' % (fn, short_object(o, e['self']),
                                                             group(c)) for (o, fn), c in top)))
    add('')
    add('System calls the hit makes beyond the floor\'s (strace -f -c, counts):', '')
    fl, tk = ex['floor']['calls'], ex['galileo-credential token']['calls']
    extra = sorted(((k, tk.get(k, 0) - fl.get(k, 0)) for k in set(tk) | set(fl)
                    if tk.get(k, 0) != fl.get(k, 0)), key=lambda x: (-x[1], x[0]))
    add('- ' + ', '.join('%s %+d' % kv for kv in extra), '')
    cold_progs = [ex['galileo-credential token --refresh'], ex['secret-tool lookup'],
                  ex['curl alone']]
    add('The cold call by phase: instructions of the function that owns each phase, with '
        'everything it calls (callgrind_annotate --inclusive=yes; - where the program does not '
        'run it):', '')
    table(['phase', 'function'] + [e['name'] for e in cold_progs],
          [(what, '`%s`' % fn) + tuple(group(e['inc'][fn]) if fn in e['inc'] else '-'
                                       for e in cold_progs)
           for fn, what in PHASES if any(fn in e['inc'] for e in cold_progs)]
          + [('all of it', '') + tuple(group(e['ir']) for e in cold_progs)])

    # ---- targets
    add('## Targets', '')
    targets = []
    for r in gc_hits:
        targets.append(('hit `%s` <= %.2fx the floor' % (r.name, HIT_FLOOR_TARGET),
                        '%.2fx (fastest runs: %.2fx)' % (r.median / floor.median,
                                                         r.min / floor.min),
                        r.median / floor.median,
                        HIT_FLOOR_TARGET, ('floor', r.name)))
    for r in gc_hits:
        targets.append(('hit `%s` <= %.2fx secret-tool lookup' % (r.name, HIT_ST_TARGET),
                        '%.3fx (fastest runs: %.3fx)' % (r.median / st.median, r.min / st.min),
                        r.median / st.median, HIT_ST_TARGET,
                        ('secret-tool', r.name)))
    targets.append(('cold `token --refresh` <= %.2fx (secret-tool lookup + curl)' % COLD_TARGET,
                    '%.2fx (fastest runs: %.2fx)' % (refresh.median / chain.median,
                                                     refresh.min / chain.min),
                    refresh.median / chain.median,
                    COLD_TARGET, ('cold', None)))
    targets.append(('first call inside the margin, %d ms endpoint, background <= %.0fx a hit'
                    % (MARGIN_DELAY * 1000, MARGIN_TARGET),
                    '%.2fx (fastest runs: %.2fx)' % (m_bg.median / m_hit.median, m_bg.min / m_hit.min),
                    m_bg.median / m_hit.median, MARGIN_TARGET, ('margin', None)))
    ratio, ratio_min = container_hit(by)
    targets.append(('a container\'s hit (keyctl refused, file tier) <= %.0fx the kernel-keyring '
                    'hit, the wrapper\'s exec taken out' % CONTAINER_TARGET,
                    '%.2fx (fastest runs: %.2fx)' % (ratio, ratio_min), ratio, CONTAINER_TARGET,
                    ('container', None)))
    rows_t = [(t[0], t[1], yes_no(t[2] <= t[3])) for t in targets]
    rows_t.append(('64 racing cold calls: exactly 1 exchange (each round)',
                   ', '.join(str(r['exchanges']) for r in rounds),
                   yes_no(all(r['exchanges'] == 1 for r in rounds))))
    rows_t.append(('64 racing cold calls: 64/64 served (each round)',
                   ', '.join('%d/%d' % (r['ok'], RACE_N) for r in rounds),
                   yes_no(all(r['ok'] == RACE_N for r in rounds))))
    scale_ok = hit_ir_ratio <= SCALE_TARGET * 1.01 and hit_norm_min <= SCALE_TARGET * 1.10
    rows_t.append(('a hit with %d servers stored costs no more than with 1' % SCALE[-1],
                   'instructions %.3fx; time (hit x true, min) %.2fx; (medians) %.2fx'
                   % (hit_ir_ratio, hit_norm_min, hit_norm), yes_no(scale_ok)))
    table(['target', 'measured (medians)', 'met'], rows_t)
    add('Every target but the last is judged on the ratio of medians. The scale target '
        'counts as met when the hit\'s user-space instructions with %d servers are within '
        '1%% of those with 1 (callgrind is repeatable) and its fastest run, '
        'as a multiple of the fastest `/bin/true` in the same block, is within 10%% of the same '
        'with 1 (the blocks run at different moments of a shared machine; the kernel\'s keyring '
        'search shows only in time). The ratio of medians is shown too.' % SCALE[-1], '')

    add('## Misses: by how much, and where the time goes', '')
    misses = explain_misses(w, targets, by, ex, floor, st, true, cby, m_hit, m_bg, scale,
                            hit_ir_ratio, hit_norm, hit_norm_min)
    add(*(misses or ['Every target was met in this run.']))
    add('')

    # ---- commands
    add('## Commands as run', '',
        'Ports and private directories are elided (`PORT`, `$ROOT`, `$BUILD`); no key or token '
        'is in any argv. Everything ran in the private environment: '
        '`PATH=$ROOT/bin:$ROOT/tools:...` (`$ROOT/bin`: galileo-credential and its '
        'git-/docker- links to the build), a private `DBUS_SESSION_BUS_ADDRESS`, '
        '`GALILEO_CREDENTIAL_CONFIG=$ROOT/config`, `GALILEO_CREDENTIAL_MODULE_DIR`, `HOME` and '
        '`XDG_*` under `$ROOT`.', '', '```', '# compiled at bench time')
    add(*w.compiled)
    add('', '# setup, secrets on stdin only',
        'galileo-credential login --server https://127.0.0.1:PORT  # key on stdin',
        'GALILEO_CREDENTIAL_TOKEN_CACHE=keystore galileo-credential token  # primes that cache',
        "secret-tool store --label='galileo bench' %s  # key on stdin" % ' '.join(ST_ATTRS),
        'docker-credential-secretservice store  # {"ServerURL": URL, "Username": "bench", '
        '"Secret": KEY} on stdin')
    if w.libsecret:
        add('git-credential-libsecret store  # protocol, host, username, password=KEY on stdin')
    add('git credential-cache--daemon $ROOT/git-cache/socket  # started, waits for "ok"',
        'git credential-cache --socket $ROOT/git-cache/socket --timeout 3600 store  # '
        'protocol, host, username, password=KEY on stdin',
        '# $ROOT/bench/git-get.in: protocol=https, host=127.0.0.1:PORT, blank line',
        '# $ROOT/bench/docker-get.in: https://127.0.0.1:PORT',
        '# $ROOT/bench/curl-header.in (mode 0600): Galileo-API-Key: KEY', '',
        '# each section: $ROOT/tools/runner SPEC OUT ROUNDS %d, the rows:' % WARMUP)
    for label, rows in (('hit', hit), ('cold', cold), ('margin', margin),
                        ('scale (each block; status in a runner of its own)', scale[0]['rows'])):
        add('# rows of section %s' % label, *('%s:  %s' % (r.name, r.show()) for r in rows), '')
    add('# scale: before blocks 10 and 100, for each new N:',
        'galileo-credential login --no-verify --server https://sN.RUN.example  # a key on stdin',
        "keyctl padd user 'galileo-credential:token:CONTEXT:https://sN.RUN.example#' @u  # "
        "'gc2 EXPIRES 900 0000000000000000 0000000000000000 CONTEXT bench-made-up-token' "
        "on stdin",
        'keyctl timeout SERIAL 1800  # and at the end: keyctl invalidate SERIAL; '
        'keyctl unlink SERIAL @u',
        '', '# race, each round; stdin /dev/null, no shell',
        'galileo-credential token --org-slug bench-cold-<run>-<N>  # x %d, one at a time' % SINGLES,
        '%s  # x %d at once' % (TRUE, RACE_N),
        'galileo-credential token --org-slug bench-race-<run>-<N>  # x %d at once' % RACE_N, '',
        '# section 6, each program P of its table',
        'valgrind --tool=callgrind --callgrind-out-file=FILE --trace-children=no P',
        'LD_DEBUG=statistics P  # x 7', 'LD_DEBUG=files P', 'strace -f -c -o FILE P', '```')
    text = elide(w, '\n'.join(L) + '\n')
    if has_secret(w, text):
        raise BenchError('the report would contain a key or token; not written')
    return text


def obj_sum(e, which):
    """self instructions in one object: 'ld-linux', 'libc', 'the program itself', ..."""
    which = {'ld-linux': 'ld-linux-x86-64'}.get(which, which)
    return sum(n for o, n in e['per'].items() if short_object(o, e['self']) == which)


def cpu_mhz():
    try:
        with open('/proc/cpuinfo') as f:
            return next(float(l.split(':', 1)[1]) for l in f if l.startswith('cpu MHz'))
    except (OSError, StopIteration, ValueError):
        return None


def cycles_ms(cycles):
    mhz = cpu_mhz()
    return '%.3f' % (cycles / (mhz * 1000.0)) if cycles and mhz else '?'


def fn_sum(e, fn):
    return sum(c for (o, f), c in e['fns'].items() if f == fn)


def object_diff(e, others, n=6):
    """the objects whose self instructions differ most between e and the others together"""
    def merged(x):
        m = {}
        for o, c in x['per'].items():
            k = short_object(o, x['self'])
            m[k] = m.get(k, 0) + c
        return m
    a, b = merged(e), {}
    for x in others:
        for k, c in merged(x).items():
            b[k] = b.get(k, 0) + c
    d = sorted(((k, a.get(k, 0) - b.get(k, 0)) for k in set(a) | set(b)), key=lambda x: -abs(x[1]))
    return ', '.join('%s %s' % (k, '{:+,}'.format(v)) for k, v in d[:n])


def call_diff(a, others, n=8):
    b = {}
    for x in others:
        for k, c in x['calls'].items():
            b[k] = b.get(k, 0) + c
    d = sorted(((k, a['calls'].get(k, 0) - b.get(k, 0)) for k in set(a['calls']) | set(b)),
               key=lambda x: -abs(x[1]))
    return ', '.join('%s %+d' % kv for kv in d[:n] if kv[1])


def container_hit(by):
    """a container's hit over the kernel-keyring hit, the wrapper's own exec taken out"""
    k, c = by[KERNEL_ENV_ROW], by[CONTAINER_ROW]
    wr, true = by[WRAPPER_ROW], by['/bin/true']
    return ((c.median - wr.median + true.median) / k.median,
            (c.min - wr.min + true.min) / k.min)


def container_report(add, timing_table, by, ex, hit_req, w):
    """section 1b: the file tier where keyctl is refused, beside the kernel keyring"""
    rows = [by[n] for n in (KERNEL_ENV_ROW, FILE_ROW, CONTAINER_ROW, WRAPPER_ROW)]
    kern, fil = ex[KERNEL_ENV_ROW], ex[FILE_ROW]
    ratio, ratio_min = container_hit(by)
    add('## 1b. A container: keyctl refused, the sealed file tier', '',
        'Rows of section 1, in the same interleaved rounds: `token` with `GALILEO_API_KEY` '
        '(no D-Bus needed) from the kernel keyring; from the file tier (`token-cache = file`); '
        'and under `tests/keyctl-refused`, the seccomp wrapper that refuses keyctl as Docker\'s '
        'and podman\'s default profiles do (so the file tier), with what the wrapper costs '
        'alone. Priming the two file-tier rows took %d exchange(s) before the timed runs; '
        'endpoint requests during the runs: %d (every row of section 1; expected 0, no '
        'exchange per hit).' % (w.container_primed, hit_req), '')
    timing_table(rows, [('kernel hit', by[KERNEL_ENV_ROW])])
    add('The container\'s hit without the wrapper\'s own exec (its row minus the wrapper\'s, '
        'plus `/bin/true`): %.2fx the kernel-keyring hit (fastest runs: %.2fx).'
        % (ratio, ratio_min), '')
    add('What the file tier costs, counted (callgrind, one run each): %s instructions against %s '
        'for the kernel-keyring hit (%s in ld.so against %s, %s in libsodium, %s in the seal '
        'module); %s shared objects mapped against %s; %d system calls against %d. libsodium '
        'is loaded with the seal module only by calls that use the file tier.'
        % (group(fil['ir']), group(kern['ir']), group(obj_sum(fil, 'ld-linux')),
           group(obj_sum(kern, 'ld-linux')), group(obj_sum(fil, 'libsodium')),
           group(obj_sum(fil, 'seal-sodium')), fil['objects'], kern['objects'],
           fil['ncalls'], kern['ncalls']), '')


def explain_misses(w, targets, by, ex, floor, st, true, cby, m_hit, m_bg, scale, hit_ir_ratio,
                   hit_norm, hit_norm_min):
    """one paragraph per missed target (and a table for the hit), from this run's measurements"""
    out = []
    missed = [t for t in targets if t[2] > t[3]]
    kinds = {t[4][0] for t in missed}
    fl, fj, ve = ex['floor'], ex['floor linked with libjansson too'], ex['galileo-credential --version']
    jansson = by['floor linked with libjansson too']
    version = by['galileo-credential --version (its start-up alone)']
    if 'floor' in kinds:
        worst = max((t for t in missed if t[4][0] == 'floor'), key=lambda t: t[2])
        names = [t[4][1] for t in missed if t[4][0] == 'floor']
        out.append('**Hit against the floor** (%s): the worst, `%s`, is %.2fx the floor, %s over '
                   'the %.2fx target. Each step from the floor to a hit, measured:'
                   % (', '.join('`%s` %.2fx' % (t[4][1], t[2]) for t in missed
                                if t[4][0] == 'floor'), worst[4][1], worst[2],
                      pct(worst[2] / worst[3] - 1), worst[3]))
        out.append('')
        out.append('| program | median ms | over the floor ms | minor faults | instructions '
                   '| in ld.so | ld.so start-up ms | relocations | system calls |')
        out.append('|---|---|---|---|---|---|---|---|---|')
        steps = [('floor', floor, fl), ('floor linked with libjansson too', jansson, fj),
                 ('galileo-credential --version', version, ve)]
        steps += [(n, by[n], ex[n]) for n in ('galileo-credential token',
                                                'git-credential-galileo get',
                                                'docker-credential-galileo get')]
        for name, r, e in steps:
            out.append('| %s | %s | %+.3f | %d | %s | %s | %s | %s | %d |'
                       % (name, ms(r.median), (r.median - floor.median) * 1000, r.minflt_median,
                          group(e['ir']), group(obj_sum(e, 'ld-linux')),
                          cycles_ms(e['ld_cycles']), e['relocs'], e['ncalls']))
        out.append('')
        tk = ex['galileo-credential token']
        tok = by['galileo-credential token']
        gap, start = tok.median - floor.median, version.median - floor.median
        share = start / gap if gap > 0 else 1.0
        out.append(
            '- `galileo-credential --version`, the same binary doing nothing but start and exit, '
            'takes %s ms against %s ms for `token` (%s vs %s instructions): %s'
            % (ms(version.median), ms(tok.median), group(ve['ir']), group(tk['ir']),
               'the gap is the program\'s start-up, not the hit\'s own work.' if share >= 0.6
               else 'start-up is %.0f%% of `token`\'s gap over the floor, the hit\'s own work '
               '(config, keyctl, output) the rest.' % (100 * max(0.0, share))))
        dj = jansson.median - floor.median
        out.append(
            '- libjansson: loading it costs %+.3f ms%s (the floor linked with it too, otherwise '
            'the same: %s instructions more, %d more system calls, %d more page faults). A hit '
            'parses no JSON (libjansson runs %s instructions in `token`), yet every call maps it.'
            % (dj * 1000, ', none measurable in this run' if dj <= 0 else '',
               group(fj['ir'] - fl['ir']), fj['ncalls'] - fl['ncalls'],
               jansson.minflt_median - floor.minflt_median, group(obj_sum(tk, 'libjansson'))))
        out.append(
            '- The dynamic loader: `--version` spends %s instructions in ld.so against %s in the '
            'floor linked with libjansson, for %s relocations against %s: galileo-credential is '
            'linked `-z now` (BIND_NOW, from configure\'s `-Wl,-z,relro,-z,now`), so every libc '
            'symbol it imports is looked up at start (`do_lookup_x`: %s vs %s instructions). '
            'ld.so\'s own start-up clock (LD_DEBUG=statistics, at the %s MHz TSC) is %s ms vs %s '
            'ms.'
            % (group(obj_sum(ve, 'ld-linux')), group(obj_sum(fj, 'ld-linux')), ve['relocs'],
               fj['relocs'], group(fn_sum(ve, 'do_lookup_x')), group(fn_sum(fj, 'do_lookup_x')),
               '%.0f' % (cpu_mhz() or 0), cycles_ms(ve['ld_cycles']), cycles_ms(fj['ld_cycles'])))
        out.append(
            '- The kernel: `--version` takes %d more page faults than the floor linked with '
            'libjansson (%d vs %d; its binary is %s bytes, the floor\'s %s) and %d more system '
            'calls (%d vs %d); `token` adds %d system calls more (the config file, the summary '
            'and token keys: %s). User-space instructions explain little of the wall time here: '
            'the floor runs %s of them in %s ms, most of which is creating and tearing down a '
            'process (`/bin/true`: %s ms); `token`\'s %s more than the floor would take %s ms '
            'even at one instruction per cycle, against a gap of %s ms in wall time and %s ms in '
            'CPU time (user+sys, measured): the rest of the gap is kernel work for the larger '
            'binary\'s exec, its page faults and system calls.'
            % (version.minflt_median - jansson.minflt_median, version.minflt_median,
               jansson.minflt_median, group(os.path.getsize(os.path.realpath(w.gc))),
               group(os.path.getsize(w.tools['floor'])), ve['ncalls'] - fj['ncalls'],
               ve['ncalls'], fj['ncalls'], tk['ncalls'] - ve['ncalls'],
               call_diff(tk, [ve], 6) or '-', group(fl['ir']), ms(floor.median),
               ms(true.median), group(tk['ir'] - fl['ir']),
               cycles_ms(tk['ir'] - fl['ir']), '%.3f' % ((tok.median - floor.median) * 1000),
               '%.3f' % ((tok.cpu_median - floor.cpu_median) * 1000)))
        if any(n != 'galileo-credential token' for n in names):
            g = ex['git-credential-galileo get']
            out.append(
                '- `git-credential-galileo get` runs %s instructions against `token`\'s %s, %s '
                'of them in `memset` (libc), and takes %d page faults against %d.'
                % (group(g['ir']), group(tk['ir']),
                   group(sum(c for (o, f), c in g['fns'].items() if 'memset' in f)),
                   by['git-credential-galileo get'].minflt_median,
                   by['galileo-credential token'].minflt_median))
        out.append('')
    for t in missed:
        kind, name = t[4]
        over = t[2] / t[3] - 1.0
        if kind == 'secret-tool':
            r = by[name]
            out.append(
                '- **`%s` against secret-tool lookup**: %.3fx, %s over the %.2fx target (%s ms vs '
                '%s ms; meeting it needs %s ms, while `/bin/true` takes %s ms and the floor %s ms '
                '= %.3fx secret-tool). secret-tool lookup\'s CPU is %s ms and it waits %s ms on '
                'D-Bus and gnome-keyring.'
                % (name, t[2], pct(over), t[3], ms(r.median), ms(st.median),
                   ms(st.median * HIT_ST_TARGET), ms(true.median), ms(floor.median),
                   floor.median / st.median, ms(st.cpu_median), ms(st.wait_median)))
        elif kind == 'cold':
            tr = cby['galileo-credential token --refresh']
            ch = cby['secret-tool lookup, then curl']
            sa, ca = cby['secret-tool lookup alone'], cby['curl alone']
            er, es, ec = (ex['galileo-credential token --refresh'], ex['secret-tool lookup'],
                          ex['curl alone'])
            lk_r = fn_sum(er, 'do_lookup_x')
            lk_c = fn_sum(es, 'do_lookup_x') + fn_sum(ec, 'do_lookup_x')
            out.append(
                '- **Cold `token --refresh`**: %.2fx (secret-tool lookup + curl), %s over the '
                '%.2fx target (%s ms vs %s ms; secret-tool alone %s ms, curl alone %s ms). The '
                'program does the same two things, one after the other, in one process: the '
                'keyring read over D-Bus (libsecret) and one HTTPS exchange (libcurl); the one '
                'process saves a process start, and pays for it with more work. Measured:'
                % (t[2], pct(over), t[3], ms(tr.median), ms(ch.median), ms(sa.median),
                   ms(ca.median)))
            out.append(
                '  - CPU (user+sys): %s ms against %s ms for the chain; not on a CPU (waiting for '
                'gnome-keyring, the endpoint, the scheduler): %s ms against %s ms (secret-tool '
                'alone waits %s ms, curl alone %s ms).'
                % (ms(tr.cpu_median), ms(ch.cpu_median), ms(tr.wait_median), ms(ch.wait_median),
                   ms(sa.wait_median), ms(ca.wait_median)))
            out.append(
                '  - user-space instructions: %s against %s for secret-tool and curl together; '
                'the objects that differ most (the program minus the two): %s.'
                % (group(er['ir']), group(es['ir'] + ec['ir']), object_diff(er, [es, ec])))
            def inc(e, fn):
                return group(e['inc'].get(fn, 0))
            out.append(
                '  - by phase (inclusive instructions, section 6): loading libraries, the '
                'program\'s start-up %s plus dlopen of its two modules %s = %s, against '
                'secret-tool\'s and curl\'s start-ups %s + %s = %s; libsecret\'s Diffie-Hellman '
                'exponentiation %s (secret-tool %s); libcurl\'s request %s (curl %s), of which '
                'the TLS handshake %s (%s).'
                % (inc(er, '_dl_start'), inc(er, 'dlopen@@GLIBC_2.34'),
                   group(er['inc'].get('_dl_start', 0) + er['inc'].get('dlopen@@GLIBC_2.34', 0)),
                   inc(es, '_dl_start'), inc(ec, '_dl_start'),
                   group(es['inc'].get('_dl_start', 0) + ec['inc'].get('_dl_start', 0)),
                   inc(er, 'gcry_mpi_powm'), inc(es, 'gcry_mpi_powm'),
                   inc(er, 'curl_easy_perform'), inc(ec, 'curl_easy_perform'),
                   inc(er, 'SSL_connect'), inc(ec, 'SSL_connect')))
            out.append(
                '  - the dynamic loader: the program maps %d shared objects (secret-tool %d, curl '
                '%d: the same libraries, its two modules and libjansson more) and makes %s '
                'relocations (%s + %s), but its symbol lookups cost more each: `do_lookup_x` '
                'runs %s instructions against %s (%.0f against %.0f per relocation); presumably '
                'each lookup walks longer scope lists in a process that holds both stacks.'
                % (er['objects'], es['objects'], ec['objects'], group(er['relocs']),
                   group(es['relocs']), group(ec['relocs']), group(lk_r), group(lk_c),
                   lk_r / max(1, er['relocs']), lk_c / max(1, es['relocs'] + ec['relocs'])))
            out.append(
                '  - the floor under both: libgcrypt runs %s instructions in the program and %s in '
                'secret-tool (libsecret\'s encrypted session with gnome-keyring: '
                '`gcry_mpi_powm`), libcrypto %s and %s in curl (OpenSSL\'s start-up, its random '
                'generator\'s seeding, the CA file and the TLS handshake): %.0f%% of the '
                'program\'s instructions are in these two libraries, paid alike by the chain.'
                % (group(obj_sum(er, 'libgcrypt')), group(obj_sum(es, 'libgcrypt')),
                   group(obj_sum(er, 'libcrypto')), group(obj_sum(ec, 'libcrypto')),
                   100.0 * (obj_sum(er, 'libgcrypt') + obj_sum(er, 'libcrypto')) / er['ir']))
            out.append(
                '  - system calls: %d against %d + %d; the largest differences: %s. D-Bus '
                'messages, as `sendmsg`/`recvmsg` calls: %d/%d against secret-tool\'s %d/%d.'
                % (er['ncalls'], es['ncalls'], ec['ncalls'], call_diff(er, [es, ec]),
                   er['calls'].get('sendmsg', 0), er['calls'].get('recvmsg', 0),
                   es['calls'].get('sendmsg', 0), es['calls'].get('recvmsg', 0)))
            out.append('')
        elif kind == 'margin':
            tl = w.margin_timeline
            out.append(
                '- **First call inside the margin**: %.2fx a hit, %s over the %gx target (%s ms '
                'vs %s ms). CPU: %s ms vs %s ms (the flight lock, two forks); not on a CPU: %s ms '
                'vs %s ms: the parent waits in wait4 for its first child, which only forks and '
                'exits%s.'
                % (t[2], pct(over), MARGIN_TARGET, ms(m_bg.median), ms(m_hit.median),
                   ms(m_bg.cpu_median), ms(m_hit.cpu_median), ms(m_bg.wait_median),
                   ms(m_hit.wait_median),
                   ('; under strace that child made its first system call %s ms after the fork'
                    % ms(tl['start'])) if tl else ''))
        elif kind == 'container':
            kern, fil = ex[KERNEL_ENV_ROW], ex[FILE_ROW]
            out.append(
                '- **A container\'s hit**: %.2fx the kernel-keyring hit, %s over the %gx target. '
                'The file tier runs %s instructions more (%s in ld.so for the seal module and '
                'libsodium, %s in libsodium, %s in the seal module) and makes %d system calls '
                'more (%s).'
                % (t[2], pct(over), CONTAINER_TARGET, group(fil['ir'] - kern['ir']),
                   group(obj_sum(fil, 'ld-linux') - obj_sum(kern, 'ld-linux')),
                   group(obj_sum(fil, 'libsodium')), group(obj_sum(fil, 'seal-sodium')),
                   fil['ncalls'] - kern['ncalls'], call_diff(fil, [kern])))
    if hit_ir_ratio > SCALE_TARGET * 1.01 or hit_norm_min > SCALE_TARGET * 1.10:
        b1, b100 = scale[0], scale[-1]
        f1 = b1['rows'][1].min / b1['rows'][0].min
        f100 = b100['rows'][1].min / b100['rows'][0].min
        out.append('- **A hit with %d servers**: instructions %s against %s with 1 (%.3fx); '
                   'fastest run as a multiple of the fastest `/bin/true` %.2fx of that with 1 '
                   '(medians: %.2fx); the floor, which searches the same @u, went from %.2fx to '
                   '%.2fx `/bin/true` (fastest runs; @u: %d keys, then %d), so a growth there is '
                   'the kernel\'s keyring search, the same for any program that reads the cache.'
                   % (SCALE[-1], group(b100['ir']['galileo-credential token']),
                      group(b1['ir']['galileo-credential token']), hit_ir_ratio, hit_norm_min,
                      hit_norm, f1, f100, b1['keys'], b100['keys']))
    return out


def top_objects(e, n):
    merged = {}
    for o, c in e['per'].items():
        k = short_object(o, e['self'])
        merged[k] = merged.get(k, 0) + c
    return ', '.join('%s %s' % (o, group(c))
                     for o, c in sorted(merged.items(), key=lambda x: -x[1])[:n])


def main():
    if not os.environ.get('GC_BUILDDIR'):
        print('bench: set GC_BUILDDIR to the build directory (scripts/bench does)', file=sys.stderr)
        return 2
    for tool in ('gcc', 'secret-tool', 'docker-credential-secretservice', 'curl', 'git',
                 'valgrind', 'strace', 'keyctl'):
        if not shutil.which(tool):
            print('bench: %s not found (see bench/README.md)' % tool, file=sys.stderr)
            return 2
    load0 = os.getloadavg()
    env = harness.Env()
    box = []
    try:
        log('starting the private keyring and token endpoint')
        env.start()
        w = setup(env, box)
        w.hyperfine = shutil.which('hyperfine') and first_line(['hyperfine', '--version'])
        hit, hit_req = section_hit(w)
        cold, cold_req = section_cold(w)
        margin, margin_req = section_margin(w)
        rounds, singles = section_race(w)
        scale = section_scale(w)
        explain = section_explain(w)
        text = report(w, load0, hit, hit_req, cold, cold_req, margin, margin_req, rounds,
                      singles, scale, explain)
    except BenchError as e:
        print('bench: ' + str(e), file=sys.stderr)
        return 1
    finally:
        for w in box:
            stop_git_cache(w)
            if 'agekey' in w.tools:
                wait_locks(w)       # no detached refresh outlives the endpoint
            drop_dummy_keys(w)
        env.close()
    with open(RESULTS, 'w') as f:
        f.write(text)
    sys.stdout.write(text)
    log('wrote ' + os.path.relpath(RESULTS))
    return 0


if __name__ == '__main__':
    sys.exit(main())
