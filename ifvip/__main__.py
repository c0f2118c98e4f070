"""`python -m ifvip` runs the command line."""

from ifvip.cli import main

main()
