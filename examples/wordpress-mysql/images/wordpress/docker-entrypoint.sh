#!/bin/bash
# Entrypoint of the wordpress stand-in: the official image's contract on Debian's packages.
# On the first start of an empty /var/www/html, WordPress (Debian's /usr/share/wordpress, symlinks
# resolved) is copied there; when WORDPRESS_DB_* variables are given and no wp-config.php exists, one is
# written that reads WORDPRESS_DB_HOST, _USER, _PASSWORD, _NAME (and their _FILE forms), the table
# prefix and WORDPRESS_CONFIG_EXTRA from the environment at every request.
set -euo pipefail

if [[ "$1" == apache2* ]]; then
  if [ ! -e /var/www/html/index.php ] && [ ! -e /var/www/html/wp-includes/version.php ]; then
    echo >&2 "WordPress not found in $PWD - copying now..."
    tar -C /usr/share/wordpress --dereference --exclude=./wp-config.php -cf - . | tar -C /var/www/html -xf -
    chown -R www-data:www-data /var/www/html
    echo >&2 "Complete! WordPress has been successfully copied to $PWD"
  fi
  configured=""
  for name in $(compgen -e); do
    if [[ "$name" == WORDPRESS_* ]]; then configured=1; fi
  done
  if [ ! -s /var/www/html/wp-config.php ] && [ -n "$configured" ]; then
    # Each "put your unique phrase here" becomes its own random key or salt.
    config=$(< /usr/src/wordpress/wp-config-docker.php)
    while [[ "$config" == *"put your unique phrase here"* ]]; do
      config=${config/put your unique phrase here/$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')}
    done
    printf '%s\n' "$config" > /var/www/html/wp-config.php
    chown www-data:www-data /var/www/html/wp-config.php
    echo >&2 "wp-config.php written from the WORDPRESS_* environment"
  fi
fi
exec "$@"
