"""Replaces the text between `<!-- NAME:begin -->` and `<!-- NAME:end -->` in a page with a file's content.

Usage: python3 scripts/lib/replace-section.py PAGE NAME SECTION_FILE
"""
import re
import sys

page_path, name, section_path = sys.argv[1:4]
page = open(page_path).read()
section = open(section_path).read()
pattern = r'(<!-- ' + re.escape(name) + r':begin -->\n).*?(<!-- ' + re.escape(name) + r':end -->)'
new, n = re.subn(pattern, lambda m: m.group(1) + section + m.group(2), page, flags=re.S)
if n != 1:
    raise SystemExit(f'{page_path} has no {name}:begin/{name}:end markers')
open(page_path, 'w').write(new)
