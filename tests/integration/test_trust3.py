#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
Trust, round three (issue 16; CONTRACT sections 8-10, v3): the findings of the
third adversarial review, each run the way a user meets it.

  1. an organization (or username) that is not UTF-8: exit 7 at once, with
     the keystore token tier too, where libsecret would never answer;
  3. a relative GALILEO_CREDENTIAL_CONFIG (git runs helpers inside the
     repository) is refused before any I/O;
  6. exec: COMMAND gets the caller's resource limits, and one Ctrl-C at the
     terminal reaches it once;
 10. a 422 that echoes part of a sent secret, in any case or encoding;
 11. login leaves a signal its caller ignored ignored, and the suite passes
     when its runner was started with signals ignored.
"""

import base64
import fcntl
import os
import pty
import resource
import select
import signal
import socket
import subprocess
import sys
import tempfile
import termios
import time
import urllib.parse

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GCTestCase, Response, git_lines  # noqa: E402

setUpModule = harness.setUpModule
tearDownModule = harness.tearDownModule

GIT = 'git-credential-galileo'
HERE = os.path.dirname(os.path.abspath(__file__))
LATIN1 = 'caf\udce9'        # b'caf\xe9' once encoded for argv and the environment
LATIN1_BYTES = b'caf\xe9'
QUICK = 5                   # seconds: a check before any I/O takes far less


class Trust3Base(GCTestCase):

    def run_quick(self, args, **kw):
        """run(); a call still running after QUICK seconds is a failure, not a wait"""
        t = time.time()
        try:
            res = self.env.run(args, timeout=QUICK, **kw)
        except subprocess.TimeoutExpired:
            self.fail('%s still running after %d s' % (' '.join(args[:1]), QUICK))
        return res, time.time() - t

    def run_in(self, cwd, argv, env_extra=None, input=None, label=None):
        """argv (a list) with cwd as working directory, recorded like run()"""
        r = subprocess.run(argv, input=input.encode() if input is not None else None,
                           stdin=None if input is not None else subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=self.env.child_env(env_extra), cwd=cwd,
                           timeout=harness.RUN_TIMEOUT, preexec_fn=harness.signals_preexec())
        out = r.stdout.decode('utf-8', 'replace')
        err = r.stderr.decode('utf-8', 'replace')
        self.env.history.append(harness._Run(label or os.path.basename(argv[0]), None,
                                             out, err, token_ok=False))
        return harness.RunResult(r.returncode, out, err)


# --------------------------------------------------------------------------
# 1. values that become keystore attributes or request parameters


class NotUtf8Organization(Trust3Base):
    """
    1: an organization slug in Latin-1, from each place one can come from,
    with each way tokens end up in the keystore: exit 7 at once, one line,
    nothing sent to the endpoint.
    """

    def write_config_bytes(self, extra, token_cache):
        path = self.env.write_config(token_cache=token_cache)
        with open(path, 'ab') as f:
            f.write(extra)

    def cases(self, token_cache):
        host = 'host=127.0.0.1:%d' % self.server.port
        slug_line = b'organization-slug = ' + LATIN1_BYTES + b'\n'
        return [
            ('GALILEO_ORGANIZATION_SLUG', ['token'], {'GALILEO_ORGANIZATION_SLUG': LATIN1},
             None, None),
            ('--org-slug', ['token', '--org-slug', LATIN1], None, None, None),
            ('--org-slug=', ['token', '--org-slug=' + LATIN1], None, None, None),
            ('exec --org-slug', ['exec', '--org-slug', LATIN1, '--', 'true'], None, None,
             None),
            ('login --org-slug', ['login', '--org-slug', LATIN1], None, None, 'key'),
            ('config, global', ['token'], None, slug_line, None),
            ('config, section', ['token'], None,
             b'[' + self.url.encode() + b']\n' + slug_line, None),
            ('config, organization-id', ['token'], None,
             b'organization-id = ' + LATIN1_BYTES + b'\n', None),
            ('git organization_slug=', ['get'], None, None,
             b'protocol=https\n' + host.encode() + b'\norganization_slug=' +
             LATIN1_BYTES + b'\n\n'),
            ('git store organization_slug=', ['store'], None, None,
             b'protocol=https\n' + host.encode() + b'\npassword=gk-unused\n'
             b'organization_slug=' + LATIN1_BYTES + b'\n\n'),
            ('GALILEO_ORGANIZATION_ID', ['token'], {'GALILEO_ORGANIZATION_ID': LATIN1},
             None, None),
            ('--org-id', ['token', '--org-id', LATIN1], None, None, None),
            ('login --username', ['login', '--kind', 'basic', '--username', LATIN1], None,
             None, 'key'),
        ]

    def check_all(self, token_cache=None, wrapper=None):
        self.env.write_config(token_cache=token_cache)
        key = self.login(args=['--no-verify'])
        for what, args, env, config, input in self.cases(token_cache):
            with self.subTest(source=what):
                self.env.write_config(token_cache=token_cache)
                if config:
                    self.write_config_bytes(config, token_cache)
                if input == 'key':
                    input = key + '\n'
                count = self.server.count
                argv0 = GIT if args[0] in ('get', 'store') else None
                res, took = self.run_quick(args, env_extra=env, input=input, argv0=argv0,
                                           wrapper=wrapper)
                self.assertFails(res, 7, 'not valid UTF-8')
                self.assertNotIn('\ufffd', res.stderr, 'a raw byte in the message')
                self.assertLess(took, QUICK)
                self.assertEqual(self.server.count, count, 'a request reached the endpoint')
        # the stored key is as it was, and still works
        self.env.write_config(token_cache=token_cache)
        items = self.env.key_items()
        self.assertEqual(len(items), 1, items)
        self.assertSecretEqual(items[0].secret, key, 'stored credential')

    def test_keystore_tier(self):
        self.check_all(token_cache='keystore')

    def test_keyctl_refused_falls_back_to_the_keystore(self):
        path = harness.keyctl_refused_path()
        if not os.access(path, os.X_OK):
            self.skipTest('%s not built (make check builds it)' % path)
        self.check_all(token_cache=None, wrapper=[path])

    def test_kernel_tier(self):
        # the same answer where nothing would hang: the rule, not the symptom
        self.check_all(token_cache=None)

    def test_utf8_slug_still_works(self):
        self.login(args=['--no-verify'])
        self.token(['--org-slug', 'caf\u00e9'], expect_new=True)
        self.assertEqual(self.server.last.query, {'organization_slug': 'caf\u00e9'})
        self.assertEqual(len(self.env.token_items(organization='caf\u00e9')), 1)


# --------------------------------------------------------------------------
# 3. paths from the environment


class RelativeConfigPath(Trust3Base):
    """
    3: git runs helpers with the repository as working directory; a relative
    GALILEO_CREDENTIAL_CONFIG would let a repository's file (owned by whoever
    cloned it) choose the server that receives GALILEO_API_KEY.
    """

    def setUp(self):
        super().setUp()
        self.evil = harness.TokenServer(self.env.server_cert, self.env.server_key)
        self.evil.start()
        self.addCleanup(self.evil.stop)
        self.repo = os.path.join(self.env.root, 'repo')
        os.makedirs(os.path.join(self.repo, 'sub'), exist_ok=True)
        for rel in ('config', 'sub/gc.conf'):
            path = os.path.join(self.repo, rel)
            with open(path, 'w') as f:
                f.write('server = %s\nca-file = %s\n' % (self.evil.url, self.env.ca_file))
            os.chmod(path, 0o600)       # the user's own, not writable by others: passes

    def test_refused_before_any_io(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        self.evil.accept_key(key)
        for rel in ('config', './config', 'sub/gc.conf', 'sub/../config'):
            for argv0, args, input in ((harness.PROGRAM, ['token'], None),
                                       (GIT, ['get'], git_lines('protocol=https',
                                                               'host=' + self.evil.url[8:]))):
                with self.subTest(path=rel, dialect=argv0):
                    env = {'GALILEO_CREDENTIAL_CONFIG': rel, 'GALILEO_API_KEY': key}
                    res = self.run_in(self.repo, [os.path.join(self.env.bindir, argv0)] + args,
                                      env_extra=env, input=input)
                    self.assertFails(res, 1, 'GALILEO_CREDENTIAL_CONFIG', rel,
                                     'relative path')
        self.assertEqual(self.evil.count, 0, 'the key went to the repository\'s server')
        self.assertEqual(self.evil.connections, 0)
        self.assertEqual(self.server.count, 0)

    def test_absolute_path_still_read(self):
        key = self.env.new_key()
        self.evil.accept_key(key)
        env = {'GALILEO_CREDENTIAL_CONFIG': os.path.join(self.repo, 'config'),
               'GALILEO_API_KEY': key}
        res = self.run_in(self.repo, [self.env.program, 'token'], env_extra=env)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(self.evil.count, 1)
        # help needs no configuration: a refused path does not hide it
        res = self.run_in(self.repo, [self.env.program, '--help'],
                          env_extra={'GALILEO_CREDENTIAL_CONFIG': 'config'})
        self.assertEqual(res.returncode, 0, res.stderr)


# --------------------------------------------------------------------------
# 6. exec: the caller's limits, and one signal per Ctrl-C


# COMMAND: counts the SIGINTs it gets, says when it is ready, reports its
# core limit and its parent's (exec's) soft core limit
COUNTER = r"""
import os, resource, signal, sys, time
n = 0
def count(sig, frame):
    global n
    n += 1
    os.write(1, b'got %d\n' % n)     # unbuffered: main may be inside print()
signal.signal(signal.SIGINT, count)
signal.signal(signal.SIGTERM, count)
soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
with open('/proc/%d/limits' % os.getppid()) as f:
    parent = [l.split()[4] for l in f if l.startswith('Max core file size')][0]
print('limits %d %d parent-soft %s' % (soft, hard, parent), flush=True)
print('ready', flush=True)
end = time.time() + float(sys.argv[1])
while n == 0 and time.time() < end:
    time.sleep(0.01)
time.sleep(1.5)     # time for a second, forwarded copy to arrive
print('count %d' % n, flush=True)
"""


class ExecCommand(Trust3Base):
    """6: COMMAND gets the caller's limits; one Ctrl-C reaches it once."""

    def setUp(self):
        super().setUp()
        self.key = self.env.new_key()
        self.server.accept_key(self.key)

    def start(self, preexec, wait=10, tty=None):
        argv = [self.env.program, 'exec', '--', sys.executable, '-c', COUNTER, str(wait)]
        # AddressSanitizer lowers the soft core limit before main() unless told not to
        asan = os.environ.get('ASAN_OPTIONS', '') + ':disable_coredump=0'
        p = subprocess.Popen(argv, stdin=tty if tty is not None else subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=self.env.child_env({'GALILEO_API_KEY': self.key,
                                                     'ASAN_OPTIONS': asan}),
                             cwd=self.env.home, preexec_fn=preexec)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        self.seen = b''
        self.assertTrue(self.wait_line(p, b'ready\n'), 'COMMAND never started')
        return p, self.seen.decode().split('\n')[0].split()

    def wait_line(self, p, line, timeout=20):
        """read COMMAND's output until line; whether it came"""
        # the pipe's descriptor itself: a buffered reader would hide lines from select
        fd = p.stdout.fileno()
        deadline = time.time() + timeout
        while time.time() < deadline and line not in self.seen:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                self.seen += chunk
        return line in self.seen

    def finish(self, p):
        out, err = p.communicate(timeout=30)
        out = self.seen + out
        self.env.history.append(harness._Run('exec', 'exec', out.decode(), err.decode(),
                                             token_ok=False))
        self.assertEqual((p.returncode, err), (0, b''))
        return int(out.decode().split('count ')[1])

    def test_ctrl_c_reaches_command_once(self):
        master, slave = pty.openpty()
        self.addCleanup(os.close, master)

        def preexec():
            harness.default_signals()
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        p, _ = self.start(preexec, tty=slave)
        os.close(slave)
        # exec held still while COMMAND takes the terminal's SIGINT, so that a
        # forwarded copy comes after it, never merged with it
        os.kill(p.pid, signal.SIGSTOP)
        os.write(master, b'\x03')         # Ctrl-C: SIGINT to the foreground group
        self.assertTrue(self.wait_line(p, b'got 1\n'), 'the Ctrl-C never reached COMMAND')
        os.kill(p.pid, signal.SIGCONT)    # exec now sees its own copy
        self.assertEqual(self.finish(p), 1, 'one Ctrl-C, COMMAND got that many SIGINTs')

    def test_kill_of_exec_is_forwarded_once(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            with self.subTest(signal=sig.name):
                p, _ = self.start(harness.default_signals)
                os.kill(p.pid, sig)
                self.assertEqual(self.finish(p), 1)

    def test_caller_core_limit_reaches_command(self):
        _, hard = resource.getrlimit(resource.RLIMIT_CORE)
        if os.geteuid() == 0:
            hard = resource.RLIM_INFINITY
        if hard == 0:
            self.skipTest('the hard core limit here is 0: nothing to raise')
        for soft in (hard, 0):
            with self.subTest(soft=soft, hard=hard):
                def preexec():
                    harness.default_signals()
                    resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))   # ulimit -c

                p, limits = self.start(preexec, wait=0)
                self.finish(p)
                self.assertEqual(limits[1:3], [str(soft), str(hard)],
                                 'COMMAND\'s soft and hard core limits (-1: unlimited)')
                # the helper itself dumps no core
                self.assertEqual(limits[4], '0', 'exec\'s own soft core limit')


# --------------------------------------------------------------------------
# 10. a 422 that echoes part of a secret


def windows(text, n=8):
    return {text[i:i + n].lower() for i in range(len(text) - n + 1)}


class Redaction422(Trust3Base):
    """
    10: a 422 detail that echoes any 8 or more characters of a sent secret,
    in any letter case, raw, base64 or percent-encoded, shows them as ***.
    """

    def refused(self, detail):
        self.server.push(Response(422, {'detail': [{'loc': ['query', 'x'], 'msg': detail}]}))
        res = self.env.run(['token'])
        self.assertFails(res, 7, 'query.x: ')
        return res.stderr

    def assertNoPart(self, err, *forms):
        shown = windows(err)
        for i, form in enumerate(forms):
            self.assertFalse(windows(form) & shown, 'part of form #%d of the secret shown' % i)

    def test_api_key(self):
        key = self.login(args=['--no-verify'])
        b64 = base64.b64encode(key.encode()).decode()
        for what, echo in (('truncated', key[:12]), ('upper case', key.upper()),
                           ('a middle part', key[9:19]), ('base64, cut', b64[:14]),
                           ('base64 of a part', base64.b64encode(key[4:].encode()).decode()),
                           ('base64, lower case', b64.lower())):
            with self.subTest(echo=what):
                err = self.refused('bad value %s given' % echo)
                self.assertIn('bad value *** given', err)
                self.assertNoPart(err, key, b64, base64.b64encode(key[4:].encode()).decode())

    def test_bearer_percent_encoded(self):
        token = 'gt-odd/' + self.env.new_key('') + '+x=y z'
        self.env.keys.append(token)
        self.login(key=token, args=['--kind', 'bearer', '--no-verify'], accept=False)
        quoted = urllib.parse.quote(token, safe='')
        for what, echo in (('percent-encoded', quoted), ('cut', quoted[3:17]),
                           ('lower-case hex', quoted.lower()[:20])):
            with self.subTest(echo=what):
                err = self.refused('Input %s is invalid' % echo)
                self.assertIn('Input *** is invalid', err)
                self.assertNoPart(err, token, quoted)

    def test_basic_form(self):
        pw = self.env.new_key('gp-test-')
        self.login(key=pw, args=['--kind', 'basic', '--username', 'alice', '--no-verify'],
                   accept=False)
        pair = base64.b64encode(('alice:' + pw).encode()).decode()
        for what, echo in (('cut', pair[:20]), ('lower case', pair.lower()),
                           ('the password, upper case', pw.upper()[:10])):
            with self.subTest(echo=what):
                err = self.refused('header Basic %s refused' % echo)
                self.assertIn('header Basic *** refused', err)
                self.assertNoPart(err, pw, pair)
        # a short word of the message that happens to be in a secret stays
        err = self.refused('not a valid credential: ali')
        self.assertIn('not a valid credential: ali', err)


# --------------------------------------------------------------------------
# 11. signals the caller ignored


class IgnoredSignals(Trust3Base):
    """
    11: as shells leave a signal ignored for the commands they start, login
    leaves it ignored at its prompt: it neither ends the prompt nor the
    program, and the terminal is as it was after.
    """

    def test_login_keeps_ignoring_sigint(self):
        master, slave = pty.openpty()
        self.addCleanup(os.close, master)

        def preexec():
            harness.default_signals()
            signal.signal(signal.SIGINT, signal.SIG_IGN)      # as `cmd &` from a script
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        key = self.env.new_key()
        self.server.accept_key(key)
        p = subprocess.Popen([self.env.program, 'login'], stdin=slave, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=self.env.child_env(),
                             cwd=self.env.home, preexec_fn=preexec)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        self.assertNoEchoPrompt(master, slave)
        p.send_signal(signal.SIGINT)
        os.write(master, b'\x03')          # and Ctrl-C at the terminal
        time.sleep(0.5)
        self.assertIsNone(p.poll(), 'login ended on an ignored SIGINT')
        self.assertFalse(termios.tcgetattr(slave)[3] & termios.ECHO, 'echo came back early')
        os.write(master, key.encode() + b'\n')
        out, err = p.communicate(timeout=30)
        self.env.history.append(harness._Run('login (tty)', 'login', out.decode(), err.decode(),
                                             token_ok=False))
        self.assertEqual(p.returncode, 0, err)
        self.assertTrue(termios.tcgetattr(slave)[3] & termios.ECHO, 'echo left off')
        os.close(slave)
        items = self.env.key_items()
        self.assertEqual(len(items), 1, items)
        self.assertSecretEqual(items[0].secret, key, 'stored credential')

    def test_suite_started_with_signals_ignored(self):
        # `nohup scripts/check`, `scripts/check &` from a script: the runner
        # starts with SIGHUP, SIGINT and SIGQUIT ignored; the programs the
        # tests start must not inherit that (harness.default_signals)
        here = os.path.dirname(os.path.abspath(__file__))

        def ignoring():
            for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT):
                signal.signal(sig, signal.SIG_IGN)

        r = subprocess.run([sys.executable, os.path.join(here, 'test_trust.py'), 'PromptSignals'],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, cwd=harness.builddir(),
                           env=dict(os.environ, GC_BUILDDIR=harness.builddir(),
                                    GALILEO_CREDENTIAL_MODULE_DIR=harness.module_dir()),
                           timeout=150, preexec_fn=ignoring)
        report = r.stdout.decode('utf-8', 'replace')
        self.assertEqual(r.returncode, 0, report[-3000:])
        self.assertIn('Ran 1 test', report)


# --------------------------------------------------------------------------
# 12. rules that no test guarded


class EarlyConnectOnlyToKnownServers(Trust3Base):
    """
    12: the TLS connection begun while the keystore is read goes only to a
    server known without the keystore.  After a login, with no
    GALILEO_API_KEY (which takes another path), an unscoped git helper
    asked about any host must not even connect to it.
    """

    def test_no_connection_to_another_host(self):
        evil = harness.TokenServer(self.env.server_cert, self.env.server_key)
        evil.start()
        self.addCleanup(evil.stop)
        self.env.write_config(token_cache=None)         # the default tier: keyctl
        self.login()
        host = evil.url[len('https://'):]
        for req in (git_lines('protocol=https', 'host=' + host),
                    git_lines('url=https://%s/acme/repo.git' % host)):
            res = self.env.run(['get'], argv0=GIT, input=req)
            self.assertEqual(res, (0, '', ''))
        rc, out, err = self.env.git(['credential', 'fill'], input='url=%s/x.git\n\n' % evil.url)
        self.assertNotIn('password=', out)
        self.assertEqual(harness.settled(lambda: evil.connections), 0,
                         'the other host was connected to')
        self.assertEqual(evil.count, 0)


class EchoesAreNotStored(Trust3Base):
    """
    12: git stores after every use what get gave it.  Each sign of an echo
    (password_expiry_utc, ephemeral, a password that is a cached token) on
    its own keeps the token from replacing the key, without an exchange:
    here the server would accept the token as a key, so only the echo
    detection stands between the token and the stored key.
    """

    def got(self, token_cache):
        self.env.write_config(token_cache=token_cache)
        key = self.login(args=['--no-verify'])
        res = self.env.run(['get'], argv0=GIT, input=git_lines(
            'protocol=https', 'host=127.0.0.1:%d' % self.server.port))
        self.assertEqual(res.returncode, 0, res.stderr)
        answer = harness.parse_git_output(res.stdout)[0]
        self.server.accept_key(answer['password'])      # the server would take it
        return key, answer

    def store(self, *lines):
        count = self.server.count
        res = self.env.run(['store'], argv0=GIT, input=git_lines(
            'protocol=https', 'host=127.0.0.1:%d' % self.server.port, *lines))
        self.assertEqual(res, (0, '', ''))
        self.assertEqual(self.server.count, count, 'the echo was sent to the server')

    def assertKeyIntact(self, key):
        items = self.env.key_items()
        self.assertEqual(len(items), 1, items)
        self.assertSecretEqual(items[0].secret, key, 'stored credential')

    def test_password_expiry_utc(self):
        # git 2.41 and later send back the expiry get gave
        key, got = self.got('none')
        self.store('username=token', 'password=' + got['password'],
                   'password_expiry_utc=' + got['password_expiry_utc'])
        self.assertKeyIntact(key)

    def test_ephemeral(self):
        key, got = self.got('none')
        self.store('username=token', 'password=' + got['password'], 'ephemeral=1')
        self.assertKeyIntact(key)

    def test_a_cached_token(self):
        # git 2.39: username=token, password=TOKEN and nothing else
        for tier in ('keystore', None):
            with self.subTest(tier=tier or 'keyctl'):
                self.env.reset()
                key, got = self.got(tier)
                self.store('username=token', 'password=' + got['password'])
                self.assertKeyIntact(key)


class RefreshAheadAfterLogout(Trust3Base):
    """
    12: the write generation, as a user sees it.  A detached refresh
    (refresh = background) in flight while `logout` or a new `login` runs
    never leaves the old credential's token cached or served.
    """

    SLOW = 2.0

    def start_refresh_ahead(self, tier):
        self.env.write_config(token_cache=tier)
        self.server.push(self.server.token_reply(lifetime=8))     # margin 4 s
        key = self.login()
        old = self.server.last.token
        time.sleep(max(0, self.server.last.server_now + 4.3 - time.time()))
        self.server.push(harness.delayed(self.server.token_reply(), self.SLOW))
        count = self.server.count
        res = self.env.run(['token'])
        self.assertEqual((res.returncode, res.stderr), (0, ''))
        self.assertSecretEqual(res.stdout, old + '\n', 'the token inside its margin')
        deadline = time.time() + 10
        while self.server.count == count and time.time() < deadline:
            time.sleep(0.02)
        self.assertEqual(self.server.count, count + 1, 'no refresh reached the endpoint')
        return key, old, self.server.last

    def refresh_done(self, req):
        """the detached refresh has had its answer and finished"""
        time.sleep(max(0, req.time + self.SLOW + 0.5 - time.time()))
        self.env.wait_refreshes()

    def test_logout(self):
        for tier in ('keystore', None):
            with self.subTest(tier=tier or 'keyctl'):
                self.env.reset()
                key, old, req = self.start_refresh_ahead(tier)
                self.assertEqual(self.env.run(['logout']), (0, '', ''))
                self.refresh_done(req)
                self.assertEqual(self.env.keyring_items(), [], 'a token came back after logout')
                self.assertEqual(self.env.kernel_keys(), [], 'a token came back after logout')
                self.assertFails(self.env.run(['token']), 3)

    def test_login_with_another_key(self):
        for tier in ('keystore', None):
            with self.subTest(tier=tier or 'keyctl'):
                self.env.reset()
                key, old, req = self.start_refresh_ahead(tier)
                new = self.login()
                self.refresh_done(req)
                tok = self.token()
                mine = [r.token for r in self.server.requests if r.credential == ('api-key', new)]
                self.assertIn(tok, mine, 'a token of the old key served after the new login')


def local_address():
    """an address of this machine that is not loopback, or None"""
    for far in ('192.0.2.1', '10.255.255.1', '198.51.100.1'):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.connect((far, 9))         # picks the route; no packet is sent
            addr = s.getsockname()[0]
        except OSError:
            continue
        finally:
            s.close()
        if not addr.startswith('127.'):
            return addr
    return None


class HttpOnlyForLoopback(Trust3Base):
    """
    12: http is allowed for loopback servers only: a key never goes in the
    clear to another host, not even to one of this machine's own addresses.
    """

    def test_http_to_another_host_is_refused(self):
        addr = local_address()
        listener = None
        if addr:
            listener = harness.Listener(addr=addr, scheme='http')
            self.addCleanup(listener.close)
        url = 'http://%s:%d' % (addr, listener.port) if addr else 'http://galileo.example'
        key = self.env.new_key()
        self.env.write_config(extra='timeout = 3\n')
        for args, input in ((['token', '--server', url], None),
                            (['login', '--no-verify', '--server', url], key + '\n'),
                            (['login', '--server', url], key + '\n')):
            with self.subTest(args=args[:2]):
                res = self.env.run(args, input=input, env_extra={'GALILEO_API_KEY': key})
                self.assertFails(res, 7, 'refused server URL',
                                 'http is only allowed for localhost')
        res = self.env.run(['token'], env_extra={'GALILEO_API_URL': url, 'GALILEO_API_KEY': key})
        self.assertFails(res, 7, 'http is only allowed for localhost')
        self.assertEqual(self.env.key_items(), [])
        if listener:
            self.assertEqual(harness.settled(lambda: listener.count), 0,
                             'a connection in the clear to %s' % addr)
        # loopback http is fine
        res = self.env.run(['login', '--no-verify', '--server', 'http://127.0.0.1:9'],
                           input=key + '\n')
        self.assertEqual(res.returncode, 0, res.stderr)


class ReadBack(Trust3Base):
    """
    12: a store counts only once the secret reads back exactly as written.
    The provider here is gnome-keyring behind secret_proxy.py, which hands
    back secrets with {USERNAME} expanded, as KeePassXC does: a login whose
    password holds it fails, exit 6, and the old key stays in use.
    """

    @classmethod
    def setUpClass(cls):
        cls.procs = []
        cls.why = None
        r = subprocess.run([sys.executable, '-c', 'import dbus, gi'], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        if r.returncode or not harness.ENV:
            cls.why = 'python3-dbus and python3-gi are needed (apt-get install python3-dbus python3-gi)'
            return
        env = harness.ENV
        d = tempfile.mkdtemp(prefix='front-', dir=env.root)
        p = subprocess.Popen(['dbus-daemon', '--session', '--nofork',
                              '--address=unix:path=' + os.path.join(d, 'bus'),
                              '--print-address=1'],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, env=env.base_env(),
                             start_new_session=True)
        cls.procs.append(p)
        cls.front = p.stdout.readline().decode().strip()
        p.stdout.close()
        proxy = subprocess.Popen([sys.executable, os.path.join(HERE, 'secret_proxy.py'),
                                  cls.front, env.dbus_address], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 env=env.base_env(), start_new_session=True)
        cls.procs.append(proxy)
        ready, _, _ = select.select([proxy.stdout], [], [], 15)
        if not ready or proxy.stdout.readline() != b'ready\n':
            raise RuntimeError('secret_proxy.py did not start: %r' % proxy.stderr.read())

    @classmethod
    def tearDownClass(cls):
        for p in reversed(cls.procs):
            harness.stop_process_group(p)

    def setUp(self):
        super().setUp()
        if self.why:
            self.skipTest(self.why)

    def test_a_secret_that_reads_back_otherwise_is_not_stored(self):
        front = {'DBUS_SESSION_BUS_ADDRESS': self.front}
        old = self.login(env_extra=front)
        items = self.env.key_items()
        self.assertEqual(len(items), 1, items)
        self.assertSecretEqual(items[0].secret, old, 'stored through the proxy')
        # {USERNAME} and this username have the same length: only the bytes differ
        pw = 'pw{USERNAME}' + self.env.new_key('-')
        self.env.keys.append(pw)
        self.server.accept_basic('abcdefghij', pw)
        res = self.env.run(['login', '--kind', 'basic', '--username', 'abcdefghij'],
                           input=pw + '\n', env_extra=front)
        self.assertFails(res, 6, 'did not keep the secret as written')
        items = self.env.key_items()
        self.assertEqual(len(items), 1, items)
        self.assertSecretEqual(items[0].secret, old, 'the credential in use')
        count = self.server.count
        self.token(['--refresh'], env_extra=front)
        self.assertEqual(self.server.count, count + 1)
        self.assertEqual(self.server.last.credential, ('api-key', old))


if __name__ == '__main__':
    harness.main()
