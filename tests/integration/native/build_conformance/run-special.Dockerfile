# RUN changing only metadata of the base's files (copy-up), device nodes (CAP_MKNOD), a socket
# (not in a layer), setgid folders, a file replaced by a folder and a folder by a link, hard links
# across folders, long and odd file names.
FROM {base}
RUN mkdir -p /m/d && echo f > /m/f && echo g > /m/d/g && mkdir /m/tobelink && echo h > /m/tobelink/h
RUN chmod 0711 /bin/busybox && chown 2:3 /bin && touch /bin/busybox
RUN mknod /m/null c 1 3 && mknod /m/blk b 7 0 || true
RUN rm /m/f && mkdir /m/f && echo inside > /m/f/inside && rm -rf /m/tobelink && ln -s /m/d /m/tobelink
RUN mkdir -m 2775 /m/setgid && ln /m/d/g /m/setgid/g-hard && ln /m/d/g /m/g-hard2
RUN nc -lU /m/sock & sleep 1; kill %1 2>/dev/null; true
RUN touch "/m/$(printf 'n%.0s' $(seq 1 200))" "/m/sp ace" "/m/üñí" "/m/tab	x"
