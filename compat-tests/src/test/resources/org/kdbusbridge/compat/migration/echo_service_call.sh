#!/bin/sh
# Migration proof 4: the examples' EchoService (dbus-java, its own main) and a gdbus client.
# Usage: echo_service_call.sh CLASSPATH. Invariants: the service is started in the
# background, the client waits for its name with `gdbus wait` (no sleep), calls Echo once
# (the service emits Echoed before replying), and the service is stopped with SIGTERM, which
# closes its connection; exit status 0 only if the reply is the echoed text.
set -e
java -cp "$1" org.kdbusbridge.examples.EchoService >/dev/null 2>&1 &
svc=$!
trap 'kill $svc 2>/dev/null || true' EXIT
gdbus wait --session --timeout 30 org.kdbusbridge.examples.EchoService
out=$(gdbus call --session --dest org.kdbusbridge.examples.EchoService --object-path /org/kdbusbridge/examples/Echo \
    --method org.kdbusbridge.examples.Echo.Echo "hello migration")
kill $svc
wait $svc || true
trap - EXIT
[ "$out" = "('hello migration',)" ]
