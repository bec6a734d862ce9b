# A stage built FROM a stage whose image has ONBUILD triggers.
FROM {base} AS parent
ONBUILD RUN echo triggered > /triggered
ONBUILD COPY files/plain.txt /onbuild-copied
RUN echo parent > /parent
FROM parent
RUN echo child > /child
