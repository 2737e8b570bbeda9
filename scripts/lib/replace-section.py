"""Replaces the text between `<!-- NAME:begin -->` and `<!-- NAME:end -->` in a page with a run's report.

Usage: python3 scripts/lib/replace-section.py PAGE NAME REPORT_FILE [HEADER_LINE ...]
The section becomes the header lines (the command and the machine's state when it ran), a blank line, and the report.
"""
import re
import sys

page_path, name, report_path = sys.argv[1:4]
header = sys.argv[4:]
page = open(page_path).read()
section = open(report_path).read()
if header:
    section = '\n'.join(header) + '\n\n' + section
pattern = r'(<!-- ' + re.escape(name) + r':begin -->\n).*?(<!-- ' + re.escape(name) + r':end -->)'
new, n = re.subn(pattern, lambda m: m.group(1) + section + m.group(2), page, flags=re.S)
if n != 1:
    raise SystemExit(f'{page_path} has no {name}:begin/{name}:end markers')
open(page_path, 'w').write(new)
