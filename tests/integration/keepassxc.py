# SPDX-License-Identifier: MIT
"""
KeePassXC (2.7.4, Debian 12) as a second real Secret Service provider for
the integration tests (stdlib only; run with /usr/bin/python3).

One KeePassXC instance per test module:
  - Xvfb on a free display (-displayfd), no window manager;
  - a private dbus-daemon whose configuration has no service directories, so
    nothing (gnome-keyring in particular) can be activated on that bus
    (provider.py: what KeePassXC and KWallet share);
  - a throwaway database made with `keepassxc-cli import` from a KeePass XML
    file that already carries the group exposed to the Secret Service (the
    database custom data FDO_SECRETS_EXPOSED_GROUP = that group's UUID):
    keepassxc-cli 2.7.4 cannot set custom data, but its importer keeps it;
  - keepassxc.ini in a private XDG_CONFIG_HOME: FdoSecrets on, no
    notifications, access/delete confirmation off unless asked, no
    single-instance lock shared with other instances, no update check, no
    tray, no auto-lock;
  - keepassxc started with --pw-stdin DB, so the database is open and
    unlocked without a dialog; start() returns once org.freedesktop.secrets
    is owned on the private bus and a probe item can be stored, read back and
    cleared with secret-tool.

Dialogs are found with `xdotool search --onlyvisible --name` (the display is
private, so every visible window is KeePassXC's) and answered with xdotool
key presses.  The database password is a fake, fixed test value; it is
written only to the stdin of keepassxc / keepassxc-cli / xdotool, never to
argv, a log or the output.

Use from a test module (one instance for the module):

    import keepassxc
    def setUpModule():    keepassxc.setUpModule()
    def tearDownModule(): keepassxc.tearDownModule()
    ... keepassxc.KPXC.secret_tool([...]) ...

or with the harness world (Env whose keystore is KeePassXC, for GCTestCase):

    import keepassxc, provider
    def setUpModule():    provider.setUpTestModule(keepassxc.KeePassXCEnv, keepassxc.missing())
    def tearDownModule(): provider.tearDownEnvModule()

`python3 keepassxc.py` runs a small self-test and prints how long it took.
See KEEPASSXC-NOTES.md for what KeePassXC 2.7.4 does with the calls the
program makes.
"""

import base64
import os
import re
import signal
import subprocess
import sys
import time
import uuid

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness                                           # noqa: E402
import provider                                          # noqa: E402
from harness import RunResult, stop_process_group        # noqa: E402

DB_PASSWORD = 'kpxc-fake-test-db-password'   # a throwaway test value
DB_NAME = 'kpxc-test'
EXPOSED_GROUP = 'Secret Service'
RECYCLE_BIN = 'Recycle Bin'
PROBE_LABEL = 'keepassxc.py probe'
PROBE_SCHEMA = 'harness.KeePassXCProbe'
RUN_TIMEOUT = 30
START_TIMEOUT = 30

# window titles of KeePassXC 2.7.4 (C locale)
UNLOCK_TITLE = 'Unlock Database - KeePassXC'
ACCESS_TITLE = 'KeePassXC -  Access Request'      # sic: two spaces
DELETE_TITLES = ('Move entry to recycle bin?', 'Move entries to recycle bin?',
                 'Delete entry?', 'Delete entries?')

BUS_NAME = 'org.freedesktop.secrets'
DEFAULT_ALIAS = '/org/freedesktop/secrets/aliases/default'
MAINWINDOW_NAME = 'org.keepassxc.KeePassXC.MainWindow'

TOOLS = (('keepassxc', 'keepassxc'), ('keepassxc-cli', 'keepassxc'), ('Xvfb', 'xvfb'),
         ('xdotool', 'xdotool'), ('dbus-daemon', 'dbus'), ('dbus-send', 'dbus'),
         ('secret-tool', 'libsecret-tools'))


def missing():
    """why KeePassXC cannot run here, or None"""
    return provider.missing_tools(TOOLS)


def _b64uuid(u):
    return base64.b64encode(u.bytes).decode('ascii')


def database_xml(name=DB_NAME, group=EXPOSED_GROUP, recycle_bin=True):
    """
    A KeePass 2 XML export with a root group, one child group exposed to the
    Secret Service (the database custom data FDO_SECRETS_EXPOSED_GROUP holds
    its UUID) and no entries.  Returns (xml text, group uuid).
    """
    root, exposed = uuid.uuid4(), uuid.uuid4()
    xml = '''<?xml version="1.0" encoding="utf-8" standalone="yes"?>
<KeePassFile>
 <Meta>
  <Generator>galileo-credential tests</Generator>
  <DatabaseName>%(name)s</DatabaseName>
  <RecycleBinEnabled>%(bin)s</RecycleBinEnabled>
  <CustomData>
   <Item><Key>FDO_SECRETS_EXPOSED_GROUP</Key><Value>{%(exposed)s}</Value></Item>
  </CustomData>
 </Meta>
 <Root>
  <Group>
   <UUID>%(root_b64)s</UUID>
   <Name>Root</Name>
   <Group>
    <UUID>%(exposed_b64)s</UUID>
    <Name>%(group)s</Name>
   </Group>
  </Group>
 </Root>
</KeePassFile>
''' % {'name': name, 'group': group, 'bin': 'True' if recycle_bin else 'False',
       'exposed': exposed, 'root_b64': _b64uuid(root), 'exposed_b64': _b64uuid(exposed)}
    return xml, exposed


def ini_text(confirm_access=False, confirm_delete=False, unlock_before_search=True,
             confirm_recycle=False, extra=None):
    """
    keepassxc.ini (QSettings ini; keys from src/core/Config.cpp of 2.7.4).
    confirm_recycle: Security/NoConfirmMoveEntryToRecycleBin=false, the only
    way ConfirmDeleteItem asks anything while the recycle bin is on.
    extra: {'Section/Key': value} overrides.
    """
    b = lambda v: 'true' if v else 'false'     # noqa: E731
    sections = {
        'General': {
            'ConfigVersion': '2',
            'SingleInstance': 'false',      # no lock/socket shared across instances
            'RememberLastDatabases': 'false',
            'RememberLastKeyFiles': 'false',
            'OpenPreviousDatabasesOnStartup': 'false',
            'AutoSaveAfterEveryChange': 'true',   # keepassxc-cli sees changes at once
            'AutoSaveOnExit': 'true',
            'AutoReloadOnChange': 'false',
            'BackupBeforeSave': 'false',
            'UseAtomicSaves': 'true',
            'UpdateCheckMessageShown': 'true',    # no "check for updates?" question
            'MinimizeAfterUnlock': 'false',
        },
        'GUI': {
            'Language': 'en_US',
            'ShowTrayIcon': 'false',
            'MinimizeToTray': 'false',
            'MinimizeOnStartup': 'false',
            'MinimizeOnClose': 'false',
            'CheckForUpdates': 'false',
            'ShowExpiredEntriesOnDatabaseUnlock': 'false',
        },
        'Security': {
            'LockDatabaseIdle': 'false',
            'LockDatabaseScreenLock': 'false',
            'LockDatabaseMinimize': 'false',
            'RelockAutoType': 'false',
            'ClearClipboard': 'false',
            'NoConfirmMoveEntryToRecycleBin': b(not confirm_recycle),
            'QuickUnlock': 'false',
        },
        'Browser': {'Enabled': 'false'},
        'SSHAgent': {'Enabled': 'false'},
        'FdoSecrets': {
            'Enabled': 'true',
            'ShowNotification': 'false',
            'ConfirmAccessItem': b(confirm_access),
            'ConfirmDeleteItem': b(confirm_delete),
            'UnlockBeforeSearch': b(unlock_before_search),
        },
    }
    for k, v in (extra or {}).items():
        sec, _, key = k.rpartition('/')
        sections.setdefault(sec or 'General', {})[key] = \
            b(v) if isinstance(v, bool) else str(v)
    out = []
    for sec, kv in sections.items():
        out.append('[%s]' % sec)
        out += ['%s=%s' % (k, v) for k, v in kv.items()]
        out.append('')
    return '\n'.join(out)


CONFIRM_SETTINGS = ('confirm_access', 'confirm_delete', 'confirm_recycle')


class KeePassXCError(RuntimeError):
    pass


class KeePassXC(provider.Provider):
    """
    A running KeePassXC serving the Secret Service on a private bus.

    Attributes once started: bus_address, display, db_path, collection
    (its object path), timings (seconds per start phase), start_seconds.
    """

    NAME = 'KeePassXC'
    ROOT_PREFIX = 'gc-kpxc-'

    def __init__(self, root=None, base_env=None, confirm_access=False,
                 confirm_delete=False, unlock_before_search=True,
                 confirm_recycle=False, ini_extra=None, recycle_bin=True):
        super().__init__(root, base_env)
        self.settings = dict(confirm_access=confirm_access,
                             confirm_delete=confirm_delete,
                             unlock_before_search=unlock_before_search,
                             confirm_recycle=confirm_recycle,
                             extra=dict(ini_extra or {}))
        self.recycle_bin = recycle_bin
        self.xvfb = self.app = None
        self.display = None
        self.collection = None
        self.main_window = None

    # -- environment -----------------------------------------------------------
    def base_env(self):
        """As Provider's, with no DISPLAY: a client of this Secret Service has none."""
        env = super().base_env()
        env.pop('DISPLAY', None)
        env.pop('WAYLAND_DISPLAY', None)
        return env

    def _x_env(self):
        env = self.base_env()
        env['DISPLAY'] = self.display
        return env

    def _app_env(self):
        env = self.child_env()
        env.update({
            'DISPLAY': self.display,
            'HOME': self.home,
            'XDG_CONFIG_HOME': self.config_home,
            'XDG_CACHE_HOME': self.cache_home,
            'XDG_DATA_HOME': self.data_home,
            'XDG_RUNTIME_DIR': self.runtime,
            'TMPDIR': self.tmp,             # QLockFile / QLocalServer live here
            'QT_QPA_PLATFORM': 'xcb',
            'QT_ACCESSIBILITY': '0',
            'NO_AT_BRIDGE': '1',
            'LC_ALL': 'C.UTF-8',
            'LANGUAGE': 'en',
        })
        for k in ('KPXC_CONFIG', 'KPXC_CONFIG_LOCAL', 'XDG_CURRENT_DESKTOP',
                  'DESKTOP_SESSION', 'QT_STYLE_OVERRIDE'):
            env.pop(k, None)
        return env

    # -- start / stop ------------------------------------------------------------
    def _prepare(self):
        self.tmp = self._mkdir('tmp')
        self.db_path = os.path.join(self.root, 'test.kdbx')

    def _start(self):
        self._phase('xvfb', self._start_xvfb)
        self._phase('dbus', self._start_dbus)
        self._phase('database', self._make_database)
        # the probe needs no dialog: with ConfirmAccessItem=true libsecret
        # cannot clear an item another process made (it skips items
        # locked for it), so probe with the confirmations off and then
        # restart with them when asked
        wanted = dict(self.settings)
        quiet = {k: False for k in CONFIRM_SETTINGS}
        self.settings.update(quiet)
        self._phase('keepassxc', self._start_app)
        self._phase('probe', self._probe)
        if any(wanted[k] for k in CONFIRM_SETTINGS):
            self._phase('restart', lambda: self.restart(**wanted))
        else:
            self.settings = wanted

    def _start_xvfb(self):
        r, w = os.pipe()
        log = self._log('xvfb.log')
        try:
            p = subprocess.Popen(
                ['Xvfb', '-displayfd', str(w), '-nolisten', 'tcp', '-noreset',
                 '-screen', '0', '1280x1024x24'],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                pass_fds=(w,), env=self.base_env(), start_new_session=True)
        finally:
            os.close(w)
            log.close()
        self.xvfb = p
        self.display = harness.xvfb_display(r, START_TIMEOUT, self.logdir)

    def _make_database(self):
        xml, self.exposed_group = database_xml(recycle_bin=self.recycle_bin)
        xml_path = os.path.join(self.root, 'db.xml')
        with open(xml_path, 'w') as f:
            f.write(xml)
        # -t 100: the fastest key derivation allowed (about 0.1 s per open)
        r = subprocess.run(
            ['keepassxc-cli', 'import', '-q', '-p', '-t', '100', xml_path, self.db_path],
            input=(DB_PASSWORD + '\n' + DB_PASSWORD + '\n').encode(),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self._cli_env(),
            timeout=RUN_TIMEOUT)
        os.unlink(xml_path)
        if r.returncode != 0 or not os.path.exists(self.db_path):
            raise KeePassXCError('keepassxc-cli import failed: %s'
                                 % r.stderr.decode('utf-8', 'replace').strip())

    def _cli_env(self):
        env = self.base_env()
        env.update({'HOME': self.home, 'XDG_CONFIG_HOME': self.config_home,
                    'XDG_CACHE_HOME': self.cache_home, 'TMPDIR': self.tmp,
                    'QT_QPA_PLATFORM': 'offscreen', 'LC_ALL': 'C.UTF-8'})
        return env

    def write_ini(self):
        d = os.path.join(self.config_home, 'keepassxc')
        os.makedirs(d, mode=0o700, exist_ok=True)
        with open(os.path.join(d, 'keepassxc.ini'), 'w') as f:
            f.write(ini_text(**self.settings))

    def _start_app(self):
        self.write_ini()
        log = self._log('keepassxc.log')
        p = subprocess.Popen(
            ['keepassxc', '--pw-stdin', self.db_path],
            stdin=subprocess.PIPE, stdout=log, stderr=log, cwd=self.home,
            env=self._app_env(), start_new_session=True)
        log.close()
        self.app = p
        p.stdin.write((DB_PASSWORD + '\n').encode())
        p.stdin.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.name_has_owner(BUS_NAME):
            self._check_app()
            if time.monotonic() > deadline:
                raise KeePassXCError('keepassxc did not take %s (see %s)' % (BUS_NAME, self.logdir))
            time.sleep(0.05)
        # the exposed collection appears once the database is unlocked
        while True:
            self._check_app()
            self.collection = self._default_collection()
            if self.collection and self.is_locked() is False:
                break
            if time.monotonic() > deadline:
                raise KeePassXCError('no unlocked default collection (see %s)' % self.logdir)
            time.sleep(0.05)
        while self.main_window is None:
            # "kpxc-test - KeePassXC" (unlocked) or "test.kdbx [Locked] - KeePassXC"
            wins = [w for w, t in self._windows()
                    if t.endswith(' - KeePassXC') and t != UNLOCK_TITLE]
            if wins:
                self.main_window = wins[0]
            elif time.monotonic() > deadline:
                raise KeePassXCError('no KeePassXC window on %s' % self.display)
            else:
                time.sleep(0.05)

    def _check_app(self):
        if self.app is None or self.app.poll() is not None:
            raise KeePassXCError('keepassxc exited (see %s)' % self.logdir)

    def _probe(self):
        """
        Store, read back and clear a probe item (it stays in the recycle bin;
        recycle_bin_entries() leaves it out).
        """
        probe_secret = 'kpxc-probe-' + uuid.uuid4().hex       # fake test value
        attrs = ['xdg:schema', PROBE_SCHEMA, 'probe', '1']
        t = time.monotonic()
        r = self._run_answering(['store', '--label=' + PROBE_LABEL] + attrs, probe_secret)
        self.timings['probe-store'] = round(time.monotonic() - t, 3)
        if r.returncode != 0:
            raise KeePassXCError('probe store failed: %s' % r.stderr.strip())
        t = time.monotonic()
        r = self._run_answering(['lookup'] + attrs)
        self.timings['probe-lookup'] = round(time.monotonic() - t, 3)
        if r.returncode != 0 or r.stdout != probe_secret:
            raise KeePassXCError('probe lookup failed (rc %d)' % r.returncode)
        r = self._run_answering(['clear'] + attrs)
        if r.returncode != 0:
            raise KeePassXCError('probe clear failed: %s' % r.stderr.strip())
        if self.dialogs():
            raise KeePassXCError('dialogs after the probe: %r' % self.dialogs())

    def _run_answering(self, args, input=None, timeout=RUN_TIMEOUT):
        """secret-tool, saying yes to any access / delete dialog it raises."""
        p = self.spawn_secret_tool(args, input=input)
        deadline = time.monotonic() + timeout
        while p.poll() is None and time.monotonic() < deadline:
            try:
                p.wait(0.05)
                break
            except subprocess.TimeoutExpired:
                pass
            for wid, title in self._dialog_windows():
                if title == ACCESS_TITLE:
                    self.answer_access(True, timeout=0)
                elif title in DELETE_TITLES:
                    self.answer_delete(True, timeout=0)
        if p.poll() is None:
            p.kill()
        out, err = p.communicate()
        return RunResult(p.returncode, out.decode('utf-8', 'replace'),
                         err.decode('utf-8', 'replace'))

    def stop_app(self, timeout=3):
        """End keepassxc (appExit over D-Bus, else SIGTERM/SIGKILL its process group)."""
        p = self.app
        if p is not None and p.poll() is None and self.main_window:
            # a modal dialog keeps the main window from closing: Escape them first
            self.dismiss_all(timeout=2)
        self.app = None
        self.main_window = None
        if p is None or p.poll() is not None:
            return
        self.dbus_call(MAINWINDOW_NAME, '/keepassxc', MAINWINDOW_NAME + '.appExit', timeout=5)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        stop_process_group(p)
        try:
            os.killpg(p.pid, signal.SIGKILL)    # anything it left in its group
        except OSError:
            pass

    def restart(self, **settings):
        """Restart keepassxc with other settings (see __init__); the database stays."""
        for k, v in settings.items():
            if k not in self.settings:
                raise TypeError('unknown setting %r' % k)
            self.settings[k] = v
        t = time.monotonic()
        self.stop_app()
        deadline = time.monotonic() + 10
        while self.name_has_owner(BUS_NAME) and time.monotonic() < deadline:
            time.sleep(0.05)
        self._start_app()
        self.timings['restart'] = round(time.monotonic() - t, 3)

    def set_confirm_access(self, on):
        if self.settings['confirm_access'] != bool(on):
            self.restart(confirm_access=bool(on))

    def set_confirm_delete(self, on, recycle=None):
        want = dict(confirm_delete=bool(on))
        if recycle is not None:
            want['confirm_recycle'] = bool(recycle)
        if any(self.settings[k] != v for k, v in want.items()):
            self.restart(**want)

    def _stop_own(self):
        try:
            self.stop_app()
        except Exception:
            pass
        if self.xvfb is not None:
            stop_process_group(self.xvfb)
            self.xvfb = None

    # -- D-Bus -------------------------------------------------------------------
    def dbus_call(self, dest, path, method, *args, timeout=RUN_TIMEOUT):
        """dbus-send --print-reply; RunResult (args as dbus-send spells them)."""
        r = subprocess.run(
            ['dbus-send', '--bus=' + self.bus_address, '--print-reply',
             '--reply-timeout=%d' % int(timeout * 1000), '--dest=' + dest, path, method]
            + list(args),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=self.child_env(), timeout=timeout + 5)
        return RunResult(r.returncode, r.stdout.decode('utf-8', 'replace'),
                         r.stderr.decode('utf-8', 'replace'))

    def name_has_owner(self, name):
        r = self.dbus_call('org.freedesktop.DBus', '/org/freedesktop/DBus',
                           'org.freedesktop.DBus.NameHasOwner', 'string:' + name, timeout=5)
        return 'boolean true' in r.stdout

    def _get_property(self, path, iface, prop):
        return self.dbus_call(BUS_NAME, path, 'org.freedesktop.DBus.Properties.Get',
                              'string:' + iface, 'string:' + prop, timeout=5)

    def _default_collection(self):
        r = self.dbus_call(BUS_NAME, '/org/freedesktop/secrets',
                           'org.freedesktop.Secret.Service.ReadAlias', 'string:default',
                           timeout=5)
        m = re.search(r'object path "([^"]+)"', r.stdout)
        if not m or m.group(1) == '/':
            return None
        return m.group(1)

    def is_locked(self):
        """True / False for the default collection, None when there is none."""
        r = self._get_property(DEFAULT_ALIAS, 'org.freedesktop.Secret.Collection', 'Locked')
        if r.returncode != 0:
            return None
        return 'boolean true' in r.stdout

    def lock(self, timeout=10):
        """Lock the database (MainWindow.lockAllDatabases); waits until it is."""
        r = self.dbus_call(MAINWINDOW_NAME, '/keepassxc', MAINWINDOW_NAME + '.lockAllDatabases',
                           timeout=timeout)
        if r.returncode != 0:
            raise KeePassXCError('lockAllDatabases failed: %s' % r.stderr.strip())
        if not self._wait(lambda: self.is_locked() is True, timeout):
            raise KeePassXCError('database did not lock')

    def unlock(self, timeout=10, password=None):
        """
        Type the password into the Unlock Database dialog (or, when no dialog
        is up, into the locked main window) and press Return; waits until the
        collection is unlocked.
        """
        target = self.wait_dialog(UNLOCK_TITLE, timeout=0.5)
        wid = target[0] if target else self.main_window
        self._focus(wid)
        self._xdotool(['key', '--clearmodifiers', 'ctrl+a'])
        self._xdotool(['type', '--delay', '5', '--file', '-'],
                      input=password if password is not None else DB_PASSWORD)
        self._xdotool(['key', 'Return'])
        if not self._wait(lambda: self.is_locked() is False, timeout):
            raise KeePassXCError('database did not unlock')
        # the dialog goes away once the database is open
        self._wait(lambda: not self.dialogs(UNLOCK_TITLE), timeout)

    def _wait(self, cond, timeout, step=0.05):
        deadline = time.monotonic() + timeout
        while True:
            if cond():
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(step)

    # -- windows ---------------------------------------------------------------
    def _xdotool(self, args, input=None, check=False):
        r = subprocess.run(['xdotool'] + args,
                           input=input.encode() if input is not None else None,
                           stdin=None if input is not None else subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=self._x_env(), timeout=RUN_TIMEOUT)
        if check and r.returncode != 0:
            raise KeePassXCError('xdotool %s failed: %s' % (args[0], r.stderr.decode().strip()))
        return RunResult(r.returncode, r.stdout.decode('utf-8', 'replace'),
                         r.stderr.decode('utf-8', 'replace'))

    def _windows(self):
        """[(window id, title)] of visible windows on the private display."""
        r = self._xdotool(['search', '--onlyvisible', '--name', '.'])
        wins = []
        for wid in r.stdout.split():
            n = self._xdotool(['getwindowname', wid])
            if n.returncode == 0:
                wins.append((wid, n.stdout.rstrip('\n')))
        return wins

    def main_window_title(self):
        for wid, title in self._windows():
            if wid == self.main_window:
                return title
        return None

    def dialogs(self, title=None):
        """
        Titles of visible KeePassXC windows other than the main window
        (optionally only those containing `title`).
        """
        return [t for _, t in self._dialog_windows(title)]

    def _dialog_windows(self, title=None):
        return [(w, t) for w, t in self._windows()
                if w != self.main_window and (title is None or title in t)]

    def wait_dialog(self, title=None, timeout=10):
        """(window id, title) of the first dialog matching, or None after timeout."""
        found = []

        def look():
            found[:] = self._dialog_windows(title)
            return bool(found)
        return found[0] if self._wait(look, timeout) else None

    def wait_no_dialog(self, title=None, timeout=10):
        return self._wait(lambda: not self._dialog_windows(title), timeout)

    def _focus(self, wid):
        self._xdotool(['windowfocus', wid])
        self._wait(lambda: self._xdotool(['getwindowfocus']).stdout.strip() == wid, 2)

    def answer_access(self, allow=True, future=False, timeout=10):
        """
        Answer the Access Request dialog: allow=True presses its default
        button, "Allow Selected" (future=True: "Allow All & Future", Alt+F);
        allow=False presses Escape (no decision: with ConfirmAccessItem=true
        the prompt completes dismissed; with false KeePassXC 2.7.4 goes on
        as if allowed).  Returns whether a dialog was there to answer.
        """
        d = self.wait_dialog(ACCESS_TITLE, timeout)
        if not d or d[1] != ACCESS_TITLE:
            return False
        self._focus(d[0])
        if allow and future:
            self._xdotool(['key', 'alt+f'])
        else:
            self._xdotool(['key', 'Return' if allow else 'Escape'])
        self._wait(lambda: d[0] not in [w for w, _ in self._windows()], 5)
        return True

    def answer_delete(self, confirm=True, timeout=10):
        """
        Answer a "Move entry to recycle bin?" / "Delete entry?" question:
        confirm=True moves the focus from the default button (Cancel) to
        Move/Delete and presses it (Tab, space); False presses Escape.
        Returns whether a dialog was there to answer.
        """
        found = []

        def look():
            found[:] = [(w, t) for w, t in self._dialog_windows() if t in DELETE_TITLES]
            return bool(found)
        if not self._wait(look, timeout):
            return False
        wid = found[0][0]
        self._focus(wid)
        if confirm:
            self._xdotool(['key', 'Tab'])
            self._xdotool(['key', 'space'])
        else:
            self._xdotool(['key', 'Escape'])
        self._wait(lambda: wid not in [w for w, _ in self._windows()], 5)
        return True

    def dismiss_all(self, timeout=5):
        """Press Escape in every dialog until none is left; returns their titles."""
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            wins = self._dialog_windows()
            if not wins:
                return seen
            for wid, title in wins:
                seen.append(title)
                self._focus(wid)
                self._xdotool(['key', 'Escape'])
            time.sleep(0.2)
        return seen

    # -- database contents (keepassxc-cli; never prints secrets) ------------------
    def cli(self, args, timeout=RUN_TIMEOUT):
        """keepassxc-cli CMD -q DB ARGS... with the password on stdin."""
        r = subprocess.run(['keepassxc-cli', args[0], '-q', self.db_path] + list(args[1:]),
                           input=(DB_PASSWORD + '\n').encode(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=self._cli_env(), timeout=timeout)
        return RunResult(r.returncode, r.stdout.decode('utf-8', 'replace'),
                         r.stderr.decode('utf-8', 'replace'))

    def wait_saved(self, timeout=10):
        """
        Wait for KeePassXC to have saved a change made just before the call:
        it saves 150 ms after a change (AutoSaveAfterEveryChange), and the
        save takes about as long again (key derivation, atomic rename).  So:
        0.35 s, then until the file has not changed for 0.2 s.
        """
        time.sleep(0.35)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                m = os.stat(self.db_path).st_mtime
            except OSError:
                m = None
            time.sleep(0.1)
            try:
                m2 = os.stat(self.db_path).st_mtime
            except OSError:
                m2 = None
            if m is not None and m == m2 and time.time() - m2 >= 0.2:
                return True
        return False

    def group_entries(self, group, settle=True):
        """
        Titles of the entries directly in `group` as saved on disk ([] if no
        such group); settle: wait_saved() first.
        """
        if settle:
            self.wait_saved()
        r = self.cli(['ls', group])
        if r.returncode != 0:
            return []
        return [l for l in r.stdout.split('\n') if l and not l.endswith('/')
                and l != '[empty]']

    def recycle_bin_entries(self, include_probe=False, settle=True):
        """Titles (labels) in the Recycle Bin; the start-up probe is left out."""
        titles = self.group_entries(RECYCLE_BIN, settle)
        if not include_probe:
            titles = [t for t in titles if t != PROBE_LABEL]
        return titles

    def exposed_entries(self, settle=True):
        return self.group_entries(EXPOSED_GROUP, settle)

    # -- clients -----------------------------------------------------------------
    def spawn_secret_tool(self, args, input=None):
        """secret-tool started in the background (Popen; communicate() it)."""
        p = subprocess.Popen(['secret-tool'] + list(args),
                             stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=self.child_env())
        if input is not None:
            p.stdin.write(input.encode())
            p.stdin.close()
            p.stdin = None
        return p

    def __repr__(self):
        return '<KeePassXC display=%s bus=%s started in %ss>' % (
            self.display, self.bus_address, self.start_seconds)


# --------------------------------------------------------------------------
# one instance per test module

KPXC = None


def setUpModule(**settings):
    """Start the module's KeePassXC (keepassxc.KPXC)."""
    global KPXC
    KPXC = KeePassXC(**settings)
    KPXC.start()


def tearDownModule():
    global KPXC
    if KPXC is not None:
        KPXC.stop()
        KPXC = None


class KeePassXCEnv(provider.ProviderEnv):
    """
    provider.ProviderEnv on KeePassXC, made with the KeePassXC settings
    given (for GCTestCase); env.provider is the KeePassXC.
    """

    PROVIDER = KeePassXC
    DIR = 'kpxc'


# --------------------------------------------------------------------------
# self-test

def _selftest():
    t0 = time.monotonic()
    k = KeePassXC()
    k.start()
    try:
        print('started in %.2fs %r' % (k.start_seconds, k.timings))
        secret = 'kpxc-selftest-' + uuid.uuid4().hex       # fake test value
        attrs = ['xdg:schema', 'kpxc.SelfTest', 'service', 'selftest']
        t = time.monotonic()
        r = k.secret_tool(['store', '--label=kpxc selftest'] + attrs, input=secret)
        assert r.returncode == 0, 'store failed: %s' % r.stderr
        t_store = time.monotonic() - t
        t = time.monotonic()
        r = k.secret_tool(['lookup'] + attrs)
        t_lookup = time.monotonic() - t
        assert r.returncode == 0 and r.stdout == secret, 'lookup did not read back'
        assert k.dialogs() == [], 'unexpected dialogs %r' % k.dialogs()
        t = time.monotonic()
        k.lock()
        assert k.is_locked() is True
        t_lock = time.monotonic() - t
        t = time.monotonic()
        p = k.spawn_secret_tool(['lookup'] + attrs)     # raises the Unlock dialog
        assert k.wait_dialog(UNLOCK_TITLE, 10), 'no Unlock Database dialog'
        k.unlock()
        out, err = p.communicate(timeout=RUN_TIMEOUT)
        t_unlock = time.monotonic() - t
        assert p.returncode == 0 and out.decode() == secret, 'lookup after unlock failed'
        r = k.secret_tool(['clear'] + attrs)
        assert r.returncode == 0, 'clear failed'
        assert k.secret_tool(['lookup'] + attrs).returncode != 0, 'item still there'
        assert k.recycle_bin_entries() == ['kpxc selftest'], k.recycle_bin_entries()
        assert k.dialogs() == [], 'dialogs left: %r' % k.dialogs()
        print('store %.3fs, lookup %.3fs, lock %.3fs, lookup+unlock dialog %.3fs; '
              'recycle bin %r' % (t_store, t_lookup, t_lock, t_unlock, k.recycle_bin_entries()))
    finally:
        t = time.monotonic()
        k.stop()
        t_stop = time.monotonic() - t
    print('OK: self-test passed in %.2fs (stop %.2fs)' % (time.monotonic() - t0, t_stop))


if __name__ == '__main__':
    _selftest()
