#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The trust rules (galileo-credential(1) KEYSTORES, SERVER AND ORGANIZATION, GIT DIALECT, DOCKER
DIALECT, EXIT STATUS, TOKEN LIFETIME, CONFIGURATION, SECURITY), run the way users run the helper:
real git 2.39 with the helper unscoped (credential.helper names it for every URL, as the harness's
gitconfig does) and stacked after git's own libsecret helper, the docker protocol, many processes
at once, hostile files and terminals.  Each test names the observation of issue 8 it pins.
"""

import base64
import fcntl
import json
import os
import pty
import re
import signal
import subprocess
import sys
import termios
import time
import uuid

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (GCTestCase, KEY_SCHEMA, Response, delayed,  # noqa: E402
                     git_lines, make_jwt, parse_git_output)

setUpModule = harness.setUpModule
tearDownModule = harness.tearDownModule

GIT = 'git-credential-galileo'
DOCKER = 'docker-credential-galileo'
LIBSECRET_SRC = '/usr/share/doc/git/contrib/credential/libsecret/git-credential-libsecret.c'


class TrustBase(GCTestCase):

    @classmethod
    def setUpClass(cls):
        # another HTTPS endpoint, trusted by the same CA: a host that is not
        # a Galileo server of ours, and would love to receive a key
        cls.attacker = harness.TokenServer(harness.ENV.server_cert, harness.ENV.server_key)
        cls.attacker.start()

    @classmethod
    def tearDownClass(cls):
        cls.attacker.stop()

    def setUp(self):
        super().setUp()
        self.attacker.reset()
        self.host = '127.0.0.1:%d' % self.server.port
        self.evil = '127.0.0.1:%d' % self.attacker.port

    def fill(self, url, env_extra=None):
        return self.env.git(['credential', 'fill'], input='url=%s\n\n' % url,
                            env_extra=env_extra)

    def approve(self, text, env_extra=None):
        return self.env.git(['credential', 'approve'], input=text + '\n', env_extra=env_extra)

    def assertKeyIntact(self, key):
        items = self.env.key_items()
        self.assertEqual(len(items), 1, items)
        self.assertSecretEqual(items[0].secret, key, 'stored credential')

    def assertAttackerGotNothing(self):
        self.assertEqual(self.attacker.count, 0, 'a request reached the other host')
        self.assertEqual(self.attacker.connections, 0, 'the other host was contacted')


class OldGitEcho(TrustBase):
    """1: git before 2.41 stores username=token, password=TOKEN back."""

    def test_approve_without_a_cache_keeps_the_key(self):
        self.env.write_config(token_cache='none')
        key = self.login()
        rc, out, err = self.fill('https://' + self.host)
        self.assertEqual(rc, 0, err)
        tok = parse_git_output(out)[0]['password']
        rc, _, err = self.approve(out)
        self.assertEqual(rc, 0, err)
        self.assertKeyIntact(key)
        # the token was tried as a key once, and refused by the server
        self.assertTrue(all(r.credential != ('api-key', tok) or r.status == 401
                            for r in self.server.requests))
        rc, out, err = self.fill('https://' + self.host)
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.server.last.credential, ('api-key', key))

    def test_token_dropped_from_the_kernel_meanwhile(self):
        self.env.write_config(token_cache=None)     # the default: keyctl
        key = self.login()
        rc, out, err = self.fill('https://' + self.host)
        self.assertEqual(rc, 0, err)
        self.env.kernel_keys_clear()    # expired during a long fetch
        rc, _, err = self.approve(out)
        self.assertEqual(rc, 0, err)
        self.assertKeyIntact(key)

    def test_a_jwt_is_never_sent_as_a_key(self):
        self.env.write_config(token_cache='none')
        key = self.login()
        jwt = make_jwt({'exp': int(time.time()) + 3600, 'sub': 'u'})
        self.server.push(self.server.token_reply(token=jwt))
        rc, out, err = self.fill('https://' + self.host)
        self.assertEqual(rc, 0, err)
        self.assertSecretEqual(parse_git_output(out)[0]['password'], jwt, 'token')
        count = self.server.count
        rc, _, err = self.approve(out)
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.server.count, count, 'the JWT was sent')
        self.assertKeyIntact(key)

    def test_docker_store_of_an_uncached_token(self):
        # docker 28's `docker login HOST` without -u stores what get gave it
        self.env.write_config(token_cache='none')
        key = self.login()
        rc, out, err = self.env.run(['get'], input=self.host + '\n', argv0=DOCKER)
        self.assertEqual(rc, 0, out)
        got = json.loads(out)
        rc, out, err = self.env.run(['store'], argv0=DOCKER, input=json.dumps(
            {'ServerURL': self.host, 'Username': 'token', 'Secret': got['Secret']}))
        self.assertEqual((rc, err), (1, ''))
        self.assertEqual(out.count('\n'), 1, out)
        self.assertKeyIntact(key)


class ConcurrentStores(TrustBase):
    """2: two stores of different usernames at once end with one stored."""

    def test_git_stores(self):
        for round_ in range(20):
            keys = [self.env.new_key() for _ in range(2)]
            for k in keys:
                self.server.accept_key(k)
            procs = [self.env.spawn(['store'], argv0=GIT, input=git_lines(
                'protocol=https', 'host=' + self.host, 'username=u%d' % i, 'password=' + k))
                for i, k in enumerate(keys)]
            for p in procs:
                self.assertEqual(p.finish(), (0, '', ''))
            items = self.env.key_items()
            self.assertEqual(len(items), 1, 'round %d: %r' % (round_, items))
            i = keys.index(items[0].secret) if items[0].secret in keys else -1
            self.assertGreaterEqual(i, 0, 'round %d: neither key is stored' % round_)
            self.assertEqual(items[0].attributes['username'], 'u%d' % i)

    def test_logins_of_basic_credentials(self):
        for round_ in range(10):
            pws = [self.env.new_key('gp-test-') for _ in range(2)]
            for i, pw in enumerate(pws):
                self.server.accept_basic('user%d' % i, pw)
            procs = [self.env.spawn(['login', '--kind', 'basic', '--username', 'user%d' % i],
                                    input=pw + '\n') for i, pw in enumerate(pws)]
            for p in procs:
                self.assertEqual(p.finish().returncode, 0)
            items = self.env.key_items()
            self.assertEqual(len(items), 1, 'round %d: %r' % (round_, items))
            self.assertIn(items[0].secret, pws)


class RefreshInFlight(TrustBase):
    """3: a refresh in flight never brings a token back after logout or a new login."""

    def start_slow_refresh(self):
        count = self.server.count
        self.server.push(delayed(self.server.token_reply(), 1.5))
        sp = self.env.spawn(['token', '--refresh'])
        deadline = time.time() + 15
        while self.server.count == count and time.time() < deadline:
            time.sleep(0.02)
        self.assertEqual(self.server.count, count + 1, 'the refresh never reached the endpoint')
        return sp

    def tiers(self):
        for tier in ('keystore', None):
            with self.subTest(tier=tier or 'keyctl'):
                self.env.reset()
                self.env.write_config(token_cache=tier)
                yield tier

    def test_logout(self):
        for _ in self.tiers():
            self.login()
            sp = self.start_slow_refresh()
            self.assertEqual(self.env.run(['logout']), (0, '', ''))
            res = sp.finish()
            self.assertFails(res, 3, 'no credential stored')
            self.assertEqual(self.env.keyring_items(), [])
            self.assertEqual(self.env.kernel_keys(), [])
            self.assertFails(self.env.run(['token']), 3)

    def test_login_with_another_key(self):
        for _ in self.tiers():
            self.login()
            sp = self.start_slow_refresh()
            new = self.login()
            res = sp.finish()
            self.assertEqual(res.returncode, 0, res.stderr)
            mine = [r.token for r in self.server.requests if r.credential == ('api-key', new)]
            self.assertIn(res.stdout[:-1], mine, 'the refresh handed out the old key\'s token')
            self.assertIn(self.token(expect_new=False), mine)


class EnvKeyScope(TrustBase):
    """5: GALILEO_API_KEY goes to the home server only."""

    def test_unscoped_git_never_sends_it_elsewhere(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        env = {'GALILEO_API_KEY': key}
        rc, out, err = self.fill('https://%s/acme/repo.git' % self.evil, env_extra=env)
        self.assertNotEqual(rc, 0)
        self.assertNotIn('password=', out)
        self.assertAttackerGotNothing()
        self.assertEqual(self.server.count, 0)
        rc, out, err = self.fill('https://' + self.host, env_extra=env)
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.server.last.credential, ('api-key', key))

    def test_docker_never_sends_it_elsewhere(self):
        key = self.env.new_key()
        rc, out, err = self.env.run(['get'], input=self.evil + '\n', argv0=DOCKER,
                                    env_extra={'GALILEO_API_KEY': key})
        self.assertEqual((rc, out, err), (1, 'credentials not found in native keychain\n', ''))
        self.assertAttackerGotNothing()


def build_libsecret_helper(dest):
    if not os.path.exists(LIBSECRET_SRC):
        return None
    flags = subprocess.run(['pkg-config', '--cflags', '--libs', 'libsecret-1', 'glib-2.0'],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if flags.returncode:
        return None
    out = os.path.join(dest, 'git-credential-libsecret')
    r = subprocess.run(['gcc', '-O2', '-o', out, LIBSECRET_SRC] + flags.stdout.decode().split(),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    return out if r.returncode == 0 else None


class ForeignSecrets(TrustBase):
    """6, 8: an unscoped or stacked helper adopts nothing and stays quiet."""

    def test_approve_for_another_host_stores_and_sends_nothing(self):
        other = self.env.new_key()
        rc, _, err = self.approve('protocol=https\nhost=%s\nusername=me\npassword=%s\n'
                                  % (self.evil, other))
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.env.key_items(), [])
        self.assertAttackerGotNothing()
        self.assertEqual(self.server.count, 0)

    def test_stacked_after_git_credential_libsecret(self):
        lib = build_libsecret_helper(self.env.root)
        if not lib:
            self.skipTest('cannot build git-credential-libsecret from git contrib')
        with open(self.env.gitconfig, 'w') as f:
            f.write('[credential]\n\thelper = %s\n\thelper = %s\n'
                    % (lib, os.path.join(self.env.bindir, GIT)))
        key = self.login()
        # another service's password: git's other helper may show it, we never
        other = 'other-service-' + uuid.uuid4().hex
        request = 'protocol=https\nhost=%s\nusername=me\npassword=%s\n' % (self.evil, other)
        rc, _, err = self.approve(request)
        self.assertEqual(rc, 0, err)
        # libsecret answers for the other host; we say nothing, store nothing
        rc, out, err = self.fill('https://' + self.evil)
        self.assertEqual(rc, 0, err)
        self.assertEqual(parse_git_output(out)[0].get('password'), other)
        self.assertNotIn('galileo-credential', err)
        rc, _, err = self.approve(out)
        self.assertEqual(rc, 0, err)
        self.assertKeyIntact(key)
        self.assertAttackerGotNothing()
        # and for our server, the token (libsecret has nothing for it)
        rc, out, err = self.fill('https://' + self.host)
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.server.last.credential, ('api-key', key))
        self.env.secret_tool(['clear', 'xdg:schema', 'org.git.Password'])

    def test_docker_store_for_another_registry(self):
        res = self.env.run(['store'], argv0=DOCKER, input=json.dumps(
            {'ServerURL': 'registry.example.com', 'Username': 'u', 'Secret': self.env.new_key()}))
        self.assertEqual(res.returncode, 1)
        self.assertEqual(res.stderr, '')
        self.assertIn('not a known Galileo server', res.stdout)
        self.assertEqual(self.env.key_items(), [])
        self.assertEqual(self.server.count, 0)

    def test_get_with_nothing_stored_is_silent(self):
        res = self.env.run(['get'], argv0=GIT, input=git_lines('protocol=https',
                                                                'host=' + self.host))
        self.assertEqual(res, (0, '', ''))


class NoServerNamed(TrustBase):
    """7: requests that name no server are ignored, with no I/O at all."""

    REQUESTS = (
        ('protocol=cert', 'path=/home/u/client.p12'),
        ('protocol=https', 'host='),
        ('protocol=https',),
        ('username=token',),
        ('protocol=ssh', 'host=' + '127.0.0.1'),
        ('url=ssh://git@example.com/repo.git',),
        ('protocol=http', 'host=example.com'),
    )

    def test_ignored(self):
        key = self.login()
        # a dead bus: any keystore access would fail loudly
        env = {'DBUS_SESSION_BUS_ADDRESS': 'unix:path=/nonexistent/bus',
               'GALILEO_API_KEY': key}
        count = self.server.count
        for lines in self.REQUESTS:
            for action in ('get', 'store', 'erase'):
                with self.subTest(request=lines, action=action):
                    extra = ('password=' + key,) if action != 'get' else ()
                    res = self.env.run([action], argv0=GIT, env_extra=env,
                                       input=git_lines(*(lines + extra)))
                    self.assertEqual(res, (0, '', ''))
        self.assertEqual(self.server.count, count)
        self.assertKeyIntact(key)


class DockerUsername(TrustBase):
    """9: after a plain login, docker get answers Username 'token'."""

    def test_username_token(self):
        self.login()
        rc, out, err = self.env.run(['get'], input=self.host + '\n', argv0=DOCKER)
        self.assertEqual((rc, err), (0, ''))
        self.assertEqual(json.loads(out)['Username'], 'token')


class HostileFiles(TrustBase):
    """10: a config file others can write, a ca-file that is a FIFO."""

    def test_config_writable_by_others(self):
        self.login()
        count = self.server.count
        for mode in (0o666, 0o620, 0o602):
            with self.subTest(mode='%o' % mode):
                os.chmod(self.env.config_path, mode)
                self.assertFails(self.env.run(['token', '--refresh']), 1,
                                 self.env.config_path, 'writable by group or others')
        # help needs no configuration: a refused file does not hide it
        os.chmod(self.env.config_path, 0o666)
        self.assertEqual(self.env.run(['--help']).returncode, 0)
        os.chmod(self.env.config_path, 0o644)
        self.assertEqual(self.server.count, count)

    def test_config_of_another_user(self):
        if os.geteuid() != 0:
            self.skipTest('needs root to give the file to another user')
        os.chown(self.env.config_path, 65534, 65534)
        try:
            self.assertFails(self.env.run(['token']), 1, 'owned by another user')
        finally:
            os.chown(self.env.config_path, 0, 0)

    def test_ca_file_fifo_fails_at_once(self):
        self.login()
        fifo = os.path.join(self.env.root, 'ca.fifo')
        if not os.path.exists(fifo):
            os.mkfifo(fifo)
        self.env.write_config(ca_file=fifo, extra='timeout = 20\n')
        t = time.time()
        self.assertFails(self.env.run(['token', '--refresh']), 5, 'not a regular file')
        self.assertLess(time.time() - t, 3)


class Output(TrustBase):
    """11: a token that cannot be written is a failure, never exit 0."""

    def test_full_disk(self):
        self.login()
        with open('/dev/full', 'w') as full:
            r = subprocess.run([self.env.program, 'token'], stdout=full, stderr=subprocess.PIPE,
                               env=self.env.child_env(), timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertOneErrorLine(r.stderr.decode(), 'cannot write to standard output')

    def test_closed_pipe(self):
        self.login()
        rd, wr = os.pipe()
        os.close(rd)
        r = subprocess.run([self.env.program, 'token'], stdout=wr, stderr=subprocess.PIPE,
                           env=self.env.child_env(), timeout=30)
        os.close(wr)
        self.assertEqual(r.returncode, 1)
        self.assertOneErrorLine(r.stderr.decode(), 'cannot write to standard output')

    def test_closed_stdout_is_dev_null(self):
        # fd 1 closed at start: whatever the program opens next would become
        # "stdout" (the keyring's socket, say) and receive the token
        if os.geteuid() != 0:
            # the program makes itself non-dumpable: a user's strace then
            # cannot read the paths it opens; the root run checks this
            self.skipTest('strace cannot read a non-dumpable process as a user')
        self.login()
        trace = os.path.join(self.env.root, 'fd1.trace')
        env = self.env.child_env()
        # LeakSanitizer cannot run under ptrace (the sanitizer build)
        env['ASAN_OPTIONS'] = env.get('ASAN_OPTIONS', '') + ':detect_leaks=0'
        r = subprocess.run(['strace', '-f', '-s', '4', '-e',
                            'trace=openat,open,socket,dup2,dup3,fcntl,write',
                            '-o', trace, self.env.program, 'token', '--refresh'],
                           stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                           timeout=30, preexec_fn=lambda: os.close(1))
        self.assertEqual((r.returncode, r.stderr), (0, b''))
        with open(trace) as f:
            lines = f.read().split('\n')
        os.unlink(trace)
        # what fd 1 was when the token was written: the open that made the
        # descriptor, followed through dup2/dup3/F_DUPFD (the program moves
        # fd 1 aside while a module runs, and puts it back)
        opened, written = {}, False
        dup = re.compile(r'(?:dup[23]\((\d+), \d+.*|fcntl\((\d+), F_DUPFD\w*, .*)\) += (\d+)$')
        made = re.compile(r'(?:open|openat|socket)\(.*\) += (\d+)$')
        for line in lines:
            line = line.rstrip()
            if ' write(1, ' in line:
                written = True
                current = opened.get(1)
                self.assertIsNotNone(current, 'wrote to fd 1 before anything was opened there')
                self.assertIn('"/dev/null"', current, 'the token went to: %s' % current[:120])
            elif dup.search(line):
                m = dup.search(line)
                opened[int(m.group(3))] = opened.get(int(m.group(1) or m.group(2)))
            elif made.search(line):
                opened[int(made.search(line).group(1))] = line
        self.assertTrue(written, 'the token was not written at all')
        self.token(expect_new=False)


class BadValues(TrustBase):
    """12: secrets with CR/LF are refused, bad bytes in --server are named as such."""

    def test_git_store_secret_with_cr(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        res = self.env.run(['store'], argv0=GIT, input=git_lines(
            'protocol=https', 'host=' + self.host, 'password=' + key + '\r'))
        self.assertFails(res, 7, 'control character')
        self.assertEqual(self.env.key_items(), [])

    def test_docker_store_secret_with_newline(self):
        res = self.env.run(['store'], argv0=DOCKER, input=json.dumps(
            {'ServerURL': self.host, 'Username': 'u', 'Secret': self.env.new_key() + '\n'}))
        self.assertEqual(res.returncode, 1)
        self.assertIn('control character', res.stdout)
        self.assertEqual(self.env.key_items(), [])

    def test_login_secret_with_cr_inside(self):
        key = self.env.new_key()
        res = self.env.run(['login', '--no-verify'], input=key[:5] + '\r' + key[5:] + '\n')
        self.assertFails(res, 7, 'control character')
        self.assertEqual(self.env.key_items(), [])
        # a CR LF line end is the line's end, not the secret's
        self.login(key=key)
        self.assertKeyIntact(key)

    def test_server_not_utf8(self):
        res = self.env.run(['login', '--no-verify', '--server', b'https://a\xff.example'.decode(
            'utf-8', 'surrogateescape')], input=self.env.new_key() + '\n')
        self.assertFails(res, 7, 'refused server URL', 'outside ASCII')


class Escaping(TrustBase):
    """13: stored and peers' text is escaped; the Basic form is redacted."""

    def test_status_escapes_a_planted_username(self):
        self.env.keyring_store(KEY_SCHEMA, 'Galileo credential for ' + self.url,
                               self.env.new_key(), server=self.url, kind='api-key',
                               username='a\x1b[31mb\u202ec\u0085', organization='')
        rc, out, err = self.env.run(['status'])
        self.assertEqual(rc, 0, err)
        self.assertNotIn('\x1b', out)
        self.assertNotIn('\u202e', out)
        self.assertNotIn('\u0085', out)
        self.assertIn('username: a\\x1b[31mb\\u202Ec\\u0085', out)
        rc, out, err = self.env.run(['status', '--json'])
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.isascii(), out)
        self.assertEqual(json.loads(out)['servers'][0]['username'], 'a\x1b[31mb\u202ec\u0085')

    def test_422_detail_controls_escaped(self):
        self.login(args=['--no-verify'])
        self.server.push(Response(422, {'detail': [{'loc': ['query', 'x'],
                                                    'msg': 'bad\u202e\u0085\x1b[2J'}]}))
        rc, out, err = self.env.run(['token'])
        self.assertFails((rc, out, err), 7, 'query.x: bad\\u202E\\u0085\\x1b[2J')

    def test_422_echoing_the_basic_form(self):
        pw = self.env.new_key('gp-test-')
        self.login(key=pw, args=['--kind', 'basic', '--username', 'alice', '--no-verify'],
                   accept=False)
        b64 = base64.b64encode(('alice:' + pw).encode()).decode()
        self.server.push(Response(422, {'detail': 'bad header Basic %s' % b64}))
        rc, out, err = self.env.run(['token'])
        self.assertFails((rc, out, err), 7, 'bad header Basic ***')
        self.assertNotIn(b64, err)


class PromptSignals(TrustBase):
    """14: a signal at login's no-echo prompt leaves the terminal as it was."""

    def login_killed_at_prompt(self, sig):
        master, slave = pty.openpty()

        def preexec():
            harness.default_signals()
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        p = subprocess.Popen([self.env.program, 'login'], stdin=slave, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=self.env.child_env(),
                             preexec_fn=preexec)
        self.assertNoEchoPrompt(master, slave)
        p.send_signal(sig)
        p.communicate(timeout=10)
        lflag = termios.tcgetattr(slave)[3]
        os.close(master)
        os.close(slave)
        return p.returncode, lflag

    def test_signals(self):
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            with self.subTest(signal=sig.name):
                rc, lflag = self.login_killed_at_prompt(sig)
                self.assertEqual(rc, -sig, 'not ended by the signal')
                self.assertTrue(lflag & termios.ECHO, 'echo left off')
        self.assertEqual(self.env.key_items(), [])


class SlugStaysSlug(TrustBase):
    """15: a UUID-shaped --org-slug is sent as organization_slug."""

    def test_token_and_stored_default(self):
        slug = str(uuid.uuid4())
        self.login()
        self.token(['--org-slug', slug], expect_new=True)
        self.assertEqual(self.server.last.query, {'organization_slug': slug})
        self.token(['--org-id', slug], expect_new=True)
        self.assertEqual(self.server.last.query, {'organization_id': slug})
        # remembered as a slug by login
        key = self.env.new_key()
        self.login(key=key, args=['--org-slug', slug])
        self.assertEqual(self.server.last.query, {'organization_slug': slug})
        self.assertEqual(self.env.key_items()[0].attributes['organization'], 'slug:' + slug)
        self.token(['--refresh'], expect_new=True)
        self.assertEqual(self.server.last.query, {'organization_slug': slug})


if __name__ == '__main__':
    harness.main()
