from photocluster.cli import main

main()
