# Sourced by scripts/serve, scripts/test, scripts/shell, scripts/stop and bench/run: everything they need,
# idempotent and quick on a second run. Not for your own interactive shell (it turns on set -euo pipefail
# there); scripts/shell gives you one with PATH and DATABASE_URL set.
#   provision_system [extra apt packages...]  PostGIS (and extras) from apt when missing
#   provision_venv                            .venv with the project installed (re-installed when pyproject changes)
#   provision_database NAME                   a PostGIS database; exports DATABASE_URL
# When DATABASE_URL is already set, provision_database uses that server and starts nothing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VAR="$ROOT/var"
# A port of this checkout's own (derived from its path), so two checkouts never collide.
PG_PORT=${GEOAPP_PG_PORT:-$((54000 + 0x$(echo "$ROOT" | sha1sum | cut -c1-4) % 900))}
PG_MAJOR=15
mkdir -p "$VAR"

say() { printf '\033[1m[geoapp]\033[0m %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

provision_system() {
  local missing=()
  [ -f /usr/share/postgresql/$PG_MAJOR/extension/postgis.control ] || missing+=("postgresql-$PG_MAJOR-postgis-3")
  [ -x /usr/lib/postgresql/$PG_MAJOR/bin/initdb ] || missing+=("postgresql-$PG_MAJOR")
  command -v python3 >/dev/null || missing+=(python3)
  python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing from apt: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
}

provision_venv() {
  local stamp="$ROOT/.venv/.geoapp-installed" want
  want=$(cat "$ROOT/pyproject.toml" | sha1sum | cut -c1-40)
  if [ ! -x "$ROOT/.venv/bin/python" ]; then
    say "creating .venv"
    python3 -m venv "$ROOT/.venv"
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing geoapp and its dependencies into .venv"
    "$ROOT/.venv/bin/pip" install -q --upgrade pip
    "$ROOT/.venv/bin/pip" install -q -e "$ROOT[test]"
    echo "$want" > "$stamp"
  fi
  export PATH="$ROOT/.venv/bin:$PATH"
  # the UI's English catalog is compiled here rather than committed compiled: a committed .mo could
  # silently lag behind the .po it came from (tests/test_i18n.py checks they agree)
  "$ROOT/.venv/bin/pybabel" -q compile -d "$ROOT/geoapp/translations" -D messages
}

# PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` OS user.
# That user must be able to reach the data directory; a clone inside a private (0700) folder
# is not reachable, and then the cluster lives under /var/lib/geoapp-pg/ with var/pg a symlink to it.
pg_owner() { if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi; }
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_data_dir() {
  if [ -L "$VAR/pg" ] || [ -d "$VAR/pg/base" ]; then readlink -f "$VAR/pg"; return; fi
  if [ "$(id -u)" != 0 ] || runuser -u postgres -- test -x "$VAR"; then
    echo "$VAR/pg"
  else
    local alt="/var/lib/geoapp-pg/$(echo "$ROOT" | sha1sum | cut -c1-12)"
    mkdir -p "$alt" && chown postgres: "$alt" && chmod 700 "$alt"
    ln -sfn "$alt" "$VAR/pg"
    echo "$alt"
  fi
}

provision_cluster() {
  local bin=/usr/lib/postgresql/$PG_MAJOR/bin data
  data=$(pg_data_dir)
  if [ -f "$data/PG_VERSION" ] && ! as_pg test -f "$data/geoapp-least-privilege"; then
    # A cluster made before [5]: its superuser is `geoapp` and every local account gets in with no
    # password (trust). It cannot be narrowed in place (the bootstrap superuser cannot be demoted), so it
    # is made anew; a development cluster holds demo and test data, which the scripts load again.
    say "the cluster in $data lets every local account in as superuser (made before least privilege): replacing it"
    as_pg "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
    as_pg find "$data" -mindepth 1 -delete
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    say "creating a project-local PostgreSQL cluster in $data"
    mkdir -p "$data"
    [ "$(id -u)" = 0 ] && chown postgres: "$data"
    chmod 700 "$data"
    # The superuser `postgres` is reached only over the cluster's own socket by the OS user that owns
    # the cluster (peer authentication); every other connection is a password login (scram-sha-256)
    # of geoapp's two roles (provision_roles). Nothing is `trust`.
    as_pg "$bin/initdb" -D "$data" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
      --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    as_pg tee "$data/pg_hba.conf" >/dev/null <<HBA
# geoapp (scripts/provision.sh): least privilege. TYPE DATABASE USER ADDRESS METHOD
local   all   postgres                  peer map=geoapp_superuser
local   all   geoapp_owner,geoapp_app   scram-sha-256
host    all   geoapp_owner,geoapp_app   127.0.0.1/32   scram-sha-256
host    all   geoapp_owner,geoapp_app   ::1/128        scram-sha-256
HBA
    as_pg tee "$data/pg_ident.conf" >/dev/null <<IDENT
geoapp_superuser  $(pg_owner)  postgres
IDENT
    as_pg touch "$data/geoapp-least-privilege"
    # the derived port may be taken (another checkout's cluster, another service): take the next free one
    while (exec 3<>"/dev/tcp/127.0.0.1/$PG_PORT") 2>/dev/null; do PG_PORT=$((PG_PORT + 1)); done
    cat >> "$data/postgresql.conf" <<CONF
# geoapp: a private cluster reached only through its own socket and loopback port
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$data'
fsync = ${GEOAPP_PG_FSYNC:-on}
CONF
  fi
  # an existing cluster keeps the port it was created with
  PG_PORT=$(as_pg sed -n 's/^port = \([0-9]*\).*/\1/p' "$data/postgresql.conf" | tail -n 1)
  if ! as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    say "starting PostgreSQL on port $PG_PORT"
    if ! as_pg "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start >/dev/null; then
      say "PostgreSQL did not start; the end of $data/server.log:"
      tail -n 20 "$data/server.log" >&2 || true
      return 1
    fi
  fi
  PG_SOCKET_DIR=$data
}

# The password of one of geoapp's database roles, made once and kept in var/ (readable by its owner only).
role_password() {
  local file="$VAR/db-password-$1"
  if [ ! -s "$file" ]; then
    (umask 077; python3 -c 'import secrets; print(secrets.token_hex(24))' > "$file.tmp.$$" && mv "$file.tmp.$$" "$file")
  fi
  cat "$file"
}

as_superuser() {  # psql as the cluster's superuser, over its socket (peer authentication)
  as_pg psql -X -q -h "$PG_SOCKET_DIR" -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 "$@"
}

# Two roles, as in production (deploy/ and scripts/install-production do the same):
#   geoapp_owner  owns the database and its tables, runs the migrations; not a superuser
#   geoapp_app    what the app connects as: SELECT/INSERT/UPDATE/DELETE on geoapp's tables only
#                 (INSERT/SELECT on the append-only ones), granted by `geoapp db upgrade` (geoapp/db_roles.py)
provision_roles() {
  local role
  for role in geoapp_owner geoapp_app; do
    as_superuser -d postgres <<SQL
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION', '$role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$role') \gexec
SET password_encryption = 'scram-sha-256';
ALTER ROLE $role LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD '$(role_password "$role")';
SQL
  done
}

provision_database() {
  local name=$1
  if [ -n "${DATABASE_URL:-}" ]; then
    say "using DATABASE_URL from the environment; no local cluster started"
    export DATABASE_URL
    export OWNER_DATABASE_URL=${OWNER_DATABASE_URL:-$DATABASE_URL}
    return
  fi
  provision_cluster
  provision_roles
  if [ "$(as_superuser -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$name'")" != 1 ]; then
    say "creating database $name"
    as_superuser -d postgres -c "CREATE DATABASE \"$name\" OWNER geoapp_owner"
  fi
  # PostGIS needs a superuser to install; the rest belongs to the owner. Nobody else may connect, and
  # nobody but the owner may create anything in the schema.
  as_superuser -d "$name" <<SQL
CREATE EXTENSION IF NOT EXISTS postgis;
ALTER DATABASE "$name" OWNER TO geoapp_owner;
REVOKE ALL ON DATABASE "$name" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE "$name" TO geoapp_app;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO geoapp_app;
SQL
  local where="$name?host=$PG_SOCKET_DIR&port=$PG_PORT"
  export DATABASE_URL="postgresql://geoapp_app:$(role_password geoapp_app)@/$where"
  export OWNER_DATABASE_URL="postgresql://geoapp_owner:$(role_password geoapp_owner)@/$where"
}
