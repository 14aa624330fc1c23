#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The `pass` keystore backend (galileo-credential(1) KEYSTORE STACK): one gpg-encrypted entry
per server in a password store, written and read through pass and gpg with
the secret on pipes, never waiting on a pinentry nobody can answer.

Trust (CONTRACT section 10 v3): a store, .gpg-id or entry another user
could write is not used (locked, one line naming the path), while a store
the user owns whose .gpg-id names several recipients (a team store) keeps
working, for each of its members.  An entry owned by another user is made
by chown as root (a system user is created for it), else by pointing the
entry at a file another user owns; the case skips only when neither can
be arranged.

Skips when pass, gpg or keystore-pass.so is missing.

Each store is a PassStore: a private GNUPGHOME with a throwaway key and a
password store initialised for it, under the harness's root.  The locked
one's key has a passphrase, and its gpg-agent is given a pinentry that only
records that it was started and never answers, so a test sees any prompt.
gpg-agents started for these homes are stopped at the end of the module.

What a test asserts is what a user sees: exit code, the one stderr line,
stdout, what the token endpoint received, and the decrypted entry (compared
in memory, never printed).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GCTestCase, git_lines, parse_git_output, redact  # noqa: E402
import test_modules as tm  # noqa: E402

GIT = 'git-credential-galileo'
DOCKER = 'docker-credential-galileo'
PREFIX = 'galileo-credential'
DEAD_BUS = 'unix:path=/nonexistent'
AT_ONCE = 3.0           # seconds a call that must not wait may take, program start included
PASSPHRASE = 'pass-test-passphrase'

MISSING = [p for p in ('pass', 'gpg', 'gpg-agent', 'gpg-connect-agent') if not shutil.which(p)]

# records that gpg-agent started it, then never answers the passphrase; it
# tells gpg-agent its pid and ends on SIGTERM, as a real pinentry does
FAKE_PINENTRY = '''#!/bin/sh
: > '%(marker)s'
trap 'kill $child 2>/dev/null; exit 1' TERM INT
echo "OK Pleased to meet you"
while read -r cmd rest; do
	case "$cmd $rest" in
	"GETINFO pid") echo "D $$"; echo OK ;;
	GETPIN*) sleep 60 & child=$!; wait $child; exit 1 ;;
	BYE*) echo OK; exit 0 ;;
	*) echo OK ;;
	esac
done
'''

_STORES = {}


def setUpModule():
    if MISSING:
        raise unittest.SkipTest('not installed: %s (apt-get install pass gnupg)'
                                % ', '.join(MISSING))
    module = os.path.join(harness.module_dir(), 'keystore-pass.so')
    if not os.path.exists(module):
        raise unittest.SkipTest('%s not built' % module)
    harness.setUpModule()


def tearDownModule():
    for store in list(_STORES.values()):
        store.close()
    _STORES.clear()
    if tm.OtherUser.created:
        subprocess.run(['userdel', tm.OTHER_USER], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    harness.tearDownModule()


def entry_name(server):
    """
    The entry name keystore-pass.so gives a server: the canonical URL with
    every byte but RFC 3986's unreserved ones percent-encoded, upper case.
    """
    return urllib.parse.quote(server, safe='')


# --------------------------------------------------------------------------
# a GNUPGHOME and a password store

class PassStore:
    """
    A private GNUPGHOME with one throwaway key, and a password store
    initialised for it (`pass init`).  passphrase None: the key has none, so
    it decrypts without a prompt; a string: it needs that passphrase, which
    gpg-agent does not cache, and a pinentry that never answers is set.
    """

    def __init__(self, root, name, passphrase=None):
        self.root = tempfile.mkdtemp(prefix=name + '-', dir=root)
        self.gnupghome = os.path.join(self.root, 'gnupg')
        self.store_dir = os.path.join(self.root, 'store')
        self.passphrase = passphrase
        self.uid = '%s <%s@pass.test>' % (name, name)
        self.email = '%s@pass.test' % name
        self.pinentry_marker = os.path.join(self.root, 'pinentry-started')
        self._homes = [self.gnupghome]

    # -- setup ---------------------------------------------------------------
    def start(self):
        os.makedirs(self.gnupghome, mode=0o700)
        if self.passphrase is None:
            self.gpg(['--passphrase', '', '--quick-gen-key', self.uid,
                      'default', 'default', 'never'])
        else:
            self.gpg(['--pinentry-mode', 'loopback', '--passphrase', self.passphrase,
                      '--quick-gen-key', self.uid, 'default', 'default', 'never'])
            self._set_pinentry(self.gnupghome)
        self.pass_(['init', self.email])
        return self

    def _set_pinentry(self, home):
        script = os.path.join(self.root, 'pinentry')
        with open(script, 'w') as f:
            f.write(FAKE_PINENTRY % {'marker': self.pinentry_marker})
        os.chmod(script, 0o700)
        with open(os.path.join(home, 'gpg-agent.conf'), 'w') as f:
            f.write('pinentry-program %s\n' % script)
        # an agent the key generation started reads the file only now
        self._gpgconf(home, ['--kill', 'gpg-agent'])

    def public_only_home(self):
        """
        A second GNUPGHOME holding the store's public key and no secret
        key: the store can be written for, never read.  Its path.
        """
        home = os.path.join(self.root, 'gnupg-public')
        if not os.path.isdir(home):
            os.makedirs(home, mode=0o700)
            pub = self.gpg(['--export', self.email]).stdout
            self.gpg(['--import'], input=pub, home=home)
            self.gpg(['--import-ownertrust'], input=b'%s:6:\n' % self.fingerprint().encode(),
                     home=home)
            self._homes.append(home)
        return home

    def close(self):
        for home in self._homes:
            self._gpgconf(home, ['--kill', 'gpg-agent'])

    # -- the environment of the program --------------------------------------
    def env(self, **override):
        """env_extra for a run: this store and home; override=None unsets"""
        env = {'GNUPGHOME': self.gnupghome, 'PASSWORD_STORE_DIR': self.store_dir}
        env.update(override)
        return env

    # -- tools ---------------------------------------------------------------
    def _tool_env(self, home=None):
        env = dict(os.environ, GNUPGHOME=home or self.gnupghome,
                   PASSWORD_STORE_DIR=self.store_dir, LC_ALL='C')
        env.pop('GPG_TTY', None)
        return env

    def gpg(self, args, input=None, home=None, check=True):
        r = subprocess.run(['gpg', '--batch', '--yes'] + args, input=input,
                           stdin=None if input is not None else subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=self._tool_env(home), timeout=harness.RUN_TIMEOUT)
        if check and r.returncode != 0:
            raise RuntimeError('gpg %s failed: %s' % (args[0], r.stderr.decode(errors='replace')))
        return r

    def pass_(self, args, input=None):
        r = subprocess.run(['pass'] + args, input=input,
                           stdin=None if input is not None else subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=self._tool_env(), timeout=harness.RUN_TIMEOUT)
        if r.returncode != 0:
            raise RuntimeError('pass %s failed: %s' % (args[0], r.stderr.decode(errors='replace')))
        return r

    def _gpgconf(self, home, args):
        if os.path.isdir(home):
            subprocess.run(['gpgconf'] + args, env=self._tool_env(home),
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=harness.RUN_TIMEOUT)

    def fingerprint(self):
        out = self.gpg(['--with-colons', '--list-keys', self.email]).stdout.decode()
        return next(l.split(':')[9] for l in out.split('\n') if l.startswith('fpr:'))

    # -- entries -------------------------------------------------------------
    def entry_file(self, server, prefix=PREFIX):
        return os.path.join(self.store_dir, prefix, entry_name(server) + '.gpg')

    def entries(self, prefix=PREFIX):
        """file names (without .gpg) under prefix, hidden ones included, sorted"""
        d = os.path.join(self.store_dir, prefix)
        if not os.path.isdir(d):
            return []
        return sorted(n[:-4] for n in os.listdir(d) if n.endswith('.gpg'))

    def read(self, server, prefix=PREFIX):
        """
        The decrypted entry of server as text, None when there is none.
        Holds a secret: compare it, never print it.
        """
        path = self.entry_file(server, prefix)
        if not os.path.exists(path):
            return None
        args = ['--decrypt', path]
        if self.passphrase is not None:
            args = ['--pinentry-mode', 'loopback', '--passphrase-fd', '0'] + args
        try:
            r = self.gpg(args, input=(self.passphrase or '').encode())
        finally:
            self.forget_passphrase()
        return r.stdout.decode('utf-8')

    def forget_passphrase(self):
        """gpg-agent caches a passphrase given to it: reloading flushes the cache"""
        if self.passphrase is not None:
            self._gpgconf(self.gnupghome, ['--reload', 'gpg-agent'])

    def insert(self, server, text, prefix=PREFIX):
        """write an entry by hand, as a user would with `pass insert -m`"""
        self.pass_(['insert', '--multiline', '--force', '%s/%s' % (prefix, entry_name(server))],
                   input=text.encode('utf-8'))

    def clear(self):
        """remove every entry and directory of the store but its .gpg-id"""
        for name in os.listdir(self.store_dir):
            if name in ('.gpg-id', '.gpg-id.sig'):
                continue
            path = os.path.join(self.store_dir, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        if os.path.exists(self.pinentry_marker):
            os.unlink(self.pinentry_marker)

    def pinentry_started(self):
        return os.path.exists(self.pinentry_marker)


def pass_store(env, name, passphrase=None):
    """the module's PassStore of that name, made on first use, emptied on every use"""
    store = _STORES.get(name)
    if store is None:
        store = _STORES[name] = PassStore(env.root, name, passphrase).start()
    store.clear()
    return store


def expected_entry(secret, server, kind='api-key', username='', organization=''):
    return '%s\nserver: %s\nkind: %s\nusername: %s\norganization: %s\n' % (
        secret, server, kind, username, organization)


class ProcScanner(threading.Thread):
    """
    Reads /proc/*/cmdline and /proc/*/environ of every process over and
    over until stopped; .hits counts the ones holding a needle (never
    kept), .seen the program names it saw, so a test can tell it looked
    while pass and gpg ran.
    """

    def __init__(self, needles):
        super().__init__(daemon=True)
        self.needles = [n.encode() for n in needles]
        self.hits = 0
        self.seen = set()
        self._done = threading.Event()

    def run(self):
        me = str(os.getpid())
        while not self._done.is_set():
            for pid in os.listdir('/proc'):
                if pid.isdigit() and pid != me:
                    self._look(pid)

    def _look(self, pid):
        for what in ('cmdline', 'environ'):
            try:
                with open('/proc/%s/%s' % (pid, what), 'rb') as f:
                    data = f.read()
            except OSError:
                continue
            if what == 'cmdline' and data:
                self.seen.update(os.path.basename(a).decode('utf-8', 'replace')
                                 for a in data.split(b'\0')[:2])
            if any(n in data for n in self.needles):
                self.hits += 1

    def stop(self):
        self._done.set()
        self.join(10)


# --------------------------------------------------------------------------

class PassBase(GCTestCase):
    """keystore = pass, tokens in the default tier; every run sees self.store"""

    passphrase = None
    store_name = 'pass'
    keystore = 'pass'
    prefix = None           # None: the module's default

    def setUp(self):
        super().setUp()
        self.store = pass_store(self.env, self.store_name, self.passphrase)
        self.host = '127.0.0.1:%d' % self.server.port
        self.configure()

    def configure(self, extra='', prefix=None):
        lines = 'keystore = %s\n' % self.keystore
        if prefix or self.prefix:
            lines += 'pass.prefix = %s\n' % (prefix or self.prefix)
        # pass holds no tokens: the default tier (keyctl, or none) caches them
        self.env.write_config(token_cache=None, extra=lines + extra)

    def run_gc(self, args, input=None, env_extra=None, argv0=None):
        env = self.store.env(**(env_extra or {}))
        return self.env.run(args, input=input, env_extra=env, argv0=argv0)

    def login(self, key=None, args=(), accept=True, env_extra=None):
        return super().login(key, args, accept, self.store.env(**(env_extra or {})))

    def token(self, args=(), env_extra=None, expect_new=None):
        return super().token(args, self.store.env(**(env_extra or {})), expect_new)

    def git_get(self, env_extra=None):
        return self.run_gc(['get'], input=git_lines('protocol=https', 'host=' + self.host),
                           env_extra=env_extra, argv0=GIT)

    def docker_get(self, env_extra=None):
        return self.run_gc(['get'], input=self.url + '\n', env_extra=env_extra, argv0=DOCKER)

    def timed(self, fn, *args, **kw):
        start = time.monotonic()
        res = fn(*args, **kw)
        return res, time.monotonic() - start

    # -- checks ----------------------------------------------------------------
    def assertEntry(self, server, secret, prefix=None, **meta):
        got = self.store.read(server, prefix or self.prefix or PREFIX)
        self.assertIsNotNone(got, 'no pass entry for %s' % server)
        self.assertSecretEqual(got, expected_entry(secret, server, **meta), 'pass entry')

    def assertOnlyEntries(self, *servers, prefix=None):
        """exactly these entries (no temporary ones left either)"""
        self.assertEqual(self.store.entries(prefix or self.prefix or PREFIX),
                         sorted(entry_name(s) for s in servers))

    def assertNothingInSecretService(self):
        self.assertEqual(self.env.keyring_items(), [])

    def assertDockerError(self, res, *contains):
        rc, out, err = res
        self.assertEqual(rc, 1, out)
        self.assertEqual(err, '', 'docker dialect wrote to stderr')
        self.assertTrue(out.endswith('\n') and out.count('\n') == 1, repr(out))
        for c in contains:
            self.assertIn(c, out)


class Pass(PassBase):
    """keystore = pass with a key that needs no passphrase"""

    def test_planted_organization_not_utf8(self):
        """
        An entry written by hand whose organization is Latin-1 (issue 16
        item 1): it would become a request parameter; exit 7 at once, one
        line, nothing sent, for token and for git get.
        """
        raw = ('gk-planted\nserver: %s\nkind: api-key\nusername: \norganization: caf'
               % self.url).encode() + b'\xe9\n'
        self.store.pass_(['insert', '--multiline', '--force',
                          '%s/%s' % (PREFIX, entry_name(self.url))], input=raw)
        count = self.server.count
        (rc, out, err), took = self.timed(self.run_gc, ['token'])
        self.assertFails((rc, out, err), 7, 'not valid UTF-8')
        self.assertLess(took, 10)
        rc, out, err = self.git_get()
        self.assertEqual((rc, out), (7, ''))
        self.assertOneErrorLine(err, 'not valid UTF-8')
        self.assertEqual(self.server.count, count, 'a request was sent')

    def test_login_writes_one_entry_pass_can_show(self):
        key = self.login()
        self.assertEqual(self.server.last.credential, ('api-key', key))
        self.assertOnlyEntries(self.url)
        self.assertEntry(self.url, key)
        # a pass entry as pass users expect it: `pass show` prints it
        shown = self.store.pass_(['show', '%s/%s' % (PREFIX, entry_name(self.url))]).stdout
        self.assertSecretEqual(shown.decode().split('\n')[0], key, 'first line of pass show')
        self.assertNothingInSecretService()

    def test_token_git_get_docker_get_from_the_entry(self):
        key = self.login()
        # from the token cache when the tier holds one, else exchanged again
        tok = self.token()
        self.assertTrue(tok in self.server.issued, 'token not one the endpoint issued')
        rc, out, err = self.git_get()
        self.assertEqual(rc, 0, err)
        d, _ = parse_git_output(out)
        self.assertTrue(d.get('password') in self.server.issued, 'git password is no token')
        rc, out, err = self.docker_get()
        self.assertEqual(rc, 0, out)
        self.assertTrue(json.loads(out)['Secret'] in self.server.issued,
                        'docker Secret is no token')
        # the credential itself comes from the entry
        self.token(['--refresh'], expect_new=True)
        self.assertEqual(self.server.last.credential, ('api-key', key))

    def test_status_names_pass(self):
        pw = self.env.new_key('gp-test-')
        self.server.accept_basic('alice', pw)
        self.login(key=pw, args=['--kind', 'basic', '--username', 'alice',
                                 '--org-slug', 'acme'], accept=False)
        rc, out, err = self.run_gc(['status'])
        self.assertEqual(rc, 0, err)
        body = [l.strip() for l in out.split('\n')[1:]]
        self.assertEqual(out.split('\n')[0], self.url)
        self.assertIn('keystore: pass', body)
        self.assertIn('kind: basic', body)
        self.assertIn('username: alice', body)
        self.assertIn('organization: acme', body)
        rc, out, err = self.run_gc(['status', '--json'])
        self.assertEqual(rc, 0, err)
        (s,) = json.loads(out)['servers']
        self.assertEqual((s['server'], s['keystore'], s['kind'], s['username']),
                         (self.url, 'pass', 'basic', 'alice'))
        self.assertEntry(self.url, pw, kind='basic', username='alice', organization='acme')

    def test_logout_removes_the_entry(self):
        self.login()
        rc, out, err = self.run_gc(['logout'])
        self.assertEqual(rc, 0, err)
        self.assertOnlyEntries()
        self.assertFails(self.run_gc(['token']), 3, "run 'galileo-credential login")

    def test_login_again_replaces_the_entry(self):
        self.login()
        key2 = self.login()
        self.assertOnlyEntries(self.url)
        self.assertEntry(self.url, key2)
        self.token(['--refresh'], expect_new=True)
        self.assertEqual(self.server.last.credential, ('api-key', key2))

    def test_concurrent_logins_leave_one(self):
        for _ in range(5):
            keys = [self.env.new_key(), self.env.new_key()]
            for k in keys:
                self.server.accept_key(k)
            runs = [self.env.spawn(['login'], input=k + '\n', env_extra=self.store.env())
                    for k in keys]
            for r in runs:
                self.assertEqual(r.finish().returncode, 0, r.result.stderr)
            self.assertOnlyEntries(self.url)
            got = self.store.read(self.url)
            self.assertTrue(got in [expected_entry(k, self.url) for k in keys],
                            'the entry is neither login (%s)' % redact(got))

    def test_secret_with_blanks_hash_and_utf8_round_trips(self):
        pw = 'p\u00e4ss #1 \u2713 '         # a trailing blank, a '#', UTF-8
        self.env.keys.append(pw)
        self.server.accept_basic('b\u00f6b', pw)
        self.login(key=pw, args=['--kind', 'basic', '--username', 'b\u00f6b'], accept=False)
        self.assertEntry(self.url, pw, kind='basic', username='b\u00f6b')
        self.token(['--refresh'], expect_new=True)
        self.assertEqual(self.server.last.credential, ('basic', 'b\u00f6b', pw))

    def test_entry_written_by_hand_is_used(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        self.store.insert(self.url, key + '\n')        # `pass insert`: just the secret
        self.token(expect_new=True)
        self.assertEqual(self.server.last.credential, ('api-key', key))

    def test_secret_never_in_argv_or_environ(self):
        key = self.env.new_key()
        scanner = ProcScanner([key])
        scanner.start()
        try:
            self.login(key=key)
            self.run_gc(['logout'])
            self.login(key=key)
        finally:
            scanner.stop()
        self.assertEqual(scanner.hits, 0, 'the key was in some argv or environment')
        self.assertTrue({'pass', 'gpg'} & scanner.seen, 'the scanner never saw pass or gpg run')


class PassOptions(PassBase):

    prefix = 'team/galileo'

    def test_prefix_option(self):
        key = self.login()
        self.assertOnlyEntries(self.url, prefix='team/galileo')
        self.assertEqual(self.store.entries(PREFIX), [])
        self.assertEntry(self.url, key, prefix='team/galileo')
        rc, out, err = self.run_gc(['status'])
        self.assertEqual(rc, 0, err)
        self.assertIn('keystore: pass', out)

    def test_store_dir_option_over_the_environment(self):
        self.configure('pass.store-dir = %s\n' % self.store.store_dir)
        key = self.login(env_extra={'PASSWORD_STORE_DIR': None})
        self.assertEntry(self.url, key, prefix='team/galileo')

    def test_prefix_out_of_the_store_is_refused(self):
        self.configure(prefix='../elsewhere')
        rc, out, err = self.run_gc(['token'])
        self.assertNotEqual(rc, 0)
        self.assertOneErrorLine(err, 'pass.prefix')
        self.assertEqual(self.server.count, 0)


class PassTrust(PassBase):
    """
    A store others could write is locked, naming the path: another user
    could have added a recipient or swapped an entry.
    """

    store_name = 'trust'

    def assertLockedNaming(self, path, why):
        for res in (self.run_gc(['token', '--refresh']),
                    self.run_gc(['login'], input=self.env.new_key() + '\n')):
            self.assertFails(res, 6, "'%s'" % path, why)
        rc, out, err = self.git_get()
        self.assertEqual(rc, 6, err)
        self.assertOneErrorLine(err, "'%s'" % path)
        self.assertDockerError(self.docker_get(), path)
        self.assertEqual(self.server.count, 0, 'something was sent')

    def loosen(self, path, mode):
        old = os.stat(path).st_mode & 0o7777
        os.chmod(path, mode)
        self.addCleanup(os.chmod, path, old)

    def test_world_writable_store(self):
        self.login()
        self.server.reset()
        self.env.kernel_keys_clear()
        before = self.store.read(self.url)
        self.loosen(self.store.store_dir, 0o777)
        self.assertLockedNaming(self.store.store_dir, 'writable by group or others')
        self.assertSecretEqual(self.store.read(self.url), before, 'the entry')

    def test_gpg_id_writable_by_others_is_never_encrypted_to(self):
        self.loosen(os.path.join(self.store.store_dir, '.gpg-id'), 0o666)
        self.assertLockedNaming(os.path.join(self.store.store_dir, '.gpg-id'),
                                'writable by group or others')
        self.assertOnlyEntries()

    def test_prefix_directory_writable_by_group(self):
        self.login()
        self.server.reset()
        self.env.kernel_keys_clear()
        d = os.path.join(self.store.store_dir, PREFIX)
        self.loosen(d, 0o770)
        self.assertLockedNaming(d, 'writable by group or others')

    def test_entry_writable_by_group(self):
        self.login()
        self.server.reset()
        self.env.kernel_keys_clear()
        path = self.store.entry_file(self.url)
        self.loosen(path, 0o660)
        rc, out, err = self.run_gc(['token', '--refresh'])
        self.assertFails((rc, out, err), 6, "'%s'" % path, 'writable by group or others')
        self.assertEqual(self.server.count, 0)

    def test_entry_owned_by_another_user(self):
        self.login()
        self.server.reset()
        self.env.kernel_keys_clear()
        path = self.store.entry_file(self.url)
        tm.OtherUser.give(path)     # as root chown; else a link to another user's file
        self.addCleanup(self.store.clear)
        res = self.run_gc(['token', '--refresh'])
        # the line names the entry (a link is judged by what it points to)
        self.assertFails(res, 6, "'%s'" % path, 'not by you or root')
        rc, out, err = self.git_get()
        self.assertEqual(rc, 6, err)
        self.assertEqual(self.server.count, 0, 'a key from an entry another user owns was sent')
        rc, out, err = self.run_gc(['status'])
        self.assertEqual(rc, 6, err)

    def test_team_store_with_several_recipients(self):
        # a store the user owns, for the user and a teammate: encrypted to
        # both, and the teammate's helper reads what this one stored
        team = pass_store(self.env, 'team')
        mate = pass_store(self.env, 'mate')
        team.gpg(['--import'], input=mate.gpg(['--export', mate.email]).stdout)
        team.gpg(['--import-ownertrust'], input=b'%s:6:\n' % mate.fingerprint().encode())
        team.pass_(['init', team.email, mate.email])
        key = self.login(env_extra=team.env())
        packets = team.gpg(['--list-packets', team.entry_file(self.url)], check=False)
        listed = packets.stdout.decode(errors='replace') + packets.stderr.decode(errors='replace')
        self.assertEqual(listed.count(':pubkey enc packet:'), 2, 'not encrypted to both')
        self.env.kernel_keys_clear()
        self.token(['--refresh'], env_extra={'GNUPGHOME': mate.gnupghome,
                                             'PASSWORD_STORE_DIR': team.store_dir},
                   expect_new=True)
        self.assertEqual(self.server.last.credential, ('api-key', key))
        team.pass_(['init', team.email])    # as it was, for the next use of 'team'

    def test_module_checker_passes_on_pass(self):
        r = subprocess.run([os.path.join(harness.builddir(), 'galileo-credential-module-check'),
                            '-v', os.path.join(harness.module_dir(), 'keystore-pass.so')],
                           env=self.env.child_env(self.store.env()), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=180)
        out = r.stdout.decode('utf-8', 'replace')
        self.assertEqual(r.returncode, 0, out)
        self.assertNotIn('breach:', out)
        self.assertIn('two concurrent store()s leave exactly one of them', out)
        self.assertEqual(self.store.entries(), [], 'the test credential was left behind')

    def test_undeclared_option_names_file_and_line(self):
        self.configure('pass.prefx = team\n')
        with open(self.env.config_path) as f:
            line = next(n for n, l in enumerate(f, 1) if l.startswith('pass.prefx'))
        self.assertFails(self.run_gc(['token']), 1, "%s:%d: unknown key 'pass.prefx'" % (
            self.env.config_path, line), 'takes prefix and store-dir')


class PassUnavailable(PassBase):
    """no store, no .gpg-id, no secret key, no agent: exit 6 at once, one line"""

    def assertUnavailable(self, env_extra, *contains):
        for args in (['token'], ['login']):
            res, took = self.timed(self.run_gc, args, input=self.env.new_key() + '\n',
                                   env_extra=env_extra)
            self.assertFails(res, 6, *contains)
            self.assertLess(took, AT_ONCE, '%s took %.1f s' % (args[0], took))
        rc, out, err = self.git_get(env_extra)
        self.assertEqual(rc, 6, err)
        self.assertOneErrorLine(err, *contains)
        self.assertDockerError(self.docker_get(env_extra))
        self.assertEqual(self.server.count, 0, 'something was sent without a keystore')

    def test_no_store(self):
        missing = os.path.join(self.store.root, 'no-such-store')
        self.assertUnavailable({'PASSWORD_STORE_DIR': missing}, "'pass init")

    def test_store_without_gpg_id(self):
        empty = tempfile.mkdtemp(dir=self.store.root)
        self.assertUnavailable({'PASSWORD_STORE_DIR': empty}, '.gpg-id', "'pass init")

    def test_no_secret_key(self):
        self.store.insert(self.url, self.env.new_key() + '\n')
        self.assertUnavailable({'GNUPGHOME': self.store.public_only_home()},
                               'no gpg secret key')

    def test_no_agent(self):
        # gpg puts its socket in GNUPGHOME when there is no /run/user/UID;
        # a path too long for a unix socket means no agent can start
        if os.path.isdir('/run/user/%d' % os.getuid()):
            self.skipTest('gpg-agent sockets live in /run/user here')
        home = os.path.join(self.store.root, 'h' * 110)
        if not os.path.isdir(home):
            shutil.copytree(self.store.gnupghome, home, ignore=shutil.ignore_patterns('S.*'))
            self.store._homes.append(home)
        # a stored entry, so that reading it needs the agent
        self.login()
        self.env.kernel_keys_clear()
        self.server.reset()
        self.assertUnavailable({'GNUPGHOME': home}, 'gpg-agent')


class PassLocked(PassBase):
    """the store's key needs a passphrase and nobody is at a terminal"""

    passphrase = PASSPHRASE
    store_name = 'locked'

    def assertLockedAtOnce(self, res, took, *contains):
        self.assertFails(res, 6, 'passphrase', *contains)
        self.assertLess(took, AT_ONCE, 'took %.1f s' % took)
        self.assertFalse(self.store.pinentry_started(), 'a pinentry was started')

    def test_token_git_docker_fail_at_once(self):
        self.store.insert(self.url, self.env.new_key() + '\n')
        res, took = self.timed(self.run_gc, ['token'])
        self.assertLockedAtOnce(res, took)
        rc, out, err = self.git_get()
        self.assertEqual(rc, 6, err)
        self.assertOneErrorLine(err, 'passphrase')
        self.assertDockerError(self.docker_get(), 'passphrase')
        self.assertFalse(self.store.pinentry_started(), 'a pinentry was started')
        self.assertEqual(self.server.count, 0)

    def test_login_stores_nothing(self):
        before = self.store.entries()
        key = self.env.new_key()
        self.server.accept_key(key)
        res, took = self.timed(self.run_gc, ['login'], input=key + '\n')
        self.assertLockedAtOnce(res, took)
        self.assertEqual(self.store.entries(), before)
        self.assertEqual(self.server.count, 0, 'the key was sent before the keystore was reached')

    def test_nothing_stored_is_not_locked(self):
        # no entry for the server: nothing to decrypt, the walk goes on
        self.assertFails(self.run_gc(['token']), 3)
        self.assertFalse(self.store.pinentry_started())

    def test_logout_needs_no_passphrase(self):
        self.store.insert(self.url, self.env.new_key() + '\n')
        rc, out, err = self.run_gc(['logout'])
        self.assertEqual(rc, 0, err)
        self.assertOnlyEntries()


class PassInStack(PassBase):
    """keystore = env secret-service pass, with no Secret Service to reach"""

    keystore = 'env secret-service pass'
    no_bus = {'DBUS_SESSION_BUS_ADDRESS': DEAD_BUS}

    def test_login_token_status_logout_fall_through_to_pass(self):
        key = self.login(env_extra=self.no_bus)
        self.assertEntry(self.url, key)
        self.token(['--refresh'], env_extra=self.no_bus, expect_new=True)
        self.assertEqual(self.server.last.credential, ('api-key', key))
        rc, out, err = self.git_get(self.no_bus)
        self.assertEqual(rc, 0, err)
        rc, out, err = self.run_gc(['status'], env_extra=self.no_bus)
        self.assertEqual(rc, 0, err)
        self.assertIn('keystore: pass', out)
        rc, out, err = self.run_gc(['logout'], env_extra=self.no_bus)
        self.assertEqual(rc, 0, err)
        self.assertOnlyEntries()

    def test_locked_pass_in_the_stack_is_exit_6(self):
        locked = pass_store(self.env, 'locked', PASSPHRASE)
        locked.insert(self.url, self.env.new_key() + '\n')
        res, took = self.timed(self.run_gc, ['token'], env_extra=dict(self.no_bus, **locked.env()))
        self.assertFails(res, 6, 'passphrase')
        self.assertLess(took, AT_ONCE)
        self.assertFalse(locked.pinentry_started())

    def test_nothing_reachable_is_exit_6(self):
        env = dict(self.no_bus, PASSWORD_STORE_DIR=os.path.join(self.store.root, 'none'))
        self.assertFails(self.run_gc(['token'], env_extra=env), 6)
        self.assertEqual(self.server.count, 0)

    def test_env_key_needs_no_store(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        env = dict(self.no_bus, GALILEO_API_KEY=key,
                   PASSWORD_STORE_DIR=os.path.join(self.store.root, 'none'))
        self.token(env_extra=env, expect_new=True)
        self.assertEqual(self.server.last.credential, ('api-key', key))


class PassErrorInStack(PassBase):
    """
    keystore = pass env, an entry gpg cannot decrypt (error): the default
    error=return fails the call with pass's line and never falls through to
    GALILEO_API_KEY; pass [error=continue] env passes it over.
    """

    keystore = 'pass env'

    def setUp(self):
        super().setUp()
        self.key = self.env.new_key()
        self.server.accept_key(self.key)
        path = self.store.entry_file(self.url)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as f:
            f.write(b'not an OpenPGP message\n')
        self.addCleanup(os.unlink, path)

    def test_error_returns_by_default(self):
        res = self.run_gc(['token'], env_extra={'GALILEO_API_KEY': self.key})
        self.assertFails(res, 6, 'gpg cannot decrypt')
        self.assertEqual(self.server.count, 0)

    def test_error_continue_passes_it_over(self):
        self.keystore = 'pass [error=continue] env'
        self.configure()
        self.token(env_extra={'GALILEO_API_KEY': self.key}, expect_new=True)
        self.assertEqual(self.server.last.credential, ('api-key', self.key))


if __name__ == '__main__':
    harness.main()
