# ARG scoping: global defaults, overridden by --build-arg, redeclared per stage, ENV over ARG,
# ARG values in RUN's environment but not in the image's, predefined TARGET*/BUILD* args.
ARG GLOBAL=global-default
ARG GIVEN=given-default
FROM {base} AS one
RUN echo "global=[$GLOBAL] given=[$GIVEN]" > /before
ARG GLOBAL
ARG GIVEN
ARG LOCAL=local-default
ARG TARGETPLATFORM
ARG BUILDOS
RUN echo "global=[$GLOBAL] given=[$GIVEN] local=[$LOCAL] $TARGETPLATFORM $BUILDOS" > /after
ENV LOCAL=from-env
ARG LOCAL=ignored
RUN echo "local=[$LOCAL]" > /env-wins && env | grep -v -e HOSTNAME -e PWD -e SHLVL -e '^_=' | sort > /env
FROM one
RUN echo "local=[$LOCAL] global=[$GLOBAL]" > /second
