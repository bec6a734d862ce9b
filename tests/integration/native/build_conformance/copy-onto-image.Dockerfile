# COPY onto what the image has: through a symbolic link to a folder, over a file of another owner,
# over a symbolic link, into an existing folder of another mode and owner (it keeps its own), a
# folder's contents merged into an existing folder; ENV and ARG in COPY's words.
FROM {base}
RUN mkdir -p /real /existing/sub && ln -s /real /linkdir && echo old > /over && chown 5:5 /over \
    && ln -s /real/target /overlink && chmod 0700 /existing && chown 7:7 /existing && echo keep > /existing/sub/old
ARG WHERE=/argdest
ENV FILES=files
COPY files/plain.txt /linkdir/
COPY files/exec.sh /over
COPY files/plain.txt /overlink
COPY tree /existing/
COPY $FILES/plain.txt ${WHERE}/
COPY ["$FILES/exec.sh", "${WHERE:-/nowhere}/exec"]
