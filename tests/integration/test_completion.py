#!/usr/bin/python3
"""
Shell completion (issue 10): bash's own completion machinery drives the
script (bash_completion sourced, COMP_WORDS set, the function called, the
answers read from COMPREPLY); the zsh script is checked by zsh itself.
"""

import os
import shutil
import subprocess
import sys

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

    def complete(self, line, func='_galileo_credential'):
        env = self.env.child_env({'LINE': line, 'FUNC': func, 'SCRIPT': BASH_SCRIPT,
                                  'BASH_COMPLETION': BASH_COMPLETION})
        r = subprocess.run(['bash', '-c', DRIVER], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
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

    def test_exec_completes_the_command(self):
        self.assertIn('python3', self.complete('galileo-credential exec -- pytho'))


class Zsh(GCTestCase):

    def test_syntax(self):
        if not shutil.which('zsh'):
            self.skipTest('zsh is not installed')
        r = subprocess.run(['zsh', '-n', ZSH_SCRIPT], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        self.assertEqual((r.returncode, r.stdout), (0, b''))


if __name__ == '__main__':
    harness.main()
