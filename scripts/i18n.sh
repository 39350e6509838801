#!/usr/bin/env bash
# The console's translations (see docs/i18n.md). Message ids are the Chinese strings themselves.
#   scripts/i18n.sh extract   every _()/gettext/lazy_gettext/nav() string of admin/ → var/i18n/messages.pot
#   scripts/i18n.sh update    extract, then merge new ids into every admin/translations/*/messages.po
#                             (translations kept; a changed id may come back "fuzzy" — check it)
#   scripts/i18n.sh check     fail, listing them, when a catalog has an id with no translation,
#                             a fuzzy entry, or a translation whose %(name)s placeholders differ
#   scripts/i18n.sh init LANG start a catalog for a new language (e.g. ja), from a fresh extract
# The .mo files are compiled by the app itself at start-up (admin/i18n.py), never committed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
POT=var/i18n/messages.pot
KEYWORDS=(-k lazy_gettext -k _l -k N_ -k nav:2)

extract() {
  mkdir -p "$(dirname "$POT")"
  "$PY" -m babel.messages.frontend -q extract -F babel.cfg "${KEYWORDS[@]}" --no-location --sort-output \
    -o "$POT" admin >/dev/null
  echo "extracted $(grep -c '^msgid "' "$POT") ids → $POT"
}

case "${1:-}" in
  extract)
    extract ;;
  update)
    extract
    "$PY" -m babel.messages.frontend -q update -i "$POT" -d admin/translations --no-fuzzy-matching \
      --ignore-obsolete ;;
  init)
    [[ -n "${2:-}" ]] || { echo "usage: $0 init LANG" >&2; exit 2; }
    extract
    "$PY" -m babel.messages.frontend init -i "$POT" -d admin/translations -l "$2" ;;
  check)
    "$PY" - <<'EOF'
import re
import sys
from pathlib import Path

from babel.messages.pofile import read_po

names = re.compile(r"%\((\w+)\)s")
bad = 0
for po in sorted(Path("admin/translations").glob("*/LC_MESSAGES/messages.po")):
    with po.open("rb") as f:
        catalog = read_po(f)
    for m in catalog:
        if not m.id:
            continue
        why = ("untranslated" if not m.string else "fuzzy" if m.fuzzy
               else "placeholders differ" if sorted(names.findall(m.id)) != sorted(names.findall(m.string))
               else "")
        if why:
            bad += 1
            print(f"{po}: {why}: {m.id!r}")
print(f"{bad} problem(s)")
sys.exit(1 if bad else 0)
EOF
    ;;
  *)
    echo "usage: $0 extract|update|check|init LANG" >&2; exit 2 ;;
esac
