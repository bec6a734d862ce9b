# The context filtered by dockerignore.Dockerfile.dockerignore: **, ! exceptions, the last match wins.
FROM scratch
COPY . /ctx/
COPY tree /tree
COPY tree/a /a
