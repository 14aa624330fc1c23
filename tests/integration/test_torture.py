#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
Concurrency torture (galileo-credential(1) GIT DIALECT, TOKEN LIFETIME): about 200 processes mixing
login, token, token --refresh, git get/store/erase and logout over three
servers, at most CONCURRENCY at a time, for at most STORM_SECONDS.

The three servers are the harness's endpoint under two names (the test
CA's certificate names 127.0.0.1 and localhost) and a second endpoint of
this module on another port (git's protocol cannot name a path prefix):
  A  https://127.0.0.1:PORT        token-cache keyctl (the default)
  B  https://localhost:PORT        token-cache keystore (a config section)
  C  https://127.0.0.1:PORT2       token-cache keyctl
Tokens live LIFETIME seconds with refresh-margin MARGIN, so each server's
token expires and is refreshed while the storm goes on.

Asserted: no crash (every exit code 0-7, no signal), no hang (each process
ends within PROC_TIMEOUT, the storm within its bound), only the exit codes
each command may give in such a race (0, or 3 for get/token after a
logout), every token handed out was issued for that server and was handed
out before its expiry (the endpoint's expires_at against the moment its
stdout reached the test), no duplicate credential items, token items or
kernel keys, and after a final login per server exactly one credential item
per server, holding that login's key, and one cached token.
"""

import collections
import os
import random
import re
import selectors
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GCTestCase, KEY_SCHEMA, TOKEN_SCHEMA, git_lines, parse_git_output  # noqa: E402

setUpModule = harness.setUpModule
tearDownModule = harness.tearDownModule

PROCESSES = int(os.environ.get('GC_TORTURE_PROCESSES', '200'))
MIN_PROCESSES = 100
CONCURRENCY = 24
STORM_SECONDS = 20      # no new process starts after this
PROC_TIMEOUT = 15
LIFETIME = 4
MARGIN = 2              # at most half the lifetime
SEED = int(os.environ.get('GC_TORTURE_SEED', '0')) or random.randrange(1, 1 << 30)

# (command, weight)
MIX = (('token', 34), ('git get', 24), ('token --refresh', 6), ('login', 12),
       ('git store', 8), ('git erase', 8), ('logout', 8))
MAY_FIND_NOTHING = ('token', 'token --refresh', 'git get')      # after a logout/erase


class Job:
    def __init__(self, n, server, command):
        self.n = n
        self.server = server            # 'A', 'B' or 'C'
        self.command = command
        self.key = None                 # the secret it stores, for login/store
        self.rc = None
        self.out = b''
        self.err = b''
        self.out_time = None            # when its first stdout byte arrived
        self.started = None
        self.ended = None
        self.hung = False

    def __repr__(self):
        return '<job %d %s on %s rc=%r>' % (self.n, self.command, self.server, self.rc)


class Storm(GCTestCase):

    @classmethod
    def setUpClass(cls):
        cls.second = None
        if harness.ENV:
            cls.second = harness.TokenServer(harness.ENV.server_cert, harness.ENV.server_key)
            cls.second.start()

    @classmethod
    def tearDownClass(cls):
        if cls.second:
            cls.second.stop()

    def setUp(self):
        super().setUp()
        port = self.server.port
        self.urls = {'A': 'https://127.0.0.1:%d' % port,
                     'B': 'https://localhost:%d' % port,
                     'C': self.second.url}
        self.env.write_config(token_cache=None, extra=(
            'refresh-margin = %d\ntimeout = 10\n\n[%s]\ntoken-cache = keystore\n' % (
                MARGIN, self.urls['B'])))
        self.issued = {}                # token -> (server letter, expires epoch)
        self.issued_lock = threading.Lock()
        self.lifetime = LIFETIME
        self.second.reset()
        self.clear_kernel_keys(self.urls['C'])
        self.server.push(lambda req: self.respond(req, 'AB'), times=None)
        self.second.push(lambda req: self.respond(req, 'C'), times=None)

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            self.env.secret_tool(['clear', 'server', self.urls['B']])
            self.env.secret_tool(['clear', 'server', self.urls['C']])
            self.clear_kernel_keys(self.urls['C'])
            self.second.reset()

    # -- kernel keys of a server the harness does not know -------------------------
    @staticmethod
    def kernel_keys_of(url, include_dead=False):
        pat = re.compile(r'^galileo-credential:[a-z]+:(?:[0-9a-f]{16}:)?' + re.escape(url) +
                         r'(?=[/#]|$)')
        keys = [k for k in harness.proc_keys() if pat.match(k.description)]
        if not include_dead:
            r = harness.keyctl(['rlist', '@u'])
            linked = {int(x) for x in r.stdout.split()} if r.returncode == 0 else set()
            keys = [k for k in keys if k.alive and k.serial in linked]
        return keys

    def clear_kernel_keys(self, url):
        if not os.path.exists('/proc/keys'):
            return
        for k in self.kernel_keys_of(url, include_dead=True):
            harness.unlink_and_invalidate(k.serial)

    # -- the endpoints: any of our keys, on any of the three servers ---------------
    def letter(self, req, letters):
        if req.method != 'GET' or req.path != '/v1/token':
            return None
        if letters == 'C':
            return 'C'
        host = req.header('host') or ''
        for letter in letters:
            if self.urls[letter] == 'https://' + host:
                return letter
        return None

    def respond(self, req, letters):
        letter = self.letter(req, letters)
        if letter is None:
            return harness.Response(404, {'detail': 'Not Found'})
        if req.credential not in self.server.accepted:
            return harness.Response(401, {'detail': 'Invalid credentials'})
        lifetime = self.lifetime
        resp = self.server.token_reply(lifetime=lifetime)(req)
        with self.issued_lock:
            self.issued[req.token] = (letter, req.server_now + lifetime)
        return resp

    # -- one process ---------------------------------------------------------------
    def argv_and_input(self, job):
        url = self.urls[job.server]
        git_in = ['protocol=https', 'host=' + url[len('https://'):]]
        native = [self.env.program]
        git = [os.path.join(self.env.bindir, 'git-credential-galileo')]
        c = job.command
        if c in ('token', 'token --refresh'):
            return native + c.split() + ['--server', url], None
        if c == 'login':
            job.key = self.env.new_key()
            self.server.accept_key(job.key)
            return native + ['login', '--server', url], job.key + '\n'
        if c == 'logout':
            return native + ['logout', '--server', url], None
        if c == 'git get':
            return git + ['get'], git_lines(*git_in)
        if c == 'git store':
            job.key = self.env.new_key()
            self.server.accept_key(job.key)
            return git + ['store'], git_lines(*(git_in + ['username=token',
                                                          'password=' + job.key]))
        if c == 'git erase':
            return git + ['erase'], git_lines(*git_in)
        raise AssertionError(c)

    def run_job(self, job, env):
        argv, stdin = self.argv_and_input(job)
        job.started = time.time()
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env, cwd=self.env.home)
        if stdin:
            p.stdin.write(stdin.encode())
        p.stdin.close()
        sel = selectors.DefaultSelector()
        sel.register(p.stdout, selectors.EVENT_READ, 'out')
        sel.register(p.stderr, selectors.EVENT_READ, 'err')
        bufs = {'out': [], 'err': []}
        deadline = job.started + PROC_TIMEOUT
        open_pipes = 2
        while open_pipes and time.time() < deadline:
            for k, _ in sel.select(timeout=max(0.01, deadline - time.time())):
                chunk = os.read(k.fileobj.fileno(), 65536)
                if not chunk:
                    sel.unregister(k.fileobj)
                    open_pipes -= 1
                    continue
                if k.data == 'out' and job.out_time is None:
                    job.out_time = time.time()
                bufs[k.data].append(chunk)
        sel.close()
        try:
            p.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            job.hung = True
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()
        job.ended = time.time()
        job.rc = p.returncode
        job.out = b''.join(bufs['out'])
        job.err = b''.join(bufs['err'])

    # -- the storm -------------------------------------------------------------------
    def test_storm(self):
        rnd = random.Random(SEED)
        commands = [c for c, w in MIX for _ in range(w)]
        # each server starts with a credential, so there is something to race for
        for letter in 'ABC':
            self.final_login(letter)
        jobs = [Job(i, rnd.choice('ABC'), rnd.choice(commands)) for i in range(PROCESSES)]
        env = self.env.child_env()
        queue = collections.deque(jobs)
        qlock = threading.Lock()
        t0 = time.time()

        def worker():
            while True:
                with qlock:
                    if not queue or time.time() - t0 > STORM_SECONDS:
                        return
                    job = queue.popleft()
                self.run_job(job, env)

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(CONCURRENCY)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(STORM_SECONDS + PROC_TIMEOUT + 10)
        took = time.time() - t0
        self.assertFalse(any(t.is_alive() for t in threads), 'workers still running')
        ran = [j for j in jobs if j.rc is not None]
        # what the runs printed goes through the harness's leak checks
        for j in ran:
            self.env.history.append(harness._Run(
                'job %d %s' % (j.n, j.command), j.command.split()[-1] if j.command.startswith(
                    'git') else j.command.split()[0], j.out.decode('utf-8', 'replace'),
                j.err.decode('utf-8', 'replace'),
                token_ok=j.command in MAY_FIND_NOTHING))
        summary = collections.Counter((j.command, j.rc) for j in ran)
        left = [self.issued[t][1] - j.out_time for j in ran for t in self.printed(j)
                if t in self.issued]
        print('\ntorture: seed %d, %d of %d processes in %.1f s, %d concurrent, %d exchanges, '
              '%d tokens handed out (least time left %.1f s); exit codes %s' % (
                  SEED, len(ran), len(jobs), took, CONCURRENCY, len(self.issued), len(left),
                  min(left or [0]), dict(sorted(summary.items()))), file=sys.stderr)
        self.assertGreaterEqual(len(ran), min(MIN_PROCESSES, len(jobs)),
                                'only %d processes ran in %d s' % (len(ran), STORM_SECONDS))
        self.assertLess(took, STORM_SECONDS + PROC_TIMEOUT + 5, 'the storm did not end')

        problems = []
        for j in ran:
            line = j.err.decode('utf-8', 'replace').strip().split('\n')[-1][:200]
            if j.hung:
                problems.append('%r hung (killed after %d s)' % (j, PROC_TIMEOUT))
            elif j.rc < 0 or j.rc > 7:
                problems.append('%r crashed: %s' % (j, line))
            elif j.rc == 3 and j.command in MAY_FIND_NOTHING:
                pass
            elif (j.rc == 0 and j.command == 'git get' and not j.out and not j.err):
                pass    # git's not-found: silent (galileo-credential(1) GIT DIALECT)
            elif j.rc != 0:
                problems.append('%r failed: %s' % (j, line))
            elif j.command in MAY_FIND_NOTHING:
                problems += self.check_handout(j)
        with self.subTest('every process'):
            self.assertEqual(problems, [], '%d problems (seed %d)' % (len(problems), SEED))

        # no duplicates, whatever the last command of each server was
        with self.subTest('after the storm'):
            for letter, url in self.urls.items():
                keys = self.env.key_items(server=url)
                self.assertLessEqual(len(keys), 1, '%s: %d credential items' % (
                    letter, len(keys)))
            self.assertNoDuplicates()

        # a final login per server: exactly one credential, that login's
        # (tokens live an hour now, so the checks below do not race expiry)
        self.lifetime = 3600
        with self.subTest('after a final login per server'):
            for letter, url in self.urls.items():
                key = self.final_login(letter)
                keys = self.env.key_items(server=url)
                self.assertEqual(len(keys), 1, '%s: %d credential items' % (letter, len(keys)))
                self.assertSecretEqual(keys[0].secret, key, '%s: stored credential' % letter)
            self.assertNoDuplicates()
            for letter in 'AC':
                self.assertEqual(len(self.tokens_in_kernel(letter)), 1, letter)
            self.assertEqual(len(self.env.token_items(server=self.urls['B'])), 1)
            for letter in 'ABC':
                count = self.server.count + self.second.count
                tok = self.token(['--server', self.urls[letter]])
                self.assertEqual(self.server.count + self.second.count, count,
                                 '%s: the final login\'s token is not cached' % letter)
                self.assertEqual(self.issued.get(tok, (None,))[0], letter)

    @staticmethod
    def printed(job):
        """[the token a get/token job printed], or []"""
        if job.rc != 0 or job.command not in MAY_FIND_NOTHING:
            return []
        out = job.out.decode('utf-8', 'replace')
        if job.command == 'git get':
            tok = parse_git_output(out)[0].get('password')
        else:
            tok = out[:-1] if out.endswith('\n') and out.count('\n') == 1 else None
        return [tok] if tok else []

    def check_handout(self, job):
        """the token job printed: issued for its server, before its expiry"""
        tok = (self.printed(job) or [None])[0]
        if not tok:
            return ['%r printed no token' % job]
        with self.issued_lock:
            rec = self.issued.get(tok)
        if rec is None:
            return ['%r printed something the endpoint never issued' % job]
        letter, expires = rec
        if letter != job.server:
            return ['%r handed out a token of server %s' % (job, letter)]
        if job.out_time >= expires:
            return ['%r handed out a token %.2f s after its expiry' % (
                job, job.out_time - expires)]
        return []

    def final_login(self, letter):
        key = self.env.new_key()
        self.server.accept_key(key)
        rc, out, err = self.env.run(['login', '--server', self.urls[letter]], input=key + '\n')
        self.assertEqual(rc, 0, '%s: final login: %s' % (letter, err))
        return key

    def tokens_in_kernel(self, letter):
        pat = re.compile(r'^galileo-credential:token:[0-9a-f]{16}:%s#' % re.escape(
            self.urls[letter]))
        return [k.description for k in self.kernel_keys_of(self.urls[letter])
                if pat.match(k.description)]

    def assertNoDuplicates(self):
        # the write generation's key is every tier's (token/generation.h)
        descs = [k.description for letter in 'ABC'
                 for k in self.kernel_keys_of(self.urls[letter])
                 if not k.description.startswith('galileo-credential:generation:')]
        self.assertEqual([d for d in descs if self.urls['B'] in d], [],
                         'kernel keys of a keystore-tier server')
        dup = [d for d, n in collections.Counter(descs).items() if n > 1]
        self.assertEqual(dup, [], 'duplicate kernel keys')
        # B caches in the keystore; A and C never do
        items = self.env.keyring_items(TOKEN_SCHEMA)
        per = collections.Counter((i.attributes.get('server'), i.attributes.get('organization'))
                                  for i in items)
        self.assertEqual([k for k, n in per.items() if n > 1], [], 'duplicate token items')
        self.assertEqual(sorted({i.attributes.get('server') for i in items} - {self.urls['B']}),
                         [], 'token items of a keyctl-tier server')
        keys = self.env.keyring_items(KEY_SCHEMA)
        per = collections.Counter(i.attributes.get('server') for i in keys)
        self.assertEqual([k for k, n in per.items() if n > 1], [], 'duplicate credential items')


if __name__ == '__main__':
    harness.main()
