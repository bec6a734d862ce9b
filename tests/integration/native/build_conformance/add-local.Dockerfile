# ADD of local files and folders (not archives): as COPY, with --chown and --chmod.
FROM scratch
ADD files /add/
ADD --chown=1:2 glob/*.txt /add-glob/
ADD links /add-links
ADD --chmod=0640 hard /add-hard
