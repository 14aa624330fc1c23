#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The keyring half of the fault matrix (galileo-credential(1) KEYSTORES, EXIT STATUS, TOKEN LIFETIME,
SECURITY): what every command does when the keystore is unavailable, and that a failure never
loses, deletes or half-writes what is stored.

Each row asserts the exit code (6 for a keystore that is unavailable; the
docker dialect exits 1 with its one line on stdout), exactly one stderr line
starting 'galileo-credential: ' saying what failed and what to do, no token
on stdout, what the token endpoint received, and that the keyring (the
Secret Service items, secrets included, and the kernel keys of the endpoint)
holds exactly what it held before.  Snapshots hold secrets: they are
compared in memory and shown redacted.

Conditions:
  - no D-Bus session: DBUS_SESSION_BUS_ADDRESS unset, or naming a dead socket;
  - a session bus without a Secret Service: a private dbus-daemon of this
    module with an empty service directory, so nothing is activatable;
  - the default collection locked, on a private bus with a gnome-keyring of
    its own and no prompter (as in a headless session): the helper's unlock
    fails at once;
  - the keyring daemon killed with SIGKILL while a call waits for the token
    endpoint, then started again;
  - an unknown keystore name;
  - GALILEO_API_KEY without D-Bus: the headless path works.

The private buses and keyrings live under the harness's root and are
stopped by this module; the harness's own bus and keyring are never
locked or killed.
"""

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (GCTestCase, KEY_SCHEMA, TOKEN_SCHEMA, delayed,  # noqa: E402
                     git_lines, parse_git_output, parse_secret_tool, redact)

GIT = 'git-credential-galileo'
DOCKER = 'docker-credential-galileo'
PRIVATE_PASSWORD = 'faults-keyring-password'

# what the one line says, per condition (the what-to-do half included)
NO_BUS = ('cannot reach the Secret Service', 'no D-Bus session bus', 'GALILEO_API_KEY')
DEAD_BUS = ('cannot reach the Secret Service', 'GALILEO_API_KEY')
NO_SERVICE = ('cannot reach the Secret Service', 'no Secret Service on the session bus',
              'GALILEO_API_KEY')
LOCKED = ('locked', 'unlock it', 'GALILEO_API_KEY')
UNKNOWN = ("unknown keystore 'nosuch'", 'use env, secret-service, pass or persistent-keyring')

# the rows that read or drop kernel keys, for the keyctl tier
KERNEL_ROWS = ('token', 'login', 'logout', 'git get', 'git erase', 'docker get', 'docker erase')
FULL_TIERS = (('keystore', None), ('keyctl', KERNEL_ROWS))
KEYSTORE_TIER = (('keystore', None),)

_WORLDS = []


def setUpModule():
    harness.persistent_keyring_lock()
    harness.setUpModule()


def tearDownModule():
    for w in list(_WORLDS):
        w.close()
    harness.tearDownModule()


# --------------------------------------------------------------------------
# a private session bus, with or without a keyring daemon of its own

class PrivateBus:
    """
    A dbus-daemon whose only service directory is empty (nothing is
    activatable: no keyring, no prompter), and on demand a
    gnome-keyring-daemon on it with its own data and runtime directories,
    unlocked with PRIVATE_PASSWORD.  Killing and starting the daemon again
    reloads the same keyring file.
    """

    def __init__(self, env):
        self.env = env
        self.root = tempfile.mkdtemp(prefix='bus-', dir=env.root)
        for d in ('services', 'data', 'run', 'home', 'log'):
            os.makedirs(os.path.join(self.root, d), mode=0o700)
        self.bus = None
        self.keyring = None
        self.address = None
        _WORLDS.append(self)

    def log(self, name):
        return open(os.path.join(self.root, 'log', name), 'ab')

    def start(self, keyring=True):
        with self.log('dbus.log') as log:
            self.bus, self.address = harness.start_private_bus(
                os.path.join(self.root, 'bus.conf'), os.path.join(self.root, 'bus'), log,
                servicedir=os.path.join(self.root, 'services'))
        if keyring:
            self.start_keyring()
        return self

    def daemon_env(self):
        env = self.env.base_env()
        env.update(DBUS_SESSION_BUS_ADDRESS=self.address,
                   HOME=os.path.join(self.root, 'home'),
                   XDG_DATA_HOME=os.path.join(self.root, 'data'),
                   XDG_RUNTIME_DIR=os.path.join(self.root, 'run'))
        return env

    def name_has_owner(self, name='org.freedesktop.secrets'):
        r = subprocess.run(
            ['dbus-send', '--session', '--print-reply', '--dest=org.freedesktop.DBus',
             '/org/freedesktop/DBus', 'org.freedesktop.DBus.NameHasOwner', 'string:' + name],
            env=self.daemon_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL, timeout=10)
        return b'boolean true' in r.stdout

    def start_keyring(self):
        with self.log('gnome-keyring.log') as log:
            self.keyring = subprocess.Popen(
                ['gnome-keyring-daemon', '--foreground', '--unlock', '--components=secrets'],
                stdin=subprocess.PIPE, stdout=log, stderr=log, env=self.daemon_env(),
                start_new_session=True)
        self.keyring.stdin.write(PRIVATE_PASSWORD.encode())
        self.keyring.stdin.close()
        deadline = time.time() + 20
        while not self.name_has_owner():
            if self.keyring.poll() is not None:
                raise RuntimeError('gnome-keyring-daemon exited (see %s/log)' % self.root)
            if time.time() > deadline:
                raise RuntimeError('gnome-keyring-daemon did not take the bus name')
            time.sleep(0.05)
        # the default collection exists and is unlocked
        r = self.secret_tool(['store', '--label=probe', 'xdg:schema', 'harness.Probe',
                              'probe', '1'], input='probe')
        if r.returncode != 0:
            raise RuntimeError('secret-tool store on the private keyring failed: %s' % r.stderr)
        self.secret_tool(['clear', 'xdg:schema', 'harness.Probe'])

    def kill_keyring(self, sig=signal.SIGKILL):
        if self.keyring and self.keyring.poll() is None:
            self.keyring.send_signal(sig)
            self.keyring.wait(10)
        deadline = time.time() + 10
        while self.name_has_owner() and time.time() < deadline:
            time.sleep(0.05)
        self.keyring = None

    def restart_keyring(self):
        """stop the daemon (gracefully) and start it again: unlocked, from its file"""
        self.kill_keyring(signal.SIGTERM)
        self.start_keyring()

    def secret_tool(self, args, input=None):
        return harness.run_secret_tool(args, self.daemon_env(), input)

    def items(self, server):
        """the items of server (both schemas carry a server attribute)"""
        return parse_secret_tool(self.secret_tool(['search', '--all', 'server', server]).stdout)

    def gdbus(self, *args):
        return subprocess.run(['gdbus', 'call', '--session'] + list(args),
                              env=self.daemon_env(), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)

    def default_collection(self):
        r = self.gdbus('--dest', 'org.freedesktop.secrets', '--object-path',
                       '/org/freedesktop/secrets', '--method',
                       'org.freedesktop.Secret.Service.ReadAlias', 'default')
        out = r.stdout.decode()
        if r.returncode != 0 or "'" not in out:
            raise RuntimeError('ReadAlias default failed: %r' % r.stderr)
        return out.split("'")[1]

    def lock_default(self):
        path = self.default_collection()
        r = self.gdbus('--dest', 'org.freedesktop.secrets', '--object-path',
                       '/org/freedesktop/secrets', '--method',
                       'org.freedesktop.Secret.Service.Lock', '["%s"]' % path)
        if r.returncode != 0:
            raise RuntimeError('Lock failed: %r' % r.stderr)
        return path

    def is_locked(self, path):
        r = self.gdbus('--dest', 'org.freedesktop.secrets', '--object-path', path, '--method',
                       'org.freedesktop.DBus.Properties.Get',
                       'org.freedesktop.Secret.Collection', 'Locked')
        return b'true' in r.stdout

    def monitor(self, member):
        """a BusMonitor counting method calls named member on this bus"""
        return BusMonitor(self, member)

    def close(self):
        for p in (self.keyring, self.bus):
            if p is not None:
                harness.stop_process_group(p)
        self.keyring = self.bus = None
        if self in _WORLDS:
            _WORLDS.remove(self)


class BusMonitor:
    """
    dbus-monitor on a private bus, counting the method calls named
    `member` (e.g. Unlock, which shows a prompt in a desktop session).
    """

    def __init__(self, world, member):
        self.member = member
        self.path = os.path.join(world.root, 'log', 'monitor-%s.log' % member)
        self.out = open(self.path, 'wb')
        self.proc = subprocess.Popen(['dbus-monitor', '--address', world.address,
                                      "type='method_call',member='%s'" % member],
                                     stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        # a monitor loses its own name once it monitors (BecomeMonitor)
        deadline = time.time() + 10
        while 'member=NameLost' not in self.text():
            if time.time() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError('dbus-monitor did not start')
            time.sleep(0.05)

    def text(self):
        with open(self.path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def count(self):
        return len([l for l in self.text().split('\n')
                    if l.startswith('method call') and 'member=%s' % self.member in l])

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self.out.close()


# --------------------------------------------------------------------------
# snapshots (hold secrets: compare, never print)

def snapshot_items(items, secrets=True):
    return sorted((i.path, i.schema, i.label, tuple(sorted(i.attributes.items())),
                   i.secret if secrets else None) for i in items)


def show_snapshot(snap):
    return [(path, label, dict(attrs), redact(secret) if secret is not None else None)
            for path, _schema, label, attrs, secret in snap]


class FaultCase(GCTestCase):

    def setUp(self):
        super().setUp()
        self.host = '127.0.0.1:%d' % self.server.port

    # -- state ---------------------------------------------------------------
    def kernel_snapshot(self):
        return sorted((k.description, self.env.kernel_payload(k))
                      for k in self.env.kernel_keys())

    def snapshot(self, world=None, secrets=True):
        """(Secret Service items, kernel keys of the endpoint)"""
        if world:
            items = world.items(self.url)
        else:
            # one search: both schemas carry the server attribute
            items = parse_secret_tool(self.env.secret_tool(
                ['search', '--all', 'server', self.url]).stdout)
        return snapshot_items(items, secrets), self.kernel_snapshot()

    def assertUnchanged(self, before, world=None, secrets=True, what=''):
        items, kernel = self.snapshot(world, secrets)
        if items != before[0]:
            self.fail('%sSecret Service items changed:\n before %r\n after  %r' % (
                what, show_snapshot(before[0]), show_snapshot(items)))
        if kernel != before[1]:
            self.fail('%skernel keys changed: before %r, after %r' % (
                what, [d for d, _ in before[1]], [d for d, _ in kernel]))

    # -- the commands of the matrix ------------------------------------------
    def rows(self, stored_key, only=None):
        """
        (name, run keyword arguments, dialect) for every command of the
        matrix, or for the ones named in only
        """
        new = self.env.new_key()
        self.server.accept_key(new)     # so that only the keystore can fail
        host = self.host
        rows = [
            ('token', dict(args=['token']), 'native'),
            ('token --refresh', dict(args=['token', '--refresh']), 'native'),
            ('login', dict(args=['login'], input=new + '\n'), 'native'),
            ('login --no-verify', dict(args=['login', '--no-verify'], input=new + '\n'),
             'native'),
            ('status', dict(args=['status']), 'native'),
            ('status --json', dict(args=['status', '--json']), 'native'),
            ('logout', dict(args=['logout']), 'native'),
            ('git get', dict(args=['get'], argv0=GIT, input=git_lines(
                'protocol=https', 'host=' + host)), 'git'),
            ('git store', dict(args=['store'], argv0=GIT, input=git_lines(
                'protocol=https', 'host=' + host, 'username=alice', 'password=' + new)),
             'git'),
            ('git erase', dict(args=['erase'], argv0=GIT, input=git_lines(
                'protocol=https', 'host=' + host)), 'git'),
            ('git erase stored password', dict(args=['erase'], argv0=GIT, input=git_lines(
                'protocol=https', 'host=' + host, 'username=token',
                'password=' + stored_key)), 'git'),
            ('docker get', dict(args=['get'], argv0=DOCKER, input=self.url + '\n'), 'docker'),
            ('docker store', dict(args=['store'], argv0=DOCKER, input=json.dumps(
                {'ServerURL': self.url, 'Username': 'alice', 'Secret': new})), 'docker'),
            ('docker erase', dict(args=['erase'], argv0=DOCKER, input=self.url + '\n'),
             'docker'),
            ('docker list', dict(args=['list'], argv0=DOCKER), 'docker'),
        ]
        return [r for r in rows if only is None or r[0] in only]

    def assertRowFails(self, name, dialect, res, code, contains):
        rc, out, err = res
        if dialect == 'docker':
            # docker reads its one error line from stdout; nothing on stderr
            self.assertEqual(rc, 1, '%s: exit code; stdout=%r' % (name, out))
            self.assertEqual(err, '', '%s: stderr' % name)
            self.assertTrue(out.endswith('\n') and out.count('\n') == 1,
                            '%s: expected one line on stdout, got %r' % (name, out))
            for c in contains:
                self.assertIn(c, out, name)
        else:
            self.assertEqual(rc, code, '%s: exit code; stderr=%r' % (name, err))
            self.assertEqual(out, '', '%s: stdout on failure' % name)
            self.assertOneErrorLine(err, *contains)
        self.assertNoneOf(self.server.issued, {name + ' stdout': out})

    def set_up_stored(self, tier, world=None):
        """
        A credential and a cached token stored with a working keystore (on
        world's bus, when given); the kernel keys are cleared, so that no
        call is answered from the kernel cache.  The runs so far are
        checked for leaked secrets first (the reset forgets them).
        """
        self.check_no_leaks()
        self.env.reset()
        self.env.write_config(token_cache=tier)
        env = {'DBUS_SESSION_BUS_ADDRESS': world.address} if world else None
        key = self.login(env_extra=env)
        self.env.kernel_keys_clear()
        if world is None:
            self.assertEqual(len(self.env.key_items()), 1)
        return key

    def run_matrix(self, condition, contains, tiers=FULL_TIERS, config_extra=''):
        """
        The rows of the matrix under `condition` (env_extra), for each
        (token-cache tier, rows or None for all): the state set up with a
        working keystore must come out unchanged, and nothing be asked of
        the token endpoint.
        """
        for tier, only in tiers:
            key = self.set_up_stored(tier)
            if config_extra:
                self.env.write_config(token_cache=tier, extra=config_extra)
            before = self.snapshot()
            for name, kw, dialect in self.rows(key, only):
                with self.subTest(tier=tier, row=name):
                    count = self.server.count
                    res = self.env.run(env_extra=condition, **kw)
                    self.assertRowFails(name, dialect, res, 6, contains)
                    self.assertEqual(self.server.count, count,
                                     '%s: the token endpoint was asked (%r)' % (
                                         name, self.server.requests[count:]))
                    self.assertUnchanged(before, what=name + ': ')


# --------------------------------------------------------------------------

class NoDBus(FaultCase):
    """No D-Bus session: every command fails with 6 and keeps what is stored."""

    def test_bus_address_unset(self):
        self.run_matrix({'DBUS_SESSION_BUS_ADDRESS': None}, NO_BUS)

    def test_bus_address_dead_socket(self):
        dead = 'unix:path=' + os.path.join(self.env.root, 'no-such-bus')
        self.run_matrix({'DBUS_SESSION_BUS_ADDRESS': dead}, DEAD_BUS, tiers=KEYSTORE_TIER)

    def test_bus_socket_that_refuses(self):
        # a socket file nobody listens on: connect() is refused
        import socket
        path = os.path.join(self.env.root, 'refusing-bus')
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.close()
        try:
            self.run_matrix({'DBUS_SESSION_BUS_ADDRESS': 'unix:path=' + path}, DEAD_BUS,
                            tiers=(('keystore', ('token', 'login', 'git get', 'docker get')),))
        finally:
            os.unlink(path)


class NoSecretService(FaultCase):
    """A session bus on which nothing owns or can activate org.freedesktop.secrets."""

    @classmethod
    def setUpClass(cls):
        cls.world = PrivateBus(harness.ENV).start(keyring=False) if harness.ENV else None

    @classmethod
    def tearDownClass(cls):
        if cls.world:
            cls.world.close()

    def test_every_command(self):
        self.assertFalse(self.world.name_has_owner())
        self.run_matrix({'DBUS_SESSION_BUS_ADDRESS': self.world.address}, NO_SERVICE)
        self.assertFalse(self.world.name_has_owner(), 'something activated a Secret Service')


class PrivateBusCase(FaultCase):
    """A class-wide private bus and keyring of its own, emptied before each test."""

    @classmethod
    def setUpClass(cls):
        cls.world = PrivateBus(harness.ENV).start() if harness.ENV else None

    @classmethod
    def tearDownClass(cls):
        if cls.world:
            cls.world.close()

    def setUp(self):
        super().setUp()
        if self.world.keyring is None:
            self.world.start_keyring()
        for s in (KEY_SCHEMA, TOKEN_SCHEMA):
            self.world.secret_tool(['clear', 'xdg:schema', s])

    def store_without_secret(self, kind='api-key', organization='', ahead=10 ** 9):
        """
        What a daemon killed between CreateItem's item and its secret leaves
        on the private bus: a credential item for self.url with no secret,
        username 'cut', its generation `ahead` ns after now (the newest).
        """
        generation = '%020d-%010d' % (time.time_ns() + ahead, 1)
        r = self.world.secret_tool(
            ['store', '--label=Galileo credential for ' + self.url, 'xdg:schema', KEY_SCHEMA,
             'server', self.url, 'kind', kind, 'username', 'cut', 'organization', organization,
             'generation', generation], input='')
        self.assertEqual(r.returncode, 0, r.stderr)


class Locked(PrivateBusCase):
    """
    The default collection locked, and no prompter (a headless session):
    the helper's unlock fails at once, every command exits 6, and nothing
    is deleted, replaced or written.
    """

    def test_every_command_fails_closed_and_keeps_everything(self):
        bus = {'DBUS_SESSION_BUS_ADDRESS': self.world.address}
        for tier, only in FULL_TIERS:
            with self.subTest(tier=tier):
                for s in (KEY_SCHEMA, TOKEN_SCHEMA):
                    self.world.secret_tool(['clear', 'xdg:schema', s])
                key = self.set_up_stored(tier, self.world)
                before = self.snapshot(self.world)
                self.assertEqual(len([i for i in before[0] if i[1] == KEY_SCHEMA]), 1, before)
                path = self.world.lock_default()
                self.assertTrue(self.world.is_locked(path), 'Lock did not lock')
                # while locked, secret-tool still lists attributes (no secrets)
                locked_before = self.snapshot(self.world, secrets=False)
                self.assertEqual(len(locked_before[0]), len(before[0]),
                                 'a locked collection hides its items from secret-tool')
                try:
                    self.locked_rows(key, only, path, locked_before)
                finally:
                    # unlocked again: the daemon restarted with the password
                    self.world.restart_keyring()
                # the same items with the same secrets
                self.assertUnchanged(before, self.world, what='after unlocking: ')
                # and the credential still works
                self.assertEqual(self.env.run(['token'], env_extra=bus).returncode, 0)

    def test_a_locked_secret_service_stops_the_stack(self):
        # galileo-credential(1) KEYSTORE STACK: locked=return by default, never a silent fall
        # through to a weaker store; [locked=continue] says otherwise
        bus = {'DBUS_SESSION_BUS_ADDRESS': self.world.address}
        self.env.write_config(extra='keystore = persistent-keyring\n')
        key = self.env.new_key()
        self.server.accept_key(key)
        self.assertEqual(self.env.run(['login'], input=key + '\n', env_extra=bus).returncode, 0)
        path = self.world.lock_default()
        try:
            # no password store in this HOME: pass is unavailable and passed over
            self.env.write_config(
                extra='keystore = env secret-service pass persistent-keyring\n')
            self.assertFails(self.env.run(['token', '--refresh'], env_extra=bus), 6, *LOCKED)
            self.env.write_config(extra='keystore = env secret-service [locked=continue] '
                                  'pass persistent-keyring\n')
            rc, out, err = self.env.run(['token', '--refresh'], env_extra=bus)
            self.assertEqual(rc, 0, err)
            self.assertEqual(self.server.last.credential, ('api-key', key))
        finally:
            self.assertTrue(self.world.is_locked(path))
            self.world.restart_keyring()
            self.env.run(['logout'], env_extra=bus)

    def locked_rows(self, key, only, path, locked_before):
        bus = {'DBUS_SESSION_BUS_ADDRESS': self.world.address}
        for name, kw, dialect in self.rows(key, only):
            with self.subTest(row=name):
                count = self.server.count
                t0 = time.time()
                res = self.env.run(env_extra=bus, **kw)
                took = time.time() - t0
                self.assertRowFails(name, dialect, res, 6, LOCKED)
                self.assertLess(took, 20, '%s: a failed unlock took %.1f s' % (name, took))
                self.assertEqual(self.server.count, count,
                                 '%s: the token endpoint was asked (%r)' % (
                                     name, self.server.requests[count:]))
                self.assertTrue(self.world.is_locked(path), '%s: unlocked it' % name)
                self.assertUnchanged(locked_before, self.world, secrets=False,
                                     what=name + ': ')

    def test_one_unlock_attempt_per_call(self):
        # in a desktop session each Unlock shows a prompt: one the user
        # dismissed must not be followed by another in the same call
        bus = {'DBUS_SESSION_BUS_ADDRESS': self.world.address}
        for tier, only in FULL_TIERS:
            with self.subTest(tier=tier):
                key = self.set_up_stored(tier, self.world)
                path = self.world.lock_default()
                mon = None
                try:
                    mon = self.world.monitor('Unlock')
                    for name, kw, dialect in self.rows(key, only):
                        with self.subTest(tier=tier, row=name):
                            before = mon.count()
                            res = self.env.run(env_extra=bus, **kw)
                            self.assertRowFails(name, dialect, res, 6, LOCKED)
                            time.sleep(0.1)         # let the monitor write
                            n = mon.count() - before
                            self.assertLessEqual(n, 1, '%s: %d unlock prompts in one call' % (
                                name, n))
                    self.assertTrue(self.world.is_locked(path))
                finally:
                    if mon:
                        mon.close()
                    self.world.restart_keyring()


class KilledDaemon(PrivateBusCase):
    """gnome-keyring-daemon SIGKILLed while a call waits for the token endpoint."""

    def setUp(self):
        super().setUp()
        self.bus = {'DBUS_SESSION_BUS_ADDRESS': self.world.address}

    def kill_while_waiting(self, args, input, delay=1.5):
        """spawn; once its request reached the endpoint, SIGKILL the daemon"""
        count = self.server.count
        self.server.push(delayed(self.server.token_reply(), delay))
        sp = self.env.spawn(args, input=input, env_extra=self.bus)
        deadline = time.time() + 15
        while self.server.count == count and time.time() < deadline:
            time.sleep(0.02)
        self.assertEqual(self.server.count, count + 1, 'the call never reached the endpoint')
        self.world.kill_keyring(signal.SIGKILL)
        res = sp.finish(timeout=30)
        return res

    def test_login_keeps_the_old_credential(self):
        for tier in ('keystore', 'keyctl'):
            with self.subTest(tier=tier):
                if self.world.keyring is None:
                    self.world.start_keyring()
                old = self.set_up_stored(tier, self.world)
                before = self.snapshot(self.world)
                new = self.env.new_key()
                res = self.kill_while_waiting(['login'], new + '\n')
                self.assertFails(res, 6, *NO_SERVICE)
                self.assertSecretEqual(self.server.last.header('Galileo-API-Key'), new,
                                       'the key verified')
                # nothing in the kernel either
                self.assertEqual(self.kernel_snapshot(), before[1], 'kernel keys changed')
                self.world.start_keyring()
                self.assertUnchanged(before, self.world, what='after restarting the daemon: ')
                cred = [i for i in self.world.items(self.url) if i.schema == KEY_SCHEMA]
                self.assertEqual(len(cred), 1)
                self.assertSecretEqual(cred[0].secret, old, 'stored credential')

    def test_kill_inside_a_store_leaves_exactly_one_credential(self):
        # galileo-credential(1) TOKEN LIFETIME: the daemon dying in the middle of a store
        # (new item written, old not yet removed, or anywhere near) leaves
        # exactly the old or exactly the new credential in use, listed once
        bus = {'DBUS_SESSION_BUS_ADDRESS': self.world.address}
        rng = random.Random(int(os.environ.get('GC_KILL_SEED', '0')) or None)
        for round_ in range(8):
            with self.subTest(round=round_):
                if self.world.keyring is None:
                    self.world.start_keyring()
                old = self.set_up_stored('keystore' if round_ % 2 else None, self.world)
                new = self.env.new_key()
                self.server.accept_key(new)
                count = self.server.count
                # another username: another item, not one replaced in place
                sp = self.env.spawn(['store'], argv0=GIT, env_extra=bus, input=harness.git_lines(
                    'protocol=https', 'host=127.0.0.1:%d' % self.server.port,
                    'username=user%d' % round_, 'password=' + new))
                deadline = time.time() + 15
                while self.server.count == count and time.time() < deadline:
                    time.sleep(0.002)
                time.sleep(rng.uniform(0, 0.04))     # somewhere in the write
                self.world.kill_keyring(signal.SIGKILL)
                res = sp.finish()
                self.world.start_keyring()
                self.assertOneInUse(bus, old, new, stored_ok=res.returncode == 0)
                self.assertEqual(self.env.run(['logout'], env_extra=bus).returncode, 0)

    def test_an_item_left_without_its_secret_is_passed_over(self):
        # gnome-keyring's CreateItem saves the new item, then its secret: a
        # daemon killed in between leaves the newest generation with no
        # secret (seen in CI as a 401 after the kill above).  The reader
        # passes it over to the credential before it; the next store
        # removes it.
        old = self.set_up_stored(None, self.world)
        self.store_without_secret()
        self.assertEqual(len([i for i in self.world.items(self.url)
                              if i.schema == KEY_SCHEMA]), 2)
        self.token(['--refresh'], env_extra=self.bus, expect_new=True)
        self.assertEqual(self.server.last.credential, ('api-key', old))
        new = self.login(env_extra=self.bus)
        cred = [i for i in self.world.items(self.url) if i.schema == KEY_SCHEMA]
        self.assertEqual(len(cred), 1, 'the item without a secret was not removed')
        self.assertSecretEqual(cred[0].secret, new, 'stored credential')

    def assertOneInUse(self, bus, old, new, stored_ok):
        rc, out, err = self.env.run(['status', '--json'], env_extra=bus)
        self.assertEqual(rc, 0, err)
        self.assertEqual([s['server'] for s in json.loads(out)['servers']], [self.url],
                         'the server is not listed exactly once')
        rc, fresh, err = self.env.run(['token', '--refresh'], env_extra=bus)
        self.assertEqual(rc, 0, err)
        used = self.server.last.credential
        self.assertIn(used, (('api-key', old), ('api-key', new)))
        # and what a hit serves is that credential's token, not the other's
        rc, cached, err = self.env.run(['token'], env_extra=bus)
        self.assertEqual(rc, 0, err)
        self.assertSecretEqual(cached, fresh, 'the cached token')
        if stored_ok:
            self.assertEqual(used, ('api-key', new), 'the store said it worked')

    def test_refresh_hands_out_the_token_and_half_writes_nothing(self):
        self.set_up_stored('keystore', self.world)
        before = self.snapshot(self.world)
        res = self.kill_while_waiting(['token', '--refresh'], None)
        # the token was obtained: a cache that cannot be written never fails
        # the call (as any cache failure), and nothing is cached
        rc, out, err = res
        self.assertEqual(rc, 0, 'token --refresh: %r' % err)
        self.assertSecretEqual(out, self.server.last.token + '\n', 'token printed')
        self.assertEqual(err, '')
        self.world.start_keyring()
        self.assertUnchanged(before, self.world, what='after restarting the daemon: ')

    def test_next_call_after_the_kill(self):
        self.set_up_stored('keystore', self.world)
        before = self.snapshot(self.world)
        self.world.kill_keyring(signal.SIGKILL)
        count = self.server.count
        self.assertFails(self.env.run(['token'], env_extra=self.bus), 6, *NO_SERVICE)
        self.assertFails(self.env.run(['logout'], env_extra=self.bus), 6, *NO_SERVICE)
        self.assertEqual(self.server.count, count)
        self.world.start_keyring()
        self.assertUnchanged(before, self.world, what='after restarting the daemon: ')


class UnknownKeystore(FaultCase):
    """An unknown keystore name fails closed: exit 6, nothing exchanged."""

    def test_every_command_by_config(self):
        self.run_matrix(None, UNKNOWN, config_extra='keystore = nosuch\n')

    def test_every_command_by_environment(self):
        self.run_matrix({'GALILEO_CREDENTIAL_KEYSTORE': 'nosuch'}, UNKNOWN,
                        tiers=(('keyctl', ('token', 'login', 'status', 'git get', 'docker get')),))

    def test_not_bypassed_by_the_kernel_cache(self):
        # a fresh token in the kernel keyring is not handed out through an
        # unknown keystore: the configuration is wrong, so nothing is
        self.env.write_config(token_cache=None)
        self.login()
        self.token(expect_new=False)
        before = self.snapshot()
        self.env.write_config(token_cache=None, extra='keystore = nosuch\n')
        for name, kw in (('token', dict(args=['token'])),
                         ('git get', dict(args=['get'], argv0=GIT, input=git_lines(
                             'protocol=https', 'host=' + self.host)))):
            with self.subTest(row=name):
                self.assertRowFails(name, 'native', self.env.run(**kw), 6, UNKNOWN)
        self.assertEqual(self.server.count, 1)
        self.assertUnchanged(before)

    def test_not_bypassed_by_the_environment_key(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        self.env.write_config(token_cache=None, extra='keystore = nosuch\n')
        res = self.env.run(['token'], env_extra={'GALILEO_API_KEY': key,
                                                 'DBUS_SESSION_BUS_ADDRESS': None})
        self.assertFails(res, 6, *UNKNOWN)
        self.assertEqual(self.server.count, 0, 'exchanged through an unknown keystore')


class Headless(FaultCase):
    """GALILEO_API_KEY without D-Bus: the headless path works (SERVER AND ORGANIZATION)."""

    def test_token_git_and_status_without_dbus(self):
        dead = 'unix:path=' + os.path.join(self.env.root, 'no-such-bus')
        for tier in ('keyctl', 'keystore'):
            for bus in (None, dead):
                with self.subTest(tier=tier, bus='unset' if bus is None else 'dead socket'):
                    self.env.reset()
                    self.env.write_config(token_cache=tier)
                    key = self.env.new_key()
                    self.server.accept_key(key)
                    env = {'GALILEO_API_KEY': key, 'DBUS_SESSION_BUS_ADDRESS': bus}
                    t1 = self.token(env_extra=env, expect_new=True)
                    self.assertEqual(self.server.last.credential, ('api-key', key))
                    # the kernel caches it; without a keystore nothing does
                    t2 = self.token(env_extra=env, expect_new=(tier == 'keystore'))
                    if tier == 'keyctl':
                        self.assertSecretEqual(t2, t1, 'cached token')
                    rc, out, err = self.env.run(['get'], argv0=GIT, env_extra=env,
                                                input=git_lines('protocol=https',
                                                                'host=' + self.host))
                    self.assertEqual(rc, 0, err)
                    self.assertEqual(err, '')
                    self.assertTrue(parse_git_output(out)[0].get('password'))
                    rc, out, err = self.env.run(['status', '--json'], env_extra=env)
                    self.assertEqual(rc, 0, err)
                    servers = json.loads(out)['servers']
                    self.assertEqual([(s['server'], s['keystore']) for s in servers],
                                     [(self.url, 'env')])
                    self.assertEqual(self.env.keyring_items(), [])

    def test_login_without_dbus_stores_and_sends_nothing(self):
        # GALILEO_API_KEY is read-only: a login needs the keystore, so it
        # fails before the new key is sent anywhere
        key = self.env.new_key()
        self.server.accept_key(key)
        new = self.env.new_key()
        self.server.accept_key(new)
        res = self.env.run(['login'], input=new + '\n', env_extra={
            'GALILEO_API_KEY': key, 'DBUS_SESSION_BUS_ADDRESS': None})
        self.assertFails(res, 6, *NO_BUS)
        self.assertEqual(self.server.count, 0,
                         'login: the token endpoint was asked although nothing can be stored')
        self.assertEqual(self.env.keyring_items(), [])


if __name__ == '__main__':
    harness.main()
