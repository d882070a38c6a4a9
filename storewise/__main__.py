from storewise.cli import main

main()
