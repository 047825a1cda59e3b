import sys

from word2bert.cli import main

sys.exit(main())
