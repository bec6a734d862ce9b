"""The native backend's Dockerfile builder: stages built into the native image store, no daemon.

composer.dockerfile parses and types the Dockerfile and computes each stage's image config;
here the filesystem side: the build context (``context``, with ``.dockerignore``), read-only
views of a stage's layers (``rootfs``), COPY/ADD as new layers (``copy``), layers written in the
store's format (``layer``), and the build itself (``builder``).
"""
