# SPDX-License-Identifier: MIT
"""
A Secret Service provider on a private session bus, for the integration
tests (stdlib only; run with /usr/bin/python3): what kwallet.py (kwalletd5)
and keepassxc.py (KeePassXC) share.

  - Provider: the provider's own processes beside a dbus-daemon whose
    configuration has no service directories (harness.start_private_bus),
    so nothing else (gnome-keyring in particular) is activated on that bus;
    HOME and the XDG directories private under its root; start() runs the
    subclass's phases, timed, and stops everything when one fails.
  - ProviderEnv: harness.Env whose Secret Service is a Provider instead of
    gnome-keyring (for GCTestCase); env.provider is the Provider.
  - setUpTestModule / tearDownEnvModule: a test module's world on one.
"""

import atexit
import os
import shutil
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness                                           # noqa: E402
from harness import stop_process_group                  # noqa: E402

RUN_TIMEOUT = 30

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
