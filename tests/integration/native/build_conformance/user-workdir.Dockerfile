# USER by name and by id, WORKDIR made (and its mode and owner) as the user, RUN as the user, a
# WORKDIR that exists, through a link, relative to the last one; parser escapes and continuations.
FROM {base}
COPY etc/passwd etc/group /etc/
USER app
WORKDIR /home/app/work
RUN id > /home/app/work/id-app 2>&1 || true; touch /tmp-made 2>/dev/null || echo cannot > ./cannot
USER 1000:50
WORKDIR deeper
RUN pwd > /home/app/work/deeper/pwd && id > id
USER root
RUN ln -s /home/app /apphome
WORKDIR /apphome/linked
WORKDIR /bin
RUN echo \
    continued \
    lines > /continued
