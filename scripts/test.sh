#!/usr/bin/env bash
# test.sh [pytest args...]: THE test command. Installs what the tests need
# (setup.sh --test), starts throwaway PostgreSQL, Redis and SeaweedFS in a
# temporary directory (always stopped and removed on exit), then runs, stopping
# at the first failure: ruff check, ruff format --check, lint-imports, pytest.
# Exits with pytest's code; "no tests collected" (pytest's 5) is a failure.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

now_ms() { date +%s%3N; }
secs_since() {
  local d=$(($(now_ms) - $1))
  printf '%d.%ds' $((d / 1000)) $((d % 1000 / 100))
}
T_ALL=$(now_ms)
say() { echo "test.sh: $*" >&2; }

# stage NAME CMD...: run, print its time, stop the script on failure.
stage() {
  local name="$1" t0 rc=0
  shift
  say "== $name"
  t0=$(now_ms)
  "$@" || rc=$?
  say "$name: $(secs_since "$t0")"
  if ((rc)); then
    say "FAILED at '$name' (exit $rc) after $(secs_since "$T_ALL")"
    exit "$rc"
  fi
}

# Unless POCHETTE_{PG,REDIS,S3}_PORT are set, take the first free set of ports
# so that tests also run while services.sh's own instance (or another test
# run) holds the defaults: slot k = PG 5440+k, Redis 6390+k, weed ports +20k.
port_busy() { (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_ports() {
  if [[ -n "${POCHETTE_PG_PORT:-}${POCHETTE_REDIS_PORT:-}${POCHETTE_S3_PORT:-}" ]]; then
    return
  fi
  local k o p busy
  for ((k = 0; k < 20; k++)); do
    o=$((k * 20))
    busy=0
    for p in $((5440 + k)) $((6390 + k)) $((8433 + o)) $((9433 + o)) $((9440 + o)) $((8988 + o)) $((23746 + o)); do
      if port_busy "$p" || port_busy $((p + 10000)); then
        busy=1
        break
      fi
    done
    if ((!busy)); then
      ((k == 0)) || say "default service ports busy: using slot $k"
      export POCHETTE_PG_PORT=$((5440 + k)) POCHETTE_REDIS_PORT=$((6390 + k)) POCHETTE_S3_PORT=$((8433 + o))
      return
    fi
  done
  say "no free set of service ports found; set POCHETTE_PG_PORT, POCHETTE_REDIS_PORT, POCHETTE_S3_PORT"
  exit 1
}

stage "setup" bash "$REPO/scripts/setup.sh" --test

SVC_DIR="$(mktemp -d -t pochette-test.XXXXXX)"
# shellcheck disable=SC2317 # (invoked by the EXIT trap)
cleanup() {
  local rc=$?
  bash "$REPO/scripts/services.sh" stop "$SVC_DIR" || say "WARNING: could not stop the services in $SVC_DIR"
  rm -rf "$SVC_DIR"
  return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
chmod 755 "$SVC_DIR" # postgres must reach its data dir inside

pick_ports
stage "services" bash "$REPO/scripts/services.sh" start "$SVC_DIR" >/dev/null
# shellcheck source=/dev/null
source "$SVC_DIR/env"

# Chromium writes into ~/.config and ~/.cache: keep that in the scratch dir.
export XDG_CONFIG_HOME="$SVC_DIR/xdg-config" XDG_CACHE_HOME="$SVC_DIR/xdg-cache"
mkdir -p "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME"
export OMP_THREAD_LIMIT=1 # tesseract: 4x faster on 2 cores

stage "ruff check" .venv/bin/ruff check .
stage "ruff format" .venv/bin/ruff format --check .
# --no-cache: .import_linter_cache/ would otherwise land in the working tree.
stage "lint-imports" .venv/bin/lint-imports --no-logo --no-cache

say "== pytest $*"
t0=$(now_ms)
rc=0
.venv/bin/python -m pytest "$@" || rc=$?
say "pytest: $(secs_since "$t0") (exit $rc)"
if ((rc == 5)); then
  say "FAILED: pytest collected no tests (exit 5); a test run that runs nothing is a failure"
elif ((rc)); then
  say "FAILED: pytest exit $rc"
else
  say "all stages passed"
fi
say "total $(secs_since "$T_ALL") (services are stopped on exit)"
exit "$rc"
