"""`python -m ifvip` runs the command line."""

from ifvip.fastpath import main

main()
