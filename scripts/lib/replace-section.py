"""Puts a run's report on a user page, and the run's conditions in a dated log.

Usage: python3 scripts/lib/replace-section.py PAGE NAME REPORT_FILE COMMAND [MACHINE_LINE ...]
The text between `<!-- NAME:begin -->` and `<!-- NAME:end -->` in PAGE becomes: how to regenerate it (COMMAND), a
link to the run's log, and the report without its load-average lines. The log, benchmarks/<date>-NAME.md next to
PAGE, gets the command, the date, the machine lines and the whole report (a second run on one day is appended).
"""
import datetime
import os
import re
import sys

page_path, name, report_path, command = sys.argv[1:5]
machine = sys.argv[5:]
report = open(report_path).read()
today = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d')
log_name = f'{today}-{name}.md'
log_dir = os.path.join(os.path.dirname(page_path), 'benchmarks')
os.makedirs(log_dir, exist_ok=True)
log_path = os.path.join(log_dir, log_name)
entry = '\n'.join([f'Run of `{command}` on {today}.'] + machine) + '\n\n' + report
if os.path.exists(log_path):
    with open(log_path, 'a') as f:
        f.write('\n---\n\n' + entry)
else:
    with open(log_path, 'w') as f:
        f.write(f'# {today}: {name} run\n\n' + entry)

kept = [line for line in report.splitlines() if not re.match(r'\s*load average', line, re.I)]
section = (f'Regenerate with `{command}`; the latest run, with its date and the machine\'s load: '
           f'[{today}]({os.path.relpath(log_path, os.path.dirname(page_path))}).\n\n' + '\n'.join(kept) + '\n')
page = open(page_path).read()
pattern = r'(<!-- ' + re.escape(name) + r':begin -->\n).*?(<!-- ' + re.escape(name) + r':end -->)'
new, n = re.subn(pattern, lambda m: m.group(1) + section + m.group(2), page, flags=re.S)
if n != 1:
    raise SystemExit(f'{page_path} has no {name}:begin/{name}:end markers')
open(page_path, 'w').write(new)
