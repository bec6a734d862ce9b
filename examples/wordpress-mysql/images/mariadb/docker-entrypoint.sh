#!/bin/bash
# Entrypoint of the mariadb stand-in: the official image's contract on Debian's mariadb-server.
#   MARIADB_ROOT_PASSWORD, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD, MARIADB_RANDOM_ROOT_PASSWORD,
#   MARIADB_ROOT_HOST, MARIADB_DATABASE, MARIADB_USER, MARIADB_PASSWORD, each also as MYSQL_*,
#   and each (but the booleans) also as *_FILE naming a file that holds the value (Compose secrets).
# An empty /var/lib/mysql is initialised on the first start (then /docker-entrypoint-initdb.d/*.sql
# and *.sh run); a later start finds the data and starts the server directly.
set -eo pipefail
shopt -s nullglob

DATADIR=/var/lib/mysql
SOCKET=/run/mysqld/mysqld.sock

note() { printf '%s 0 [Note] [Entrypoint]: %s\n' "$(date -u '+%F %T')" "$*"; }
fail() { printf '%s 0 [ERROR] [Entrypoint]: %s\n' "$(date -u '+%F %T')" "$*" >&2; exit 1; }

# file_env VAR: VAR's value from $VAR or from the file named by $VAR_FILE (setting both is an error).
file_env() {
  local var=$1 file_var="${1}_FILE" value=""
  if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
    fail "both $var and $file_var are set (but are exclusive)"
  fi
  if [ -n "${!var:-}" ]; then
    value=${!var}
  elif [ -n "${!file_var:-}" ]; then
    [ -r "${!file_var}" ] || fail "$file_var names ${!file_var}, which cannot be read"
    value=$(< "${!file_var}")
  fi
  export "$var"="$value"
  unset "$file_var"
}

# mariadb_env NAME: MARIADB_NAME, falling back to MYSQL_NAME (both with their _FILE forms).
mariadb_env() {
  local mariadb="MARIADB_$1" mysql="MYSQL_$1"
  file_env "$mariadb"
  file_env "$mysql"
  export "$mariadb"="${!mariadb:-${!mysql}}"
}

random_password() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }  # reads 24 bytes: no SIGPIPE

sql_escape() {  # a value for a single-quoted SQL string
  local s=${1//\\/\\\\}
  printf '%s' "${s//\'/\\\'}"
}

setup_env() {
  for name in ROOT_PASSWORD ROOT_HOST DATABASE USER PASSWORD; do mariadb_env "$name"; done
  for name in ALLOW_EMPTY_ROOT_PASSWORD RANDOM_ROOT_PASSWORD; do
    local mariadb="MARIADB_$name" mysql="MYSQL_$name"
    export "$mariadb"="${!mariadb:-${!mysql:-}}"
  done
  : "${MARIADB_ROOT_HOST:=%}"
}

temp_server_sql() { mariadb --no-defaults --protocol=socket --socket="$SOCKET" -uroot --database=mysql "$@"; }

start_temp_server() {
  note "Starting temporary server"
  mariadbd --user=mysql --datadir="$DATADIR" --skip-networking --socket="$SOCKET" \
    --skip-log-bin --innodb-buffer-pool-size=32M &
  TEMP_PID=$!
  for _ in $(seq 1 60); do
    if temp_server_sql -e 'SELECT 1' >/dev/null 2>&1; then
      note "Temporary server started."
      return
    fi
    kill -0 "$TEMP_PID" 2>/dev/null || fail "the temporary server exited during initialisation"
    sleep 0.5
  done
  fail "the temporary server did not accept connections within 30 s"
}

stop_temp_server() {
  note "Stopping temporary server"
  kill "$TEMP_PID"
  wait "$TEMP_PID" || true
  note "Temporary server stopped"
}

init_database() {
  if [ -z "$MARIADB_ROOT_PASSWORD" ] && [ -z "$MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" ] && [ -z "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
    fail "Database is uninitialized and password option is not specified
	You need to specify one of MARIADB_ROOT_PASSWORD, MARIADB_ROOT_PASSWORD_HASH, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD and MARIADB_RANDOM_ROOT_PASSWORD"
  fi
  if [ -n "$MARIADB_USER" ] && [ "$MARIADB_USER" = root ]; then
    fail "MARIADB_USER=\"root\", MARIADB_USER and MARIADB_PASSWORD are for configuring a regular user and cannot be used for the root user"
  fi
  note "Initializing database files"
  mariadb-install-db --user=mysql --datadir="$DATADIR" --skip-test-db --auth-root-authentication-method=normal \
    --skip-log-bin >/dev/null
  note "Database files initialized"

  start_temp_server
  if [ -n "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
    MARIADB_ROOT_PASSWORD=$(random_password)
    note "GENERATED ROOT PASSWORD: $MARIADB_ROOT_PASSWORD"
  fi
  local root_password health_password
  root_password=$(sql_escape "$MARIADB_ROOT_PASSWORD")
  health_password=$(random_password)
  {
    echo "SET @@SESSION.SQL_LOG_BIN=0;"
    echo "DROP USER IF EXISTS ''@'localhost', ''@'$(hostname)', 'root'@'127.0.0.1', 'root'@'::1', 'root'@'$(hostname)';"
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$root_password';"
    if [ "$MARIADB_ROOT_HOST" != localhost ]; then
      echo "CREATE USER 'root'@'$(sql_escape "$MARIADB_ROOT_HOST")' IDENTIFIED BY '$root_password';"
      echo "GRANT ALL ON *.* TO 'root'@'$(sql_escape "$MARIADB_ROOT_HOST")' WITH GRANT OPTION;"
    fi
    echo "CREATE USER 'healthcheck'@'127.0.0.1' IDENTIFIED BY '$health_password';"
    echo "CREATE USER 'healthcheck'@'::1' IDENTIFIED BY '$health_password';"
    echo "CREATE USER 'healthcheck'@'localhost' IDENTIFIED BY '$health_password';"
    if [ -n "$MARIADB_DATABASE" ]; then
      note "Creating database ${MARIADB_DATABASE}" >&2
      echo "CREATE DATABASE IF NOT EXISTS \`${MARIADB_DATABASE//\`/\`\`}\`;"
    fi
    if [ -n "$MARIADB_USER" ] && [ -n "$MARIADB_PASSWORD" ]; then
      note "Creating user ${MARIADB_USER}" >&2
      echo "CREATE USER '$(sql_escape "$MARIADB_USER")'@'%' IDENTIFIED BY '$(sql_escape "$MARIADB_PASSWORD")';"
      if [ -n "$MARIADB_DATABASE" ]; then
        note "Giving user ${MARIADB_USER} access to schema ${MARIADB_DATABASE}" >&2
        echo "GRANT ALL ON \`${MARIADB_DATABASE//\`/\`\`}\`.* TO '$(sql_escape "$MARIADB_USER")'@'%';"
      fi
    fi
  } | temp_server_sql
  # The healthcheck user's credentials, for healthcheck.sh (as the official image writes them).
  printf '[mariadb-client]\nport=3306\nsocket=%s\nuser=healthcheck\npassword=%s\nprotocol=tcp\nhost=127.0.0.1\n' \
    "$SOCKET" "$health_password" > "$DATADIR/.my-healthcheck.cnf"
  chown mysql:mysql "$DATADIR/.my-healthcheck.cnf"
  chmod 600 "$DATADIR/.my-healthcheck.cnf"

  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh) note "$0: running $f"; . "$f" ;;
      *.sql) note "$0: running $f"; temp_server_sql --password="$MARIADB_ROOT_PASSWORD" "${MARIADB_DATABASE:+--database=$MARIADB_DATABASE}" < "$f" ;;
      *.sql.gz) note "$0: running $f"; gunzip -c "$f" | temp_server_sql --password="$MARIADB_ROOT_PASSWORD" ;;
      *) note "$0: ignoring $f" ;;
    esac
  done
  stop_temp_server
  note "MariaDB init process done. Ready for start up."
}

if [ "${1:0:1}" = '-' ]; then
  set -- mariadbd "$@"
fi
if [ "$1" = mariadbd ] || [ "$1" = mysqld ]; then
  note "Entrypoint script for MariaDB Server (Debian stand-in) started."
  setup_env
  mkdir -p /run/mysqld
  if [ "$(id -u)" = 0 ]; then
    chown mysql:mysql /run/mysqld
    find "$DATADIR" \! -user mysql -exec chown mysql:mysql '{}' +
  fi
  if [ ! -d "$DATADIR/mysql" ]; then
    init_database
  fi
fi
exec "$@"
