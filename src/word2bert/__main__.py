from word2bert.cli import run

run()
