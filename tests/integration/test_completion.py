#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
Shell completion (issue 10): bash's own completion machinery drives the
script (bash_completion sourced, COMP_WORDS set, the function called, the
answers read from COMPREPLY); the zsh script is checked by zsh itself.
"""

import os
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GCTestCase  # noqa: E402

setUpModule = harness.setUpModule
tearDownModule = harness.tearDownModule

SRCDIR = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
BASH_SCRIPT = os.path.join(SRCDIR, 'completion', 'galileo-credential.bash')
ZSH_SCRIPT = os.path.join(SRCDIR, 'completion', '_galileo-credential')
BASH_COMPLETION = '/usr/share/bash-completion/bash_completion'

# compopt works only inside readline's completion: here, a no-op
DRIVER = r'''
compopt() { :; }
source "$BASH_COMPLETION"
source "$SCRIPT"
read -r -a COMP_WORDS <<< "$LINE"
[[ $LINE == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE=$LINE
COMP_POINT=${#LINE}
$FUNC "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
'''


class Bash(GCTestCase):

    def setUp(self):
        super().setUp()
        if not os.path.exists(BASH_COMPLETION):
            self.skipTest('bash-completion is not installed (Debian package bash-completion)')

    def complete(self, line, func='_galileo_credential', env_extra=None):
        extra = {'LINE': line, 'FUNC': func, 'SCRIPT': BASH_SCRIPT,
                 'BASH_COMPLETION': BASH_COMPLETION}
        extra.update(env_extra or {})
        env = self.env.child_env(extra)
        r = subprocess.run(['bash', '-c', DRIVER], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30, start_new_session=True)
        self.assertEqual(r.stderr.decode(), '')
        return sorted(x for x in r.stdout.decode().split('\n') if x)

    def test_commands(self):
        self.assertEqual(self.complete('galileo-credential lo'), ['login', 'logout'])
        self.assertIn('doctor', self.complete('galileo-credential '))
        self.assertIn('exec', self.complete('galileo-credential '))

    def test_options(self):
        self.assertEqual(self.complete('galileo-credential login --k'), ['--kind'])
        self.assertEqual(self.complete('galileo-credential token --'),
                         ['--help', '--min-ttl', '--org-id', '--org-slug', '--refresh',
                          '--server'])
        self.assertEqual(self.complete('galileo-credential status --j'), ['--json'])

    def test_kind_values(self):
        self.assertEqual(self.complete('galileo-credential login --kind '),
                         ['api-key', 'basic', 'bearer'])

    def test_dialects(self):
        self.assertEqual(self.complete('galileo-credential --protocol='),
                         ['docker', 'git', 'native'])
        self.assertEqual(self.complete('docker-credential-galileo ', '_docker_credential_galileo'),
                         ['erase', 'get', 'list', 'store', 'version'])
        self.assertEqual(self.complete('git-credential-galileo ', '_git_credential_galileo'),
                         ['capability', 'erase', 'get', 'store'])

    def test_configured_servers(self):
        self.env.write_config(extra='[https://api.acme.rungalileo.io]\ntimeout = 5\n')
        self.assertEqual(self.complete('galileo-credential token --server '),
                         sorted([self.url, 'https://api.acme.rungalileo.io']))

    def test_stored_servers(self):
        # issue 18 item 7: --server also offers the servers that hold a
        # stored credential (here two with no [section] in the configuration)
        for server in ('https://api.stored-one.example', 'https://api.stored-two.example:8443'):
            self.login(args=['--server', server, '--no-verify'], accept=False)
        t0 = time.monotonic()
        got = self.complete('galileo-credential token --server ')
        took = time.monotonic() - t0
        self.assertEqual(got, sorted([self.url, 'https://api.stored-one.example',
                                      'https://api.stored-two.example:8443']))
        self.assertLess(took, 2.5, 'completion took %.2f s' % took)
        self.assertEqual(self.complete('galileo-credential login --server https://api.stored-t'),
                         ['https://api.stored-two.example:8443'])

    def test_stored_servers_with_the_keystore_unreachable(self):
        # no D-Bus session: the configured servers only, nothing printed, quickly
        self.login(args=['--server', 'https://api.stored-one.example', '--no-verify'],
                   accept=False)
        t0 = time.monotonic()
        got = self.complete('galileo-credential token --server ',
                            env_extra={'DBUS_SESSION_BUS_ADDRESS': None})
        self.assertEqual(got, [self.url])
        self.assertLess(time.monotonic() - t0, 2.5)

    def test_exec_completes_the_command(self):
        self.assertIn('python3', self.complete('galileo-credential exec -- pytho'))


class Zsh(GCTestCase):

    def test_syntax(self):
        if not shutil.which('zsh'):
            self.skipTest('zsh is not installed')
        r = subprocess.run(['zsh', '-n', ZSH_SCRIPT], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        self.assertEqual((r.returncode, r.stdout), (0, b''))

    def test_stored_servers(self):
        # the same servers through zsh's own completion system (compsys):
        # _galileo_credential_servers called with _describe captured
        if not shutil.which('zsh'):
            self.skipTest('zsh is not installed')
        self.login(args=['--server', 'https://api.stored-one.example', '--no-verify'],
                   accept=False)
        script = (
            'autoload -Uz compinit; compinit -u -D\n'
            '_describe() { shift 3; print -l -- ${(P)1}; }\n'
            '_arguments() { return 1; }\n'     # the file's last line runs the completer
            'source %s\n'
            '_galileo_credential_servers\n' % ZSH_SCRIPT)
        env = self.env.child_env({'ZDOTDIR': self.env.root})
        r = subprocess.run(['zsh', '-f', '-c', script], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30, start_new_session=True)
        got = sorted(x for x in r.stdout.decode().split('\n') if x)
        self.assertEqual(got, sorted([self.url, 'https://api.stored-one.example']),
                         r.stderr.decode())


if __name__ == '__main__':
    harness.main()
