#!/usr/bin/env bash
# run.sh: THE run command for a first look. Installs the app (setup.sh --app),
# applies the migrations, creates the demo data (idempotent; prints the demo
# logins) and serves the app on http://127.0.0.1:5000 with the development
# server. No service is needed: without POCHETTE_* variables the app uses its
# embedded defaults.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

bash "$REPO/scripts/setup.sh" --app

if [[ ! -f wsgi.py ]]; then
  echo "run.sh: $REPO/wsgi.py not found: the app is not there yet" >&2
  exit 1
fi
export OMP_THREAD_LIMIT="${OMP_THREAD_LIMIT:-1}"

.venv/bin/flask --app wsgi db upgrade
.venv/bin/flask --app wsgi demo
echo "run.sh: serving on http://127.0.0.1:5000 (Ctrl-C to stop)" >&2
exec .venv/bin/flask --app wsgi run --host 127.0.0.1 --port 5000
