# shellcheck shell=bash
# pgBackRest for geoapp's PostgreSQL: continuous WAL archiving and point-in-time recovery
# (docs/backup-and-pitr.md). A library, sourced (by scripts/install-production, by tests/test_pitr.py);
# it defines functions and runs nothing, and is safe under `set -euo pipefail`. Run as root: every
# command runs as the postgres user, who owns the data directory, the repository and the WAL.
#   source scripts/pgbackrest.sh
#   pgbackrest_configure /etc/pgbackrest/geoapp.conf /var/lib/pgbackrest geoapp \
#       /var/lib/postgresql/15/geoapp 5433
#   pgbackrest_archiving_conf /etc/pgbackrest/geoapp.conf geoapp > /etc/postgresql/15/geoapp/conf.d/pgbackrest.conf
#   (restart PostgreSQL) ; pgbackrest_stanza_create ... ; pgbackrest_backup ... full

# As postgres, from / : postgres may not enter the caller's working directory, and PostgreSQL's tools
# warn (or fail) when they cannot.
pg_as_postgres() {
  (cd / && runuser -u postgres -- "$@")
}

# The best compression this pgbackrest binary was built with: zst (fast, small), else lz4, else gz.
_pgbackrest_compress_type() {
  local libs
  libs=$(ldd "$(command -v pgbackrest)" 2>/dev/null || true)
  case "$libs" in
    *libzstd*) echo zst ;;
    *liblz4*) echo lz4 ;;
    *) echo gz ;;
  esac
}

# pgbackrest_configure CONF REPO STANZA PGDATA PGPORT [SOCKET_DIR]
# Writes CONF (postgres's, 0640: it names the repository and, with repo2, holds the cipher pass) and
# makes REPO and the log and lock folders, postgres's and 0750 (GEOAPP_PGBACKREST_LOG_PATH and
# GEOAPP_PGBACKREST_LOCK_PATH, when set, instead of /var/log/pgbackrest and /tmp/pgbackrest).
pgbackrest_configure() {
  local conf=$1 repo=$2 stanza=$3 pgdata=$4 pgport=$5 socket_dir=${6:-/var/run/postgresql}
  # Debian's folders by default; a throwaway setup (tests/test_pitr.py) keeps its own
  local logs=${GEOAPP_PGBACKREST_LOG_PATH:-/var/log/pgbackrest} locks=${GEOAPP_PGBACKREST_LOCK_PATH:-/tmp/pgbackrest}
  install -d -m 0750 -o postgres -g postgres "$repo" "$logs" "$locks"
  local tmp="$conf.new.$$"
  cat > "$tmp" <<CONF
# pgBackRest for geoapp (scripts/pgbackrest.sh pgbackrest_configure; docs/backup-and-pitr.md)
[global]
repo1-path=$repo
# two full backups are kept, and every diff and WAL segment back to the older one: with a weekly
# full, one to two weeks of point-in-time recovery
repo1-retention-full=2
# a backup starts at once (a forced checkpoint) instead of waiting for the next scheduled one
start-fast=y
compress-type=$(_pgbackrest_compress_type)
log-level-console=warn
log-level-file=info
log-path=$logs
lock-path=$locks

# The off-site copy: a second repository on another machine or site. Every archived WAL segment is
# then written to both; backups are taken into each (--repo=2) on a schedule of their own; restore
# reads repo1 first, repo2 when repo1 has nothing usable. Encrypted, since it leaves the building
# (keep the pass in a safe as well: without it repo2 is unreadable). pgBackRest 2.45 (Debian 12) has
# no sftp repository type (2.46+): use an S3-compatible store (MinIO at the other site) or a
# filesystem of the other site mounted here.
# S3-compatible:
#repo2-type=s3
#repo2-s3-endpoint=backup.example.org
#repo2-s3-bucket=geoapp-pgbackrest
#repo2-s3-region=cn-local
#repo2-s3-key=<access key>
#repo2-s3-key-secret=<secret key>
#repo2-s3-uri-style=path
#repo2-path=/geoapp
# or a mounted remote filesystem (NFS of the other site; cifs for a Windows/SMB share):
#repo2-type=posix
#repo2-path=/mnt/offsite/pgbackrest
# either way:
#repo2-retention-full=4
#repo2-cipher-type=aes-256-cbc
#repo2-cipher-pass=<openssl rand -base64 48>
# with two repositories, archive asynchronously: otherwise an unreachable repo2 stops WAL archiving
# to repo1 too, and WAL piles up in pg_wal until the disk is full
#archive-async=y
#spool-path=/var/spool/pgbackrest

[$stanza]
pg1-path=$pgdata
pg1-port=$pgport
pg1-socket-path=$socket_dir
CONF
  chown postgres:postgres "$tmp"
  chmod 0640 "$tmp"
  mv -f "$tmp" "$conf"  # whole or not at all: archive_command may be reading it right now
}

# pgbackrest_archiving_conf CONF STANZA: the postgresql.conf lines that archive every WAL segment
# into the stanza's repository (a conf.d/ file; archive_mode and wal_level need a restart).
pgbackrest_archiving_conf() {
  local conf=$1 stanza=$2
  cat <<CONF
# continuous WAL archiving into pgBackRest (scripts/pgbackrest.sh; docs/backup-and-pitr.md)
archive_mode = on
archive_command = 'pgbackrest --config=$conf --stanza=$stanza archive-push %p'
wal_level = replica
max_wal_senders = 3
# a quiet hour still reaches the repository: a partly filled segment is archived after 60 s,
# so at most a minute of committed work is lost with the machine
archive_timeout = 60
CONF
}

# pgbackrest_stanza_create CONF STANZA: once, with PostgreSQL running and archiving configured.
pgbackrest_stanza_create() {
  pg_as_postgres pgbackrest --config="$1" --stanza="$2" stanza-create
  # check: a WAL segment really goes through archive_command into the repository
  pg_as_postgres pgbackrest --config="$1" --stanza="$2" check
}

# pgbackrest_backup CONF STANZA full|diff|incr; past retention, old backups and WAL are expired.
pgbackrest_backup() {
  local conf=$1 stanza=$2 type=$3
  case "$type" in full|diff|incr) ;; *) echo "backup type must be full, diff or incr: $type" >&2; return 2 ;; esac
  pg_as_postgres pgbackrest --config="$conf" --stanza="$stanza" --type="$type" backup
}

# pgbackrest_restore_to_time CONF STANZA PGDATA "TIMESTAMP": PostgreSQL must be stopped by the caller.
# --delta: only the files that differ are rewritten, in place (no empty PGDATA needed);
# promote: once the target is reached the cluster opens for writes, on a new timeline.
pgbackrest_restore_to_time() {
  local conf=$1 stanza=$2 pgdata=$3 target=$4
  pg_as_postgres pgbackrest --config="$conf" --stanza="$stanza" --pg1-path="$pgdata" \
    --delta --type=time "--target=$target" --target-action=promote restore
}

# pgbackrest_info CONF STANZA: the backups kept and the WAL range they can be recovered through.
pgbackrest_info() {
  pg_as_postgres pgbackrest --config="$1" --stanza="$2" info
}
