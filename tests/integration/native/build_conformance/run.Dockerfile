# RUN in shell and exec forms, SHELL; the filesystem changes a RUN makes: new files, modes,
# owners, links, hard links, a fifo, deletions of the base's files (whiteouts), a folder replaced
# (opaque), a folder replaced by a file, metadata-only changes.
FROM {base}
RUN mkdir -p /d/keep /d/gone /e && echo one > /d/keep/f && echo two > /d/gone/g && echo e > /e/file
RUN ["/bin/sh", "-c", "echo exec > /exec && chmod 4751 /exec && chown 3:4 /exec"]
SHELL ["/bin/sh", "-ec"]
RUN rm /bin/ls /d/keep/f; rm -rf /d/gone; touch /d/new
RUN rm -rf /e && mkdir /e && echo replaced > /e/other
RUN ln -s /d/new /link && ln /exec /exec-hard && mkfifo /fifo && mkdir -m 1777 /tmp2 && chmod 0700 /d
RUN rm -rf /d/keep && echo file > /d/keep
RUN chown 1:1 /e && touch /e/other
RUN true
