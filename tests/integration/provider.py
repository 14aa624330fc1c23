# SPDX-License-Identifier: MIT
"""
A Secret Service provider on a private session bus, for the integration
tests (stdlib only; run with /usr/bin/python3): what kwallet.py (kwalletd5)
and keepassxc.py (KeePassXC) share, and the test base of test_kwallet.py
and test_keepassxc.py.

  - Provider: the provider's own processes beside a dbus-daemon whose
    configuration has no service directories (harness.start_private_bus),
    so nothing else (gnome-keyring in particular) is activated on that bus;
    HOME and the XDG directories private under its root; start() runs the
    subclass's phases, timed, and stops everything when one fails.
  - ProviderEnv: harness.Env whose Secret Service is a Provider instead of
    gnome-keyring (for GCTestCase); env.provider is the Provider.
  - setUpTestModule / tearDownEnvModule: a test module's world on one.
  - ProviderCase: GCTestCase with the provider checked before each test,
    `timeout = 3` in the config, and the assertions both test modules make.
"""

import atexit
import json
import os
import re
import shutil
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness                                           # noqa: E402
from harness import (GCTestCase, git_lines, parse_git_output,   # noqa: E402
                     stop_process_group)

RUN_TIMEOUT = 30

GIT = 'git-credential-galileo'
DOCKER = 'docker-credential-galileo'
TIMEOUT = 3             # the config's timeout where a prompt is involved
SLACK = 1.5             # what a bounded call may take beyond it
CONTRACT_KEY_ATTRS = ('server', 'kind', 'username', 'organization')
CONTRACT_TOKEN_ATTRS = ('server', 'organization')
# the one line for an unanswered prompt or a keyring still locked
WAITING = 'waiting for someone to answer a prompt'
LOCKED = 'locked and was not unlocked'
GENERATION = re.compile(r'\d{20}-\d{10}')


def missing_tools(tools, more=()):
    """
    Why a provider cannot run here, or None: the (program, Debian package)
    pairs of `tools` not on PATH, and `more` such pairs found missing
    otherwise.
    """
    gone = [(prog, pkg) for prog, pkg in tools if not shutil.which(prog)] + list(more)
    if not gone:
        return None
    return 'not installed: %s (apt-get install %s)' % (
        ', '.join(prog for prog, _ in gone), ' '.join(sorted({pkg for _, pkg in gone})))


class Provider:
    """
    A Secret Service provider on a private bus.  Subclasses start their own
    processes in _start() (self._phase('dbus', self._start_dbus) among
    them) and stop them in _stop_own().
    Attributes once started: bus_address, timings (seconds per start
    phase), start_seconds.
    """

    NAME = 'provider'
    ROOT_PREFIX = 'gc-provider-'        # of a temporary root of its own

    def __init__(self, root=None, base_env=None):
        self._own_root = root is None
        self.root = root
        self._base_env = dict(base_env) if base_env else None
        self.dbus = None
        self.bus_address = None
        self.timings = {}
        self.start_seconds = None
        self._closed = False

    # -- environment -----------------------------------------------------------
    def base_env(self):
        if self._base_env is not None:
            return dict(self._base_env)
        return {'PATH': os.environ.get('PATH') or '/usr/local/bin:/usr/bin:/bin',
                'HOME': self.home, 'LC_ALL': 'C.UTF-8', 'TZ': 'UTC'}

    def child_env(self, extra=None):
        """Environment for a client of this Secret Service (extra: None removes)."""
        env = self.base_env()
        env['DBUS_SESSION_BUS_ADDRESS'] = self.bus_address
        for k, v in (extra or {}).items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def _mkdir(self, rel):
        return harness.private_dir(self.root, rel)

    def _log(self, name):
        return open(os.path.join(self.logdir, name), 'ab')

    # -- start and stop ----------------------------------------------------------
    def start(self):
        t0 = time.monotonic()
        if self.root is None:
            self.root = tempfile.mkdtemp(prefix=self.ROOT_PREFIX)
        os.chmod(self.root, 0o700)
        self.home = self._mkdir('home')
        self.config_home = self._mkdir('home/.config')
        self.cache_home = self._mkdir('home/.cache')
        self.data_home = self._mkdir('home/.local/share')
        self.runtime = self._mkdir('runtime')
        self.logdir = self._mkdir('log')
        self._prepare()
        atexit.register(self.stop)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0
        return self

    def _prepare(self):
        """the provider's own files under root, before anything starts"""

    def _start(self):
        raise NotImplementedError

    def _phase(self, name, fn):
        t = time.monotonic()
        fn()
        self.timings[name] = round(time.monotonic() - t, 3)

    def _start_dbus(self):
        with self._log('dbus.log') as log:
            self.dbus, self.bus_address = harness.start_private_bus(
                os.path.join(self.root, 'session.conf'), os.path.join(self.runtime, 'bus'),
                log, env=self.base_env())

    def _stop_own(self):
        """stop the provider's own processes (the bus is still there)"""

    def stop(self):
        if self._closed:
            return
        self._closed = True
        self._stop_own()
        if self.dbus is not None:
            stop_process_group(self.dbus)
            self.dbus = None
        if self._own_root and self.root:
            shutil.rmtree(self.root, ignore_errors=True)

    def close(self):
        self.stop()

    # -- clients -----------------------------------------------------------------
    def secret_tool(self, args, input=None, timeout=RUN_TIMEOUT):
        """secret-tool on the private bus; RunResult as text (stdout may be a secret)."""
        return harness.run_secret_tool(args, self.child_env(), input, timeout)


# --------------------------------------------------------------------------
# the harness world on a provider

class ProviderEnv(harness.Env):
    """
    harness.Env whose Secret Service is a PROVIDER (a Provider subclass,
    made with **settings) on a private bus with no service activation,
    instead of gnome-keyring.  env.provider is the Provider.
    """

    PROVIDER = Provider
    DIR = 'provider'            # its root, under the Env's

    def __init__(self, **settings):
        super().__init__()
        self.provider_settings = settings
        self.provider = None

    def _start_dbus(self):
        self.provider = self.PROVIDER(root=self._mkdir(self.DIR), base_env=self.base_env(),
                                      **self.provider_settings)
        self.provider.start()
        self.dbus_address = self.provider.bus_address

    def _start_keyring(self):
        pass

    def close(self):
        if self.provider is not None:
            self.provider.stop()
            self.provider = None
        super().close()


def setUpEnvModule(env_class, **settings):
    """harness.ENV = a started env_class(**settings) (GCTestCase uses it)."""
    env = env_class(**settings)
    try:
        env.start()
    except Exception:
        env.close()
        raise
    harness.ENV = env
    return env


def tearDownEnvModule():
    if harness.ENV is not None:
        harness.ENV.close()
        harness.ENV = None


def setUpTestModule(env_class, why_not):
    """
    setUpModule of a test module on a provider: skipped with the reason
    why_not when it is not None; else setUpEnvModule(env_class), and how
    long the start took on stderr.
    """
    if why_not:
        raise unittest.SkipTest(why_not)
    # In the sanitizer build: GLib has no frame pointers, so LeakSanitizer's
    # fast unwinder stops at g_malloc and lsan.supp cannot tell libsecret's
    # known leak (it shows with KeePassXC and KWallet) from ours.  The slow
    # unwinder sees the whole stack; it triples a run's time, so only here.
    os.environ['ASAN_OPTIONS'] = ':'.join(
        o for o in (os.environ.get('ASAN_OPTIONS'), 'fast_unwind_on_malloc=0') if o)
    t = time.monotonic()
    env = setUpEnvModule(env_class)
    sys.stderr.write('%s started in %.2f s %r\n' % (env_class.PROVIDER.NAME,
                                                    time.monotonic() - t,
                                                    env.provider.timings))
    return env


# --------------------------------------------------------------------------
# the test base

def token_of(item):
    """the access token in a token item's secret ('gc1 EXPIRES LIFETIME FINGERPRINT TOKEN')"""
    return (item.secret or '').split(' ')[-1]


def contract_attrs(item, names):
    """the contract's attributes of an item; the provider's own are left out"""
    return {k: v for k, v in item.attributes.items() if k in names}


class ProviderCase(GCTestCase):
    """
    Before each test: settle(env.provider) brings the provider to where a
    test starts (the subclass says what that is), then the harness's reset.
    """

    def setUp(self):
        p = getattr(harness.ENV, 'provider', None)
        if p is None:
            self.skipTest('the provider\'s environment did not start')
        self.settle(p)
        super().setUp()
        self.host = '127.0.0.1:%d' % self.server.port
        self.key_label = 'Galileo credential for ' + self.url
        self.token_label = 'Galileo token for ' + self.url

    def settle(self, provider):
        raise NotImplementedError

    def config(self, token_cache='keystore', extra=''):
        self.env.write_config(token_cache=token_cache, extra='timeout = %d\n%s' % (TIMEOUT, extra))

    def git_get(self, **kw):
        return self.env.run(['get'], argv0=GIT, input=git_lines(
            'protocol=https', 'host=' + self.host), **kw)

    def docker_get(self, **kw):
        return self.env.run(['get'], argv0=DOCKER, input=self.url + '\n', **kw)

    def keystore_rows(self, new):
        """
        The commands that need the keystore, as (name, env.spawn keywords,
        dialect); `new` is the key login is given.
        """
        return [
            ('token --refresh', dict(args=['token', '--refresh']), 'native'),
            ('login', dict(args=['login'], input=new + '\n'), 'native'),
            ('logout', dict(args=['logout']), 'native'),
            ('status', dict(args=['status']), 'native'),
            ('git get', dict(args=['get'], argv0=GIT, input=git_lines(
                'protocol=https', 'host=' + self.host)), 'git'),
            ('docker get', dict(args=['get'], argv0=DOCKER, input=self.url + '\n'), 'docker'),
        ]

    def assertBoundedFailure(self, name, dialect, res, took, contains_any=(WAITING, LOCKED)):
        """exit 6 (docker: 1, the line on stdout) with one line, within timeout + SLACK"""
        rc, out, err = res
        self.assertLessEqual(took, TIMEOUT + SLACK, '%s took %.2f s' % (name, took))
        if dialect == 'docker':
            self.assertEqual(rc, 1, '%s: exit code; stdout=%r' % (name, out))
            self.assertEqual(err, '', '%s: stderr' % name)
            line = out
        else:
            self.assertEqual(rc, 6, '%s: exit code; stderr=%r' % (name, err))
            self.assertEqual(out, '', '%s: stdout on failure' % name)
            self.assertOneErrorLine(err)
            line = err
        self.assertTrue(line.endswith('\n') and line.count('\n') == 1,
                        '%s: expected one line, got %r' % (name, line))
        self.assertTrue(any(c in line for c in contains_any),
                        '%s: the line says neither %r: %r' % (name, contains_any, line))
        self.assertNoneOf(self.server.issued, {name + ' stdout': out})

    def assertOneKey(self, secret, **attrs):
        items = self.env.key_items()
        self.assertEqual(len(items), 1, items)
        self.assertSecretEqual(items[0].secret, secret, 'stored credential')
        for k, v in attrs.items():
            self.assertEqual(items[0].attributes.get(k), v, k)
        return items[0]

    def assertContractKey(self, key):
        """
        The one credential item holds the API key `key` with the contract's
        schema, label and attributes, and a generation; returns it.
        """
        item = self.assertOneKey(key)
        self.assertEqual(item.schema, harness.KEY_SCHEMA)
        self.assertEqual(item.label, self.key_label)
        self.assertEqual(contract_attrs(item, CONTRACT_KEY_ATTRS),
                         {'server': self.url, 'kind': 'api-key', 'username': '',
                          'organization': ''})
        self.assertRegex(item.generation or '', GENERATION, 'generation attribute')
        return item

    def assertContractToken(self, tok):
        """
        One token item, with the contract's label and attributes, holding
        the token `tok`; returns it.
        """
        toks = self.env.token_items()
        self.assertEqual(len(toks), 1, toks)
        self.assertEqual(toks[0].label, self.token_label)
        self.assertEqual(contract_attrs(toks[0], CONTRACT_TOKEN_ATTRS),
                         {'server': self.url, 'organization': ''})
        self.assertSecretEqual(token_of(toks[0]), tok, 'cached token')
        return toks[0]

    def assertGetsServe(self, tok):
        """git get and docker get hand out the token `tok`; returns docker's answer"""
        rc, out, err = self.git_get()
        self.assertEqual((rc, err), (0, ''), 'git get')
        self.assertSecretEqual(parse_git_output(out)[0].get('password'), tok, 'git password')
        rc, out, err = self.docker_get()
        self.assertEqual((rc, err), (0, ''), 'docker get')
        doc = json.loads(out)
        self.assertSecretEqual(doc['Secret'], tok, 'docker Secret')
        return doc

    def assertCredentialSent(self, expected, what='the endpoint'):
        """the last request carried `expected` (compared, never shown)"""
        got = self.server.last.credential if self.server.last else None
        if got != expected:
            self.fail('%s: got a %s credential, not the expected %s one (secrets not shown)'
                      % (what, got[0] if got else 'missing', expected[0]))

    def assertUsed(self, key, what):
        """token --refresh goes to the endpoint with `key`"""
        tok = self.token(['--refresh'], expect_new=True)
        self.assertCredentialSent(('api-key', key), what)
        return tok
