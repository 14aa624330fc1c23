#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The Secret Service module and a keyring daemon that dies in the middle of a
store (galileo-credential(1) SECRET SERVICE PROVIDERS, TOKEN LIFETIME; issue
16 items 8 and 9), on a private bus and gnome-keyring of this module
(test_faults_keyring.PrivateBus), never the harness's own:

  - an item left without its secret (gnome-keyring's CreateItem saves the
    item, then its secret, so a daemon killed in between leaves one) is
    passed over by `status`, `status --json` and docker `list` exactly as
    readers pass it over: they name the credential tokens come from;
  - a daemon that dies after the new item was written and before it was
    read back makes `login` say it cannot reach the Secret Service (the
    line docs/failure-modes.md gives), never that KeePassXC expanded
    placeholders.  The kill lands in that window every time: the program
    runs under strace with every D-Bus message it sends held back
    (sendmsg delayed at entry), dbus-monitor shows the reply to the new
    item's properties (the last call before the read-back), and the test
    kills the daemon then, while the read-back is still held back.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_faults_keyring as faults  # noqa: E402
from harness import KEY_SCHEMA  # noqa: E402

DOCKER = 'docker-credential-galileo'
SEND_DELAY_US = 150000      # each D-Bus message the program sends waits this long


def setUpModule():
    faults.setUpModule()


def tearDownModule():
    faults.tearDownModule()


class CutShortStore(faults.PrivateBusCase):
    """status and list name the credential readers use, not an item without a secret"""

    def test_status_and_list_pass_over_an_item_without_its_secret(self):
        bus = {'DBUS_SESSION_BUS_ADDRESS': self.world.address}
        old = self.set_up_stored('keystore', self.world)
        # what a daemon killed between CreateItem's item and its secret
        # leaves: the newest generation, no secret, another username
        self.store_without_secret(kind='bearer', organization='acme')
        self.assertEqual(len([i for i in self.world.items(self.url)
                              if i.schema == KEY_SCHEMA]), 2)
        # the token comes from the old credential ...
        self.token(['--refresh'], env_extra=bus, expect_new=True)
        self.assertEqual(self.server.last.credential, ('api-key', old))
        # ... and status says so
        rc, out, err = self.env.run(['status', '--json'], env_extra=bus)
        self.assertEqual(rc, 0, err)
        servers = json.loads(out)['servers']
        self.assertEqual([s['server'] for s in servers], [self.url])
        self.assertEqual((servers[0]['kind'], servers[0]['username'],
                          servers[0]['organization']), ('api-key', '', ''))
        self.assertEqual(len(servers[0]['tokens']), 1)
        rc, out, err = self.env.run(['status'], env_extra=bus)
        self.assertEqual(rc, 0, err)
        self.assertIn('kind: api-key', out)
        self.assertNotIn('cut', out)
        self.assertNotIn('bearer', out)
        rc, out, err = self.env.run(['list'], argv0=DOCKER, env_extra=bus)
        self.assertEqual((rc, err), (0, ''))
        self.assertEqual(json.loads(out), {self.url: ''})

    def test_a_server_with_only_an_item_without_its_secret_is_not_listed(self):
        bus = {'DBUS_SESSION_BUS_ADDRESS': self.world.address}
        self.store_without_secret(ahead=0)
        self.assertFails(self.env.run(['token'], env_extra=bus), 3, 'no credential stored')
        rc, out, err = self.env.run(['list'], argv0=DOCKER, env_extra=bus)
        self.assertEqual((rc, json.loads(out)), (0, {}))
        self.assertFails(self.env.run(['status'], env_extra=bus), 3, 'no credential stored')


def strace_delays_sends():
    """None when strace can start a program and delay its sendmsg here, else why not"""
    if not shutil.which('strace'):
        return 'strace is not installed (apt-get install strace)'
    r = subprocess.run(['strace', '-f', '-qq', '-o', '/dev/null', '-e', 'trace=sendmsg',
                        '-e', 'inject=sendmsg:delay_enter=1', 'true'],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode != 0:
        return 'strace cannot trace here: %s' % r.stderr.decode('utf-8', 'replace').strip()
    return None


class DiesBeforeReadBack(faults.PrivateBusCase):

    def setUp(self):
        why = strace_delays_sends()
        if why:
            self.skipTest(why)
        super().setUp()

    def kill_before_read_back(self, sp, monitor_log):
        """
        Follow dbus-monitor's log: after CreateItem, the program asks for
        the new item's properties (GetAll on the item's path); once that
        is answered, the next thing it sends is the read-back.  Kill the
        daemon then.  True when it was killed in that window.
        """
        deadline = time.time() + 30
        stage, serial, seen = 'create', None, 0
        while time.time() < deadline and sp.proc.poll() is None:
            with open(monitor_log, 'rb') as f:
                lines = f.read().decode('utf-8', 'replace').split('\n')
            for line in lines[seen:-1]:
                if stage == 'create' and 'member=CreateItem' in line:
                    stage = 'getall'
                elif (stage == 'getall' and line.startswith('method call') and
                      'member=GetAll' in line and '/collection/' in line):
                    serial = line.split(' serial=')[1].split(' ')[0]
                    stage = 'reply'
                elif (stage == 'reply' and line.startswith('method return') and
                      ' reply_serial=%s' % serial in line + ' '):
                    self.world.kill_keyring(signal.SIGKILL)
                    return True
                elif 'member=GetSecret' in line and stage != 'create':
                    return False    # too late: the read-back went out
            seen = max(seen, len(lines) - 1)
            time.sleep(0.005)
        return False

    def test_login_says_it_cannot_reach_the_secret_service(self):
        bus = {'DBUS_SESSION_BUS_ADDRESS': self.world.address}
        old = self.set_up_stored('keyctl', self.world)
        new = self.env.new_key()
        self.server.accept_key(new)
        log = os.path.join(self.world.root, 'log', 'monitor-readback.log')
        with open(log, 'wb') as out:
            mon = subprocess.Popen(['dbus-monitor', '--address', self.world.address,
                                    "type='method_call'", "type='method_return'"],
                                   stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.time() + 10
            while b'member=NameLost' not in open(log, 'rb').read():
                self.assertLess(time.time(), deadline, 'dbus-monitor did not start')
                time.sleep(0.02)
            # LeakSanitizer cannot run under ptrace (the sanitizer build)
            asan = ':'.join(o for o in (os.environ.get('ASAN_OPTIONS'), 'detect_leaks=0') if o)
            sp = self.env.spawn(['login'], input=new + '\n',
                                env_extra=dict(bus, ASAN_OPTIONS=asan), wrapper=[
                'strace', '-f', '-qq', '-o', '/dev/null', '-e', 'trace=sendmsg',
                '-e', 'inject=sendmsg:delay_enter=%d' % SEND_DELAY_US])
            killed = self.kill_before_read_back(sp, log)
            rc, out, err = sp.finish(timeout=60)
            # strace's own complaints are not the program's
            res = harness.RunResult(rc, out, ''.join(
                l for l in err.splitlines(True) if not l.startswith('strace: ')))
        finally:
            mon.terminate()
            mon.wait(5)
        self.assertTrue(killed, 'the daemon was not killed between the write and the read-back')
        self.assertFails(res, 6, 'cannot reach the Secret Service', 'GALILEO_API_KEY')
        self.assertNotIn('KeePassXC', res.stderr)
        self.assertNotIn('did not keep the secret', res.stderr)
        # and, once the daemon is back, exactly one credential is in use
        self.world.start_keyring()
        rc, out, err = self.env.run(['status', '--json'], env_extra=bus)
        self.assertEqual(rc, 0, err)
        self.assertEqual([s['server'] for s in json.loads(out)['servers']], [self.url])
        self.token(['--refresh'], env_extra=bus, expect_new=True)
        self.assertIn(self.server.last.credential, (('api-key', old), ('api-key', new)))


if __name__ == '__main__':
    harness.main()
