#!/bin/sh
# ifvip-entrypoint: the image's entrypoint, so that the forms people use with the images
# ifvip replaces keep working:
#   (no arguments)              ifvip run, configured from IFVIP_* / UCARP_* variables
#   run|ifup|ifquery|... ARGS   ifvip COMMAND ARGS
#   ucarp ARGS                  ifvip run ARGS (ucarp's own option names)
#   -i eth0 -s ... ARGS         ifvip run ARGS (ucarp-style options without a command)
#   -h|--help|-V|--version      ifvip's own
# ifvip becomes PID 1 (exec), so signals reach it directly: TERM releases the address.
set -eu

if [ "$#" -eq 0 ]; then
    exec ifvip run
fi
case "$1" in
ucarp)
    shift
    exec ifvip run "$@"
    ;;
-h | --help | -V | --version)
    exec ifvip "$@"
    ;;
-*)
    exec ifvip run "$@"
    ;;
*)
    exec ifvip "$@"
    ;;
esac
