# Stage names, FROM a stage, FROM --platform of the host, COPY --from a stage by name and by
# index (owners kept), a target that is not the last stage.
ARG BASE={base}
FROM --platform=$BUILDPLATFORM ${BASE} AS build
RUN mkdir -p /out/sub && echo built > /out/x && ln -s x /out/y && ln /out/x /out/sub/hard && chown 5:6 /out/x && chmod 0640 /out/x
FROM build AS derived
RUN echo derived > /out/derived
FROM --platform=linux/amd64 scratch AS files
COPY files/plain.txt /plain
FROM ${BASE} AS final
COPY --from=build /out /from-build
COPY --from=derived /out/derived /out/x /picked/
COPY --from=2 /plain /by-index
COPY --from=build /out/y /link-followed
FROM scratch AS unused
COPY files /never
