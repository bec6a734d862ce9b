"""The Dockerfile frontend: BuildKit's Dockerfile syntax (1.x), parsed and checked without I/O.

``parser`` splits a file into instructions as BuildKit's parser does. The builder (which runs the
instructions) lives with the backend that builds.
"""
