#!/bin/sh
# Packages installed while an image is built must not start their services (as in Debian's
# official container images): invoke-rc.d asks this script, and 101 means "action forbidden".
exit 101
