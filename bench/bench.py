#!/usr/bin/python3
"""
Benchmark galileo-credential against secret-tool, curl,
docker-credential-secretservice and git-credential-libsecret on one private
keyring and HTTPS token endpoint (tests/integration/harness.py): cache hit,
cold token, and 64 simultaneous cold calls.  Writes bench/RESULTS.md and
prints it; hyperfine's progress goes to stderr.  See bench/README.md.

    GC_BUILDDIR=<build dir> /usr/bin/python3 bench/bench.py    (or: scripts/bench)

No key or token is printed, written to the results or put in any argv.
"""

import datetime
import json
import os
import platform
import secrets
import shlex
import shutil
import statistics
import subprocess
import sys
import time
import types

sys.dont_write_bytecode = True     # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, 'tests', 'integration'))
import harness  # noqa: E402

RUNS = int(os.environ.get('BENCH_RUNS') or 100)    # cache-hit runs per command
RACE_ROUNDS = int(os.environ.get('BENCH_RACE_ROUNDS') or 5)
WARMUP = 5
COLD_WARMUP = 2
COLD_RUNS = 40
RACE_N = 64
SINGLES = 3                 # single cold calls per race round
RACE_TIMEOUT = 60           # s for one batch of processes
TOKEN_LIFETIME = 900        # s: fresh for the whole run; kernel keys go soon after
RESULTS = os.path.join(HERE, 'RESULTS.md')
TRUE = '/usr/bin/true'
LIBSECRET_SRC = '/usr/share/doc/git/contrib/credential/libsecret/git-credential-libsecret.c'
ST_ATTRS = 'service bench user bench'      # secret-tool attributes of the baseline item

HIT_TARGET = 0.25           # x secret-tool lookup
COLD_TARGET = 1.2           # x secret-tool | sed | curl
RACE_TARGET = 3.0           # x one cold call


class BenchError(Exception):
    pass


def log(msg):
    print('bench: ' + msg, file=sys.stderr, flush=True)


def first_line(argv, env=None):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, env=env, timeout=30)
    return r.stdout.decode('utf-8', 'replace').strip().split('\n')[0]


def ms(x):
    return '%.2f' % (x * 1000.0)


def yes_no(ok):
    return 'yes' if ok else '**no**'


def dq(text):
    """one shell word in double quotes (the commands here hold no $ or backquote)"""
    return '"' + text.replace('\\', '\\\\').replace('"', '\\"') + '"'


def elide(w, text):
    text = text.replace(w.url, 'https://127.0.0.1:PORT').replace(w.host, '127.0.0.1:PORT')
    return text.replace(w.env.root, '$ROOT')


def has_secret(w, text):
    return any(s and s in text for s in w.env.keys + list(w.server.issued))


def safe(w, text):
    """the first line of a program's stderr, fit to show a person"""
    text = (text or '').strip().split('\n')[0]
    return '(suppressed)' if has_secret(w, text) else elide(w, text)


def run(w, what, argv, input=None, env=None):
    """argv in the private world: its stdout, or BenchError when it fails"""
    r = subprocess.run(argv, input=None if input is None else input.encode(),
                       stdin=subprocess.DEVNULL if input is None else None,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env or w.cenv, cwd=w.env.home, timeout=harness.RUN_TIMEOUT)
    if r.returncode != 0:
        raise BenchError('%s failed (exit %d): %s' % (
            what, r.returncode, safe(w, r.stderr.decode('utf-8', 'replace'))))
    return r.stdout.decode('utf-8', 'replace')


# -- setup ---------------------------------------------------------------------

def build_libsecret(w):
    """git-credential-libsecret from git's contrib source: (path or None, note)"""
    if not os.path.exists(LIBSECRET_SRC):
        return None, 'skipped: %s not present (Debian package git ships it)' % LIBSECRET_SRC
    if not shutil.which('gcc') or not shutil.which('pkg-config'):
        return None, 'skipped: no gcc or no pkg-config'
    flags = subprocess.run(['pkg-config', '--cflags', '--libs', 'libsecret-1', 'glib-2.0'],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if flags.returncode != 0:
        return None, 'skipped: pkg-config finds no libsecret-1 (Debian package libsecret-1-dev)'
    out = os.path.join(w.tooldir, 'git-credential-libsecret')
    r = subprocess.run(['gcc', '-O2', '-o', out, LIBSECRET_SRC] + flags.stdout.decode().split(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        log('gcc: ' + r.stdout.decode('utf-8', 'replace').strip()[-2000:])
        return None, 'skipped: compiling %s failed' % LIBSECRET_SRC
    return out, ('compiled at bench time: `gcc -O2 -o $ROOT/tools/git-credential-libsecret %s '
                 '$(pkg-config --cflags --libs libsecret-1 glib-2.0)`' % LIBSECRET_SRC)


def setup(env):
    """the private world, the same key stored for every tool; checks the hit commands"""
    w = types.SimpleNamespace(env=env, server=env.server, url=env.server_url)
    w.host = w.url.split('://', 1)[1]
    w.bdir = os.path.join(env.root, 'bench')
    w.tooldir = os.path.join(env.root, 'tools')
    os.makedirs(w.bdir, 0o700)
    os.makedirs(w.tooldir, 0o700)
    w.cenv = env.child_env()
    w.cenv['PATH'] = os.pathsep.join([env.bindir, w.tooldir,
                                      os.environ.get('PATH') or '/usr/bin:/bin'])
    w.run_id = secrets.token_hex(3)     # org slugs not seen before, even by the kernel keyring
    w.seq = 0
    env.write_config(token_cache=None)  # the default token cache
    w.server.lifetime = TOKEN_LIFETIME
    key = env.new_key()
    w.server.accept_key(key)

    run(w, 'galileo-credential login', ['galileo-credential', 'login', '--server', w.url],
        input=key + '\n')
    run(w, 'galileo-credential token (token-cache=keystore)', ['galileo-credential', 'token'],
        env=dict(w.cenv, GALILEO_CREDENTIAL_TOKEN_CACHE='keystore'))     # primes that cache
    run(w, 'secret-tool store',
        ['secret-tool', 'store', '--label=galileo bench'] + ST_ATTRS.split(), input=key)
    run(w, 'docker-credential-secretservice store', ['docker-credential-secretservice', 'store'],
        input=json.dumps({'ServerURL': w.url, 'Username': 'bench', 'Secret': key}))
    w.git_in = os.path.join(w.bdir, 'git-get.in')
    with open(w.git_in, 'w') as f:
        f.write('protocol=https\nhost=%s\n\n' % w.host)
    w.docker_in = os.path.join(w.bdir, 'docker-get.in')
    with open(w.docker_in, 'w') as f:
        f.write(w.url + '\n')
    w.libsecret, w.libsecret_note = build_libsecret(w)
    if w.libsecret:
        run(w, 'git-credential-libsecret store', [w.libsecret, 'store'],
            input='protocol=https\nhost=%s\nusername=bench\npassword=%s\n\n' % (w.host, key))

    # every cache-hit command once: it works and prints the stored key or a token
    before = w.server.count
    for name, cmd in hit_commands(w)[1:]:
        out = run(w, name, ['sh', '-c', cmd])
        if not any(s in out for s in ([key] if 'galileo' not in name else w.server.issued)):
            raise BenchError('%s: printed neither the stored key nor a token' % name)
    if w.server.count != before:
        raise BenchError('the cache-hit commands asked the endpoint: not a cache hit')
    return w


# -- cache hit and cold: hyperfine -------------------------------------------------

def hit_commands(w):
    """(name, shell command), each run as `sh -c CMD` by hyperfine -N; report() takes
    the rows in this order: wrapper, secret-tool lookup, token, git get"""
    q = shlex.quote
    cmds = [('sh -c : (the wrapper alone)', ':'),
            ('secret-tool lookup', 'exec secret-tool lookup %s </dev/null' % ST_ATTRS),
            ('galileo-credential token', 'exec galileo-credential token </dev/null'),
            ('git-credential-galileo get', 'exec git-credential-galileo get <' + q(w.git_in)),
            ('docker-credential-secretservice get',
             'exec docker-credential-secretservice get <' + q(w.docker_in))]
    if w.libsecret:
        cmds.append(('git-credential-libsecret get',
                     'exec git-credential-libsecret get <' + q(w.git_in)))
    cmds.append(('galileo-credential token, token-cache=keystore (reference)',
                 'GALILEO_CREDENTIAL_TOKEN_CACHE=keystore exec galileo-credential token'
                 ' </dev/null'))
    return cmds


def cold_commands(w):
    q = shlex.quote
    return [('secret-tool lookup | sed | curl',
             'secret-tool lookup %s | sed "s/^/Galileo-API-Key: /" | curl -sf --cacert %s -H @- %s'
             ' >/dev/null' % (ST_ATTRS, q(w.env.ca_file), q(w.url + '/v1/token'))),
            ('galileo-credential token --refresh',
             'galileo-credential token --refresh </dev/null >/dev/null')]


def hyperfine(w, label, cmds, warmup, runs):
    """one hyperfine run: ([{name, cmd, median, p25, p75}], endpoint requests meanwhile)"""
    out = os.path.join(w.bdir, label + '.json')
    argv = ['hyperfine', '-N', '--style', 'basic', '--warmup', str(warmup), '--runs', str(runs),
            '--export-json', out]
    rows = [{'name': n, 'cmd': 'sh -c ' + shlex.quote(c)} for n, c in cmds]
    for r in rows:
        argv += ['-n', r['name'], r['cmd']]
    log('hyperfine: %s (%d commands, %d warmup + %d runs each)' % (label, len(cmds), warmup, runs))
    before = w.server.count
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=sys.stderr, stderr=sys.stderr,
                       env=w.cenv, cwd=w.env.home)
    if p.returncode != 0:
        raise BenchError('hyperfine (%s) failed, exit %d' % (label, p.returncode))
    with open(out) as f:
        results = json.load(f)['results']
    for r, res in zip(rows, results):
        t = res['times']
        q = statistics.quantiles(t, n=4) if len(t) > 1 else t * 3
        r.update(median=statistics.median(t), p25=q[0], p75=q[2])
    return rows, w.server.count - before


# -- race ----------------------------------------------------------------------------

def spawn(w, argv, n):
    """n argv spawned one after the other (Popen, no shell): (wall s, [(rc, out, err)])"""
    t0 = time.perf_counter()
    procs = [subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=w.cenv, cwd=w.env.home)
             for _ in range(n)]
    res = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=max(0.1, t0 + RACE_TIMEOUT - time.perf_counter()))
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        res.append((p.returncode, out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')))
    return time.perf_counter() - t0, res


def cold_trial(w, kind, n):
    """n simultaneous `token --org-slug bench-KIND-RUN-SEQ`, a new organization"""
    w.seq += 1
    before = w.server.count
    wall, res = spawn(w, ['galileo-credential', 'token', '--org-slug',
                          'bench-%s-%s-%d' % (kind, w.run_id, w.seq)], n)
    issued = set(w.server.issued)
    toks, errors = [], []
    for rc, out, err in res:
        if rc == 0 and out.count('\n') == 1 and out[:-1] in issued:
            toks.append(out[:-1])
        else:
            errors.append('exit %d: %s' % (rc, safe(w, err) or '(no message)'))
    return {'wall': wall, 'exchanges': w.server.count - before, 'ok': len(toks),
            'distinct': len(set(toks)), 'errors': errors}


def race(w):
    """RACE_ROUNDS rounds of: single cold calls, the floor, RACE_N simultaneous cold calls"""
    rounds, singles = [], []
    for i in range(1, RACE_ROUNDS + 1):
        log('race round %d/%d' % (i, RACE_ROUNDS))
        singles += [cold_trial(w, 'cold', 1) for _ in range(SINGLES)]
        floor, res = spawn(w, [TRUE], RACE_N)
        if any(rc != 0 for rc, _, _ in res):
            raise BenchError('%s failed' % TRUE)
        rounds.append(dict(cold_trial(w, 'race', RACE_N), floor=floor))
    return rounds, singles


# -- report ----------------------------------------------------------------------------

def machine():
    with open('/proc/cpuinfo') as f:
        cpu = next((line.split(':', 1)[1].strip() for line in f
                    if line.startswith('model name')), '?')
    return len(os.sched_getaffinity(0)), platform.release(), cpu


def versions(w):
    def dpkg(pkg):
        return first_line(['dpkg-query', '-W', '-f=${Version}', pkg])
    v = [('galileo-credential', first_line(['galileo-credential', '--version'], w.cenv)
          + ' (build: `%s`)' % os.path.relpath(harness.builddir(), TOP)),
         ('secret-tool', 'libsecret-tools ' + dpkg('libsecret-tools')),
         ('docker-credential-secretservice',
          'golang-docker-credential-helpers ' + dpkg('golang-docker-credential-helpers'))]
    if w.libsecret:
        v.append(('git-credential-libsecret', 'contrib source of %s, libsecret %s' % (
            first_line(['git', '--version']),
            first_line(['pkg-config', '--modversion', 'libsecret-1']))))
    for tool in ('curl', 'hyperfine', 'gnome-keyring-daemon', 'dbus-daemon'):
        v.append((tool, first_line([tool, '--version'])))
    return v + [('sh', '/bin/sh -> ' + os.path.realpath('/bin/sh')),
                ('python3', platform.python_version())]


def report(w, load0, hit, hit_req, cold, cold_req, rounds, singles):
    L = []

    def add(*lines):
        L.extend(lines)

    def table(head, rows):
        add('| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head))
        add(*('| ' + ' | '.join(r) + ' |' for r in rows))
        add('')

    def timings(rows, base, what):
        for r in rows:
            r['ratio'] = r['median'] / base['median']
        table(['command', 'median ms', 'p25-p75 ms', 'ratio vs ' + what],
              [(r['name'].replace('|', '\\|'), ms(r['median']), ms(r['p25']) + '-' + ms(r['p75']),
                '%.2fx' % r['ratio']) for r in rows])

    nproc, kernel, cpu = machine()
    add('# galileo-credential benchmark results', '',
        'Generated by `scripts/bench` (bench/bench.py); see bench/README.md. '
        'Times in ms; targets are reported, not enforced.', '',
        '- date: ' + datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
        '- machine: nproc %d, kernel %s, CPU `%s`' % (nproc, kernel, cpu),
        '- load average (1/5/15 min) at start: %s; at end (includes the bench): %s' % (
            ' '.join('%.2f' % x for x in load0), ' '.join('%.2f' % x for x in os.getloadavg())),
        '- a private dbus-daemon and gnome-keyring, a TLS token endpoint on 127.0.0.1 '
        '(tokens valid %d s), config with `server` and `ca-file` only' % TOKEN_LIFETIME,
        '', '## Tool versions', '')
    table(['tool', 'version'], versions(w))

    add('## 1. Cache hit', '',
        '`hyperfine -N --warmup %d --runs %d`, one run for all rows, each command as '
        '`sh -c \'exec CMD <FILE\'`; the first row is that wrapper alone. The last row is '
        '`token` with its token cached in the Secret Service, for reference.' % (WARMUP, RUNS), '')
    timings(hit, hit[1], 'secret-tool lookup')
    add('Endpoint requests during the cache-hit runs: %d (expected 0).' % hit_req, '',
        'git-credential-libsecret: %s.' % w.libsecret_note, '')

    add('## 2. Cold token', '',
        '`hyperfine -N --warmup %d --runs %d`, both behind the same `sh -c`: `token --refresh` '
        '(keyring read, no cache, exchange) against `secret-tool lookup` piped into `curl` '
        '(the key reaches curl on stdin as a header).' % (COLD_WARMUP, COLD_RUNS), '')
    timings(cold, cold[0], 'secret-tool+curl')
    add('Endpoint requests during the cold runs: %d (expected %d).'
        % (cold_req, 2 * (COLD_WARMUP + COLD_RUNS)), '')

    add('## 3. %d simultaneous cold `token` calls' % RACE_N, '',
        'Each round: %d single cold calls, %d x `%s` (the floor: what creating %d processes '
        'costs here), then %d simultaneous cold calls, each a new organization; all spawned '
        'from Python (subprocess.Popen, no shell), wall = first spawn to last exit. A call '
        'succeeds when it exits 0 and prints a token the endpoint issued.'
        % (SINGLES, RACE_N, TRUE, RACE_N, RACE_N), '')
    table(['round', 'wall ms', 'floor ms', 'exchanges', 'succeeded', 'distinct tokens'],
          [(str(i), ms(r['wall']), ms(r['floor']), str(r['exchanges']),
            '%d/%d' % (r['ok'], RACE_N), str(r['distinct'])) for i, r in enumerate(rounds, 1)])
    single = statistics.median([s['wall'] for s in singles])
    floor = statistics.median([r['floor'] for r in rounds])
    wall = statistics.median([r['wall'] for r in rounds])
    ratio, net = wall / single, (wall - floor) / single
    table(['median of', 'ms', 'ratio vs one cold call'], [
        ('one cold call (n=%d, %d ok, %s exchange(s) each)' % (
            len(singles), sum(s['ok'] for s in singles),
            '/'.join(sorted({str(s['exchanges']) for s in singles}))), ms(single), '1.00x'),
        ('%d x `%s`, the floor' % (RACE_N, TRUE), ms(floor), '%.2fx' % (floor / single)),
        ('%d simultaneous, wall' % RACE_N, ms(wall), '%.2fx' % ratio),
        ('the same minus the floor', ms(wall - floor), '%.2fx' % net)])
    errors = [e for t in rounds + singles for e in t['errors']]
    if errors:
        add('Failures (count, first stderr line):', '')
        add(*('- %d x `%s`' % (errors.count(e), e.replace('`', "'")) for e in sorted(set(errors))))
        add('')

    add('## Targets', '')
    targets = [('cache hit `%s` <= %.2fx secret-tool lookup' % (r['name'], HIT_TARGET),
                '%.2fx' % r['ratio'], yes_no(r['ratio'] <= HIT_TARGET)) for r in hit[2:4]]
    targets += [
        ('cold `token --refresh` <= %.1fx secret-tool+curl' % COLD_TARGET,
         '%.2fx' % cold[1]['ratio'], yes_no(cold[1]['ratio'] <= COLD_TARGET)),
        ('race: exactly 1 exchange per round', ', '.join(str(r['exchanges']) for r in rounds),
         yes_no(all(r['exchanges'] == 1 for r in rounds))),
        ('race: %d/%d succeed in every round' % (RACE_N, RACE_N),
         ', '.join('%d/%d' % (r['ok'], RACE_N) for r in rounds),
         yes_no(all(r['ok'] == RACE_N for r in rounds))),
        ('race: wall <= %.1fx one cold call' % RACE_TARGET,
         '%.2fx (minus the floor: %.2fx)' % (ratio, net), yes_no(ratio <= RACE_TARGET))]
    table(['target', 'measured', 'met'], targets)

    add('## Commands as run', '',
        'Ports and the private directory are elided (`PORT`, `$ROOT`); no key or token is in '
        'any argv. Everything ran in the private environment: `PATH=$ROOT/bin:$ROOT/tools:...` '
        '(`$ROOT/bin`: galileo-credential and its git-/docker- links to the build), a private '
        '`DBUS_SESSION_BUS_ADDRESS`, `GALILEO_CREDENTIAL_CONFIG=$ROOT/config`, '
        '`GALILEO_CREDENTIAL_MODULE_DIR`, `HOME` and `XDG_*` under `$ROOT`.', '',
        '```', '# setup, secrets on stdin only',
        'galileo-credential login --server https://127.0.0.1:PORT  # key on stdin',
        'GALILEO_CREDENTIAL_TOKEN_CACHE=keystore galileo-credential token  # primes that cache',
        "secret-tool store --label='galileo bench' %s  # key on stdin" % ST_ATTRS,
        'docker-credential-secretservice store  # {"ServerURL": URL, "Username": "bench", '
        '"Secret": KEY} on stdin')
    if w.libsecret:
        add('git-credential-libsecret store  # protocol, host, username, password=KEY on stdin')
    add('# $ROOT/bench/git-get.in: protocol=https, host=127.0.0.1:PORT, blank line',
        '# $ROOT/bench/docker-get.in: https://127.0.0.1:PORT', '')
    for rows, warm, runs in ((hit, WARMUP, RUNS), (cold, COLD_WARMUP, COLD_RUNS)):
        add(' \\\n'.join(['hyperfine -N --warmup %d --runs %d --export-json FILE' % (warm, runs)]
                         + ['  -n %s %s' % (dq(r['name']), dq(r['cmd'])) for r in rows]), '')
    add('# race, each round; stdin /dev/null, no shell',
        'galileo-credential token --org-slug bench-cold-<run>-<N>  # x %d, one at a time' % SINGLES,
        '%s  # x %d at once: the floor' % (TRUE, RACE_N),
        'galileo-credential token --org-slug bench-race-<run>-<N>  # x %d at once' % RACE_N, '```')
    text = elide(w, '\n'.join(L) + '\n')
    if has_secret(w, text):
        raise BenchError('the report would contain a key or token; not written')
    return text


def main():
    if not os.environ.get('GC_BUILDDIR'):
        print('bench: set GC_BUILDDIR to the build directory (scripts/bench does)', file=sys.stderr)
        return 2
    for tool in ('hyperfine', 'secret-tool', 'docker-credential-secretservice', 'curl', 'sed'):
        if not shutil.which(tool):
            print('bench: %s not found (see bench/README.md)' % tool, file=sys.stderr)
            return 2
    load0 = os.getloadavg()
    env = harness.Env()
    try:
        log('starting the private keyring and token endpoint')
        env.start()
        w = setup(env)
        hit, hit_req = hyperfine(w, 'hit', hit_commands(w), WARMUP, RUNS)
        cold, cold_req = hyperfine(w, 'cold', cold_commands(w), COLD_WARMUP, COLD_RUNS)
        rounds, singles = race(w)
        text = report(w, load0, hit, hit_req, cold, cold_req, rounds, singles)
    except BenchError as e:
        print('bench: ' + str(e), file=sys.stderr)
        return 1
    finally:
        env.close()
    with open(RESULTS, 'w') as f:
        f.write(text)
    sys.stdout.write(text)
    log('wrote ' + os.path.relpath(RESULTS))
    return 0


if __name__ == '__main__':
    sys.exit(main())
