#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The keystore stack and its modules (galileo-credential(1) KEYSTORE STACK,
galileo-credential-module(7)): the INSTALLED example module
(share/doc/galileo-credential/examples/keystore-example.c after
`make install DESTDIR=...`), built outside the source tree with -Wall
-Werror against the INSTALLED header and .pc alone, used in stacks with the
Secret Service so that each status and each default action shows; a module
of another interface version fails closed; doctor names what it finds.

Containment (CONTRACT section 11 v3): tests/modules/keystore-misbehave.c,
built the same way, hangs, prints on stdout, crashes, calls exit(0) or
answers what the interface forbids, as its options say; each through
`token` and git's `get`, and the program must answer with exit 6 and one
line naming the module, never hang, never pass the noise on, never die of
a signal.  A module file others could write, or owned by another user, is
never loaded.  Options a module does not declare are exit 1 naming the
file and line.  The installed galileo-credential-module-check passes the
example and the Secret Service module and reports the misbehaving one.

The case of a module owned by another user creates a system user
(gc-module-other) when run as root; as another user it points the module
at a file some other user owns (a symbolic link to it), and skips only when
no such file can be found.
"""

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GCTestCase, git_lines, parse_git_output  # noqa: E402

setUpModule = harness.setUpModule

SRCDIR = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
MISBEHAVE = os.path.join(SRCDIR, 'tests', 'modules', 'keystore-misbehave.c')
GIT = 'git-credential-galileo'
DOCKER = 'docker-credential-galileo'
CFLAGS = ['-shared', '-fPIC', '-Wall', '-Wextra', '-Werror']
OTHER_USER = 'gc-module-other'


def run(argv, **kw):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300, **kw)
    if r.returncode:
        raise RuntimeError('%s failed: %s' % (argv[0], r.stdout.decode()[-2000:]))
    return r.stdout.decode()


class Built:
    """
    `make install DESTDIR=...` once for the whole file, and the modules
    built from what it installed: module directories holding the
    program's own modules, the example and the misbehaving module.
    """

    tmp = None

    @classmethod
    def build(cls):
        if cls.tmp:
            return cls
        cls.tmp = tempfile.mkdtemp(prefix='gc-modules-')
        cls.dest = os.path.join(cls.tmp, 'dest')
        run(['make', '-s', '-C', harness.builddir(), 'install', 'DESTDIR=' + cls.dest],
            env=dict(os.environ, MAKEFLAGS=''))
        cls.pc = cls.installed('galileo-credential-module.pc')
        cls.pc_env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(cls.pc),
                          PKG_CONFIG_SYSROOT_DIR=cls.dest)
        cls.cflags = run(['pkg-config', '--cflags', 'galileo-credential-module'],
                         env=cls.pc_env).split()
        cls.example = cls.installed('keystore-example.c')
        cls.checker = cls.installed('galileo-credential-module-check')
        src = os.path.join(cls.tmp, 'src')       # outside the source tree
        os.mkdir(src)
        shutil.copy(cls.example, src)
        shutil.copy(MISBEHAVE, src)
        cls.modules = {}
        for name, extra in (('good', []), ('wrong', ['-DEXAMPLE_INTERFACE_VERSION=99'])):
            d = os.path.join(cls.tmp, name)
            # the program's own modules, and the test modules beside them
            shutil.copytree(harness.module_dir(), d,
                            ignore=shutil.ignore_patterns('*.la', '*.lai', '*.o'))
            for mod in ('example', 'misbehave'):
                run(['cc'] + CFLAGS + cls.cflags + extra +
                    ['-o', os.path.join(d, 'keystore-%s.so' % mod),
                     os.path.join(src, 'keystore-%s.c' % mod)])
            cls.modules[name] = d
        cls.header_from = [f for f in cls.cflags if f.startswith('-I')]
        return cls

    @classmethod
    def installed(cls, name):
        found = [os.path.join(r, f) for r, _, fs in os.walk(cls.dest) for f in fs if f == name]
        if not found:
            raise RuntimeError('make install put no %s' % name)
        return found[0]

    @classmethod
    def module_dir_copy(cls, tag):
        """a fresh copy of the good module directory, to spoil"""
        d = os.path.join(cls.tmp, tag)
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(cls.modules['good'], d)
        return d

    @classmethod
    def remove(cls):
        if cls.tmp:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            cls.tmp = None


def tearDownModule():
    try:
        Built.remove()
        if OtherUser.created:
            subprocess.run(['userdel', OTHER_USER], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    finally:
        harness.tearDownModule()


class ModulesBase(GCTestCase):

    @classmethod
    def setUpClass(cls):
        built = Built.build()
        cls.tmp = built.tmp
        cls.modules = built.modules
        cls.header_from = built.header_from

    def setUp(self):
        super().setUp()
        self.store_dir = os.path.join(self.env.root, 'example-store')
        shutil.rmtree(self.store_dir, ignore_errors=True)
        os.mkdir(self.store_dir, 0o700)

    def configure(self, stack, status=None):
        extra = 'keystore = %s\nexample.dir = %s\n' % (stack, self.store_dir)
        if status:
            extra += 'example.status = %s\n' % status
        self.env.write_config(extra=extra)

    def gc(self, args, input=None, which='good', env_extra=None, argv0=None,
           timeout=harness.RUN_TIMEOUT):
        env = {'GALILEO_CREDENTIAL_MODULE_DIR': self.modules.get(which, which)}
        env.update(env_extra or {})
        return self.env.run(args, input=input, env_extra=env, argv0=argv0, timeout=timeout)

    def git_get(self, **kw):
        return self.gc(['get'], input=git_lines('url=' + self.url), argv0=GIT, **kw)

    def assertGitFails(self, res, code, *contains):
        """git ignores the code, but the line and the code are still ours"""
        self.assertFails(res, code, *contains)


class Modules(ModulesBase):

    def test_header_is_the_installed_one(self):
        self.assertTrue(self.header_from, 'pkg-config gave no -I')
        for flag in self.header_from:
            self.assertTrue(flag[2:].startswith(self.tmp), flag)
            self.assertFalse(flag[2:].startswith(SRCDIR), flag)

    def test_example_and_checker_are_installed(self):
        self.assertIn(os.sep + 'examples' + os.sep, Built.example)
        self.assertTrue(Built.example.startswith(Built.dest))
        r = subprocess.run([Built.checker, '--help'], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(r.returncode, 0)
        self.assertIn(b'checks a galileo-credential keystore module', r.stdout)

    def test_pc_carries_the_interface_version(self):
        version = run(['pkg-config', '--variable=interface_version',
                       'galileo-credential-module'], env=Built.pc_env).strip()
        header = open(self.installed_header()).read()
        m = re.search(r'#define GC_MODULE_INTERFACE_VERSION (\d+)', header)
        self.assertEqual(version, m.group(1))
        self.assertEqual(version, '2')

    def installed_header(self):
        return Built.installed('module.h')

    def test_the_minimal_module_of_the_manual_builds_and_works(self):
        # the code shown in galileo-credential-module(7), as installed
        page = open(Built.installed('galileo-credential-module.7')).read()
        section = page.split('.SH A MINIMAL MODULE', 1)[1].split('.SH ', 1)[0]
        code = section.split('.EX\n', 1)[1].split('.EE\n', 1)[0]
        for roff, c in (('\\-', '-'), ("\\(aq", "'"), ('\\(dq', '"'), ('\\e', '\\')):
            code = code.replace(roff, c)
        d = Built.module_dir_copy('minimal')
        src = os.path.join(self.tmp, 'keystore-mine.c')
        with open(src, 'w') as f:
            f.write(code)
        run(['cc'] + CFLAGS + Built.cflags + ['-o', os.path.join(d, 'keystore-mine.so'), src])
        key = self.env.new_key()
        self.server.accept_key(key)
        self.env.write_config(extra='keystore = mine secret-service\n')
        rc, out, err = self.gc(['token'], which=d, env_extra={'MY_KEY': key})
        self.assertEqual((rc, err), (0, ''))
        self.assertEqual(self.server.last.credential, ('api-key', key))

    def test_teardown_is_called_before_exit(self):
        self.configure('example secret-service')
        rc, out, err = self.gc(['status'], env_extra={'GALILEO_CREDENTIAL_DEBUG': '1'})
        self.assertIn('example: done', err)

    def test_example_alone_end_to_end(self):
        self.configure('example')
        key = self.env.new_key()
        self.server.accept_key(key)
        self.assertEqual(self.gc(['login'], input=key + '\n').returncode, 0)
        self.assertEqual(len(os.listdir(self.store_dir)), 1)
        self.assertEqual(self.env.key_items(), [], 'stored in the Secret Service instead')
        rc, out, err = self.gc(['token', '--refresh'])
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.server.last.credential, ('api-key', key))
        rc, out, err = self.gc(['get'], input=git_lines('url=' + self.url))
        self.assertEqual(rc, 0, err)
        rc, out, err = self.gc(['status', '--json'])
        self.assertEqual(rc, 0, err)
        self.assertEqual([(s['server'], s['keystore']) for s in json.loads(out)['servers']],
                         [(self.url, 'example')])
        self.assertEqual(self.gc(['logout']), (0, '', ''))
        self.assertEqual(os.listdir(self.store_dir), [])

    def stored_in_secret_service(self):
        self.configure('secret-service')
        return self.login()

    def test_notfound_continues_success_returns(self):
        key = self.stored_in_secret_service()
        self.configure('example secret-service')
        rc, out, err = self.gc(['token', '--refresh'])
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.server.last.credential, ('api-key', key))
        # success returns: the example's own credential wins once it has one
        other = self.env.new_key()
        self.server.accept_key(other)
        self.assertEqual(self.gc(['login'], input=other + '\n').returncode, 0)
        self.assertEqual(len(os.listdir(self.store_dir)), 1, 'login wrote past the first writer')
        self.assertEqual(self.gc(['token', '--refresh']).returncode, 0)
        self.assertEqual(self.server.last.credential, ('api-key', other))

    def test_unavailable_continues(self):
        key = self.stored_in_secret_service()
        self.configure('example secret-service', status='unavailable')
        rc, out, err = self.gc(['token', '--refresh'])
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.server.last.credential, ('api-key', key))
        # and writes go past it, to the first writer that is there
        new = self.env.new_key()
        self.server.accept_key(new)
        self.assertEqual(self.gc(['login'], input=new + '\n').returncode, 0)
        self.assertSecretEqual(self.env.key_items()[0].secret, new, 'stored credential')

    def test_unavailable_and_nothing_found_is_unavailable(self):
        self.configure('example secret-service', status='unavailable')
        self.assertFails(self.gc(['token']), 6, 'the example keystore is unavailable')
        self.configure('example secret-service')
        self.assertFails(self.gc(['token']), 3, 'no credential stored')

    def test_locked_and_error_return(self):
        self.stored_in_secret_service()
        for status, line in (('locked', 'is locked'), ('error', 'fails')):
            with self.subTest(status=status):
                self.configure('example secret-service', status=status)
                count = self.server.count
                self.assertFails(self.gc(['token', '--refresh']), 6, line)
                self.assertFails(self.gc(['login'], input=self.env.new_key() + '\n'), 6, line)
                self.assertEqual(self.server.count, count, 'fell through to a weaker store')
                # unless the stack says so
                self.configure('example [%s=continue] secret-service' % status, status=status)
                self.assertEqual(self.gc(['token', '--refresh']).returncode, 0)

    def test_wrong_interface_version_fails_closed(self):
        self.stored_in_secret_service()
        self.configure('example secret-service')
        for args in (['token', '--refresh'], ['login'], ['status'], ['logout']):
            with self.subTest(args=args[0]):
                res = self.gc(args, input=self.env.new_key() + '\n', which='wrong')
                self.assertFails(res, 6, "keystore module 'example' speaks interface version 99")
        self.assertEqual(len(self.env.key_items()), 1)

    def test_headless_install_without_the_secret_service_module(self):
        # a package set without keystore-secret-service.so (the Debian
        # headless path): the default stack still answers with the env key
        d = os.path.join(self.tmp, 'headless')
        if not os.path.isdir(d):
            os.mkdir(d)
            shutil.copy(os.path.join(harness.module_dir(), 'http-curl.so'), d)
        self.env.write_config()
        key = self.env.new_key()
        self.server.accept_key(key)
        env = {'GALILEO_CREDENTIAL_MODULE_DIR': d, 'DBUS_SESSION_BUS_ADDRESS': None}
        rc, out, err = self.env.run(['token'], env_extra=dict(env, GALILEO_API_KEY=key))
        self.assertEqual((rc, err), (0, ''))
        self.assertEqual(self.server.last.credential, ('api-key', key))
        # and names the stacks that need no desktop (issue 18 item 5)
        self.assertFails(self.env.run(['token'], env_extra=env), 6,
                         "the keystore 'secret-service' is not installed here",
                         "'keystore = env persistent-keyring'", "'keystore = env pass'")
        # but a stack the user wrote fails closed on it
        self.env.write_config(extra='keystore = secret-service\n')
        self.assertFails(self.env.run(['token'], env_extra=dict(env, GALILEO_API_KEY=key)), 6,
                         "unknown keystore 'secret-service'")

    def test_doctor(self):
        self.configure('example secret-service', status='locked')
        rc, out, err = self.gc(['doctor'])
        self.assertEqual(rc, 6, err)
        self.assertIn('  example: locked: the example keystore is locked', out)
        self.assertIn('  secret-service: reachable, can store, can hold tokens', out)
        self.assertIn('home server: %s' % self.url, out)
        self.assertIn('config file: %s' % self.env.config_path, out)
        self.assertIn('token cache:', out)
        self.assertIn('lock directory:', out)
        self.assertOneErrorLine(err, 'locked')
        self.configure('secret-service')
        self.login()
        rc, out, err = self.gc(['doctor'])
        self.assertEqual((rc, err), (0, ''))
        self.assertIn('token: can be served', out)


# --------------------------------------------------------------------------
# containment

def processes_with(needle):
    """pids whose command line holds needle"""
    pids = []
    for pid in os.listdir('/proc'):
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                if needle.encode() in f.read():
                    pids.append(int(pid))
        except (OSError, ValueError):
            pass
    return pids


class Contained(ModulesBase):
    """
    keystore-misbehave.so misbehaves as its options say; the program must
    end every such call with exit 6 and one line naming the module.
    """

    def misbehave(self, what, where='get', stack='misbehave', timeout=None, extra=''):
        lines = 'keystore = %s\nmisbehave.do = %s\nmisbehave.in = %s\n' % (stack, what, where)
        if timeout:
            lines += 'timeout = %d\n' % timeout
        # tokens in the kernel tier, so that every call here reads the stack
        self.env.write_config(token_cache=None, extra=lines + extra)

    def timed(self, fn, *args, **kw):
        start = time.monotonic()
        res = fn(*args, **kw)
        return res, time.monotonic() - start

    def test_a_hang_is_ended_after_the_timeout(self):
        key = self.env.new_key()
        for where, args in (('get', ['token']), ('init', ['token']), ('open', ['login'])):
            with self.subTest(where=where):
                self.misbehave('hang', where, timeout=2)
                res, took = self.timed(self.gc, args, input=key + '\n', timeout=20)
                self.assertFails(res, 6, "keystore module 'misbehave'",
                                 'did not return within 3 seconds')
                self.assertLess(took, 8, 'the hang was not cut at timeout + 1 s')
                self.assertGreater(took, 2.5, 'cut before the timeout')
        self.misbehave('hang', 'get', timeout=2)
        res, took = self.timed(self.git_get, timeout=20)
        self.assertGitFails(res, 6, "keystore module 'misbehave': get() did not return")
        self.assertLess(took, 8)
        self.assertEqual(self.server.count, 0)

    def test_doctor_is_bounded_too(self):
        self.misbehave('hang', 'open', stack='misbehave secret-service', timeout=2)
        (rc, out, err), took = self.timed(self.gc, ['doctor'], timeout=20)
        self.assertEqual(rc, 6, err)
        self.assertOneErrorLine(err, "keystore module 'misbehave': open() did not return")
        self.assertLess(took, 8)

    def test_stdout_is_shielded(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        env = {'MISBEHAVE_KEY': key}
        for where in ('init', 'get'):
            with self.subTest(where=where):
                self.misbehave('print', where)
                rc, out, err = self.gc(['token', '--refresh'], env_extra=env)
                self.assertEqual((rc, err), (0, ''))
                self.assertNotIn('misbehave', out)
                self.assertEqual(out.count('\n'), 1, 'token printed more than one line')
                self.assertSecretEqual(out[:-1], self.server.last.token, 'token printed')
                rc, out, err = self.git_get(env_extra=env)
                self.assertEqual((rc, err), (0, ''))
                self.assertNotIn('misbehave', out)
                d, keys = parse_git_output(out)
                self.assertEqual(sorted(keys), ['password', 'password_expiry_utc', 'username'])
        # docker reads its answer, and its errors, from stdout
        self.misbehave('print', 'get')
        rc, out, err = self.gc(['get'], input=self.url + '\n', argv0=DOCKER, env_extra=env)
        self.assertEqual(rc, 0, out)
        self.assertEqual(set(json.loads(out)), {'ServerURL', 'Username', 'Secret'})

    def test_a_crash_is_exit_6_naming_the_module(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        for what, sig in (('segv', 'SIGSEGV'), ('bus', 'SIGBUS'), ('ill', 'SIGILL'),
                          ('fpe', 'SIGFPE'), ('abort', 'SIGABRT')):
            with self.subTest(what=what):
                # even a stack that says to go on past errors
                self.misbehave(what, stack='misbehave [error=continue] env')
                line = "keystore module 'misbehave' crashed with %s during get()" % sig
                self.assertFails(self.gc(['token'], env_extra={'GALILEO_API_KEY': key}), 6, line)
                self.assertGitFails(self.git_get(), 6, line)
        # in the docker dialect, the one line is on stdout, exit 1
        rc, out, err = self.gc(['get'], input=self.url + '\n', argv0=DOCKER)
        self.assertEqual((rc, err), (1, ''))
        self.assertIn("keystore module 'misbehave' crashed with SIGABRT", out)
        self.assertEqual(self.server.count, 0)

    def test_exit_is_exit_6_naming_the_module(self):
        key = self.env.new_key()
        for where, args in (('get', ['token']), ('init', ['token']), ('store', ['login'])):
            with self.subTest(where=where):
                self.misbehave('exit', where)
                self.server.accept_key(key)
                self.assertFails(self.gc(args, input=key + '\n'), 6,
                                 "keystore module 'misbehave' called exit()")
        self.misbehave('exit', 'get')
        self.assertGitFails(self.git_get(), 6, "keystore module 'misbehave' called exit() during get()")

    def test_an_answer_that_breaks_the_interface_is_exit_6(self):
        for what, phrase in (('null-secret', 'success with a NULL secret'),
                             ('empty-secret', 'success with an empty secret'),
                             ('huge-secret', 'a secret over 65536 bytes'),
                             ('bad-kind', 'an unknown kind (not api-key, basic or bearer)'),
                             ('other-server', 'the credential of another server'),
                             ('bad-status', 'a status that is no enum gc_status')):
            with self.subTest(what=what):
                self.misbehave(what)
                line = "keystore module 'misbehave' broke the module interface: get() answered " + phrase
                self.assertFails(self.gc(['token']), 6, line)
                self.assertGitFails(self.git_get(), 6, line)
        self.assertEqual(self.server.count, 0, 'a malformed credential was sent')

    def test_git_erase_with_a_null_secret_is_one_line_not_a_crash(self):
        self.misbehave('null-secret')
        # git's reject: erase with the password it was given
        res = self.gc(['erase'], input=git_lines('url=' + self.url, 'password=gk-whatever'),
                      argv0=GIT)
        self.assertFails(res, 6, "keystore module 'misbehave' broke the module interface")

    def test_a_listed_secret_is_exit_6(self):
        self.misbehave('list-secret', 'list')
        self.assertFails(self.gc(['status']), 6,
                         'list() answered an item with a secret')

    def test_prompt_service(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        self.misbehave('prompt')
        env = {'GALILEO_CREDENTIAL_MODULE_DIR': self.modules['good'], 'GIT_TERMINAL_PROMPT': None}
        rc, out, err, tty = self.env.run_tty(['token'], key, env_extra=env)
        # the token on token's stdout is where it belongs (the terminal is in stderr)
        self.env.history[-1].token_ok = True
        self.assertEqual(rc, 0, err)
        self.assertSecretEqual(out, self.server.last.token + '\n', 'token printed')
        self.assertIn('misbehave key: ', tty)
        self.assertNotIn(key, tty, 'the answer was echoed')
        self.assertEqual(self.server.last.credential, ('api-key', key))
        # nobody there: refused at once, the module says why
        self.assertFails(self.gc(['token', '--refresh']), 6, 'nobody is at a terminal')
        rc, out, err, tty = self.env.run_tty(['token', '--refresh'], key,
                                             env_extra=dict(env, GIT_TERMINAL_PROMPT='0'))
        self.assertEqual(rc, 6, err)
        self.assertNotIn('misbehave key', tty)

    def test_run_service(self):
        key = self.env.new_key()
        self.server.accept_key(key)
        self.misbehave('run')
        self.gc(['token'], env_extra={'MISBEHAVE_KEY': key})
        self.assertEqual(self.server.last.credential, ('api-key', key))
        # a helper that never ends is killed at the deadline, its group too
        self.misbehave('run-hang', timeout=2)
        res, took = self.timed(self.gc, ['token', '--refresh'], env_extra={'MISBEHAVE_KEY': key},
                               timeout=20)
        self.assertFails(res, 6, 'killed at the deadline')
        self.assertLess(took, 5)
        time.sleep(0.2)
        self.assertEqual(processes_with('sleep 98765'), [], 'the helper outlived its deadline')


class Loading(ModulesBase):
    """A module file or directory someone else could change is never loaded."""

    def misbehave(self, where):
        self.env.write_config(token_cache=None, extra=(
            'keystore = misbehave\nmisbehave.do = exit\nmisbehave.in = %s\n' % where))

    def assertRefused(self, d, path, why):
        for args in (['token'], ['login']):
            self.assertFails(self.gc(args, input=self.env.new_key() + '\n', which=d), 6,
                             "refusing to load module", "'%s'" % path, why)
        self.assertGitFails(self.gc(['get'], input=git_lines('url=' + self.url), argv0=GIT,
                                    which=d), 6, "refusing to load module", why)
        self.assertEqual(self.server.count, 0)

    def test_group_writable_module_file(self):
        d = Built.module_dir_copy('group-writable')
        path = os.path.join(d, 'keystore-misbehave.so')
        os.chmod(path, 0o775)
        self.misbehave('init')
        self.assertRefused(d, path, 'writable by group or others')

    def test_world_writable_directory(self):
        d = Built.module_dir_copy('world-writable')
        os.chmod(d, 0o777)
        self.misbehave('init')
        self.assertRefused(d, d, 'writable by group or others')

    def test_sticky_directory_is_safe(self):
        d = Built.module_dir_copy('sticky')
        os.chmod(d, 0o1777)
        key = self.env.new_key()
        self.server.accept_key(key)
        self.env.write_config(token_cache=None, extra='keystore = misbehave\n')
        rc, out, err = self.gc(['token'], which=d, env_extra={'MISBEHAVE_KEY': key})
        self.assertEqual((rc, err), (0, ''))

    def test_module_owned_by_another_user(self):
        d = Built.module_dir_copy('other-user')
        path = os.path.join(d, 'keystore-misbehave.so')
        owner = OtherUser.give(path)
        self.misbehave('init')
        self.assertRefused(d, owner, 'not by you or root')

    def test_relative_module_dir_is_refused_before_anything_is_loaded(self):
        # git runs helpers inside the repository: a repository shipping
        # .libs/keystore-misbehave.so must not get it run
        libs = os.path.join(self.env.home, '.libs')
        shutil.rmtree(libs, ignore_errors=True)
        shutil.copytree(self.modules['good'], libs)
        self.addCleanup(shutil.rmtree, libs, True)
        key = self.env.new_key()
        self.server.accept_key(key)
        self.env.write_config(token_cache=None, extra='keystore = misbehave\n')
        env = {'MISBEHAVE_KEY': key}
        for which in ('.libs', './.libs'):
            with self.subTest(which=which):
                self.assertFails(self.gc(['token'], which=which, env_extra=env), 1,
                                 "GALILEO_CREDENTIAL_MODULE_DIR '%s' is not an absolute path" % which)
                self.assertFails(self.gc(['get'], input=git_lines('url=' + self.url),
                                         argv0=GIT, which=which, env_extra=env), 1,
                                 'GALILEO_CREDENTIAL_MODULE_DIR')
        self.assertEqual(self.server.count, 0)


class OtherUser:
    """A file that belongs to a user who is neither root nor us."""

    created = False

    @classmethod
    def give(cls, path):
        """
        Make path (a module file) another user's: chown it when root, else
        replace it with a symbolic link to some file another user owns.
        Returns the path whose owner the refusal names.
        """
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(OTHER_USER)
            except KeyError:
                subprocess.run(['useradd', '--system', '--no-create-home', '--shell',
                                '/usr/sbin/nologin', OTHER_USER], check=True, timeout=60)
                cls.created = True
            os.chown(path, pwd.getpwnam(OTHER_USER).pw_uid, -1)
            return path
        other = cls.find_file()
        if not other:
            raise unittest.SkipTest('no file of another user to point at here, and not root')
        os.unlink(path)
        os.symlink(other, path)
        return other

    @staticmethod
    def find_file():
        me = os.geteuid()
        for top in ('/var/cache/man', '/var/lib', '/var/cache', '/var/spool', '/var/log',
                    '/etc', '/usr/share', '/home', '/tmp'):
            for root, dirs, files in os.walk(top):
                for f in files:
                    p = os.path.join(root, f)
                    try:
                        st = os.stat(p)
                    except OSError:
                        continue
                    if st.st_uid not in (0, me) and (st.st_mode & 0o170000) == 0o100000 \
                            and os.access(p, os.R_OK):
                        return os.path.realpath(p)
        return None


class Options(ModulesBase):
    """A module declares its options; any other NAME.key is exit 1 naming the line."""

    def line_of(self, text):
        with open(self.env.config_path) as f:
            for n, line in enumerate(f, 1):
                if line.startswith(text):
                    return n
        self.fail('%r not in the config' % text)

    def test_undeclared_option(self):
        self.configure('example secret-service')
        with open(self.env.config_path, 'a') as f:
            f.write('example.dirr = /tmp\n')
        line = self.line_of('example.dirr')
        where = '%s:%d: ' % (self.env.config_path, line)
        for res in (self.gc(['token']), self.gc(['login'], input=self.env.new_key() + '\n'),
                    self.git_get()):
            self.assertFails(res, 1, where + "unknown key 'example.dirr'",
                             'takes dir and status')
        self.assertEqual(self.server.count, 0)

    def test_declared_check_of_a_value(self):
        self.configure('example secret-service', status='bogus')
        line = self.line_of('example.status')
        self.assertFails(self.gc(['token']), 1, '%s:%d: bad example.status' % (
            self.env.config_path, line), 'use unavailable, locked or error')

    def test_in_tree_modules_declare_theirs(self):
        self.env.write_config(extra='keystore = secret-service\nsecret-service.collection = x\n')
        self.assertFails(self.gc(['token']), 1, "unknown key 'secret-service.collection'",
                         'takes no options')
        # and the options they declare still work
        self.configure('example secret-service')
        key = self.env.new_key()
        self.server.accept_key(key)
        self.assertEqual(self.gc(['login'], input=key + '\n').returncode, 0)
        self.assertEqual(len(os.listdir(self.store_dir)), 1)

    def test_options_of_a_module_outside_the_stack_are_not_loaded(self):
        # a config may carry the options of a stack chosen with
        # GALILEO_CREDENTIAL_KEYSTORE; they are checked when it is chosen
        self.env.write_config(extra='keystore = secret-service\nmisbehave.do = exit\n'
                              'misbehave.in = init\n')
        self.login()
        rc, out, err = self.gc(['token'])
        self.assertEqual((rc, err), (0, ''))


class Checker(ModulesBase):
    """The installed galileo-credential-module-check."""

    def check(self, module, *args, env_extra=None):
        env = self.env.child_env(dict({'GALILEO_CREDENTIAL_MODULE_DIR': self.modules['good']},
                                      **(env_extra or {})))
        r = subprocess.run([Built.checker] + list(args) + [module], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=env, timeout=120)
        out = r.stdout.decode('utf-8', 'replace')
        self.env.history.append(harness._Run('checker', 'check', out,
                                             r.stderr.decode('utf-8', 'replace'), False))
        return r.returncode, out

    def test_the_example_passes(self):
        rc, out = self.check(os.path.join(self.modules['good'], 'keystore-example.so'),
                             '-o', 'dir=' + self.store_dir)
        self.assertEqual(rc, 0, out)
        self.assertIn("keystore 'example': no breach found", out)
        self.assertEqual(os.listdir(self.store_dir), [], 'the test credential was left behind')

    def test_the_secret_service_module_passes(self):
        rc, out = self.check('secret-service', '-v')
        self.assertEqual(rc, 0, out)
        self.assertNotIn('breach:', out)
        self.assertIn('token_store(), token_get(), token_list() and token_erase()', out)
        self.assertEqual(self.env.keyring_items(), [], 'the test credential was left behind')

    def test_a_misbehaving_module_is_reported(self):
        module = os.path.join(self.modules['good'], 'keystore-misbehave.so')
        for what, where, breach in (
                ('segv', 'get', 'breach: get() crashed with SIGSEGV'),
                ('exit', 'store', 'breach: store() called exit(0)'),
                ('hang', 'get', 'breach: get() did not return within 2 seconds'),
                ('print', 'get', 'breach: get() wrote to standard output'),
                ('null-secret', 'get', 'breach: get() answered success with a NULL secret'),
                ('static-secret', 'get', "breach: the program's wipe and free() of what get() "
                                         "returned crashed with SIGABRT"),
                ('no-message', 'get', 'breach: get() answered locked without a line'),
                ('bad-status', 'open', 'breach: open() answered -7, which is no enum gc_status'),
                ('list-secret', 'list', 'breach: list() answered an item with a secret')):
            with self.subTest(what=what):
                rc, out = self.check(module, '-t', '1', '-o', 'do=' + what, '-o', 'in=' + where)
                self.assertEqual(rc, 1, out)
                self.assertIn(breach, out)
                self.assertRegex(out, r"keystore 'misbehave': \d+ breach")
        # store() keeps nothing: the read-back is a breach of its own
        rc, out = self.check(module)
        self.assertEqual(rc, 1, out)
        self.assertIn('breach: get() after a successful store() of a basic credential answered notfound', out)


if __name__ == '__main__':
    harness.main()
