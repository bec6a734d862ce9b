#!/bin/bash
# healthcheck.sh of the mariadb stand-in: the official image's tests that compose files use.
#   --connect               the server accepts TCP connections (not yet while the entrypoint initialises)
#   --innodb_initialized    InnoDB is up
#   --su-mysql, --su=USER   accepted and ignored (the client needs no privileges here)
# Credentials come from /var/lib/mysql/.my-healthcheck.cnf, written on initialisation.
set -eo pipefail
DEFAULTS=/var/lib/mysql/.my-healthcheck.cnf

client() { mariadb --defaults-extra-file="$DEFAULTS" --skip-column-names --batch "$@"; }

connect() { client -e 'SELECT 1' >/dev/null; }
innodb_initialized() {
  [ "$(client -e "SELECT 1 FROM information_schema.ENGINES WHERE engine = 'InnoDB' AND support IN ('YES', 'DEFAULT', 'ENABLED')")" = 1 ]
}

[ $# -gt 0 ] || set -- --connect
for arg in "$@"; do
  case "$arg" in
    --connect) connect ;;
    --innodb_initialized) innodb_initialized ;;
    --su-mysql|--su=*|--no-defaults|--defaults-*) ;;
    *) echo "healthcheck.sh: unknown test $arg" >&2; exit 2 ;;
  esac
done
