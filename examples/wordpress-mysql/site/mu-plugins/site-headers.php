<?php
/**
 * Plugin Name: Site headers
 * Description: Names the site's build and its upload limit in a response header (a must-use plugin
 * of the WordPress example's built image: site/Dockerfile).
 */

add_action('send_headers', static function (): void {
    header('X-Site-Build: upload_max_filesize=' . ini_get('upload_max_filesize'));
});
