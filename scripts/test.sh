#!/usr/bin/env bash
# The one test command of sitesync.
#
# On a fresh Debian 12 machine, as root, it installs the external tools the
# tests drive (nginx, certbot, pebble, promtool, chromium, git, PostgreSQL,
# RabbitMQ, a C compiler for -race), starts PostgreSQL and RabbitMQ when they
# do not answer, then runs go vet, the race-enabled test suite and a short
# run of every fuzz target.
# Extra arguments are passed to go test, e.g.: scripts/test.sh -run Nginx -v
#
# The system nginx service is left alone: tests run private nginx instances
# on free ports of 127.0.0.1 and never use port 80.
set -euo pipefail

cd "$(dirname "$0")/.."

export CI=${CI:-}
export PATH="/usr/local/go/bin:${PATH}:/usr/local/sbin:/usr/sbin:/sbin"
export DEBIAN_FRONTEND=noninteractive

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'scripts/test.sh: %s\n' "$*" >&2; exit 1; }

# --- tools ---------------------------------------------------------------

packages=(nginx-light certbot pebble prometheus chromium git openssl ca-certificates sudo acl systemd e2fsprogs util-linux)
# Installed only when their commands are missing.
declare -A optional=(
  [pg_ctlcluster]=postgresql
  [rabbitmq-server]=rabbitmq-server
  [gcc]="gcc libc6-dev"
)

missing=()
for cmd in nginx certbot pebble promtool chromium git openssl visudo setfacl getfacl systemd-analyze chattr mount flock; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
done
[[ -f /etc/ssl/certs/ca-certificates.crt ]] || missing+=(ca-certificates)
extra=()
for cmd in "${!optional[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    missing+=("$cmd")
    read -r -a pkgs <<<"${optional[$cmd]}"
    extra+=("${pkgs[@]}")
  fi
done

if ((${#missing[@]} > 0)); then
  log "missing: ${missing[*]}; installing with apt-get"
  [[ $(id -u) -eq 0 ]] || die "must run as root to install ${missing[*]}"
  shopt -s nullglob
  lists=(/var/lib/apt/lists/*_Packages*)
  shopt -u nullglob
  if ((${#lists[@]} == 0)); then
    apt-get update
  fi
  if ! apt-get install -y --no-install-recommends "${packages[@]}" "${extra[@]}"; then
    log "apt-get install failed; refreshing package lists and retrying"
    apt-get update
    apt-get install -y --no-install-recommends "${packages[@]}" "${extra[@]}"
  fi
fi

command -v go >/dev/null 2>&1 || die "go is not installed (need the version in go.mod, under /usr/local/go or in PATH)"

# --- services ------------------------------------------------------------

tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2
  shift 2
  local i
  for ((i = 0; i < secs * 2; i++)); do
    if "$@"; then
      return 0
    fi
    sleep 0.5
  done
  die "$what did not come up within ${secs}s"
}

pg_up() { pg_isready -q -h 127.0.0.1; }
if command -v pg_isready >/dev/null 2>&1 && ! pg_up; then
  log "starting PostgreSQL"
  shopt -s nullglob
  for conf in /etc/postgresql/*/main; do
    version=$(basename "$(dirname "$conf")")
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
  shopt -u nullglob
  wait_for 30 PostgreSQL pg_up
fi

rabbit_up() { tcp_open 127.0.0.1 5672; }
if command -v rabbitmq-server >/dev/null 2>&1 && ! rabbit_up; then
  log "starting RabbitMQ"
  rabbitmq-server -detached || log "rabbitmq-server -detached failed; waiting in case it is already starting"
  wait_for 60 RabbitMQ rabbit_up
fi

# --- go ------------------------------------------------------------------

log "go vet ./..."
go vet ./...

log "go test -race -count=1 ./... $*"
go test -race -count=1 ./... "$@"

# A short run of every fuzz target, so hostile-input properties are
# exercised beyond their seed corpora on every CI run. Skipped when extra
# arguments select tests.
#
# The budgets are execution counts of about 10 seconds each on 2 cores, not
# durations: with a duration, Go before 1.27 can fail a target with a bare
# "context deadline exceeded" when -fuzztime expires while a worker is
# mid-input (golang/go#75804), which a count never does. FUZZ_TIME
# overrides every budget (a count such as 5000x, or a duration).
if (($# == 0)); then
  for target in state:FuzzLoad:200000x state:FuzzServerNames:300000x webhook:FuzzHandler:150000x render:FuzzRenderSite:60000x; do
    pkg=${target%%:*} rest=${target#*:}
    name=${rest%%:*} fuzz_time=${FUZZ_TIME:-${rest#*:}}
    if ! grep -q "func ${name}(" "${pkg}"/*_test.go; then
      die "fuzz target ${name} not found in ${pkg}/"
    fi
    log "go test -fuzz ${name} -fuzztime ${fuzz_time} ./${pkg}"
    go test -run '^$' -fuzz "^${name}\$" -fuzztime "${fuzz_time}" -fuzzminimizetime 200x "./${pkg}"
  done
fi
