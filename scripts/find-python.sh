#!/usr/bin/env bash
# Print the path of a working Python interpreter of the given minor version (e.g. 3.12).
#
# Why not just `command -v python3.12`: under pyenv, a shim named python3.12 is on PATH
# even when 3.12 is not the selected version, and running it fails ("command not found"
# from pyenv). So every candidate is actually run and must report the right version.
set -euo pipefail

want=${1:?usage: find-python.sh 3.12}

candidates=()
if command -v "python$want" >/dev/null 2>&1; then
  candidates+=("$(command -v "python$want")")
fi
if command -v pyenv >/dev/null 2>&1; then
  # Ask pyenv for the interpreter of an installed $want.x, whatever version is global.
  for v in $(pyenv versions --bare 2>/dev/null | grep -E "^${want//./\\.}(\.[0-9]+)?$" | sort -rV); do
    p=$(PYENV_VERSION=$v pyenv which "python$want" 2>/dev/null || true)
    [ -n "$p" ] && candidates+=("$p")
  done
fi
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
for p in "$pyenv_root"/versions/"$want".*/bin/"python$want" /usr/local/bin/"python$want" \
  /usr/bin/"python$want"; do
  [ -e "$p" ] && candidates+=("$p")
done

for p in "${candidates[@]}"; do
  # The interpreter itself (not a shim), so a venv made from it does not depend on pyenv.
  if real=$("$p" -c "import sys; assert '%d.%d' % sys.version_info[:2] == '$want'
print(sys.executable)" 2>/dev/null) && [ -n "$real" ]; then
    echo "$real"
    exit 0
  fi
done

echo "find-python.sh: no working python$want found (tried: ${candidates[*]:-nothing})" >&2
exit 1
