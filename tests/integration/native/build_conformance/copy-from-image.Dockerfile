# COPY --from an image (not a stage): a file, a folder of links, with --chown; stage names are
# case-insensitive.
FROM scratch AS Files
COPY files/plain.txt /plain
FROM scratch
COPY --from={base} /bin/busybox /bb
COPY --from={base} /bin /bin-from-image
COPY --from={base} --chown=3:4 /bin/sh /sh-link
COPY --from=FILES /plain /plain
