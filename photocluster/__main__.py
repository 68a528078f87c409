from photocluster.cli.commands import main

main()
