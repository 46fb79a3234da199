from ganpipe.cli import main

main()
