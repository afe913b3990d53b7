#!/usr/bin/env bash
# Prepares a host for sitesync running as an unprivileged user: creates the
# sitesync system user and its directories, and grants it -- with POSIX
# ACLs, without changing who owns nginx's and certbot's files (ls -l then
# shows the ACL mask in the group bits, and a "+") -- exactly the access it
# needs:
#
#   conf.d, snippets        rwx, plus default ACLs so that what sitesync
#                           creates there stays readable by root and nginx
#   /var/lib/sitesync       its state directory (owner); nginx's worker user
#                           may traverse it to reach the ACME webroot
#   /var/lib/sitesync/acme  the ACME HTTP-01 webroot, readable by nginx
#   /etc/letsencrypt/{live,archive}
#                           read, so sitesync can read each cert.pem's names
#                           and expiry (see "Private keys" below)
#
# Usage: examples/acl.sh [--dry-run]
#   --dry-run  print the commands that would change something, run none.
#
# Run it as root, before starting sitesync and again whenever you like: it
# is idempotent (a second run changes nothing). It needs setfacl/getfacl
# (Debian package "acl") and a file system with ACLs (ext4, xfs, btrfs:
# on by default).
#
# Every path and name can be overridden from the environment (the names do
# not start with SITESYNC_, which sitesync would reject as unknown keys):
#
#   ACL_USER=sitesync  ACL_GROUP=$ACL_USER  ACL_NGINX_USER=www-data
#   ACL_ETC_DIR=/etc/sitesync  ACL_STATE_DIR=/var/lib/sitesync
#   ACL_WEBROOT=$ACL_STATE_DIR/acme          ([certbot] webroot)
#   ACL_CONF_DIR=/etc/nginx/conf.d           ([nginx] conf_dir)
#   ACL_SNIPPETS_DIR=/etc/nginx/snippets     ([nginx] snippets_dir)
#   ACL_LETSENCRYPT_DIR=/etc/letsencrypt     ([certbot] config_dir)
#   ACL_LETSENCRYPT_WORK_DIR=/var/lib/letsencrypt  ([certbot] work_dir)
#   ACL_LETSENCRYPT_LOGS_DIR=/var/log/letsencrypt  ([certbot] logs_dir)
#
# Private keys. Read access to live/ and archive/ cannot be limited to the
# certificate files: certbot writes new files (cert2.pem, privkey2.pem, ...)
# and new lineage directories on every issuance and renewal, and they get
# their ACL from the default ACL of their directory -- the same default
# ACL for private keys as for certificates. Said plainly: the sitesync
# user gets an ACL entry granting read on the private keys too. What keeps
# a key unreadable is only the ACL mask, which follows the file's group
# permission bits: certbot creates keys with mode 0600, which makes the
# mask "---" and the entry ineffective (getfacl shows
# "user:sitesync:r-x  #effective:---"). If a key is group-readable (some
# hosts do that for an ssl-cert group), sitesync can read it; and certbot
# carries a key's group bits over to its renewed key. This script therefore
# never touches existing private keys (a recursive "setfacl -m" would widen
# their mask) and warns about every key sitesync can read. If your keys
# must not be readable by the sitesync user under any circumstances, ACLs
# cannot give you that: sitesync must read each certificate to know what
# to issue, so it cannot run without this access.
set -euo pipefail

dry_run=false
case "${1-}" in
  --dry-run) dry_run=true ;;
  "") ;;
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    printf 'usage: %s [--dry-run]\n' "$0" >&2
    exit 2
    ;;
esac
if (($# > 1)); then
  printf 'usage: %s [--dry-run]\n' "$0" >&2
  exit 2
fi

user=${ACL_USER:-sitesync}
group=${ACL_GROUP:-$user}
nginx_user=${ACL_NGINX_USER:-www-data}
etc_dir=${ACL_ETC_DIR:-/etc/sitesync}
state_dir=${ACL_STATE_DIR:-/var/lib/sitesync}
webroot=${ACL_WEBROOT:-$state_dir/acme}
conf_dir=${ACL_CONF_DIR:-/etc/nginx/conf.d}
snippets_dir=${ACL_SNIPPETS_DIR:-/etc/nginx/snippets}
le_dir=${ACL_LETSENCRYPT_DIR:-/etc/letsencrypt}
le_work_dir=${ACL_LETSENCRYPT_WORK_DIR:-/var/lib/letsencrypt}
le_logs_dir=${ACL_LETSENCRYPT_LOGS_DIR:-/var/log/letsencrypt}

log() { printf 'acl.sh: %s\n' "$*" >&2; }
die() {
  log "$*"
  exit 1
}

# run prints a command (shell-quoted where needed, so it can be pasted) in dry-run
# mode, and runs it -- argv as given, no shell, no eval -- otherwise.
run() {
  if $dry_run; then
    local arg sep=''
    for arg in "$@"; do
      if [[ $arg =~ ^[A-Za-z0-9_./:,=@%+-]+$ ]]; then
        printf '%s%s' "$sep" "$arg"
      else
        printf '%s%q' "$sep" "$arg"
      fi
      sep=' '
    done
    printf '\n'
  else
    "$@"
  fi
}

for d in "$etc_dir" "$state_dir" "$webroot" "$conf_dir" "$snippets_dir" "$le_dir" "$le_work_dir" "$le_logs_dir"; do
  [[ $d == /* ]] || die "$d: every directory must be an absolute path"
done
if ! $dry_run; then
  [[ $(id -u) -eq 0 ]] || die "must run as root (or try --dry-run)"
fi
for tool in setfacl getfacl getent install; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (setfacl/getfacl: apt-get install acl)"
done

# --- user and group -------------------------------------------------------

if ! getent group "$group" >/dev/null; then
  run groupadd --system "$group"
fi
if ! getent passwd "$user" >/dev/null; then
  # The home is the state directory: ~/.ssh/known_hosts for ssh source URLs.
  run useradd --system --gid "$group" --home-dir "$state_dir" --no-create-home \
    --shell /usr/sbin/nologin --comment "sitesync" "$user"
fi
if $dry_run && ! getent passwd "$nginx_user" >/dev/null; then
  log "warning: nginx user $nginx_user does not exist (yet); setfacl would fail"
fi

# --- sitesync's own directories ---------------------------------------------

# Configuration and secrets: root writes them, sitesync reads them. Secret
# files inside must be owned by sitesync with mode 0400 or 0600: sitesync
# refuses a secret that its group or others can read.
run install -d -m 0750 -o root -g "$group" "$etc_dir"
# State: the checkout, lock, journal and database. systemd's
# StateDirectory= would create it too; creating it here lets the ACLs be set
# before the first start.
run install -d -m 0750 -o "$user" -g "$group" "$state_dir"
# nginx's workers serve the ACME webroot, below the private state directory:
# they may traverse it (--x: no listing, no reading of anything else).
run setfacl -m "u:$nginx_user:--x" "$state_dir"
run install -d -m 0750 -o "$user" -g "$group" "$webroot"
run setfacl -m "u:$nginx_user:r-x" "$webroot"
# Whatever certbot or sitesync creates below it (.well-known/acme-challenge/
# and the challenge files) stays readable for nginx, whatever the umask.
run setfacl -d -m "u::rwx,g::r-x,o::---,u:$nginx_user:r-x,m::r-x" "$webroot"

# --- nginx directories ------------------------------------------------------

for d in "$conf_dir" "$snippets_dir"; do
  if [[ ! -d $d ]]; then
    run install -d -m 0755 -o root -g root "$d"
  fi
  # sitesync creates, replaces (rename) and deletes files here. It never
  # changes a file it did not create, but a directory ACL cannot say that:
  # with write access to the directory it could rename anything in it.
  run setfacl -m "u:$user:rwx" "$d"
  # New files and subdirectories: readable by everyone like the rest of
  # /etc/nginx (the default ACL replaces sitesync's umask 0027 here), and
  # sitesync keeps write access to subdirectories of snippets/ it did not
  # create itself.
  run setfacl -d -m "u::rwx,g::r-x,o::r-x,u:$user:rwx,m::rwx" "$d"
done

# --- certbot directories ----------------------------------------------------

# certbot creates these on its first run, but sitesync.service makes them
# writable for the certbot it runs (ReadWritePaths=) only if they exist when
# the service starts. Same owners and modes as certbot's.
if [[ ! -d $le_dir ]]; then
  run install -d -m 0755 -o root -g root "$le_dir"
fi
if [[ ! -d $le_work_dir ]]; then
  run install -d -m 0755 -o root -g root "$le_work_dir"
fi
if [[ ! -d $le_logs_dir ]]; then
  run install -d -m 0700 -o root -g root "$le_logs_dir"
fi
for d in "$le_dir/live" "$le_dir/archive"; do
  if [[ ! -d $d ]]; then
    run install -d -m 0700 -o root -g root "$d"
  fi
done

# live/ and archive/ and every lineage directory in them: traverse and list.
# The default ACL gives the same to the directories and files certbot
# creates later (effective only as far as each file's mode allows: see
# "Private keys" above).
shopt -s nullglob
le_dirs=("$le_dir/live" "$le_dir/archive" "$le_dir"/live/*/ "$le_dir"/archive/*/)
for d in "${le_dirs[@]}"; do
  d=${d%/}
  [[ -L $d ]] && continue
  run setfacl -m "u:$user:r-x" "$d"
  run setfacl -d -m "u::rwx,g::r-x,o::r-x,u:$user:r-x,m::r-x" "$d"
done
# Existing certificates (live/*/cert.pem links to archive/*/certN.pem):
# read, one file at a time, never the private keys.
for f in "$le_dir"/archive/*/cert*.pem "$le_dir"/archive/*/chain*.pem "$le_dir"/archive/*/fullchain*.pem; do
  [[ -f $f && ! -L $f ]] || continue
  run setfacl -m "u:$user:r--" "$f"
done
# Report every private key the sitesync user can read (see above).
for f in "$le_dir"/archive/*/privkey*.pem; do
  [[ -f $f && ! -L $f ]] || continue
  if getfacl --absolute-names --omit-header -- "$f" 2>/dev/null |
    grep -Eq "^user:$user:r..([[:space:]]+#effective:r..)?\$|^other::r"; then
    log "warning: $user can read the private key $f (its group or other permission bits allow it); 'chmod go-rwx' it unless that is intended"
  fi
done
shopt -u nullglob

if $dry_run; then
  log "dry run: nothing was changed"
else
  log "done; check with: getfacl $conf_dir $snippets_dir $state_dir $webroot $le_dir/live $le_dir/archive"
fi
