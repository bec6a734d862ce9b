# The shared base the {shared} cases build FROM (built once by docker build and pushed to the local
# registry): users and groups with memberships, a default USER by name, ONBUILD triggers.
FROM {base}
COPY etc/passwd etc/group /etc/
RUN mkdir -p /onbuild /home/app && chown app:app /home/app /onbuild
LABEL org.example.base=shared
ONBUILD COPY files/plain.txt /onbuild/
ONBUILD RUN id > /onbuild/id && echo "$HOME" > /onbuild/home
USER app
