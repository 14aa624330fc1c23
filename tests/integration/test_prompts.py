#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
gnome-keyring's unlock prompt, shown for real (galileo-credential(1) SECRET SERVICE PROVIDERS:
no keystore call waits without bound; keystore/secret_service.c, top comment):
gnome-keyring-daemon with its prompter, gcr-prompter, drawing on a private Xvfb.

  a. the login collection locked, nobody answers: `token --refresh` exits 6
     within timeout + 1.5 s with the one line saying a person is being
     asked, and nothing changes;
  b. the test types the password into the prompt while the call waits: the
     call succeeds ("an interactive user may still be given the prompt
     within that time");
  c. after (a), the dialog is still up (gnome-keyring 42.1 aborts on
     Prompt.Dismiss of a showing unlock prompt, so the module leaves it);
     answering it unlocks the keyring, the daemon is still the same
     process, and the next call works.

The world (PromptEnv, a harness.Env): Xvfb on a free display (-displayfd),
then a session dbus-daemon with the standard session configuration (so
org.gnome.keyring.SystemPrompter is activatable from
/usr/share/dbus-1/services) started with DISPLAY naming that Xvfb, private
HOME and XDG directories, and gnome-keyring-daemon --foreground --unlock
--components=secrets with the password on stdin.  Nothing comes from the
user's own session: every child gets an environment built from scratch
(no DISPLAY, DBUS_SESSION_BUS_ADDRESS or XDG_* of the user's), and every
process started here, and whatever the bus activated (gcr-prompter), is
stopped by session id at the end, on failure too.

The keyring password is harness.KEYRING_PASSWORD, a fixed test value; it
goes only to the stdin of gnome-keyring-daemon and xdotool.

Needs Xvfb, xdotool, gnome-keyring and gcr (gcr-prompter); Debian:
apt-get install gnome-keyring gcr xvfb xdotool.  Skipped with the reason
when missing.
"""

import os
import select
import shutil
import signal
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GCTestCase, KEYRING_PASSWORD, stop_process_group  # noqa: E402

TIMEOUT = 3             # the config's timeout
SLACK = 1.5             # what a bounded call may take beyond it
WAITING = 'waiting for someone to answer a prompt'
PROMPT_TITLE = 'Unlock Login Keyring'
LOGIN = '/org/freedesktop/secrets/collection/login'
PROMPTER_SERVICE = '/usr/share/dbus-1/services/org.gnome.keyring.SystemPrompter.service'

TOOLS = (('Xvfb', 'xvfb'), ('xdotool', 'xdotool'), ('gnome-keyring-daemon', 'gnome-keyring'),
         ('dbus-daemon', 'dbus'), ('dbus-send', 'dbus'), ('secret-tool', 'libsecret-tools'))


def missing():
    """why this module cannot run here, or None"""
    gone = [(prog, pkg) for prog, pkg in TOOLS if not shutil.which(prog)]
    if not os.path.exists(PROMPTER_SERVICE):
        gone.append((PROMPTER_SERVICE, 'gcr'))
    if not gone:
        return None
    return 'not installed: %s (apt-get install %s)' % (
        ', '.join(p for p, _ in gone), ' '.join(sorted({k for _, k in gone})))


def session_of(pid):
    """the session id of a process, None when it is gone"""
    try:
        with open('/proc/%d/stat' % pid) as f:
            stat = f.read()
    except OSError:
        return None
    # pid (comm) state ppid pgrp session ...; comm may hold spaces and ')'
    fields = stat[stat.rindex(')') + 2:].split()
    return int(fields[3])


def processes_in_sessions(sids):
    """pids of this user's processes whose session is one of sids"""
    found = []
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            if os.stat('/proc/%d' % pid).st_uid != os.getuid():
                continue
        except OSError:
            continue
        if session_of(pid) in sids:
            found.append(pid)
    return found


def stop_sessions(sids, timeout=5):
    """SIGTERM, then SIGKILL, every process left in sessions we made"""
    sids = set(sids)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = processes_in_sessions(sids)
        if not pids:
            return []
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        while processes_in_sessions(sids) and time.monotonic() < deadline:
            time.sleep(0.05)
    return processes_in_sessions(sids)


class PromptEnv(harness.Env):
    """
    harness.Env whose session bus can activate gnome-keyring's prompter and
    whose prompter draws on a private Xvfb (self.display).
    """

    def __init__(self):
        super().__init__()
        self.display = None
        self._sessions = set()      # session ids of everything started here

    def _popen(self, argv, **kw):
        p = subprocess.Popen(argv, start_new_session=True, **kw)
        self._procs.append(p)
        self._sessions.add(p.pid)   # a new session's id is its leader's pid
        return p

    def _start_xvfb(self):
        r, w = os.pipe()
        with open(os.path.join(self.logdir, 'xvfb.log'), 'wb') as log:
            try:
                self._popen(['Xvfb', '-displayfd', str(w), '-nolisten', 'tcp', '-noreset',
                             '-screen', '0', '1024x768x24'],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(w,),
                            env=self.base_env())
            finally:
                os.close(w)
        self.display = harness.xvfb_display(r, 30, self.logdir)

    def bus_env(self):
        """what the bus (and so what it activates: gcr-prompter) runs with"""
        env = self.base_env()
        env.update(DISPLAY=self.display,
                   NO_AT_BRIDGE='1',              # no accessibility bus for GTK
                   GSETTINGS_BACKEND='memory',    # no dconf-service
                   GDK_BACKEND='x11')
        return env

    def _start_dbus(self):
        self._start_xvfb()
        sock = os.path.join(self.dbusdir, 'bus')
        with open(os.path.join(self.logdir, 'dbus.log'), 'wb') as log:
            # --session: the standard session configuration, with the
            # standard service directories (/usr/share/dbus-1/services)
            p = self._popen(['dbus-daemon', '--session', '--nofork',
                             '--address=unix:path=' + sock, '--print-address=1'],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                            env=self.bus_env())
        ready, _, _ = select.select([p.stdout], [], [], 15)
        addr = p.stdout.readline().decode().strip() if ready else ''
        p.stdout.close()
        if not addr:
            raise RuntimeError('dbus-daemon did not start (see %s)' % self.logdir)
        self.dbus_address = addr

    def _start_keyring(self):
        n = len(self._procs)
        super()._start_keyring()
        self.keyring = self._procs[-1]
        for p in self._procs[n:]:
            self._sessions.add(p.pid)

    def restart_keyring(self):
        """stop gnome-keyring-daemon and start it again: unlocked, from its file"""
        stop_process_group(self.keyring)
        self._procs.remove(self.keyring)
        deadline = time.monotonic() + 10
        while self.name_has_owner() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._start_keyring()

    def close(self):
        sessions = set(self._sessions)
        try:
            super().close()
        finally:
            left = stop_sessions(sessions)
            if left:
                sys.stderr.write('test_prompts: processes left: %r\n' % left)

    # -- the bus ---------------------------------------------------------------
    def dbus_send(self, *args, timeout=10):
        env = self.base_env()
        env['DBUS_SESSION_BUS_ADDRESS'] = self.dbus_address
        return subprocess.run(['dbus-send', '--session', '--print-reply',
                               '--reply-timeout=%d' % (timeout * 1000)] + list(args),
                              env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout + 5)

    def name_has_owner(self, name='org.freedesktop.secrets'):
        r = self.dbus_send('--dest=org.freedesktop.DBus', '/org/freedesktop/DBus',
                           'org.freedesktop.DBus.NameHasOwner', 'string:' + name)
        return b'boolean true' in r.stdout

    def lock(self):
        r = self.dbus_send('--dest=org.freedesktop.secrets', '/org/freedesktop/secrets',
                           'org.freedesktop.Secret.Service.Lock', 'array:objpath:' + LOGIN)
        if r.returncode != 0:
            raise RuntimeError('Lock failed: %s' % r.stderr.decode().strip())
        if not self.is_locked():
            raise RuntimeError('Lock did not lock the login collection')

    def is_locked(self):
        r = self.dbus_send('--dest=org.freedesktop.secrets', LOGIN,
                           'org.freedesktop.DBus.Properties.Get',
                           'string:org.freedesktop.Secret.Collection', 'string:Locked')
        return b'boolean true' in r.stdout

    # -- the display ---------------------------------------------------------
    def xdotool(self, args, input=None):
        env = self.base_env()
        env['DISPLAY'] = self.display
        return subprocess.run(['xdotool'] + list(args),
                              input=input.encode() if input is not None else None,
                              stdin=None if input is not None else subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                              timeout=30)

    def prompts(self):
        """window ids of the visible unlock dialogs"""
        r = self.xdotool(['search', '--onlyvisible', '--name', PROMPT_TITLE])
        return r.stdout.decode().split()

    def wait_prompt(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            w = self.prompts()
            if w:
                return w[0]
            time.sleep(0.05)
        return None

    def answer(self, wid, password=KEYRING_PASSWORD):
        """type the password into the dialog and press Return"""
        self.xdotool(['windowfocus', '--sync', wid])
        self.xdotool(['type', '--file', '-'], input=password)
        self.xdotool(['key', 'Return'])

    def wait(self, cond, timeout=10):
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True


def setUpModule():
    why = missing()
    if why:
        raise unittest.SkipTest(why)
    env = PromptEnv()
    try:
        env.start()
    except BaseException:
        env.close()
        raise
    harness.ENV = env


def tearDownModule():
    harness.tearDownModule()


class Prompts(GCTestCase):

    def setUp(self):
        if harness.ENV is None:
            self.skipTest('harness environment did not start')
        self.unlocked(harness.ENV)
        super().setUp()
        self.env.write_config(token_cache='keystore', extra='timeout = %d\n' % TIMEOUT)
        self.keyring_pid = self.env.keyring.pid

    def tearDown(self):
        try:
            self.unlocked(self.env)
        finally:
            super().tearDown()

    @staticmethod
    def unlocked(env):
        """whatever a test left: the dialogs answered, else the daemon restarted"""
        for wid in env.prompts():
            env.answer(wid)
        if env.is_locked() and not env.wait(lambda: not env.is_locked(), 3):
            env.restart_keyring()
        env.wait(lambda: not env.prompts(), 5)

    def timed(self, args, **kw):
        t0 = time.monotonic()
        res = self.env.run(args, **kw)
        return res, time.monotonic() - t0

    def assertGaveUp(self, res, took, what):
        self.assertFails(res, 6, WAITING)
        self.assertLessEqual(took, TIMEOUT + SLACK, '%s took %.2f s' % (what, took))
        sys.stderr.write('%s: exit 6 after %.2f s ... ' % (what, took))

    def assertCredentialSent(self, expected, what='the endpoint'):
        """the last request carried `expected` (compared, never shown)"""
        got = self.server.last.credential if self.server.last else None
        if got != expected:
            self.fail('%s: got a %s credential, not the expected %s one (secrets not shown)'
                      % (what, got[0] if got else 'missing', expected[0]))

    def assertSameDaemon(self):
        self.assertIsNone(self.env.keyring.poll(), 'gnome-keyring-daemon died')
        self.assertEqual(self.env.keyring.pid, self.keyring_pid)
        self.assertTrue(self.env.name_has_owner(), 'nobody owns org.freedesktop.secrets')

    def test_a_c_nobody_answers_then_the_leftover_dialog(self):
        key = self.login()
        tok = self.token(expect_new=False)
        before = self.env.keyring_snapshot()
        count = self.server.count
        self.env.lock()
        # (a) nobody answers
        res, took = self.timed(['token', '--refresh'])
        self.assertGaveUp(res, took, 'token --refresh')
        self.assertEqual(self.server.count, count, 'the endpoint was asked')
        self.assertTrue(self.env.is_locked())
        self.assertSameDaemon()
        # the dialog is left up, by design
        wid = self.env.wait_prompt(timeout=2)
        self.assertIsNotNone(wid, 'no unlock dialog is showing')
        # another call meanwhile, with that dialog still up: bounded as well
        res, took = self.timed(['token', '--refresh'])
        self.assertGaveUp(res, took, 'token --refresh (dialog still up)')
        self.assertSameDaemon()
        self.assertEqual(self.server.count, count)
        # (c) answering the leftover dialog unlocks the keyring
        self.env.answer(self.env.wait_prompt(timeout=2))
        self.assertTrue(self.env.wait(lambda: not self.env.is_locked(), 10),
                        'answering the leftover dialog did not unlock the keyring')
        # the abandoned prompt of the second call has nothing left to ask
        self.assertTrue(self.env.wait(lambda: not self.env.prompts(), 5),
                        'a dialog is still up after unlocking')
        self.assertSameDaemon()
        self.assertKeyringUnchanged(before, 'after unlocking')
        self.assertSecretEqual(self.token(expect_new=False), tok, 'cached token')
        res, took = self.timed(['token', '--refresh'])
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertCredentialSent(('api-key', key))
        self.assertSecretEqual(res.stdout, self.server.last.token + '\n', 'token')

    def test_b_answered_while_the_call_waits(self):
        key = self.login()
        count = self.server.count
        self.env.lock()
        t0 = time.monotonic()
        sp = self.env.spawn(['token', '--refresh'])
        wid = self.env.wait_prompt(timeout=TIMEOUT)
        self.assertIsNotNone(wid, 'no unlock dialog within the timeout')
        self.env.answer(wid)
        rc, out, err = sp.finish()
        took = time.monotonic() - t0
        self.assertEqual(rc, 0, 'token --refresh, unlocked in time: %r' % err)
        self.assertEqual(err, '')
        self.assertLess(took, TIMEOUT + SLACK)
        sys.stderr.write('answered: exit 0 after %.2f s ... ' % took)
        self.assertEqual(self.server.count, count + 1)
        self.assertCredentialSent(('api-key', key))
        self.assertSecretEqual(out, self.server.last.token + '\n', 'token')
        self.assertFalse(self.env.is_locked())
        self.assertTrue(self.env.wait(lambda: not self.env.prompts(), 5))
        self.assertSameDaemon()
        # and it stays unlocked for the next call: no prompt
        res, took = self.timed(['token', '--refresh'])
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(self.env.prompts(), [])


if __name__ == '__main__':
    harness.main()
