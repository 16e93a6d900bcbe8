"""The command-line tools besides the launchers: predict, erase, corpus and the sample download."""
