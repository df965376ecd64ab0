#!/bin/sh
# The compose stack's broker: creates the service users' password file from the environment
# on first start, then runs Mosquitto and reloads it (SIGHUP) whenever Forewarn rewrites the
# device credentials (`forewarn devices provision|revoke` and `forewarn broker sync`, run
# first by the broker-init service, write devices.passwd and devices.acl and bump
# devices.passwd.generation).
# Mosquitto drops clients whose credential is gone on reload: a revoked device is cut off
# within a second.
set -eu
auth=/mosquitto/auth
: "${MQTT_INGEST_PASSWORD:?set MQTT_INGEST_PASSWORD}"
umask 027
if [ ! -s "$auth/services.passwd" ]; then
    mosquitto_passwd -b -c "$auth/services.passwd" forewarn-ingest "$MQTT_INGEST_PASSWORD"
    if [ -n "${MQTT_SIMULATOR_PASSWORD:-}" ]; then
        mosquitto_passwd -b "$auth/services.passwd" forewarn-simulator "$MQTT_SIMULATOR_PASSWORD"
    fi
    chown mosquitto:mosquitto "$auth/services.passwd"
fi
for f in devices.passwd devices.acl; do
    [ -e "$auth/$f" ] || { echo "missing $auth/$f: run forewarn broker sync first" >&2; exit 1; }
done

mosquitto -c /mosquitto/config/mosquitto.conf &
broker=$!
trap 'kill -TERM "$broker"; wait "$broker"; exit $?' TERM INT
seen=$(cat "$auth/devices.passwd.generation" 2>/dev/null || echo 0)
while kill -0 "$broker" 2>/dev/null; do
    now=$(cat "$auth/devices.passwd.generation" 2>/dev/null || echo 0)
    if [ "$now" != "$seen" ]; then
        kill -HUP "$broker"
        seen=$now
    fi
    sleep 1
done
wait "$broker"
