#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
Secret hygiene (galileo-credential(1) SECURITY): no key, password or token where it
does not belong.

  - With GALILEO_CREDENTIAL_DEBUG=1, every command and the failures of the
    endpoint write no secret to stderr, and no token to stdout but that of
    get/token (the harness checks every run after each test; the tests
    here also assert it run by run, and that debug output is really on).
  - The helper starts no process: under strace, the only execve is its own,
    and the trace holds no secret.
  - While it waits for the endpoint, /proc/PID/cmdline and environ of the
    helper hold no stored secret; run as an unprivileged user, another
    process of that same user cannot read its environ or mem (it is not
    dumpable for the whole run, not just at start: test_native's Hardening
    checks the owner of /proc/PID/environ at start).
  - No file the helper may write (HOME, the XDG directories, TMPDIR, the
    lock directory, /tmp/galileo-credential-UID, /dev/shm, /var/tmp) holds
    a secret.

Secrets are never printed: failures name them by their first characters.
"""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (GCTestCase, Response, delayed, git_lines,  # noqa: E402
                     parse_git_output, redact)

setUpModule = harness.setUpModule
tearDownModule = harness.tearDownModule

GIT = 'git-credential-galileo'
DOCKER = 'docker-credential-galileo'
DEBUG = {'GALILEO_CREDENTIAL_DEBUG': '1'}
NOBODY = 65534
SECCOMP_BPF = []        # strace --seccomp-bpf where it works: stops only on execve


def secret_hits(secrets, data):
    """the (redacted) secrets found in data (bytes or text)"""
    if isinstance(data, str):
        data = data.encode('utf-8', 'replace')
    return [redact(s) for s in secrets if s and s.encode() in data]


class HygieneCase(GCTestCase):

    def setUp(self):
        super().setUp()
        self.host = '127.0.0.1:%d' % self.server.port

    def fresh(self, token_cache='keystore', check=True):
        """
        a clean slate inside one test; checks the runs so far first
        (check=False: they were checked and reported run by run)
        """
        if check:
            self.check_no_leaks()
        self.env.reset()
        self.env.write_config(token_cache=token_cache)

    def secrets(self):
        return self.env.all_secrets()

    def assertClean(self, what, res, token_ok=False):
        """no secret on stderr; no key on stdout; a token only where allowed"""
        rc, out, err = res
        hits = secret_hits(self.secrets(), err)
        self.assertFalse(hits, '%s: secrets on stderr: %s' % (what, hits))
        hits = secret_hits(self.env.keys, out)
        self.assertFalse(hits, '%s: keys on stdout: %s' % (what, hits))
        if not token_ok:
            hits = secret_hits(self.server.issued, out)
            self.assertFalse(hits, '%s: tokens on stdout: %s' % (what, hits))

    def run_debug(self, what, args, token_ok=False, **kw):
        env = dict(DEBUG, **(kw.pop('env_extra', None) or {}))
        res = self.env.run(args, env_extra=env, **kw)
        self.assertIn(harness.PREFIX + 'debug: ', res.stderr,
                      '%s: no debug output: is GALILEO_CREDENTIAL_DEBUG honoured?' % what)
        self.assertClean(what, res, token_ok)
        return res


class DebugOutput(HygieneCase):
    """Every command and failure with GALILEO_CREDENTIAL_DEBUG=1."""

    def every_command(self):
        git_in = git_lines('protocol=https', 'host=' + self.host)
        key = self.env.new_key()
        self.server.accept_key(key)
        res = self.run_debug('login', ['login'], input=key + '\n')
        self.assertEqual(res.returncode, 0, res.stderr[-300:])
        self.assertEqual(res.stdout, '')
        for what, args in (('token (hit)', ['token']), ('token --refresh', ['token', '--refresh'])):
            res = self.run_debug(what, args, token_ok=True)
            self.assertEqual(res.returncode, 0, what)
            self.assertEqual(res.stdout.count('\n'), 1, what)
            self.assertIn(res.stdout[:-1], self.server.issued, '%s: not a token' % what)
        for what, args in (('status', ['status']), ('status --json', ['status', '--json'])):
            res = self.run_debug(what, args)
            self.assertEqual(res.returncode, 0, what)
        json.loads(res.stdout)
        res = self.run_debug('git get', ['get'], argv0=GIT, input=git_in, token_ok=True)
        self.assertEqual(res.returncode, 0)
        tok = parse_git_output(res.stdout)[0]['password']
        # git's echo of what get gave out, then its reject of that token
        res = self.run_debug('git store (echo)', ['store'], argv0=GIT, input=git_lines(
            'protocol=https', 'host=' + self.host, 'username=token', 'password=' + tok,
            'password_expiry_utc=%d' % (time.time() + 3000)))
        self.assertEqual((res.returncode, res.stdout), (0, ''))
        res = self.run_debug('git erase (token)', ['erase'], argv0=GIT, input=git_lines(
            'protocol=https', 'host=' + self.host, 'username=token', 'password=' + tok))
        self.assertEqual((res.returncode, res.stdout), (0, ''))
        res = self.run_debug('docker get', ['get'], argv0=DOCKER, input=self.url + '\n',
                             token_ok=True)
        self.assertEqual(res.returncode, 0)
        self.assertIn(json.loads(res.stdout)['Secret'], self.server.issued)
        res = self.run_debug('docker list', ['list'], argv0=DOCKER)
        self.assertEqual(res.returncode, 0)
        other = self.env.new_key()
        self.server.accept_key(other)
        res = self.run_debug('docker store', ['store'], argv0=DOCKER, input=json.dumps(
            {'ServerURL': self.url, 'Username': 'alice', 'Secret': other}))
        self.assertEqual((res.returncode, res.stdout), (0, ''))
        res = self.run_debug('token (miss)', ['token'], token_ok=True)
        self.assertEqual(res.returncode, 0)
        res = self.run_debug('docker erase', ['erase'], argv0=DOCKER, input=self.url + '\n')
        self.assertEqual((res.returncode, res.stdout), (0, ''))
        pw = self.env.new_key('gp-test-')
        self.server.accept_basic('alice', pw)
        res = self.run_debug('git store (basic)', ['store'], argv0=GIT, input=git_lines(
            'protocol=https', 'host=' + self.host, 'username=alice', 'password=' + pw,
            'kind=basic'))
        self.assertEqual((res.returncode, res.stdout), (0, ''))
        res = self.run_debug('git get (basic)', ['get'], argv0=GIT, input=git_in, token_ok=True)
        self.assertEqual(res.returncode, 0)
        res = self.run_debug('git erase (stored password)', ['erase'], argv0=GIT,
                             input=git_lines('protocol=https', 'host=' + self.host,
                                             'username=alice', 'password=' + pw))
        self.assertEqual((res.returncode, res.stdout), (0, ''))
        bearer = self.env.new_key('gb-test-')
        self.server.accept_bearer(bearer)
        res = self.run_debug('login (bearer)', ['login', '--kind', 'bearer'], input=bearer + '\n')
        self.assertEqual(res.returncode, 0)
        res = self.run_debug('logout', ['logout'])
        self.assertEqual((res.returncode, res.stdout), (0, ''))
        envkey = self.env.new_key()
        self.server.accept_key(envkey)
        for what in ('token (GALILEO_API_KEY, miss)', 'token (GALILEO_API_KEY, again)'):
            res = self.run_debug(what, ['token'], token_ok=True,
                                 env_extra={'GALILEO_API_KEY': envkey})
            self.assertEqual(res.returncode, 0, what)
        res = self.run_debug('status (GALILEO_API_KEY)', ['status', '--json'],
                             env_extra={'GALILEO_API_KEY': envkey})
        self.assertEqual(res.returncode, 0)
        self.assertGreaterEqual(len(self.env.history), 20)

    def test_every_command_keystore_cache(self):
        self.env.write_config(token_cache='keystore')
        self.every_command()

    def test_every_command_kernel_cache(self):
        self.env.write_config(token_cache=None)
        self.every_command()

    def test_endpoint_failures(self):
        """401, 403, 422, 429, 500, bad and expired token responses, timeouts"""
        bad = 'gt-test-bad ' + os.urandom(8).hex()             # a space: not a token
        cases = [
            ('401', Response(401, {'detail': 'Invalid credentials'}), 4),
            ('403', Response(403, {'detail': 'Forbidden'}), 4),
            ('422', Response(422, {'detail': [{'loc': ['query', 'organization_id'],
                                               'msg': 'Input should be a valid UUID'}]}), 7),
            ('429', Response(429, {'detail': 'slow down'}, headers={'Retry-After': '0'}), 5),
            ('500', Response(500, 'Internal Server Error'), 5),
            ('200 not a token', self.server.token_reply(token=bad), 5),
            ('200 already expired', self.server.token_reply(lifetime=-60), 5),
            ('200 not JSON', Response(200, '<html>oops</html>'), 5),
        ]
        for name, reply, code in cases:
            with self.subTest(reply=name):
                self.fresh()
                self.env.write_config(extra='timeout = 4\n')
                key = self.env.new_key()
                self.login(key, args=['--no-verify'])
                self.server.push(reply, times=None)     # retries see it too
                commands = [('token', ['token'], {}),
                            ('git get', ['get'], dict(argv0=GIT, input=git_lines(
                                'protocol=https', 'host=' + self.host))),
                            ('login', ['login'], dict(input=self.env.new_key() + '\n'))]
                if name in ('429', '500'):
                    commands = commands[:1]     # retried with backoff: slow
                for what, args, kw in commands:
                    res = self.run_debug('%s (%s)' % (what, name), args, **kw)
                    self.assertEqual(res.returncode, code, '%s (%s): %r' % (
                        what, name, res.stderr.split('\n')[-2:]))
                    self.assertEqual(res.stdout, '')
                    if name in ('429', '500'):
                        continue
                    res = self.env.run(args, **kw)
                    self.assertFails(res, code)
                    self.assertClean('%s (%s, no debug)' % (what, name), res)

    def test_server_that_echoes_the_secret(self):
        # a careless server puts what it received in its error body: the
        # helper prints the 422 detail, never the secret in it
        cases = [
            ('422 detail string', 422, lambda k: {'detail': 'bad key %s' % k}),
            ('422 detail entries', 422, lambda k: {'detail': [
                {'loc': ['header', 'Galileo-API-Key'], 'msg': 'key %s is malformed' % k,
                 'input': k}]}),
            ('401 echo', 401, lambda k: {'detail': 'unknown key %s' % k}),
            ('500 echo', 500, lambda k: 'error while checking %s' % k),
        ]
        for name, status, body in cases:
            with self.subTest(reply=name):
                self.fresh(check=False)     # each case reports its own runs
                key = self.login(args=['--no-verify'])
                self.server.push(Response(status, body(key)), times=None)
                for debug in (False, True):
                    res = self.env.run(['token'], env_extra=DEBUG if debug else None)
                    self.assertNotEqual(res.returncode, 0)
                    self.assertEqual(res.stdout, '')
                    self.assertClean('token (%s, debug=%s)' % (name, debug), res)
        self.env.history = []       # reported above, case by case


class NoChildProcess(HygieneCase):
    """The helper execs nothing: its argv and environment reach no program."""

    @classmethod
    def setUpClass(cls):
        if not shutil.which('strace'):
            raise unittest.SkipTest('strace is missing (apt-get install strace)')
        r = subprocess.run(['strace', '-f', '-o', '/dev/null', '-e', 'trace=execve', 'true'],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)
        if r.returncode != 0:
            raise unittest.SkipTest('strace cannot trace here: %s' % r.stderr.decode()[:200])
        r = subprocess.run(['strace', '-f', '--seccomp-bpf', '-o', '/dev/null', '-e',
                            'trace=execve', 'true'], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
        SECCOMP_BPF[:] = ['--seccomp-bpf'] if r.returncode == 0 else []

    def traced(self, what, args, token_ok=False, **kw):
        trace = os.path.join(self.env.root, 'strace-%d.log' % len(self.env.history))
        wrapper = ['strace', '-f', '-qq', '-s', '4096', '-e', 'trace=execve,execveat',
                   '-o', trace] + SECCOMP_BPF
        # LeakSanitizer cannot work under ptrace: off for a sanitizer build
        asan = os.environ.get('ASAN_OPTIONS', '')
        env = dict(kw.pop('env_extra', None) or {},
                   ASAN_OPTIONS=(asan + ':' if asan else '') + 'detect_leaks=0')
        res = self.env.run(args, wrapper=wrapper, env_extra=env, **kw)
        with open(trace, 'rb') as f:
            text = f.read()
        os.unlink(trace)
        self.assertClean(what, res, token_ok)
        hits = secret_hits(self.secrets(), text)
        self.assertFalse(hits, '%s: secrets in the execve trace: %s' % (what, hits))
        calls = [l for l in text.decode('utf-8', 'replace').split('\n')
                 if re.match(r'^\d+\s+execve', l)]
        progs = [re.search(r'execve(?:at)?\((?:[^,]*, )?"([^"]*)"', l) for l in calls]
        progs = [m.group(1) if m else '?' for m in progs]
        self.assertEqual(len(calls), 1, '%s: started other programs: %r' % (what, progs[1:]))
        self.assertEqual(os.path.basename(progs[0]), os.path.basename(
            kw.get('argv0') or harness.PROGRAM), what)
        return res

    def test_every_command_execs_nothing(self):
        git_in = git_lines('protocol=https', 'host=' + self.host)
        key = self.env.new_key()
        for tier in (None, 'keystore'):
            self.fresh(tier)
            self.server.accept_key(key)
            self.assertEqual(self.traced('login', ['login'], input=key + '\n').returncode, 0)
            for what, args, ok, kw in [c for c in (
                    ('token', ['token'], True, {}),
                    ('token --refresh', ['token', '--refresh'], True, {}),
                    ('status', ['status', '--json'], False, {}),
                    ('git get', ['get'], True, dict(argv0=GIT, input=git_in)),
                    ('docker get', ['get'], True, dict(argv0=DOCKER, input=self.url + '\n')),
                    ('docker list', ['list'], False, dict(argv0=DOCKER)),
                    ('git store', ['store'], False, dict(argv0=GIT, input=git_lines(
                        'protocol=https', 'host=' + self.host, 'username=u',
                        'password=' + key))),
                    ('git erase', ['erase'], False, dict(argv0=GIT, input=git_in)),
                    ('docker store', ['store'], False, dict(argv0=DOCKER, input=json.dumps(
                        {'ServerURL': self.url, 'Username': 'u', 'Secret': key}))),
                    ('docker erase', ['erase'], False, dict(argv0=DOCKER, input=self.url + '\n')),
                    ('logout', ['logout'], False, {}),
                    ('token (GALILEO_API_KEY)', ['token'], True,
                     dict(env_extra={'GALILEO_API_KEY': key})),
                    ('token (nothing stored)', ['token'], True, {}))
                    # the keystore tier: the calls that cache differently
                    if tier is None or c[0] in ('token', 'git get', 'status', 'logout')]:
                with self.subTest(tier=tier or 'keyctl', command=what):
                    self.traced(what, args, ok, **kw)


class RunningProcess(HygieneCase):
    """What another process can see of a helper waiting for the endpoint."""

    def wait_for_request(self, count, sp):
        deadline = time.time() + 15
        while self.server.count == count and time.time() < deadline:
            if sp.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.assertEqual(self.server.count, count + 1, 'the call never reached the endpoint')

    def test_proc_of_a_waiting_helper_holds_no_secret(self):
        key = self.login(args=['--no-verify'])
        for what, args, kw in (
                ('token', ['token', '--refresh'], {}),
                ('login', ['login'], dict(input=self.env.new_key() + '\n')),
                ('git get', ['get'], dict(argv0=GIT, input=git_lines(
                    'protocol=https', 'host=' + self.host, 'organization_slug=acme')))):
            with self.subTest(command=what):
                count = self.server.count
                self.server.push(delayed(self.server.token_reply(), 1.0))
                sp = self.env.spawn(args, **kw)
                try:
                    self.wait_for_request(count, sp)
                    seen, denied = {}, []
                    for name in ('cmdline', 'environ'):
                        try:
                            with open('/proc/%d/%s' % (sp.pid, name), 'rb') as f:
                                seen[name] = f.read()
                        except PermissionError:
                            denied.append(name)
                finally:
                    res = sp.finish(timeout=30)
                self.assertEqual(res.returncode, 0, res.stderr)
                self.assertEqual(seen['cmdline'].split(b'\0')[1:-1],
                                 [a.encode() for a in args])
                if os.geteuid() == 0:
                    # root reads anything: what it sees holds no secret
                    self.assertEqual(denied, [])
                    self.assertIn(b'GALILEO_CREDENTIAL_CONFIG=', seen['environ'])
                else:
                    # the helper is not dumpable, so its own user cannot
                    # read its environ at all (the root run checks its content)
                    self.assertEqual(denied, ['environ'],
                                     '%s: its own user read /proc/PID/environ' % what)
                for name, data in seen.items():
                    hits = secret_hits(self.secrets(), data)
                    self.assertFalse(hits, '%s: /proc/PID/%s holds %s' % (what, name, hits))
        self.assertTrue(key)

    def test_same_user_cannot_read_a_waiting_helper(self):
        """
        As an unprivileged user (root can read anything): while the helper
        waits for the endpoint, with its modules loaded, another process of
        the same user cannot read its environ (holding GALILEO_API_KEY) or
        its memory, though it can read a dumpable process's.  Run as root,
        the helper and the readers run as nobody; run as a user, as that
        user.
        """
        if os.getuid() == 0:
            if not shutil.which('setpriv'):
                self.skipTest('needs setpriv (util-linux) to run as nobody')
            uid = NOBODY
            as_user = ['setpriv', '--reuid=%d' % NOBODY, '--regid=%d' % NOBODY,
                       '--clear-groups']
            r = subprocess.run(as_user + ['test', '-x', self.env.program, '-a', '-r',
                                          os.path.join(harness.module_dir(), 'http-curl.so')],
                               stdin=subprocess.DEVNULL, timeout=30)
            if r.returncode != 0:
                self.skipTest('nobody cannot run %s (a build dir under a private directory)' %
                              self.env.program)
        else:
            uid = os.getuid()       # already an unprivileged user
            as_user = []
        top = tempfile.mkdtemp(prefix='unprivileged-', dir='/tmp')
        try:
            os.chmod(top, 0o755)
            home = os.path.join(top, 'home')
            os.mkdir(home, 0o700)
            if uid != os.getuid():
                os.chown(home, uid, uid)
            ca = os.path.join(top, 'ca.pem')
            shutil.copy(self.env.ca_file, ca)
            os.chmod(ca, 0o644)
            config = os.path.join(top, 'config')
            with open(config, 'w') as f:
                f.write('server = %s\nca-file = %s\ntoken-cache = none\nkeystore = env\n' % (
                    self.url, ca))
            os.chmod(config, 0o644)
            key = self.env.new_key()
            self.server.accept_key(key)
            self.server.push(delayed(self.server.token_reply(), 1.5))
            env = {'PATH': '/usr/bin:/bin', 'HOME': home, 'XDG_RUNTIME_DIR': home,
                   'XDG_CONFIG_HOME': home, 'TMPDIR': home, 'LC_ALL': 'C.UTF-8',
                   'GALILEO_CREDENTIAL_CONFIG': config, 'GALILEO_API_KEY': key,
                   'GALILEO_CREDENTIAL_MODULE_DIR': harness.module_dir()}
            count = self.server.count
            p = subprocess.Popen(as_user + [self.env.program, 'token'], env=env, cwd='/',
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            try:
                deadline = time.time() + 15
                while self.server.count == count and time.time() < deadline and \
                        p.poll() is None:
                    time.sleep(0.02)
                self.assertEqual(self.server.count, count + 1, 'no request from the helper')
                with open('/proc/%d/status' % p.pid) as f:
                    uids = re.search(r'^Uid:\s+(\d+)', f.read(), re.M).group(1)
                self.assertEqual(int(uids), uid, 'not running as uid %d' % uid)
                # the check tells a dumpable process of the same user's apart
                ctl = subprocess.Popen(as_user + ['sleep', '10'], stdin=subprocess.DEVNULL)
                try:
                    time.sleep(0.2)
                    r = subprocess.run(as_user + ['dd', 'if=/proc/%d/environ' % ctl.pid,
                                                    'bs=4096', 'count=1', 'status=none'],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, timeout=30)
                    self.assertEqual(r.returncode, 0, 'control: %r' % r.stderr)
                finally:
                    ctl.kill()
                    ctl.wait()
                reads = {}
                for name in ('environ', 'mem', 'cmdline'):
                    r = subprocess.run(as_user + ['dd', 'if=/proc/%d/%s' % (p.pid, name),
                                                    'bs=4096', 'count=1', 'status=none'],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, timeout=30)
                    reads[name] = r
                out, err = p.communicate(timeout=30)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.communicate()
            self.env.history.append(harness._Run('token (unprivileged)', 'token',
                                                 out.decode(), err.decode(), token_ok=True))
            self.assertEqual(p.returncode, 0, err.decode()[-300:])
            self.assertIn(out.decode()[:-1], self.server.issued)
            # the same user reads argv (as for any process), but neither the
            # environment nor the memory
            self.assertEqual(reads['cmdline'].returncode, 0, reads['cmdline'].stderr)
            self.assertFalse(secret_hits(self.secrets(), reads['cmdline'].stdout))
            for name in ('environ', 'mem'):
                r = reads[name]
                self.assertNotEqual(r.returncode, 0,
                                    'uid %d read /proc/PID/%s of its own helper' % (uid, name))
                self.assertIn(b'ermission denied', r.stderr, name)
                self.assertFalse(secret_hits(self.secrets(), r.stdout), name)
        finally:
            shutil.rmtree(top, ignore_errors=True)


class NoSecretInFiles(HygieneCase):
    """No file anywhere the helper could write holds a secret."""

    @staticmethod
    def scan(secrets, roots, since, top_only=False):
        """(path, redacted secrets) of the files under roots changed since `since`"""
        found = []
        for root in roots:
            if not os.path.isdir(root):
                continue
            for dirpath, dirnames, filenames in os.walk(root):
                if top_only:
                    dirnames[:] = []
                for name in filenames:
                    path = os.path.join(dirpath, name)
                    try:
                        st = os.lstat(path)
                        if not stat.S_ISREG(st.st_mode) or st.st_size > 8 << 20:
                            continue
                        if st.st_mtime < since and st.st_ctime < since:
                            continue
                        with open(path, 'rb') as f:
                            data = f.read()
                    except OSError:
                        continue
                    hits = secret_hits(secrets, data)
                    if hits:
                        found.append((path, hits))
        return found

    def test_no_secret_written_to_any_file(self):
        since = time.time() - 1
        tmp = os.path.join(self.env.root, 'tmp')
        os.makedirs(tmp, mode=0o700, exist_ok=True)
        tmpenv = {'TMPDIR': tmp}
        git_in = git_lines('protocol=https', 'host=' + self.host)
        uid_lock_dir = '/tmp/galileo-credential-%d' % os.getuid()
        seen = set()        # every secret of the test (a reset forgets the tokens)
        for tier in ('keystore', None):
            seen.update(self.secrets())
            self.fresh(tier)
            key = self.login(env_extra=tmpenv)
            pw = self.env.new_key('gp-test-')
            self.server.accept_basic('alice', pw)
            steps = [
                (['token'], {}), (['token', '--refresh'], {}), (['status', '--json'], {}),
                (['get'], dict(argv0=GIT, input=git_in)),
                (['get'], dict(argv0=DOCKER, input=self.url + '\n')),
                (['store'], dict(argv0=GIT, input=git_lines(
                    'protocol=https', 'host=' + self.host, 'username=alice',
                    'password=' + pw, 'kind=basic'))),
                (['get'], dict(argv0=GIT, input=git_in)),
                # without XDG_RUNTIME_DIR the lock goes to /tmp/galileo-credential-UID
                (['token', '--refresh'], dict(env_extra={'XDG_RUNTIME_DIR': None})),
                (['store'], dict(argv0=DOCKER, input=json.dumps(
                    {'ServerURL': self.url, 'Username': 'u', 'Secret': key}))),
                (['token'], dict(env_extra={'GALILEO_API_KEY': key})),
                (['erase'], dict(argv0=GIT, input=git_in)),
            ]
            for args, kw in steps:
                env = dict(tmpenv, **kw.pop('env_extra', {}))
                res = self.env.run(args, env_extra=env, **kw)
                self.assertEqual(res.returncode, 0, '%s: %s' % (args, res.stderr[-300:]))
            # a failure too
            self.server.push(Response(500, 'no'), times=None)
            self.env.run(['login'], input=self.env.new_key() + '\n', env_extra=tmpenv)
        seen.update(self.secrets())
        self.assertGreater(len(seen), 10)
        lock_dir = os.path.join(self.env.runtime, 'galileo-credential')
        self.assertTrue(os.path.isdir(lock_dir), 'no lock directory: did anything lock?')
        # the keyring's own file is encrypted; everything else is plain
        found = self.scan(seen, [self.env.root, uid_lock_dir, '/dev/shm', '/var/tmp'], since)
        found += self.scan(seen, ['/tmp'], since, top_only=True)
        self.assertEqual(found, [], 'files holding secrets')


if __name__ == '__main__':
    harness.main()
