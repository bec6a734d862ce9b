# The config instructions with a layer where BuildKit makes one (WORKDIR's folders).
ARG GLOBAL=g
FROM {base}
ARG GLOBAL
ARG LOCAL=l
ENV A=1 B="two words" C=$GLOBAL-$LOCAL
ENV D d value
LABEL org.example.x="y z" other=1 from-env=$C
EXPOSE 80 443/udp ${PORT:-8080}
USER 1000:1001
WORKDIR /srv/app
WORKDIR sub/$A
USER 0:0
WORKDIR /root-made
RUN pwd > /pwd && id > /id
VOLUME ["/data", "/logs"]
VOLUME /cache
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=3s --start-period=1s --retries=2 CMD ["true"]
SHELL ["/bin/sh", "-ec"]
ENTRYPOINT ["/bin/sh"]
CMD echo hi
ONBUILD RUN echo built
MAINTAINER someone
