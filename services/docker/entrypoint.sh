#!/bin/sh
# The images' entry point: sets what a container's address decides, then runs the command.
#
# A Spark driver (builder/sparkml, large tables) binds to SPARK_LOCAL_IP, which executors on
# other containers must reach: with a master set and no address given, the container's own
# address on its network (Docker maps the hostname to it in /etc/hosts).
set -eu
if [ -n "${LO_SPARK_MASTER:-}" ] && [ -z "${SPARK_LOCAL_IP:-}" ]; then
    SPARK_LOCAL_IP=$(getent hosts "$(hostname)" | awk '{ print $1; exit }')
    export SPARK_LOCAL_IP
fi
exec "$@"
