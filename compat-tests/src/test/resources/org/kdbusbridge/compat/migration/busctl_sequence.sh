#!/bin/sh
# Migration proof 3: a busctl sequence. Invariants: each step is one busctl process, run one
# after the other; a step whose failure is the point (GetNameOwner of a missing name) is
# allowed to fail, every other step must succeed (set -e), so the exit status says whether the
# sequence worked.
set -e
B="busctl --user --no-pager"
$B call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ListNames >/dev/null
$B call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus GetNameOwner s org.freedesktop.DBus >/dev/null
$B call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus GetNameOwner s com.example.Nope >/dev/null 2>&1 || true
$B call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus NameHasOwner s com.example.Nope >/dev/null
$B get-property org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus Features >/dev/null
$B call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.Properties GetAll s org.freedesktop.DBus >/dev/null
$B introspect org.freedesktop.DBus /org/freedesktop/DBus >/dev/null
$B call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.Peer Ping >/dev/null
$B emit /com/example com.example.Sig Hello s hi
$B list >/dev/null
