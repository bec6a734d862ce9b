# COPY --chown (ids, names from the stage's /etc/passwd and /etc/group, user only) and --chmod,
# on files and folders, into folders that exist and ones COPY creates.
FROM {base}
COPY etc/passwd etc/group /etc/
COPY --chown=1000:1001 files /c1/
COPY --chown=app files/plain.txt /c2
COPY --chown=app:staff files /c3
COPY --chown=7 glob /c4/
COPY --chmod=0600 files /c5/
COPY --chmod=755 --chown=9:10 files/plain.txt /deep/er/x
COPY --chown=app:staff tree /bin/tree/
COPY files/owned /owned
