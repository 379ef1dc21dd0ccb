from nntui.cli import main

main()
