# FROM an image with ONBUILD triggers and a USER by name: the triggers run first as that user;
# RUN as a user with group memberships, as user:group, as root; --chown by names of the image.
FROM {shared}
RUN id > /home/app/id-app && echo "$HOME" > /home/app/home
USER app:staff
RUN id > /home/app/id-app-staff
USER root
RUN id > /id-root && echo "$HOME" > /home-root
COPY --chown=app:wheel files/plain.txt /owned-by-name
USER 1000
RUN id > /home/app/id-1000
