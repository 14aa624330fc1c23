#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
First use on the terminal (galileo-credential(1) FIRST USE; issue 18 item 1):
a `get` in the git, docker and credential-helper-spec dialects, and `token`,
for a known server with nothing stored, asks on the controlling terminal as
`login` does (echo off, a prompt ending in ': ' that names the server),
verifies the key with one exchange, stores it, and answers with the token.

Each program runs in a session of its own whose controlling terminal is a
new pseudo-terminal (python's pty: os.openpty, setsid, TIOCSCTTY), while its
stdin is the request on a pipe, as git and docker run helpers.  The test
reads the prompt on the terminal's master side and types the answer there.

  - prompted and stored with a terminal: the endpoint saw the typed key
    once, the keyring holds it, the answer carries the token it gave;
  - real `git credential fill` with GIT_TERMINAL_PROMPT unset: the same;
  - silent with GIT_TERMINAL_PROMPT=0 (git), and with no controlling
    terminal at all (setsid, every dialect): no prompt, nothing stored,
    no request;
  - an empty answer and Ctrl-C change nothing (and Ctrl-C leaves echo on);
  - a server that is not known is never prompted for;
  - a key the server refuses is not stored.
"""

import fcntl
import os
import select
import signal
import subprocess
import sys
import termios
import time

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GCTestCase, git_lines, parse_git_output  # noqa: E402

GIT = 'git-credential-galileo'
DOCKER = 'docker-credential-galileo'
NOT_FOUND = 'credentials not found in native keychain\n'


def setUpModule():
    harness.setUpModule()


def tearDownModule():
    harness.tearDownModule()


class Terminal:
    """What a run on a terminal gave: exit status, stdout, stderr, the screen, echo."""

    def __init__(self, returncode, stdout, stderr, screen, echo_after):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.screen = screen
        self.echo_after = echo_after


class FirstUseCase(GCTestCase):

    def run_on_terminal(self, argv, input, typed=None, env_extra=None, terminal=True,
                        timeout=harness.RUN_TIMEOUT, label=None, token_ok=True):
        """
        Run argv (a list; the program's links are on PATH) with `input` on
        stdin, in a new session.  terminal: a new pty is its controlling
        terminal; typed (text, sent with a newline, or b'\\x03' for Ctrl-C)
        goes to the terminal once something was shown there.  Without a
        terminal the session has none at all.
        """
        master = slave = None
        if terminal:
            master, slave = os.openpty()
            slave_name = os.ttyname(slave)

        def preexec():
            os.setsid()
            for s in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGPIPE):
                signal.signal(s, signal.SIG_DFL)
            if terminal:
                fd = os.open(slave_name, os.O_RDWR)    # the session's terminal now
                fcntl.ioctl(fd, termios.TIOCSCTTY, 0)
                os.close(fd)

        # the harness turns git's prompts off for everything else
        extra = {'GIT_TERMINAL_PROMPT': None}
        extra.update(env_extra or {})
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=self.env.child_env(extra),
                             cwd=self.env.home, preexec_fn=preexec)
        if slave is not None:
            os.close(slave)
        p.stdin.write(input.encode())
        p.stdin.close()
        p.stdin = None      # so communicate() does not flush it again
        screen = b''
        sent = typed is None
        echo_after = None
        deadline = time.time() + timeout
        try:
            while terminal and time.time() < deadline and p.poll() is None:
                r, _, _ = select.select([master], [], [], 0.05)
                if r:
                    try:
                        chunk = os.read(master, 4096)
                    except OSError:
                        chunk = b''
                    screen += chunk
                if not sent and screen.endswith(b': '):
                    time.sleep(0.2)     # let it turn echo off after the prompt
                    os.write(master, typed if isinstance(typed, bytes)
                             else typed.encode() + b'\n')
                    sent = True
            out, err = p.communicate(timeout=max(1, deadline - time.time()))
            if terminal:
                while select.select([master], [], [], 0.05)[0]:
                    try:
                        chunk = os.read(master, 4096)
                    except OSError:
                        break
                    if not chunk:
                        break
                    screen += chunk
                echo_after = bool(termios.tcgetattr(master)[3] & termios.ECHO)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise
        finally:
            if master is not None:
                os.close(master)
        res = Terminal(p.returncode, out.decode('utf-8', 'replace'),
                       err.decode('utf-8', 'replace'), screen.decode('utf-8', 'replace'),
                       echo_after)
        self.env.history.append(harness._Run(label or ' '.join(argv[:2]), argv[1:2],
                                             res.stdout, res.stderr + res.screen,
                                             token_ok=token_ok))
        return res

    def git_request(self, host=None):
        return git_lines('protocol=https', 'host=' + (host or '127.0.0.1:%d' % self.server.port))

    def stored_keys(self):
        return [i.secret for i in self.env.key_items(server=self.url)]

    def assertPrompted(self, res):
        self.assertIn("Galileo API key for '%s': " % self.url, res.screen)

    def assertStoredAndVerified(self, key, count_before):
        self.assertEqual(self.server.count, count_before + 1, 'one exchange')
        self.assertEqual(self.server.last.credential, ('api-key', key))
        stored = self.stored_keys()
        self.assertEqual(len(stored), 1, 'one credential stored')
        self.assertSecretEqual(stored[0], key, 'the stored key')

    def assertNothingHappened(self, res, count_before):
        self.assertEqual(self.stored_keys(), [], 'something was stored')
        self.assertEqual(self.server.count, count_before, 'the endpoint was asked')
        self.assertNotIn('Galileo API key', res.screen, 'a prompt was shown')


class Prompted(FirstUseCase):
    """A person at the terminal is asked, and the answer is stored and used."""

    def test_git_get(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        before = self.server.count
        res = self.run_on_terminal([GIT, 'get'], self.git_request(), key)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertPrompted(res)
        self.assertNotIn(key, res.screen, 'the key was echoed')
        self.assertStoredAndVerified(key, before)
        d, _ = parse_git_output(res.stdout)
        self.assertEqual(d.get('username'), 'token')
        self.assertSecretEqual(d.get('password'), self.server.last.token, 'password')
        self.assertEqual(res.stderr, '')
        # and the next get is an ordinary one: no prompt, the cached token
        res2 = self.run_on_terminal([GIT, 'get'], self.git_request(), None)
        self.assertEqual(res2.returncode, 0, res2.stderr)
        self.assertEqual(res2.screen, '')
        self.assertEqual(parse_git_output(res2.stdout)[0].get('password'), d['password'])
        self.assertEqual(self.server.count, before + 1)

    def test_git_get_keeps_the_username_asked_for(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        res = self.run_on_terminal([GIT, 'get'], git_lines(
            'protocol=https', 'host=127.0.0.1:%d' % self.server.port, 'username=alice'), key)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(parse_git_output(res.stdout)[0].get('username'), 'alice')
        items = self.env.key_items(server=self.url)
        self.assertEqual([i.attributes.get('username') for i in items], ['alice'])

    def test_real_git_credential_fill(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        before = self.server.count
        res = self.run_on_terminal(
            ['git', 'credential', 'fill'], self.git_request(), key,
            env_extra={'GIT_TERMINAL_PROMPT': None}, label='git credential fill')
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertPrompted(res)
        self.assertNotIn('Username for', res.screen, "git's own prompt came")
        self.assertStoredAndVerified(key, before)
        d, _ = parse_git_output(res.stdout)
        self.assertSecretEqual(d.get('password'), self.server.last.token, 'password')

    def test_docker_get(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        before = self.server.count
        res = self.run_on_terminal([DOCKER, 'get'], self.url, key)
        self.assertEqual(res.returncode, 0, res.stdout)
        self.assertPrompted(res)
        self.assertStoredAndVerified(key, before)
        import json
        answer = json.loads(res.stdout)
        self.assertEqual(answer['Username'], 'token')
        self.assertSecretEqual(answer['Secret'], self.server.last.token, 'Secret')

    def test_spec_get(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        before = self.server.count
        res = self.run_on_terminal(['galileo-credential', 'get'],
                                   '{"uri":"%s/v1/things"}' % self.url, key)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertPrompted(res)
        self.assertStoredAndVerified(key, before)
        import json
        headers = json.loads(res.stdout)['headers']
        self.assertSecretEqual(headers['Authorization'][0],
                               'Bearer ' + self.server.last.token, 'Authorization')

    def test_token(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        before = self.server.count
        res = self.run_on_terminal(['galileo-credential', 'token'], '', key)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertPrompted(res)
        self.assertStoredAndVerified(key, before)
        self.assertSecretEqual(res.stdout, self.server.last.token + '\n', 'token printed')

    def test_a_refused_key_is_not_stored(self):
        key = self.env.new_key()        # not accepted
        before = self.server.count
        res = self.run_on_terminal([GIT, 'get'], self.git_request(), key)
        self.assertEqual(res.returncode, 4, res.stderr)
        self.assertEqual(res.stdout, '')
        self.assertOneErrorLine(res.stderr)
        self.assertEqual(self.server.count, before + 1)
        self.assertEqual(self.stored_keys(), [])


class NotPrompted(FirstUseCase):
    """Nobody there, git told not to ask, nothing typed: nothing changes."""

    def test_git_terminal_prompt_0(self):
        before = self.server.count
        res = self.run_on_terminal([GIT, 'get'], self.git_request(), None,
                                   env_extra={'GIT_TERMINAL_PROMPT': '0'})
        self.assertEqual((res.returncode, res.stdout, res.stderr), (0, '', ''))
        self.assertNothingHappened(res, before)

    def test_no_terminal_in_any_dialect(self):
        before = self.server.count
        cases = (
            ([GIT, 'get'], self.git_request(), (0, '', '')),
            ([DOCKER, 'get'], self.url, (1, NOT_FOUND, '')),
        )
        for argv, request, expected in cases:
            with self.subTest(argv=argv):
                res = self.run_on_terminal(argv, request, None, terminal=False,
                                           env_extra={'GIT_TERMINAL_PROMPT': None})
                self.assertEqual((res.returncode, res.stdout, res.stderr), expected)
        for argv, request in ((['galileo-credential', 'token'], ''),
                              (['galileo-credential', 'get'], '{"uri":"%s/x"}' % self.url)):
            with self.subTest(argv=argv):
                res = self.run_on_terminal(argv, request, None, terminal=False)
                self.assertEqual(res.returncode, 3, res.stderr)
                self.assertEqual(res.stdout, '')
                self.assertOneErrorLine(res.stderr, 'no credential stored')
        self.assertEqual(self.stored_keys(), [])
        self.assertEqual(self.server.count, before)

    def test_an_empty_answer(self):
        before = self.server.count
        res = self.run_on_terminal([GIT, 'get'], self.git_request(), '')
        self.assertPrompted(res)
        self.assertEqual((res.returncode, res.stdout, res.stderr), (0, '', ''))
        res = self.run_on_terminal([DOCKER, 'get'], self.url, '')
        self.assertPrompted(res)
        self.assertEqual((res.returncode, res.stdout), (1, NOT_FOUND))
        res = self.run_on_terminal(['galileo-credential', 'token'], '', '')
        self.assertPrompted(res)
        self.assertEqual(res.returncode, 3)
        self.assertOneErrorLine(res.stderr, 'no credential stored')
        self.assertEqual(self.stored_keys(), [])
        self.assertEqual(self.server.count, before)

    def test_ctrl_c(self):
        before = self.server.count
        res = self.run_on_terminal([GIT, 'get'], self.git_request(), b'\x03')
        self.assertPrompted(res)
        self.assertEqual(res.returncode, -signal.SIGINT, res.stderr)
        self.assertEqual(res.stdout, '')
        self.assertTrue(res.echo_after, 'the terminal was left with echo off')
        self.assertEqual(self.stored_keys(), [])
        self.assertEqual(self.server.count, before)

    def test_a_server_that_is_not_known(self):
        other = '127.0.0.1:%d' % harness.free_port()
        before = self.server.count
        res = self.run_on_terminal([GIT, 'get'], self.git_request(host=other), None)
        self.assertEqual((res.returncode, res.stdout, res.stderr, res.screen), (0, '', '', ''))
        res = self.run_on_terminal([DOCKER, 'get'], 'https://' + other, None)
        self.assertEqual((res.returncode, res.stdout, res.screen), (1, NOT_FOUND, ''))
        self.assertEqual(self.server.count, before)
        self.assertEqual(self.env.key_items(), [])

    def test_nothing_could_store_the_answer(self):
        # keystore = env: nowhere to store a key, so nobody is asked
        before = self.server.count
        res = self.run_on_terminal([GIT, 'get'], self.git_request(), None,
                                   env_extra={'GALILEO_CREDENTIAL_KEYSTORE': 'env'})
        self.assertEqual((res.returncode, res.stdout, res.stderr, res.screen), (0, '', '', ''))
        self.assertEqual(self.server.count, before)

    def test_a_stored_credential_is_not_asked_for_again(self):
        key = self.login()
        res = self.run_on_terminal([GIT, 'get'], self.git_request(), None)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.screen, '')
        self.assertIn('password=', res.stdout)
        self.assertSecretEqual(self.stored_keys()[0], key, 'stored key')


if __name__ == '__main__':
    harness.main()
