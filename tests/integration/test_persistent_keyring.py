#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The persistent-keyring keystore (galileo-credential(1) KEYSTORE STACK): credentials in the
Linux kernel's per-user persistent keyring, for SSH sessions and cron on
machines without a Secret Service.

It needs keystore-persistent-keyring.so in the module directory
($GALILEO_CREDENTIAL_MODULE_DIR, default $GC_BUILDDIR/.libs) beside the
program's other modules.

Configurations:
  - `keystore = persistent-keyring` alone;
  - `keystore = secret-service [unavailable=continue] persistent-keyring`,
    run with no D-Bus at all (DBUS_SESSION_BUS_ADDRESS unset): the Secret
    Service is unavailable, the persistent keyring takes the credential;
    with the harness's bus the Secret Service does.
Tokens stay in the program's kernel tier (`token-cache = keyctl`).

The module keeps one `user` key per server, described
`galileo-credential:stored:SERVER`, in the keyring keyctl_get_persistent(2)
returns, permissions possessor+user all, no timeout.  The persistent
keyring outlives every test and every login session of this UID, so each
test removes the keys naming its endpoint's server before and after it
runs (clear_stored()), and the module does so once more at the end
(Env.reset()'s kernel_keys_clear() happens to remove them too: they are
in /proc/keys and their permissions let this UID invalidate them).  The
keyring's user permissions are view and read: the test reads what it
holds without possessing it, as any process of this user could; it
removes and plants keys through a `keyctl` that possesses it, in an
anonymous session keyring of its own (possessing()), since a planted
key's permissions need not allow this UID more than viewing it.
Payloads are compared in memory and never printed.

Cases that need tests/keyctl-refused skip when it is not built or cannot
install its filter here; the whole module skips when the kernel has no
persistent keyrings or keyctl is refused to the test itself.
"""

import json
import os
import re
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GCTestCase, git_lines, parse_git_output  # noqa: E402

GIT = 'git-credential-galileo'
DOCKER = 'docker-credential-galileo'
STORED_PREFIX = 'galileo-credential:stored:'
PAYLOAD_MAGIC = 'galileo-credential-stored 1'
KEY_PERM = 0x3f3f0000               # KEY_POS_ALL | KEY_USR_ALL
NO_BUS = {'DBUS_SESSION_BUS_ADDRESS': None}

ALONE = 'keystore = persistent-keyring\n'
FALLBACK = 'keystore = secret-service [unavailable=continue] persistent-keyring\n'

# what the one line says when keyctl is refused (the module's wording)
REFUSED = ('persistent keyring', 'keyctl')
# `keyctl session -` announces the session keyring it joined on stderr
JOINED = re.compile(r'^Joined session keyring: \d+\n')


def persistent_keyring():
    """
    The serial of this UID's persistent keyring, or None.  Linked into the
    keyctl process's own process keyring, which goes with it: nothing of
    the caller's session changes.
    """
    r = harness.keyctl(['get_persistent', '@p'])
    if r.returncode != 0:
        return None
    return int(r.stdout.decode().strip())


def why_no_persistent_keyring():
    why = harness.kernel_keys_usable()
    if why:
        return why
    r = harness.keyctl(['get_persistent', '@p'])
    if r.returncode != 0:
        return 'keyctl get_persistent failed: %s' % r.stderr.strip()
    return None


WHY_NOT = why_no_persistent_keyring()


def setUpModule():
    if WHY_NOT:
        raise unittest.SkipTest('no persistent keyring here: ' + WHY_NOT)
    harness.persistent_keyring_lock()
    harness.setUpModule()


def tearDownModule():
    try:
        if harness.ENV is not None:
            clear_stored(harness.ENV)
    finally:
        harness.tearDownModule()


def stored_keys(env, server=None):
    """
    (serial, description) of the galileo-credential:stored: keys linked in
    the persistent keyring that name server, or (server None) the
    endpoint's server or a path prefix under it.
    """
    ring = persistent_keyring()
    if ring is None:
        return []
    r = harness.keyctl(['rlist', ring])
    if r.returncode != 0:
        return []
    found = []
    for serial in (int(x) for x in r.stdout.split()):
        d = harness.keyctl(['rdescribe', serial])
        parts = d.stdout.decode('utf-8', 'replace').rstrip('\n').split(';', 4)
        if d.returncode != 0 or len(parts) != 5 or parts[0] != 'user':
            continue
        desc = parts[4]
        if not desc.startswith(STORED_PREFIX):
            continue
        named = desc[len(STORED_PREFIX):]
        if server is not None:
            if named == server:
                found.append((serial, desc))
        elif re.fullmatch(re.escape(env.server_url) + r'(/.*)?', named):
            found.append((serial, desc))
    return sorted(found, key=lambda k: k[1])


def possessing(script, *args):
    """
    Run a sh script with $p the persistent keyring, possessed: in an
    anonymous session keyring of its own, which goes with it, so nothing
    of the caller's session changes.  The script's stdout, or an exception.
    """
    r = subprocess.run(['keyctl', 'session', '-', 'sh', '-c',
                        'p=$(keyctl get_persistent @s) || exit 1\n' + script, 'sh'] +
                       list(args),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=harness.RUN_TIMEOUT)
    if r.returncode != 0:
        raise RuntimeError('keyctl on the persistent keyring failed: %s' %
                           JOINED.sub('', r.stderr.decode('utf-8', 'replace')).strip())
    return r.stdout.decode('utf-8', 'replace')


def clear_stored(env):
    """
    Remove the credentials of the endpoint's server (and of path prefixes
    under it) from the persistent keyring, whoever made them and whatever
    their permissions: as the keyring's possessor, unlinking, then
    invalidating.  Reads no payload.
    """
    if not getattr(env, 'server_url', None):
        return
    possessing('''
for k in $(keyctl rlist "$p"); do
	d=$(keyctl rdescribe "$k" 2>/dev/null) || continue
	case "$d" in
	"user;"*";$1" | "user;"*";$1/"*)
		# unlinked first: see harness.unlink_and_invalidate()
		keyctl unlink "$k" "$p" >/dev/null 2>&1; keyctl invalidate "$k" 2>/dev/null || : ;;
	esac
done
''', STORED_PREFIX + env.server_url)


def clear_token_tier(env):
    """
    Drop the kernel tier's keys of the endpoint (tokens, credential
    summaries), so the next call reads the credential.  Not
    env.kernel_keys_clear(): it removes every galileo-credential key
    naming the endpoint that /proc/keys shows, the stored credential too.
    """
    for k in env.kernel_keys(include_dead=True):
        if not k.description.startswith(STORED_PREFIX):
            harness.unlink_and_invalidate(k.serial)


def parse_payload(text):
    """the stored payload as a dict, or None when it is not the v1 format"""
    if text is None:
        return None
    lines = text.split('\n')
    names = ('kind', 'username', 'organization', 'secret')
    if len(lines) != 6 or lines[0] != PAYLOAD_MAGIC or lines[5] != '':
        return None
    out = {}
    for name, line in zip(names, lines[1:5]):
        if not line.startswith(name + '='):
            return None
        out[name] = line[len(name) + 1:]
    return out


def plant(server, payload):
    """
    Put a key of our description with this payload into the persistent
    keyring, as another process of this user could (keyctl padd: the
    kernel's default permissions, possessor all and user view).
    """
    possessing('printf %s "$1" | keyctl padd user "$2" "$p" >/dev/null',
               payload, STORED_PREFIX + server)


def assert_status_names(case, backend, env_extra=None):
    """status and status --json list the endpoint's server alone, held by backend"""
    rc, out, err = case.env.run(['status'], env_extra=env_extra)
    case.assertEqual(rc, 0, err)
    case.assertIn('keystore: %s' % backend, [l.strip() for l in out.split('\n')])
    rc, out, err = case.env.run(['status', '--json'], env_extra=env_extra)
    case.assertEqual(rc, 0, err)
    servers = json.loads(out)['servers']
    case.assertEqual([(s['server'], s['keystore']) for s in servers],
                     [(case.url, backend)])


class PersistentKeyringBase(GCTestCase):

    config = ALONE

    def setUp(self):
        super().setUp()
        clear_stored(self.env)
        self.addCleanup(clear_stored, self.env)
        self.env.write_config(token_cache='keyctl', extra=self.config)
        self.host = '127.0.0.1:%d' % self.server.port

    # -- helpers -----------------------------------------------------------
    def stored(self, server=None):
        """the one stored key of server (default: the endpoint's) as a dict"""
        server = server or self.url
        keys = stored_keys(self.env, server)
        self.assertEqual(len(keys), 1, 'expected one stored key for %s, got %r' % (
            server, keys))
        serial = keys[0][0]
        cred = parse_payload(self.env.kernel_payload(serial))
        self.assertIsNotNone(cred, 'the stored key is not in the v1 format')
        cred['serial'] = serial
        return cred

    def assertStoredSecret(self, key, server=None):
        self.assertSecretEqual(self.stored(server)['secret'], key, 'stored secret')

    def assertNothingStored(self, server=None):
        self.assertEqual(stored_keys(self.env, server or self.url), [])

    def in_new_session(self, args, input=None, env_extra=None, argv0=None):
        """
        run() in a new session (setsid) with a new, anonymous session
        keyring: what an SSH login or a cron job of this user gets
        """
        res = self.env.run(args, input=input, env_extra=env_extra, argv0=argv0,
                           wrapper=['setsid', '-w', 'keyctl', 'session', '-'])
        return harness.RunResult(res.returncode, res.stdout, JOINED.sub('', res.stderr))

    def git_get(self, env_extra=None):
        return self.env.run(['get'], input=git_lines('protocol=https', 'host=' + self.host),
                            argv0=GIT, env_extra=env_extra)

    def docker_get(self, env_extra=None):
        return self.env.run(['get'], input=self.url + '\n', argv0=DOCKER,
                            env_extra=env_extra)

    def assertServes(self, env_extra=None):
        """token, git get and docker get all answer with a token of the endpoint"""
        tok = self.token(env_extra=env_extra)
        self.assertIn(tok, self.server.issued)
        rc, out, err = self.git_get(env_extra)
        self.assertEqual(rc, 0, err)
        self.assertIn(parse_git_output(out)[0].get('password'), self.server.issued)
        rc, out, err = self.docker_get(env_extra)
        self.assertEqual((rc, err), (0, ''), out)
        doc = json.loads(out)
        self.assertEqual(doc['ServerURL'], self.url)
        self.assertIn(doc['Secret'], self.server.issued)

    def assertStatusNames(self, backend, env_extra=None):
        assert_status_names(self, backend, env_extra)


class Alone(PersistentKeyringBase):
    """`keystore = persistent-keyring`"""

    def test_login_stores_one_key(self):
        key = self.login()
        cred = self.stored()
        self.assertSecretEqual(cred['secret'], key, 'stored secret')
        self.assertEqual((cred['kind'], cred['username'], cred['organization']),
                         ('api-key', '', ''))
        self.assertEqual(self.env.key_items(), [], 'a Secret Service item was written')
        k = [k for k in harness.proc_keys() if k.serial == cred['serial']]
        self.assertEqual(len(k), 1, 'the stored key is not in /proc/keys')
        self.assertEqual((k[0].perm, k[0].uid, k[0].expiry), (KEY_PERM, os.getuid(), 'perm'))

    def test_no_file_holds_the_key(self):
        key = self.login()
        needle = key.encode()
        for top in (self.env.home, self.env.runtime, self.env.root):
            for d, _dirs, files in os.walk(top):
                for f in files:
                    p = os.path.join(d, f)
                    try:
                        with open(p, 'rb') as fh:
                            data = fh.read(1 << 20)
                    except OSError:
                        continue
                    self.assertNotIn(needle, data, 'the key is in %s' % p)

    def test_basic_with_username_and_organization(self):
        pw = self.env.new_key('gp-test-')
        self.server.accept_basic('alice', pw)
        self.login(key=pw, args=['--kind', 'basic', '--username', 'alice',
                                 '--org-slug', 'acme', '--no-verify'], accept=False)
        cred = self.stored()
        self.assertEqual((cred['kind'], cred['username']), ('basic', 'alice'))
        self.assertIn('acme', cred['organization'])
        self.assertSecretEqual(cred['secret'], pw, 'stored password')
        self.token(expect_new=True)
        self.assertEqual(self.server.last.credential, ('basic', 'alice', pw))
        self.assertEqual(self.server.last.query, {'organization_slug': 'acme'})

    def test_token_git_and_docker_get(self):
        self.login()
        self.assertServes()

    def test_status_names_the_backend(self):
        self.login()
        self.assertStatusNames('persistent-keyring')

    def test_a_new_session_finds_it(self):
        """the point of it: an SSH session or a cron job of the same user"""
        self.login()
        clear_token_tier(self.env)          # no token in @u: the credential is read
        count = self.server.count
        rc, out, err = self.in_new_session(['token'])
        self.assertEqual((rc, err), (0, ''))
        self.assertEqual(self.server.count, count + 1)
        self.assertSecretEqual(out.rstrip('\n'), self.server.last.token, 'token')
        rc, out, err = self.in_new_session(
            ['get'], input=git_lines('protocol=https', 'host=' + self.host), argv0=GIT)
        self.assertEqual((rc, err), (0, ''))
        self.assertIn(parse_git_output(out)[0].get('password'), self.server.issued)

    def test_login_in_a_new_session_is_seen_here(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        rc, out, err = self.in_new_session(['login', '--no-verify'], input=key + '\n')
        self.assertEqual(rc, 0, err)
        self.assertStoredSecret(key)
        self.token(expect_new=True)
        self.assertEqual(self.server.last.credential, ('api-key', key))

    def test_login_replaces(self):
        self.login(args=['--no-verify'])
        self.token(expect_new=True)
        key2 = self.login(args=['--no-verify'])
        self.assertStoredSecret(key2)
        self.token(expect_new=True)         # a new credential drops the cached tokens
        self.assertEqual(self.server.last.credential, ('api-key', key2))

    def test_logout(self):
        self.login()
        self.token()
        self.assertEqual(self.env.run(['logout']), (0, '', ''))
        self.assertNothingStored()
        self.assertFails(self.env.run(['token']), 3, "run 'galileo-credential login")
        self.assertEqual(self.env.run(['logout']), (0, '', ''))

    def test_nothing_stored_is_exit_3(self):
        self.assertFails(self.env.run(['token']), 3, "run 'galileo-credential login")
        self.assertFails(self.env.run(['status']), 3)

    def test_concurrent_logins_end_with_one(self):
        for i in range(10):
            with self.subTest(round=i):
                keys = [self.env.new_key(), self.env.new_key()]
                procs = [self.env.spawn(['login', '--no-verify'], input=k + '\n')
                         for k in keys]
                results = [p.finish() for p in procs]
                for res in results:
                    self.assertEqual(res.returncode, 0, res.stderr)
                self.assertIn(self.stored()['secret'], keys)

    def test_malformed_key_is_one_line_and_login_replaces_it(self):
        plant(self.url, 'not a credential')
        rc, out, err = self.env.run(['token'])
        self.assertNotEqual(rc, 0)
        self.assertEqual(out, '')
        self.assertOneErrorLine(err, 'malformed', "galileo-credential login")
        self.assertEqual(self.server.count, 0)
        key = self.login(args=['--no-verify'])
        self.assertStoredSecret(key)
        self.token(expect_new=True)

    def test_newer_format_is_not_misread(self):
        plant(self.url, 'galileo-credential-stored 2\nkind=api-key\nusername=\n'
              'organization=\nsecret=gk-test-planted\n')
        rc, out, err = self.env.run(['token'])
        self.assertNotEqual(rc, 0)
        self.assertOneErrorLine(err, 'malformed')
        self.assertEqual(self.server.count, 0)


class Checked(PersistentKeyringBase):
    """galileo-credential-module-check(1) on the in-tree module"""

    def test_module_checker_passes(self):
        server = self.url + '/module-check'     # under the endpoint: clear_stored() cleans it
        r = subprocess.run([os.path.join(harness.builddir(), 'galileo-credential-module-check'),
                            '-v', '-s', server,
                            os.path.join(harness.module_dir(), 'keystore-persistent-keyring.so')],
                           env=self.env.child_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=120)
        out = r.stdout.decode('utf-8', 'replace')
        self.assertEqual(r.returncode, 0, out)
        self.assertNotIn('breach:', out)
        self.assertIn("keystore 'persistent-keyring': no breach found", out)
        self.assertIn('two concurrent store()s leave exactly one of them', out)
        self.assertNothingStored(server)


class Refused(PersistentKeyringBase):
    """keyctl refused (a container's seccomp profile): exit 6, one line, nothing lost"""

    def wrapper(self, errno_name):
        path = harness.keyctl_refused_path()
        if not os.access(path, os.X_OK):
            self.skipTest('%s not built (make check builds it)' % path)
        wrapper = [path] + (['--enosys'] if errno_name == 'ENOSYS' else [])
        r = subprocess.run(wrapper + ['true'], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=harness.RUN_TIMEOUT)
        if r.returncode == 77:
            self.skipTest('keyctl-refused cannot install its filter here')
        return wrapper

    def rows(self, key):
        """(name, run() keywords, dialect) for each command"""
        return [
            ('login', dict(args=['login', '--no-verify'], input=key + '\n'), 'native'),
            ('token', dict(args=['token']), 'native'),
            ('status', dict(args=['status']), 'native'),
            ('logout', dict(args=['logout']), 'native'),
            ('git get', dict(args=['get'], argv0=GIT, input=git_lines(
                'protocol=https', 'host=' + self.host)), 'git'),
            ('docker get', dict(args=['get'], argv0=DOCKER, input=self.url + '\n'),
             'docker'),
        ]

    def assertRowFails(self, name, dialect, res, *contains):
        rc, out, err = res
        if dialect == 'docker':
            # the docker dialect: exit 1, its one line on stdout
            self.assertEqual(rc, 1, '%s: exit code; stdout=%r' % (name, out))
            self.assertTrue(out.endswith('\n') and out.count('\n') == 1, (name, out))
            for c in contains:
                self.assertIn(c, out, name)
        else:
            self.assertEqual(rc, 6, '%s: exit code; stderr=%r' % (name, err))
            self.assertEqual(out, '', '%s: stdout on failure' % name)
            self.assertOneErrorLine(err, *contains)

    def check_matrix(self, errno_name, config, contains, env_extra=None):
        wrapper = self.wrapper(errno_name)
        self.env.write_config(token_cache='keyctl', extra=ALONE)
        key = self.login()
        clear_token_tier(self.env)          # nothing answered from the token tier
        self.env.write_config(token_cache='keyctl', extra=config)
        for name, kw, dialect in self.rows(self.env.new_key()):
            with self.subTest(errno=errno_name, row=name):
                count = self.server.count
                res = self.env.run(wrapper=wrapper, env_extra=env_extra, **kw)
                self.assertRowFails(name, dialect, res, *contains)
                self.assertEqual(self.server.count, count, '%s: the endpoint was asked' % name)
                self.assertStoredSecret(key)

    def test_eperm(self):
        self.check_matrix('EPERM', ALONE, REFUSED)

    def test_enosys(self):
        self.check_matrix('ENOSYS', ALONE, REFUSED)

    def test_no_bus_and_keyctl_refused(self):
        # both backends unavailable: exit 6; the one line names one of them
        self.check_matrix('EPERM', FALLBACK, (), env_extra=NO_BUS)


class Fallback(PersistentKeyringBase):
    """`keystore = secret-service [unavailable=continue] persistent-keyring`"""

    config = FALLBACK

    def test_without_dbus_the_persistent_keyring_holds_it(self):
        key = self.login(env_extra=NO_BUS)
        self.assertStoredSecret(key)
        self.assertEqual(self.env.key_items(), [], 'a Secret Service item was written')
        self.assertServes(env_extra=NO_BUS)
        self.assertStatusNames('persistent-keyring', env_extra=NO_BUS)

    def test_without_dbus_in_a_new_session(self):
        self.login(env_extra=NO_BUS)
        clear_token_tier(self.env)
        rc, out, err = self.in_new_session(['token'], env_extra=NO_BUS)
        self.assertEqual((rc, err), (0, ''))
        self.assertSecretEqual(out.rstrip('\n'), self.server.last.token, 'token')

    def test_without_dbus_logout(self):
        # Erases go to every backend that can write; an unavailable one
        # holds nothing anyone can use now and is passed over: the logout
        # succeeds once the credential it could reach is gone.  A later
        # token is still "unavailable" (6), not "nothing stored" (3): the
        # Secret Service was not asked (KEYSTORE STACK).
        self.login(env_extra=NO_BUS)
        self.token(env_extra=NO_BUS)
        self.assertEqual(self.env.run(['logout'], env_extra=NO_BUS), (0, '', ''))
        self.assertNothingStored()
        self.assertFails(self.env.run(['token'], env_extra=NO_BUS), 6, 'Secret Service')
        self.assertEqual(self.env.run(['logout']), (0, '', ''))

    def test_with_dbus_the_secret_service_holds_it(self):
        key = self.login()
        self.assertNothingStored()
        items = self.env.key_items()
        self.assertEqual(len(items), 1, items)
        self.assertSecretEqual(items[0].secret, key, 'Secret Service item')
        self.assertStatusNames('secret-service')

    def test_stored_without_dbus_found_with_dbus(self):
        # the Secret Service answers notfound, the walk goes on to the keyring
        key = self.login(args=['--no-verify'], env_extra=NO_BUS)
        self.token(expect_new=True)
        self.assertEqual(self.server.last.credential, ('api-key', key))
        self.assertStatusNames('persistent-keyring')

    def test_logout_with_dbus_erases_both(self):
        # erases go to every backend that can write
        self.login(env_extra=NO_BUS)
        self.login()
        self.assertEqual(self.env.run(['logout']), (0, '', ''))
        self.assertNothingStored()
        self.assertEqual(self.env.key_items(), [])


if __name__ == '__main__':
    harness.main()
